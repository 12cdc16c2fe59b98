import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { registerApiKey } from '../../core/api-keys';
import { loadConfig, type Config } from '../../core/config';
import { createDatabase, migrateDatabase, openDatabase, type Database } from '../../core/db';
import { createLogger, type Logger } from '../../core/logger';
import { startApi, startRelay, startWorker, type Infra, type RoleContext, type RunningRole } from '../../bin/roles';
import { Keyring } from '../../core/crypto';
import type { FastifyInstance } from 'fastify';
import { TargetServer } from './target';

/**
 * Per-file test environment on the real PostgreSQL and the real Temporal server that
 * `test/run.ts` started (or that PUNCTUAL_TEST_* variables name): a fresh database, a task
 * queue of its own, a local target, and the real roles in-process or as child processes.
 */

export const PROJECT_ROOT = path.resolve(__dirname, '../../..');

function required(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') {
    throw new Error(`${name} is not set: run the tests with \`npm test\` (test/run.ts starts PostgreSQL and Temporal)`);
  }
  return v;
}

export interface Tenant {
  id: string;
  key: string;
}

export interface TestEnv {
  config: Config;
  infra: Infra;
  keyring: Keyring;
  database: Database;
  target: TargetServer;
  log: Logger;
  tenants: { a: Tenant; b: Tenant };
  api: FastifyInstance;
  startWorker(): Promise<RunningRole>;
  startRelay(): Promise<RunningRole>;
  /** Runs a role as its own process (`node dist/bin/punctual.js <role>`), for crash tests. */
  spawnRole(role: 'worker' | 'relay' | 'api', extraEnv?: Record<string, string>): ChildProcess;
  /** The environment the roles of this test run with (for processes a test starts itself). */
  roleEnv: Record<string, string>;
  close(): Promise<void>;
}

export async function createTestEnv(
  opts: { worker?: boolean; relay?: boolean; env?: Record<string, string>; log?: Logger } = {},
): Promise<TestEnv> {
  const adminUrl = required('PUNCTUAL_TEST_PG_ADMIN_URL');
  const temporalAddress = required('PUNCTUAL_TEST_TEMPORAL_ADDRESS');
  const suffix = randomBytes(5).toString('hex');
  const dbName = `punctual_test_${suffix}`;
  const databaseUrl = await createDatabase(adminUrl, dbName);
  await migrateDatabase(databaseUrl);

  const tenants = {
    a: { id: `tenant-a-${suffix}`, key: `key-a-${randomBytes(16).toString('hex')}` },
    b: { id: `tenant-b-${suffix}`, key: `key-b-${randomBytes(16).toString('hex')}` },
  };
  const envVars: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_TASK_QUEUE: `test-${suffix}`,
    PORT: '0',
    LOG_LEVEL: process.env.PUNCTUAL_TEST_LOG_LEVEL ?? 'silent',
    RELAY_POLL_MS: '100',
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    // The local target listens on 127.0.0.1, which the egress guard refuses unless allowlisted.
    EGRESS_ALLOWLIST: '127.0.0.1',
    DATA_DIR: path.join(PROJECT_ROOT, '.data', 'test', suffix),
    ...(process.env.PUNCTUAL_TEST_WORKFLOW_BUNDLE === undefined
      ? {}
      : { WORKFLOW_BUNDLE_PATH: process.env.PUNCTUAL_TEST_WORKFLOW_BUNDLE }),
    ...opts.env,
  };
  const config = loadConfig(envVars);
  const infra: Infra = { databaseUrl, temporalAddress };
  const log = opts.log ?? createLogger(config.logLevel);
  const keyring = Keyring.fromBase64(config.encryptionKey!);
  const ctx: RoleContext = { config, infra, log, keyring: () => keyring };
  const database = openDatabase(databaseUrl, { max: 5 });
  for (const t of Object.values(tenants)) await registerApiKey(database.db, t.id, t.key);
  const target = new TargetServer();
  await target.start();

  const running: RunningRole[] = [];
  const children = new Set<ChildProcess>();
  const env: TestEnv = {
    config,
    infra,
    keyring,
    database,
    target,
    log,
    tenants,
    api: undefined as unknown as FastifyInstance,
    roleEnv: envVars,
    async startWorker() {
      const role = await startWorker(ctx);
      running.push(role);
      return role;
    },
    async startRelay() {
      const role = await startRelay(ctx);
      running.push(role);
      return role;
    },
    spawnRole(role, extraEnv = {}) {
      const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist/bin/punctual.js'), role], {
        env: { ...process.env, ...envVars, ...extraEnv },
        stdio: ['ignore', 'ignore', process.env.PUNCTUAL_TEST_LOG_LEVEL === undefined ? 'ignore' : 'inherit'],
      });
      children.add(child);
      child.on('exit', () => children.delete(child));
      return child;
    },
    async close() {
      for (const child of children) child.kill('SIGKILL');
      for (const role of running.reverse()) await role.stop().catch(() => undefined);
      await target.stop();
      await database.close();
    },
  };
  const api = await startApi(ctx);
  running.push(api);
  env.api = api.fastify;
  if (opts.worker !== false) await env.startWorker();
  if (opts.relay !== false) await env.startRelay();
  return env;
}

/** Shorthand for an authenticated JSON request through fastify's inject. */
export async function call(
  env: TestEnv,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  opts: { tenant?: Tenant; body?: unknown; headers?: Record<string, string> } = {},
) {
  const tenant = opts.tenant ?? env.tenants.a;
  const response = await env.api.inject({
    method,
    url,
    headers: { authorization: `Bearer ${tenant.key}`, ...opts.headers },
    ...(opts.body === undefined ? {} : { payload: opts.body as object }),
  });
  const isJson = /json/.test(String(response.headers['content-type'] ?? ''));
  return {
    status: response.statusCode,
    headers: response.headers,
    body: (isJson ? response.json() : response.body) as Record<string, any>,
  };
}
