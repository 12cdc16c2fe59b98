import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { locateTemporalCli } from '../runtime/temporal-cli';
import { DEV_SERVER_SQLITE_TUNING, DEV_SERVER_TUNING } from '../runtime/temporal-dev-server';
import { startTemporalServerOnEmbeddedPostgres } from '../runtime/temporal-server';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/search-attributes';
import { embeddedPostgresUrl } from '../runtime/embedded-postgres';
import { freeLoopbackPort } from '../runtime/process-util';
import { log, sleep } from './log';

/**
 * Starts what the benchmark measures: Punctual as `node dist/bin/punctual.js all` (embedded
 * PostgreSQL and `temporal server start-dev` in a temporary DATA_DIR on free ports, or the
 * configured DATABASE_URL / TEMPORAL_ADDRESS), and the baseline's worker in a process of its own
 * on the same Temporal server. With `temporal: 'server'` the bench first starts the real Temporal
 * server (runtime/temporal-server.ts) on a second embedded PostgreSQL and points both at it; with
 * `workers` > 1, that many processes poll each system's task queue.
 */

const PROJECT_ROOT = path.resolve(__dirname, '../..');

interface SystemOptions {
  /** Let the worker bundle the workflow code at start (the `npm start` default) instead of a prebuilt bundle. */
  bundleAtStart: boolean;
  skipBaseline: boolean;
  /** Extra environment for the Punctual process (tuning experiments). */
  env: Record<string, string>;
  /** Another build's dist/bin/punctual.js (an A/B comparison); default this checkout's. */
  punctualEntry: string | undefined;
  /** Flags for node running Punctual, e.g. --cpu-prof (not allowed in NODE_OPTIONS). */
  nodeArgs: string[];
  /**
   * Extra flags for `temporal server start-dev` (an experiment, e.g. SQLite pragmas). When given,
   * the bench starts the dev server itself, as Punctual would, and hands its address to Punctual.
   */
  temporalArgs: string[];
  /** `dev`: `temporal server start-dev`, as `npm start` runs it; `server`: the real server on PostgreSQL. */
  temporal: 'dev' | 'server';
  /** History shards of the real server. */
  shards: number;
  /**
   * Processes polling each system's task queue: Punctual's `all` plus `workers - 1` processes of
   * the `worker` role; the baseline's worker `workers` times.
   */
  workers: number;
}

export interface Running {
  apiUrl: string;
  apiKey: string;
  tenantId: string;
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  punctual: ChildProcess;
  baseline: ChildProcess | undefined;
  baselineQueue: string;
  /** The task queue Punctual's workers poll. */
  punctualQueue: string;
  embedded: boolean;
  /** The dev server the bench started itself (temporalArgs), if any. */
  temporalServer: ChildProcess | undefined;
  /** Punctual's `worker` processes beside `all`, and the baseline's workers beyond the first. */
  extraWorkers: ChildProcess[];
  extraBaselines: ChildProcess[];
  /** The real Temporal server and its PostgreSQL, when the bench started them (their pids). */
  engine: { pids: number[]; description: string } | undefined;
  dataDir: string;
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready within ${timeoutMs / 1000} s`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      if (pattern.test(buffer)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (code ${String(code)}) before it was ready; see its log`));
    });
  });
}

/** Every descendant of pid (children first found last), for a last-resort kill. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  try {
    const text = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' });
    const kids = new Map<number, number[]>();
    for (const line of text.trim().split('\n')) {
      const [p, pp] = line.trim().split(/\s+/).map(Number);
      if (p === undefined || pp === undefined) continue;
      const list = kids.get(pp) ?? [];
      list.push(p);
      kids.set(pp, list);
    }
    const stack = [pid];
    while (stack.length > 0) {
      const cur = stack.pop()!;
      for (const k of kids.get(cur) ?? []) {
        out.push(k);
        stack.push(k);
      }
    }
  } catch {
    // ps missing: nothing more we can do.
  }
  return out;
}

export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const clean = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!clean) {
    log(`pid ${pid} did not stop within ${graceMs / 1000} s: killing it and its children`);
    for (const p of [pid, ...descendants(pid)]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    await exited;
  }
}

async function bundle(workflowsPath: string, file: string): Promise<string> {
  const quiet = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: (m) => log(m), error: (m) => log(m) },
  });
  writeFileSync(file, code);
  return file;
}

/**
 * `children` and `cleanups` collect what was started as soon as it is, so that the caller stops
 * it also when a later step fails: children are stopped first, then the cleanups run.
 */
