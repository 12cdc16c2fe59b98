import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { registerApiKey } from '../../core/api-keys';
import { createDatabase, migrateDatabase, openDatabase, type Database } from '../../core/db';
import { readLogAfter } from '../../core/event-store';
import { readCheckpoint } from '../../projections/relay';
import { PROJECTION_NAME } from '../../projections/service-calls';
import { STARTER_NAME } from '../../projections/workflow-starter';
import { eventually, freePort } from '../support/net';
import { TargetServer } from '../support/target';

/**
 * One fault-scenario run: a fresh database (on the shared PostgreSQL or the scenario's own), a
 * task queue of its own, a target that logs every hit, and the real roles as child processes
 * (`node dist/bin/punctual.js <role>`) that the scenario kills and restarts. Each process writes
 * its log to a file under PUNCTUAL_FAULTS_LOG_DIR, named after the run, for the post-mortem.
 */

const PROJECT_ROOT = path.resolve(__dirname, '../../..');

export type RoleName = 'api' | 'worker' | 'relay';

function required(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '')
    throw new Error(`${name} is not set: run the fault suite with \`npm run test:faults\``);
  return v;
}

export class RoleProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the process printed that it runs; rejects if it exits before. */
  readonly ready: Promise<void>;
  /** How long the process took from spawn to ready. */
  readyMs: number | undefined;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly role: RoleName,
    env: Record<string, string>,
    logFile: string,
  ) {
    const spawned = Date.now();
    const out: WriteStream = createWriteStream(logFile, { flags: 'a' });
    this.child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist/bin/punctual.js'), role], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        out.end(`\n[harness] ${role} exited (code ${String(code)}, signal ${String(signal)})\n`);
        resolve(this.exitInfo);
      }),
    );
    let seen = '';
    this.ready = new Promise<void>((resolve, reject) => {
      this.child.stdout!.on('data', (chunk: Buffer) => {
        out.write(chunk);
        if (seen !== 'done') {
          seen = (seen + chunk.toString()).slice(-4096);
          if (seen.includes('Punctual is running')) {
            seen = 'done';
            this.readyMs = Date.now() - spawned;
            resolve();
          }
        }
      });
      void this.exited.then((info) =>
        reject(
          new Error(
            `${role} exited before it was ready (code ${String(info.code)}, signal ${String(info.signal)}); see ${logFile}`,
          ),
        ),
      );
    });
    this.ready.catch(() => undefined);
    this.child.stderr!.on('data', (chunk: Buffer) => out.write(chunk));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** kill -9, and wait until the process is gone. */
  async kill9(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Graceful stop (SIGTERM), with a SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface FaultEnvOptions {
  /** Names the run in logs, the database and the task queue, e.g. `worker-kill-1`. */
  name: string;
  /** Admin URL of the PostgreSQL to use; default the suite's shared one. */
  pgAdminUrl?: string;
  /** Default the suite's shared Temporal dev server. */
  temporalAddress?: string;
  /** Extra environment for every role process. */
  env?: Record<string, string>;
}

export class FaultEnv {
  readonly target = new TargetServer();
  readonly tenant = { id: `faults-${randomBytes(3).toString('hex')}`, key: `key-${randomBytes(16).toString('hex')}` };
  readonly processes: RoleProcess[] = [];
  private spawned = 0;

  private constructor(
    readonly name: string,
    readonly databaseUrl: string,
    readonly database: Database,
    readonly apiUrl: string,
    readonly logDir: string,
    private readonly roleEnv: Record<string, string>,
  ) {}

  static async create(opts: FaultEnvOptions): Promise<FaultEnv> {
    const adminUrl = opts.pgAdminUrl ?? required('PUNCTUAL_TEST_PG_ADMIN_URL');
    const temporalAddress = opts.temporalAddress ?? required('PUNCTUAL_TEST_TEMPORAL_ADDRESS');
    const suffix = randomBytes(4).toString('hex');
    const dbName = `punctual_faults_${opts.name.replace(/[^a-z0-9]/g, '_')}_${suffix}`;
    const databaseUrl = await createDatabase(adminUrl, dbName);
    await migrateDatabase(databaseUrl);
    const database = openDatabase(databaseUrl, { max: 4, applicationName: 'punctual-faults-checker' });
    const port = await freePort();
    const logDir = process.env.PUNCTUAL_FAULTS_LOG_DIR ?? path.join(PROJECT_ROOT, '.data', 'faults');
    mkdirSync(logDir, { recursive: true });
    const roleEnv: Record<string, string> = {
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_TASK_QUEUE: `faults-${opts.name}-${suffix}`,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: process.env.PUNCTUAL_FAULTS_LOG_LEVEL ?? 'info',
      RELAY_POLL_MS: '100',
      DATA_DIR: path.join(logDir, `${opts.name}-data`),
      // The suite is the only client: no rate limit in the way of its load.
      RATE_LIMIT_PER_SECOND: '0',
      // The target listens on loopback, which the egress guard refuses unless allowlisted.
      EGRESS_ALLOWLIST: '127.0.0.1/32',
      // Every process of a run must seal and unseal request secrets with the same key.
      ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      ...(process.env.PUNCTUAL_TEST_WORKFLOW_BUNDLE === undefined
        ? {}
        : { WORKFLOW_BUNDLE_PATH: process.env.PUNCTUAL_TEST_WORKFLOW_BUNDLE }),
      ...opts.env,
    };
    const env = new FaultEnv(opts.name, databaseUrl, database, `http://127.0.0.1:${port}`, logDir, roleEnv);
    await registerApiKey(database.db, env.tenant.id, env.tenant.key);
    await env.target.start();
    return env;
  }

  /** Starts a role process; await `.ready` before relying on it. */
  spawn(role: RoleName, env: Record<string, string> = {}): RoleProcess {
    const n = ++this.spawned;
    const proc = new RoleProcess(
      role,
      { ...this.roleEnv, ...env },
      path.join(this.logDir, `${this.name}-${role}-${n}.log`),
    );
    this.processes.push(proc);
    return proc;
  }

  async start(role: RoleName, env: Record<string, string> = {}): Promise<RoleProcess> {
    const proc = this.spawn(role, env);
    await proc.ready;
    return proc;
  }

  /** Events the slower of the two log consumers has not handled yet (at most 10,000 counted). */
  async unconsumedEvents(): Promise<number> {
    let most = 0;
    for (const name of [PROJECTION_NAME, STARTER_NAME]) {
      const at = await readCheckpoint(this.database.db, name);
      most = Math.max(most, (await readLogAfter(this.database.db, at, 10_000)).length);
    }
    return most;
  }

  /** Both log consumers (projection and workflow starter) have handled every event. */
  async consumersCaughtUp(timeoutMs = 60_000): Promise<void> {
    await eventually(
      'the relay to consume the whole log',
      async () => {
        for (const name of [PROJECTION_NAME, STARTER_NAME]) {
          const at = await readCheckpoint(this.database.db, name);
          if ((await readLogAfter(this.database.db, at, 1)).length > 0) return undefined;
        }
        return true;
      },
      timeoutMs,
      200,
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop(5_000)));
    await this.target.stop();
    await this.database.close();
  }
}
