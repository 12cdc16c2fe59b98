import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startEmbeddedPostgres } from '../runtime/embedded-postgres';
import { locateTemporalCli } from '../runtime/temporal-cli';
import { startTemporalDevServer } from '../runtime/temporal-dev-server';
import { freePort } from './support/net';

/**
 * `npm test`: starts one real PostgreSQL (embedded, unless PUNCTUAL_TEST_PG_ADMIN_URL names one)
 * and one real Temporal dev server (unless PUNCTUAL_TEST_TEMPORAL_ADDRESS names one), bundles
 * the workflow code once, then runs every compiled test file with node's test runner. Each
 * integration test file makes its own database and task queue on them.
 *
 * Arguments filter test files by substring: `npm test -- unit`, `npm test -- service-calls`.
 */

const PROJECT_ROOT = path.resolve(__dirname, '../..');
const TEST_DIR = path.join(PROJECT_ROOT, 'dist/test');

function findTests(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return findTests(full);
    return name.endsWith('.test.js') ? [full] : [];
  });
}

const log = (msg: string) => process.stderr.write(`[test] ${msg}\n`);

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const files = findTests(TEST_DIR)
    .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
    .sort();
  if (files.length === 0) {
    log(`no test files match ${filters.join(' ')}`);
    return 1;
  }
  const stops: (() => Promise<void>)[] = [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'punctual-test-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to enter this folder.
  chmodSync(tmp, 0o755);
  stops.push(async () => rmSync(tmp, { recursive: true, force: true }));
  try {
    let pgAdminUrl = process.env.PUNCTUAL_TEST_PG_ADMIN_URL;
    if (pgAdminUrl === undefined) {
      const started = Date.now();
      const pg = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'postgres'), port: await freePort() });
      stops.unshift(() => pg.stop());
      pgAdminUrl = pg.adminUrl;
      log(`embedded PostgreSQL ready in ${Date.now() - started} ms`);
    }
    let temporalAddress = process.env.PUNCTUAL_TEST_TEMPORAL_ADDRESS;
    if (temporalAddress === undefined) {
      const started = Date.now();
      const cliPath = await locateTemporalCli({ projectRoot: PROJECT_ROOT, log });
      const server = await startTemporalDevServer({
        cliPath,
        port: await freePort(),
        namespace: 'default',
        logFile: path.join(tmp, 'temporal.log'),
      });
      stops.unshift(() => server.stop());
      temporalAddress = server.address;
      log(`temporal dev server ready at ${temporalAddress} in ${Date.now() - started} ms`);
    }
    const bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: log, error: log },
    });
    const bundlePath = path.join(tmp, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundle.code);

    const child = spawn(
      process.execPath,
      ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
      {
        stdio: 'inherit',
        env: {
          ...process.env,
          PUNCTUAL_TEST_PG_ADMIN_URL: pgAdminUrl,
          PUNCTUAL_TEST_TEMPORAL_ADDRESS: temporalAddress,
          PUNCTUAL_TEST_WORKFLOW_BUNDLE: bundlePath,
        },
      },
    );
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    for (const stop of stops) await stop().catch((err: unknown) => log(`cleanup: ${String(err)}`));
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`test run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
