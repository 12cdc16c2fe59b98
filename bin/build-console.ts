import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

/**
 * `npm run build` ends here: the console (console/src, Preact) bundled by esbuild into
 * dist/console/app.js, beside its index.html and styles.css, which the api serves at /console
 * (api/routes/console.ts). One file of script, one of style, nothing fetched from elsewhere.
 */
const root = path.resolve(__dirname, '../..');
const out = path.join(root, 'dist/console');

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [path.join(root, 'console/src/main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022'],
    platform: 'browser',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: path.join(root, 'console/tsconfig.json'),
    outfile: path.join(out, 'app.js'),
    legalComments: 'none',
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'styles.css']) copyFileSync(path.join(root, 'console', file), path.join(out, file));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
