/**
 * Runs `temporal server start-dev` as a child process for local development
 * and tests, and waits until its frontend really serves the namespace
 * (a listening socket alone is not enough: the namespace is registered a
 * moment after the port opens).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import {
  assertPortFree,
  errorMessage,
  readFileTail,
  silentLog,
  sleep,
  superviseChild,
  type LineLog,
} from './process-util';

type DevServerSearchAttributeType = 'Keyword' | 'KeywordList' | 'Datetime' | 'Int' | 'Text' | 'Bool' | 'Double';

interface TemporalDevServerOptions {
  /** Absolute path of the `temporal` CLI (see locateTemporalCli). */
  cliPath: string;
  /** Frontend gRPC port. */
  port: number;
  /** Web UI port; undefined = headless (no UI). */
  uiPort?: number;
  /** SQLite file for persistent state; undefined = in-memory (lost on exit). */
  dbFile?: string;
  /** Namespace created at startup and used for the readiness check. */
  namespace: string;
  /** stdout/stderr of the server are appended here; undefined = discarded. */
  logFile?: string;
  /** Address to bind; default 127.0.0.1 (never expose the dev server by accident). */
  ip?: string;
  log?: (msg: string) => void;
  /** Custom search attributes to register at startup, name -> type. */
  searchAttributes?: Record<string, DevServerSearchAttributeType>;
}

/**
 * How Punctual runs `start-dev` (ADR-0014, measured in bench/README.md):
 * - the search-attribute cache is refreshed on every read by default (a setting the server's
 *   own docs keep out of production); our attributes are registered at start and never change;
 * - SQLite in WAL mode with synchronous=NORMAL instead of a rollback journal with a full sync
 *   per commit. A process crash loses nothing; a power loss or kernel crash may lose the last
 *   commits (never corrupts the file). PostgreSQL holds every call, and the relay's reconciler
 *   starts any workflow Temporal no longer knows, so such a loss makes calls late, never lost.
 */
export const DEV_SERVER_TUNING: readonly string[] = [
  '--dynamic-config-value',
  'system.forceSearchAttributesCacheRefreshOnRead=false',
];
export const DEV_SERVER_SQLITE_TUNING: readonly string[] = [
  '--sqlite-pragma',
  'journal_mode=wal',
  '--sqlite-pragma',
  'synchronous=normal',
];

