/**
 * The real Temporal server (not `temporal server start-dev`) on PostgreSQL, for benchmarks and
 * for running the integration tests against the engine production uses:
 *
 * - built once from its Go module into `.cache/temporal-server/<version>/bin` (`go install`
 *   with GOPATH and GOCACHE under `.cache/temporal-server/go`, so nothing lands outside the
 *   project), with its SQL schema tool;
 * - its two databases created and their schemas applied with that tool (the schemas ship
 *   embedded in it);
 * - a config file generated here (`temporalServerConfig`, a pure function), every service on
 *   127.0.0.1 and free ports, `numHistoryShards` chosen by the caller;
 * - the namespace registered and Punctual's search attributes added, and started only once a
 *   visibility query naming those attributes is answered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import pg from 'pg';
import { ensureSearchAttributes } from '../core/temporal';
import { startEmbeddedPostgres } from './embedded-postgres';
import {
  canBind,
  errorMessage,
  freeLoopbackPort,
  readFileTail,
  silentLog,
  superviseChild,
  type LineLog,
} from './process-util';
import { waitForFrontend } from './temporal-dev-server';

/** The server release we build: the newest v1.32 whose go.mod the installed Go 1.26.8 accepts (v1.32.2 wants 1.26.10). */
export const TEMPORAL_SERVER_VERSION = 'v1.32.1';
const MODULE = 'go.temporal.io/server';
const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 20_000;

type SearchAttributeType = 'Keyword' | 'KeywordList' | 'Datetime';

interface TemporalServerBinaries {
  version: string;
  server: string;
  sqlTool: string;
}

/** Where the build of `version` lives, and the Go workspace every build shares. */
function temporalServerCache(projectRoot: string, version = TEMPORAL_SERVER_VERSION) {
  const root = path.join(projectRoot, '.cache/temporal-server');
  const dir = path.join(root, version);
  return {
    dir,
    server: path.join(dir, 'bin/temporal-server'),
    sqlTool: path.join(dir, 'bin/temporal-sql-tool'),
    /** Written last: a build that was interrupted has none and is done again. */
    stamp: path.join(dir, 'built'),
    goPath: path.join(root, 'go/path'),
    goCache: path.join(root, 'go/cache'),
  };
}

/**
 * The server and its SQL tool, built with `go install` on first use (minutes on two cores;
 * progress is logged every 20 s) and reused afterwards. Needs Go on PATH (the Go release the
 * server's go.mod asks for, or newer) and the Go module proxy.
 */
