import { spawn } from 'node:child_process';
import path from 'node:path';
import { findCompiledTests, PROJECT_ROOT, startTestInfra } from './support/infra';

/**
 * `npm test`: starts one real PostgreSQL (embedded, unless PUNCTUAL_TEST_PG_ADMIN_URL names one)
 * and one real Temporal dev server (unless PUNCTUAL_TEST_TEMPORAL_ADDRESS names one), bundles
 * the workflow code once, then runs every compiled test file with node's test runner. Each
 * integration test file makes its own database and task queue on them. The fault suite
 * (`*.faults.test.ts`) is not part of it: `npm run test:faults` runs that (test/faults/run.ts).
 *
 * Arguments filter test files by substring: `npm test -- unit`, `npm test -- service-calls`.
 */

const TEST_DIR = path.join(PROJECT_ROOT, 'dist/test');

const log = (msg: string) => process.stderr.write(`[test] ${msg}\n`);

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const files = findCompiledTests(TEST_DIR, '.test.js')
    .filter((f) => !f.endsWith('.faults.test.js'))
    // Matched against the path below dist/test, so a checkout's own path never matches everything.
    .filter((f) => filters.length === 0 || filters.some((p) => path.relative(TEST_DIR, f).includes(p)));
  if (files.length === 0) {
    log(`no test files match ${filters.join(' ')}`);
    return 1;
  }
  const infra = await startTestInfra(log);
  try {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
      stdio: 'inherit',
      env: { ...process.env, ...infra.env },
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    await infra.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`test run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