export interface TemporalDevServer {
  /** host:port for Connection.connect / NativeConnection.connect. */
  address: string;
  uiUrl: string | undefined;
  pid: number;
  /** SIGTERM, then SIGKILL after 10 s; resolves once the process is gone. Idempotent. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
/** How much of the server's output we keep in memory when there is no log file. */
const MEMORY_TAIL_BYTES = 8000;

export async function startTemporalDevServer(opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const log: LineLog = opts.log ?? silentLog;
  const ip = opts.ip ?? '127.0.0.1';
  validateOptions(opts);

  await assertPortFree(ip, opts.port, 'Temporal dev server (gRPC)');
  if (opts.uiPort !== undefined) await assertPortFree(ip, opts.uiPort, 'Temporal dev server Web UI');

  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(opts.port),
    '--namespace',
    opts.namespace,
    ...(opts.dbFile !== undefined ? ['--db-filename', path.resolve(opts.dbFile)] : []),
    ...(opts.uiPort !== undefined ? ['--ui-port', String(opts.uiPort)] : ['--headless']),
    '--log-format',
    'json',
    '--log-level',
    'warn',
    ...DEV_SERVER_TUNING,
    // Journal pragmas mean something only for a database file.
    ...(opts.dbFile === undefined ? [] : DEV_SERVER_SQLITE_TUNING),
  ];
  for (const [name, type] of Object.entries(opts.searchAttributes ?? {})) {
    args.push('--search-attribute', `${name}=${type}`);
  }
  if (opts.dbFile !== undefined) mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });

  // With a log file the child writes to it directly (output survives a crash
  // of this process); otherwise we keep a short in-memory tail so a failed
  // start can still be explained.
  let logFd: number | undefined;
  if (opts.logFile !== undefined) {
    mkdirSync(path.dirname(path.resolve(opts.logFile)), { recursive: true });
    logFd = openSync(opts.logFile, 'a');
  }
  let memoryTail = '';
  const outputTail = async (): Promise<string> =>
    opts.logFile !== undefined ? readFileTail(opts.logFile) : memoryTail;

  log(`temporal dev server: starting ${opts.cliPath} ${args.join(' ')}`);
  const startedAt = Date.now();
  let child: ChildProcess;
  try {
    child = spawn(opts.cliPath, args, {
      stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
    });
  } finally {
    // The child has its own copy of the descriptor now.
    if (logFd !== undefined) closeSync(logFd);
  }
  if (logFd === undefined) {
    const keep = (chunk: Buffer): void => {
      memoryTail = (memoryTail + chunk.toString()).slice(-MEMORY_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  const { pid, exited, exitInfo, stop } = await superviseChild(child, {
    name: 'temporal dev server',
    graceMs: STOP_GRACE_MS,
    log,
  });

  const connectHost = ip === '0.0.0.0' ? '127.0.0.1' : ip === '::' ? '::1' : ip;
  const address = `${formatHost(connectHost)}:${opts.port}`;
  const uiUrl = opts.uiPort !== undefined ? `http://${formatHost(connectHost)}:${opts.uiPort}` : undefined;

  try {
    await waitUntilReady(address, opts.namespace, exited, () => exitInfo() !== undefined);
  } catch (err) {
    const diedEarly = exitInfo() !== undefined;
    await stop();
    const tail = (await outputTail()).trim();
    const where = opts.logFile !== undefined ? ` (log: ${opts.logFile})` : '';
    const reason = diedEarly
      ? `exited during startup (code ${String(exitInfo()?.code)}, signal ${String(exitInfo()?.signal)})`
      : `did not become ready within ${READY_TIMEOUT_MS / 1000} s (${errorMessage(err)})`;
    throw new Error(`Temporal dev server on ${address} ${reason}${where}.` + (tail ? `\nLast output:\n${tail}` : ''));
  }

  log(`temporal dev server: ready on ${address} (pid ${pid}) after ${Date.now() - startedAt} ms`);
  return { address, uiUrl, pid, stop };
}

/**
 * Polls the frontend until DescribeNamespace answers. Each attempt has a
 * short deadline so the overall timeout is honoured even though the client's
 * own gRPC retry policy would otherwise retry for a long time.
 */
function waitUntilReady(
  address: string,
  namespace: string,
  exited: Promise<void>,
  hasExited: () => boolean,
): Promise<void> {
  return waitForFrontend(
    address,
    (connection) => connection.workflowService.describeNamespace({ namespace }),
    exited,
    hasExited,
    READY_TIMEOUT_MS,
  );
}

/**
 * Polls a Temporal frontend on `address` until `probe` succeeds on a fresh connection, giving
 * each attempt 2 s; fails early when the server process exits (`exited` resolves), and after
 * `timeoutMs` with the last error. Shared by the dev server and the real server
 * (runtime/temporal-server.ts).
 */
export async function waitForFrontend(
  address: string,
  probe: (connection: Connection) => Promise<unknown>,
  exited: Promise<void>,
  hasExited: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = new Error('no attempt made');
  while (Date.now() < deadline) {
    if (hasExited()) throw new Error('server process exited');
    const attempt = (async () => {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      try {
        await connection.withDeadline(Date.now() + 2000, () => probe(connection));
      } finally {
        await connection.close();
      }
    })();
    try {
      const outcome = await Promise.race([attempt.then(() => 'ready' as const), exited.then(() => 'exited' as const)]);
      if (outcome === 'exited') {
        // The attempt may still settle later; swallow it, the process is gone.
        attempt.catch(() => undefined);
        throw new Error('server process exited');
      }
      return;
    } catch (err) {
      if (hasExited()) throw err;
      lastError = err;
    }
    await sleep(250);
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

function validateOptions(opts: TemporalDevServerOptions): void {
  if (opts.namespace.trim() === '') throw new Error('Temporal dev server: namespace must not be empty');
  for (const name of Object.keys(opts.searchAttributes ?? {})) {
    // The CLI requires identifiers; checking here gives a clearer message
    // than the server's startup failure.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new Error(`Temporal dev server: search attribute name "${name}" must be an identifier`);
    }
  }
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
