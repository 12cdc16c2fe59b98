import { SEARCH_ATTRIBUTE_TYPES } from '../../workflows/search-attributes';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startEmbeddedPostgres } from '../../runtime/embedded-postgres';
import { locateTemporalCli } from '../../runtime/temporal-cli';
import { startTemporalDevServer } from '../../runtime/temporal-dev-server';
import { freePort } from './net';

/**
 * What a test runner starts once and shares with every test file it runs: a real PostgreSQL
 * (embedded, unless PUNCTUAL_TEST_PG_ADMIN_URL names one), a real Temporal dev server (unless
 * PUNCTUAL_TEST_TEMPORAL_ADDRESS names one) and the workflow bundle. `env` is what the test
 * files read (test/support/env.ts).
 */

export const PROJECT_ROOT = path.resolve(__dirname, '../../..');

export interface TestInfra {
  /** A scratch folder removed by stop(). */
  tmp: string;
  env: {
    PUNCTUAL_TEST_PG_ADMIN_URL: string;
    PUNCTUAL_TEST_TEMPORAL_ADDRESS: string;
    PUNCTUAL_TEST_WORKFLOW_BUNDLE: string;
  };
  stop(): Promise<void>;
}

export function findCompiledTests(dir: string, suffix: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return findCompiledTests(full, suffix);
      return name.endsWith(suffix) ? [full] : [];
    })
    .sort();
}

export async function startTestInfra(log: (msg: string) => void): Promise<TestInfra> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops) await s().catch((err: unknown) => log(`cleanup: ${String(err)}`));
  };
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
        searchAttributes: SEARCH_ATTRIBUTE_TYPES,
      });
      stops.unshift(() => server.stop());
      temporalAddress = server.address;
      log(`temporal dev server ready at ${temporalAddress} in ${Date.now() - started} ms`);
    }
    const bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      logger: {
        log: () => undefined,
        trace: () => undefined,
        debug: () => undefined,
        info: () => undefined,
        warn: log,
        error: log,
      },
    });
    const bundlePath = path.join(tmp, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundle.code);
    return {
      tmp,
      env: {
        PUNCTUAL_TEST_PG_ADMIN_URL: pgAdminUrl,
        PUNCTUAL_TEST_TEMPORAL_ADDRESS: temporalAddress,
        PUNCTUAL_TEST_WORKFLOW_BUNDLE: bundlePath,
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
