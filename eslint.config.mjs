// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.data/**',
      '.cache/**',
      'drizzle/migrations/**',
      'bench/results/**',
      '*.mjs',
      'drizzle.config.ts',
      'clients/typescript/dist/**',
      'clients/typescript/bin/**',
      'clients/typescript/src/schema.ts',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test()/describe() return promises the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // Fastify plugins and hooks are async by contract even when they await nothing.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // The determinism boundary: workflow code runs in Temporal's sandbox and is replayed, so it
    // may not touch Node built-ins, the database, the network or the clock outside the SDK.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Workflow code must be deterministic: no Node built-ins.' },
            {
              group: [
                'pg',
                'pg-*',
                'undici',
                'drizzle-orm',
                'drizzle-orm/*',
                'fastify',
                'pino',
                '@temporalio/client',
                '@temporalio/worker',
                '@temporalio/activity',
              ],
              message: 'Workflow code must be deterministic: side effects belong in activities.',
            },
            {
              group: ['../core/*', '../activities', '../activities/*', '../projections/*', '../api/*'],
              allowTypeImports: true,
              message: 'Workflows may import only types from the rest of the project.',
            },
          ],
          paths: ['fs', 'path', 'crypto', 'http', 'https', 'net', 'child_process', 'os'].map((name) => ({
            name,
            message: 'Workflow code must be deterministic: no Node built-ins.',
          })),
        },
      ],
    },
  },
  {
    // The client's main entry runs in browsers: only its command line may use Node.
    files: ['clients/typescript/src/**/*.ts'],
    ignores: ['clients/typescript/src/cli.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'The client runs in browsers: no Node built-ins outside src/cli.ts.' },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-empty-function': 'off',
    },
  },
);