async function buildTemporalServer(opts: {
  projectRoot: string;
  log?: LineLog;
  version?: string;
}): Promise<TemporalServerBinaries> {
  const log = opts.log ?? silentLog;
  const version = opts.version ?? TEMPORAL_SERVER_VERSION;
  const cache = temporalServerCache(opts.projectRoot, version);
  if (existsSync(cache.stamp) && existsSync(cache.server) && existsSync(cache.sqlTool)) {
    return { version, server: cache.server, sqlTool: cache.sqlTool };
  }
  const gobin = path.join(cache.dir, `bin.${process.pid}`);
  rmSync(gobin, { recursive: true, force: true });
  mkdirSync(gobin, { recursive: true });
  mkdirSync(path.join(path.dirname(cache.goCache), 'tmp'), { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GOPATH: cache.goPath,
    GOMODCACHE: path.join(cache.goPath, 'pkg/mod'),
    GOCACHE: cache.goCache,
    GOTMPDIR: path.join(path.dirname(cache.goCache), 'tmp'),
    GOBIN: gobin,
    // -modcacherw: the module cache stays deletable with a plain rm -r.
    GOFLAGS: '-mod=mod -modcacherw',
    CGO_ENABLED: '0',
    // Never download another Go toolchain behind the user's back.
    GOTOOLCHAIN: 'local',
    GOWORK: 'off',
  };
  const packages = [`${MODULE}/cmd/server@${version}`, `${MODULE}/cmd/tools/sql@${version}`];
  log(`temporal server: building ${MODULE} ${version} into ${cache.dir} (once; takes minutes)`);
  const started = Date.now();
  const tail: string[] = [];
  let packagesBuilt = 0;
  let downloads = 0;
  const child = spawn('go', ['install', '-v', ...packages], {
    cwd: cache.dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const onOutput = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() === '') continue;
      if (line.startsWith('go: downloading')) downloads++;
      else packagesBuilt++;
      tail.push(line);
      if (tail.length > 40) tail.shift();
    }
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const progress = setInterval(() => {
    log(
      `temporal server: still building, ${Math.round((Date.now() - started) / 1000)} s, ` +
        `${downloads} modules downloaded, ${packagesBuilt} packages compiled`,
    );
  }, 20_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) =>
      reject(
        new Error(
          `cannot run go (${err.message}): building the Temporal server needs Go on PATH ` +
            `(the release ${MODULE} ${version} asks for in its go.mod)`,
        ),
      ),
    );
    child.once('exit', resolve);
  }).finally(() => clearInterval(progress));
  if (code !== 0) {
    rmSync(gobin, { recursive: true, force: true });
    throw new Error(`go install ${packages.join(' ')} failed (exit ${String(code)}):\n${tail.join('\n')}`);
  }
  const bin = path.dirname(cache.server);
  rmSync(bin, { recursive: true, force: true });
  mkdirSync(bin, { recursive: true });
  renameSync(path.join(gobin, 'server'), cache.server);
  renameSync(path.join(gobin, 'sql'), cache.sqlTool);
  rmSync(gobin, { recursive: true, force: true });
  await writeFile(cache.stamp, `${new Date().toISOString()}\n`);
  log(`temporal server: built ${version} in ${Math.round((Date.now() - started) / 1000)} s`);
  return { version, server: cache.server, sqlTool: cache.sqlTool };
}

interface PostgresTarget {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface ServerPorts {
  frontend: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

interface TemporalServerConfigInput {
  shards: number;
  ports: ServerPorts;
  postgres: PostgresTarget;
  /** Default `temporal` and `temporal_visibility`. */
  databases?: { main: string; visibility: string };
  /** Connections per service to the main database (default 20). */
  maxConns?: number;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** A dynamic config file the server polls; none when undefined. */
  dynamicConfigFile?: string;
}

const DEFAULT_DATABASES = { main: 'temporal', visibility: 'temporal_visibility' } as const;

/**
 * The server's static configuration as YAML: one process runs all four services, each bound
 * to 127.0.0.1 only, ringpop membership on 127.0.0.1 too; PostgreSQL through the `postgres12`
 * plugin; no archival, no metrics endpoint, no HTTP API.
 */
export function temporalServerConfig(input: TemporalServerConfigInput): string {
  if (!Number.isInteger(input.shards) || input.shards < 1) throw new Error('numHistoryShards must be ≥ 1');
  const ports = Object.values(input.ports);
  if (new Set(ports).size !== ports.length) throw new Error('every Temporal service port must differ');
  for (const name of ['frontendMembership', 'historyMembership', 'matchingMembership', 'workerMembership'] as const) {
    if (input.ports[name] > MAX_MEMBERSHIP_PORT) {
      throw new Error(`${name} port ${input.ports[name]} is above ${MAX_MEMBERSHIP_PORT}`);
    }
  }
  const db = input.databases ?? DEFAULT_DATABASES;
  const maxConns = input.maxConns ?? 20;
  const store = (databaseName: string, conns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${input.postgres.host}:${input.postgres.port}`,
      connectProtocol: 'tcp',
      user: input.postgres.user,
      password: input.postgres.password,
      maxConns: conns,
      maxIdleConns: conns,
      maxConnLifetime: '1h',
    },
  });
  const service = (grpcPort: number, membershipPort: number) => ({
    rpc: { grpcPort, membershipPort, bindOnIP: HOST },
  });
  const config = {
    log: { stdout: true, level: input.logLevel ?? 'warn', format: 'json' },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: input.shards,
      datastores: {
        default: store(db.main, maxConns),
        visibility: store(db.visibility, Math.max(2, Math.ceil(maxConns / 4))),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: HOST },
    },
    services: {
      frontend: service(input.ports.frontend, input.ports.frontendMembership),
      history: service(input.ports.history, input.ports.historyMembership),
      matching: service(input.ports.matching, input.ports.matchingMembership),
      worker: service(input.ports.worker, input.ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'punctual',
      currentClusterName: 'punctual',
      clusterInformation: {
        punctual: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `${HOST}:${input.ports.frontend}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    ...(input.dynamicConfigFile === undefined
      ? {}
      : { dynamicConfigClient: { filepath: input.dynamicConfigFile, pollInterval: '10s' } }),
  };
  return `# Generated by Punctual (runtime/temporal-server.ts); rewritten at every start.\n${toYaml(config)}`;
}

type Yaml = string | number | boolean | Yaml[] | { [key: string]: Yaml };

/** Block-style YAML for plain data; strings double-quoted (JSON escapes are valid YAML). */
export function toYaml(value: Yaml, indent = ''): string {
  const scalar = (v: string | number | boolean) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
  const key = (k: string) => (/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k) ? k : JSON.stringify(k));
  if (Array.isArray(value)) {
    if (value.length === 0) return `${indent}[]\n`;
    return value
      .map((item) =>
        typeof item === 'object' ? `${indent}-\n${toYaml(item, `${indent}  `)}` : `${indent}- ${scalar(item)}\n`,
      )
      .join('');
  }
  if (typeof value === 'object') {
    return Object.entries(value)
      .map(([k, v]) =>
        typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0)
          ? `${indent}${key(k)}:\n${toYaml(v, `${indent}  `)}`
          : `${indent}${key(k)}: ${typeof v === 'object' ? (Array.isArray(v) ? '[]' : '{}') : scalar(v)}\n`,
      )
      .join('');
  }
  return `${indent}${scalar(value)}\n`;
}