export async function startSystem(
  opts: SystemOptions,
  runId: string,
  workDir: string,
  resultsPrefix: string,
  children: ChildProcess[],
  cleanups: (() => Promise<void>)[],
): Promise<Running> {
  const configuredDb = process.env.DATABASE_URL;
  const configuredTemporal = process.env.TEMPORAL_ADDRESS;
  const embedded =
    configuredDb === undefined || configuredDb === '' || configuredTemporal === undefined || configuredTemporal === '';
  const dataDir = path.join(workDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const [port, pgPort, temporalPort, uiPort] = [
    await freeLoopbackPort(),
    await freeLoopbackPort(),
    await freeLoopbackPort(),
    await freeLoopbackPort(),
  ];
  const tenantId = `bench-${runId}`;
  const apiKey = randomBytes(24).toString('hex');
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';

  const entry = opts.punctualEntry ?? path.join(PROJECT_ROOT, 'dist/bin/punctual.js');
  let bundlePath: string | undefined;
  if (!opts.bundleAtStart) {
    log('bundling the workflow code (as the Docker image does)');
    bundlePath = await bundle(
      require.resolve(path.resolve(path.dirname(entry), '../workflows')),
      path.join(workDir, 'workflow-bundle.js'),
    );
  }
  const baselineBundle = await bundle(
    require.resolve('./baseline-workflows'),
    path.join(workDir, 'baseline-bundle.js'),
  );

  let temporalServer: ChildProcess | undefined;
  let engine: Running['engine'];
  if (opts.temporal === 'server') {
    if (!embedded) throw new Error('--temporal server starts its own server: unset DATABASE_URL and TEMPORAL_ADDRESS');
    if (opts.temporalArgs.length > 0) throw new Error('--temporal-arg is for temporal server start-dev only');
    const server = await startTemporalServerOnEmbeddedPostgres({
      projectRoot: PROJECT_ROOT,
      dataDir: path.join(workDir, 'temporal-server'),
      postgresPort: await freeLoopbackPort(),
      shards: opts.shards,
      port: temporalPort,
      namespace,
      searchAttributes: SEARCH_ATTRIBUTE_TYPES,
      log,
    });
    cleanups.push(() => server.stop());
    engine = {
      pids: [server.pid, server.postgresPid],
      description: `Temporal server ${server.address} with ${server.shards} history shards on its own embedded PostgreSQL`,
    };
  } else if (embedded && opts.temporalArgs.length > 0) {
    temporalServer = await startOwnDevServer(temporalPort, dataDir, opts.temporalArgs, resultsPrefix);
    children.push(temporalServer);
  }
  // Several Punctual processes must seal with one key; `all` alone generates its own.
  const sharedKey: Record<string, string> =
    opts.workers > 1 ? { ENCRYPTION_KEY: randomBytes(32).toString('base64') } : {};

  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    DATA_DIR: dataDir,
    PORT: String(port),
    EMBEDDED_POSTGRES_PORT: String(pgPort),
    EMBEDDED_TEMPORAL_PORT: String(temporalPort),
    EMBEDDED_TEMPORAL_UI_PORT: String(uiPort),
    API_KEYS: `${tenantId}:${apiKey}`,
    EGRESS_ALLOWLIST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_SECOND: '0',
    ...(embedded ? {} : { TEMPORAL_TASK_QUEUE: `punctual-bench-${runId}` }),
    ...(bundlePath === undefined ? {} : { WORKFLOW_BUNDLE_PATH: bundlePath }),
    ...sharedKey,
    ...opts.env,
  };
  if (embedded) {
    // Half-configured would mix a configured server with an embedded one: use neither.
    delete env.DATABASE_URL;
    delete env.TEMPORAL_ADDRESS;
    if (temporalServer !== undefined || engine !== undefined) env.TEMPORAL_ADDRESS = `127.0.0.1:${temporalPort}`;
  }
  log(
    `starting Punctual (${
      !embedded
        ? 'configured DATABASE_URL / TEMPORAL_ADDRESS'
        : engine !== undefined
          ? 'embedded PostgreSQL + the real Temporal server'
          : 'embedded PostgreSQL + temporal server start-dev'
    })`,
  );
  const logFile = createWriteStream(`${resultsPrefix}-punctual.log`);
  const punctual = spawn(process.execPath, [...opts.nodeArgs, entry, 'all'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(punctual);
  punctual.stdout.pipe(logFile);
  punctual.stderr.pipe(logFile);
  await waitForLine(punctual, /Punctual is running/, 300_000, 'Punctual');

  const databaseUrl = embedded
    ? await embeddedPostgresUrl({ dataDir: path.join(dataDir, 'postgres'), port: pgPort })
    : configuredDb;
  if (databaseUrl === undefined) throw new Error('cannot find the embedded PostgreSQL password');
  const temporalAddress = embedded ? `127.0.0.1:${temporalPort}` : configuredTemporal;

  const extraWorkers: ChildProcess[] = [];
  for (let i = 2; i <= opts.workers; i++) {
    // The worker role alone needs both addresses; it shares the `all` process's database and key.
    const worker = spawn(process.execPath, [...opts.nodeArgs, entry, 'worker'], {
      env: { ...env, DATABASE_URL: databaseUrl, TEMPORAL_ADDRESS: temporalAddress },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(worker);
    const workerLog = createWriteStream(`${resultsPrefix}-punctual-worker-${i}.log`);
    worker.stdout.pipe(workerLog);
    worker.stderr.pipe(workerLog);
    await waitForLine(worker, /Punctual is running/, 300_000, `Punctual worker ${i}`);
    extraWorkers.push(worker);
  }

  const baselineQueue = `bench-baseline-${runId}`;
  const baselines: ChildProcess[] = [];
  for (let i = 1; !opts.skipBaseline && i <= opts.workers; i++) {
    const baseline = spawn(process.execPath, [path.join(__dirname, 'baseline-worker.js')], {
      env: {
        ...process.env,
        BASELINE_TEMPORAL_ADDRESS: temporalAddress,
        BASELINE_NAMESPACE: namespace,
        BASELINE_TASK_QUEUE: baselineQueue,
        BASELINE_WORKFLOW_BUNDLE: baselineBundle,
        BASELINE_WORKER_OPTIONS: process.env.BENCH_BASELINE_WORKER_OPTIONS ?? '{}',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.unshift(baseline);
    const baselineLog = createWriteStream(`${resultsPrefix}-baseline-worker${i === 1 ? '' : `-${i}`}.log`);
    baseline.stdout?.pipe(baselineLog);
    baseline.stderr?.pipe(baselineLog);
    await waitForLine(baseline, /ready/, 120_000, `baseline worker ${i}`);
    baselines.push(baseline);
  }
  const [baseline, ...extraBaselines] = baselines;
  return {
    apiUrl: `http://127.0.0.1:${port}`,
    apiKey,
    tenantId,
    databaseUrl,
    temporalAddress,
    namespace,
    punctual,
    baseline,
    baselineQueue,
    punctualQueue: env.TEMPORAL_TASK_QUEUE ?? 'punctual',
    embedded,
    dataDir,
    temporalServer,
    extraWorkers,
    extraBaselines,
    engine,
  };
}

/**
 * `temporal server start-dev` as runtime/temporal-dev-server.ts runs it for Punctual (database
 * file under DATA_DIR, headless here, Punctual's search attributes and tuning), plus `extra` flags.
 */
async function startOwnDevServer(
  port: number,
  dataDir: string,
  extra: string[],
  resultsPrefix: string,
): Promise<ChildProcess> {
  const cli = await locateTemporalCli({ projectRoot: PROJECT_ROOT, log });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    'default',
    '--db-filename',
    path.join(dataDir, 'temporal.db'),
    '--headless',
    '--log-format',
    'json',
    '--log-level',
    'warn',
    ...Object.entries(SEARCH_ATTRIBUTE_TYPES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
    ...DEV_SERVER_TUNING,
    ...DEV_SERVER_SQLITE_TUNING,
    ...extra,
  ];
  log(`experiment: starting temporal ${args.join(' ')}`);
  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(`${resultsPrefix}-temporal.log`);
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error('the dev server exited at start; see its log');
    try {
      const connection = await Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        return child;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
}