/**
 * The server records each service's membership port in `cluster_membership.rpc_port`, a
 * PostgreSQL smallint: a port above 32767 (any port the OS hands out as "free", Linux's
 * ephemeral range starts at 32768) stops it at start with "out of range for type smallint".
 */
const MAX_MEMBERSHIP_PORT = 32_767;
const MIN_MEMBERSHIP_PORT = 20_000;

/** Eight distinct free loopback ports, the membership ones at most MAX_MEMBERSHIP_PORT. */
async function freeServerPorts(frontend?: number): Promise<ServerPorts> {
  const taken = new Set<number>(frontend === undefined ? [] : [frontend]);
  const next = async () => {
    for (;;) {
      const port = await freeLoopbackPort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  const membership = async () => {
    for (let tries = 0; tries < 1000; tries++) {
      const port = MIN_MEMBERSHIP_PORT + Math.floor(Math.random() * (MAX_MEMBERSHIP_PORT - MIN_MEMBERSHIP_PORT + 1));
      if (!taken.has(port) && (await canBind(HOST, port))) {
        taken.add(port);
        return port;
      }
    }
    throw new Error(`no free port between ${MIN_MEMBERSHIP_PORT} and ${MAX_MEMBERSHIP_PORT} on ${HOST}`);
  };
  return {
    frontend: frontend ?? (await next()),
    frontendMembership: await membership(),
    history: await next(),
    historyMembership: await membership(),
    matching: await next(),
    matchingMembership: await membership(),
    worker: await next(),
    workerMembership: await membership(),
  };
}

async function runSqlTool(
  sqlTool: string,
  postgres: PostgresTarget,
  database: string,
  args: string[],
  logFile: string,
): Promise<void> {
  // The password goes through the environment, not the command line (ps shows that).
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(sqlTool, ['--plugin', 'postgres12', ...args], {
      env: {
        ...process.env,
        SQL_HOST: postgres.host,
        SQL_PORT: String(postgres.port),
        SQL_USER: postgres.user,
        SQL_PASSWORD: postgres.password,
        SQL_DATABASE: database,
      },
      stdio: ['ignore', fd, fd],
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) {
      throw new Error(
        `temporal-sql-tool ${args.join(' ')} on ${database} failed (exit ${String(code)}):\n${await readFileTail(logFile, 2000)}`,
      );
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates the two databases when missing and brings their schemas to the version this server
 * release ships (`update-schema` is a no-op on an up-to-date database).
 */
async function prepareTemporalDatabases(
  sqlTool: string,
  postgres: PostgresTarget,
  logFile: string,
  databases: { main: string; visibility: string } = DEFAULT_DATABASES,
): Promise<void> {
  const connect = async (database: string) => {
    const client = new pg.Client({ ...postgres, database });
    await client.connect();
    return client;
  };
  const admin = await connect('postgres');
  try {
    for (const name of [databases.main, databases.visibility]) {
      const exists = await admin.query('select 1 from pg_database where datname = $1', [name]);
      if (exists.rowCount === 0) await admin.query(`create database "${name.replace(/"/g, '""')}"`);
    }
  } finally {
    await admin.end();
  }
  for (const [database, schema] of [
    [databases.main, 'postgresql/v12/temporal'],
    [databases.visibility, 'postgresql/v12/visibility'],
  ] as const) {
    const client = await connect(database);
    let versioned: boolean;
    try {
      const r = await client.query<{ t: string | null }>(`select to_regclass('schema_version')::text as t`);
      versioned = r.rows[0]?.t != null;
    } finally {
      await client.end();
    }
    if (!versioned) await runSqlTool(sqlTool, postgres, database, ['setup-schema', '-v', '0.0'], logFile);
    await runSqlTool(sqlTool, postgres, database, ['update-schema', '--schema-name', schema], logFile);
  }
}

interface TemporalServerOptions {
  binaries: TemporalServerBinaries;
  postgres: PostgresTarget;
  /** The generated config, the server's log and the shard count it was first started with. */
  dataDir: string;
  /** History shards (default 4); fixed once the database exists. */
  shards?: number;
  /** Frontend gRPC port; default a free one. */
  port?: number;
  namespace?: string;
  /** Workflow retention of a namespace this creates (default 1 day). */
  retentionDays?: number;
  searchAttributes?: Record<string, SearchAttributeType>;
  log?: LineLog;
}

interface TemporalServer {
  address: string;
  pid: number;
  shards: number;
  logFile: string;
  /** SIGTERM, then SIGKILL after 20 s; resolves once the process is gone. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the server on an already running PostgreSQL and waits until the namespace serves. */
async function startTemporalServer(opts: TemporalServerOptions): Promise<TemporalServer> {
  const log = opts.log ?? silentLog;
  const shards = opts.shards ?? 4;
  const namespace = opts.namespace ?? 'default';
  const dataDir = path.resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const logFile = path.join(dataDir, 'temporal-server.log');
  const shardsFile = path.join(dataDir, 'history-shards');
  if (existsSync(shardsFile)) {
    const first = Number(readFileSync(shardsFile, 'utf8').trim());
    if (first !== shards) {
      throw new Error(
        `the Temporal database in ${dataDir} was created with ${first} history shards; ` +
          `a server cannot change that: use ${first}, or a fresh data directory`,
      );
    }
  }
  const started = Date.now();
  await prepareTemporalDatabases(opts.binaries.sqlTool, opts.postgres, logFile);
  await writeFile(shardsFile, `${shards}\n`);

  const ports = await freeServerPorts(opts.port);
  const configFile = path.join(dataDir, 'temporal-server.yaml');
  await writeFile(configFile, temporalServerConfig({ shards, ports, postgres: opts.postgres }), { mode: 0o600 });
  chmodSync(configFile, 0o600);

  const args = ['--config-file', configFile, '--allow-no-auth', 'start'];
  log(`temporal server: starting ${opts.binaries.server} ${args.join(' ')} (${shards} history shards)`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(opts.binaries.server, args, { cwd: dataDir, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const { pid, exited, exitInfo, stop } = await superviseChild(child, {
    name: 'temporal server',
    graceMs: STOP_GRACE_MS,
    log,
  });

  const address = `${HOST}:${ports.frontend}`;
  const hasExited = () => exitInfo() !== undefined;
  try {
    await waitForFrontend(address, (c) => c.workflowService.getSystemInfo({}), exited, hasExited, READY_TIMEOUT_MS);
    await waitForFrontend(
      address,
      (c) => registerNamespace(c, namespace, opts.retentionDays ?? 1),
      exited,
      hasExited,
      READY_TIMEOUT_MS,
    );
    const wanted = opts.searchAttributes ?? {};
    if (Object.keys(wanted).length > 0) {
      await waitForFrontend(
        address,
        (c) => ensureSearchAttributes(c, namespace, wanted),
        exited,
        hasExited,
        READY_TIMEOUT_MS,
      );
    }
    // The frontend learns new namespaces and search attributes from caches it refreshes
    // every few seconds: a visibility query naming each attribute fails until it has.
    await waitForFrontend(
      address,
      (c) => c.workflowService.countWorkflowExecutions({ namespace, query: probeQuery(wanted) }),
      exited,
      hasExited,
      READY_TIMEOUT_MS,
    );
  } catch (err) {
    const diedEarly = exitInfo() !== undefined;
    await stop();
    const reason = diedEarly
      ? `exited during startup (code ${String(exitInfo()?.code)}, signal ${String(exitInfo()?.signal)})`
      : `did not become ready within ${READY_TIMEOUT_MS / 1000} s (${errorMessage(err)})`;
    throw new Error(
      `Temporal server on ${address} ${reason} (log: ${logFile}).\nLast output:\n${(await readFileTail(logFile)).trim()}`,
    );
  }
  log(`temporal server: ready on ${address} (pid ${pid}) after ${Date.now() - started} ms`);
  return { address, pid, shards, logFile, stop };
}

async function registerNamespace(connection: Connection, namespace: string, retentionDays: number): Promise<void> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return;
  } catch (err) {
    if ((err as { code?: number }).code !== 5) throw err; // NOT_FOUND
  }
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(retentionDays * 86_400_000),
    });
  } catch (err) {
    if ((err as { code?: number }).code !== 6) throw err; // ALREADY_EXISTS: another start won the race
  }
}

function probeQuery(wanted: Record<string, SearchAttributeType>): string {
  const terms = Object.entries(wanted).map(([name, type]) =>
    type === 'Datetime' ? `${name} > '2000-01-01T00:00:00Z'` : `${name} = 'readiness-probe'`,
  );
  return terms.length > 0 ? terms.join(' AND ') : `WorkflowType = 'readiness-probe'`;
}

interface TemporalServerOnPostgres extends TemporalServer {
  postgresPid: number;
}

/**
 * A PostgreSQL cluster of its own (embedded, under `dataDir/postgres`) and the server on it:
 * what `npm run temporal:server` and `npm run bench -- --temporal server` run.
 */
export async function startTemporalServerOnEmbeddedPostgres(opts: {
  projectRoot: string;
  dataDir: string;
  postgresPort: number;
  shards?: number;
  port?: number;
  namespace?: string;
  searchAttributes?: Record<string, SearchAttributeType>;
  log?: LineLog;
}): Promise<TemporalServerOnPostgres> {
  const binaries = await buildTemporalServer({ projectRoot: opts.projectRoot, log: opts.log });
  const pgDir = path.join(path.resolve(opts.dataDir), 'postgres');
  const postgres = await startEmbeddedPostgres({
    dataDir: pgDir,
    port: opts.postgresPort,
    database: DEFAULT_DATABASES.main,
    // Its own messages only: the server's connections make PostgreSQL's log noisy.
    log: (msg) => {
      if (!msg.startsWith('[postgres]')) opts.log?.(msg);
    },
  });
  try {
    const url = new URL(postgres.adminUrl);
    const server = await startTemporalServer({
      binaries,
      postgres: {
        host: url.hostname,
        port: Number(url.port),
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
      },
      dataDir: opts.dataDir,
      shards: opts.shards,
      port: opts.port,
      namespace: opts.namespace,
      searchAttributes: opts.searchAttributes,
      log: opts.log,
    });
    return {
      ...server,
      postgresPid: postgres.pid,
      stop: async () => {
        await server.stop();
        await postgres.stop();
      },
    };
  } catch (err) {
    await postgres.stop();
    throw err;
  }
}
