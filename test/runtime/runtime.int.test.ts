/**
 * Integration tests for the local runtime launchers: they start real
 * processes (Temporal CLI dev server, embedded Postgres) on free loopback
 * ports and check startup, shutdown, persistence and crash recovery.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { locateTemporalCli } from '../../runtime/temporal-cli';
import { startTemporalDevServer } from '../../runtime/temporal-dev-server';
import { startEmbeddedPostgres } from '../../runtime/embedded-postgres';
import { freeLoopbackPort, isPidAlive, isPortAccepting, waitForPidExit } from '../../runtime/process-util';

const projectRoot = path.resolve(__dirname, '..', '..', '..');
const verbose = process.env['RUNTIME_TEST_VERBOSE'] === '1';
const log = (msg: string): void => {
  if (verbose) process.stderr.write(`${msg}\n`);
};

/** Occupies a port for the duration of fn, to provoke "port in use" errors. */
async function withBusyPort(fn: (port: number) => Promise<void>): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(typeof address === 'object' && address !== null);
  try {
    await fn(address.port);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A temp dir the `postgres` OS user can enter (mkdtemp makes 0700 dirs, and as root Postgres runs as that user). */
async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

describe('temporal runtime', () => {
  let cliPath = '';

  test('locates (or installs) a working temporal CLI', { timeout: 180_000 }, async () => {
    cliPath = await locateTemporalCli({ projectRoot, log });
    assert.ok(path.isAbsolute(cliPath), `expected absolute path, got ${cliPath}`);
  });

  test('allowInstall: false still finds the now-cached CLI', { timeout: 30_000 }, async () => {
    const found = await locateTemporalCli({ projectRoot, log, allowInstall: false });
    assert.ok(path.isAbsolute(found));
  });

  test('a bad TEMPORAL_CLI_PATH is reported, naming the variable', { timeout: 30_000 }, async () => {
    const saved = process.env['TEMPORAL_CLI_PATH'];
    process.env['TEMPORAL_CLI_PATH'] = path.join(os.tmpdir(), 'definitely-not-a-temporal-binary');
    try {
      await assert.rejects(locateTemporalCli({ projectRoot, log }), /TEMPORAL_CLI_PATH/);
    } finally {
      if (saved === undefined) delete process.env['TEMPORAL_CLI_PATH'];
      else process.env['TEMPORAL_CLI_PATH'] = saved;
    }
  });

  test('starts a headless in-memory dev server, serves the namespace, stops cleanly', { timeout: 90_000 }, async () => {
    assert.ok(cliPath, 'CLI must have been located by the first test');
    const port = await freeLoopbackPort();
    const namespace = 'punctual-test';
    const server = await startTemporalDevServer({
      cliPath,
      port,
      namespace,
      log,
      searchAttributes: { PunctualTestKey: 'Keyword' },
    });
    let connection: Connection | undefined;
    try {
      assert.equal(server.address, `127.0.0.1:${port}`);
      assert.equal(server.uiUrl, undefined);
      connection = await Connection.connect({ address: server.address });
      const client = new Client({ connection, namespace });
      const described = await client.workflowService.describeNamespace({ namespace });
      assert.equal(described.namespaceInfo?.name, namespace);
      const attrs = await connection.operatorService.listSearchAttributes({ namespace });
      assert.ok(Object.keys(attrs.customAttributes).includes('PunctualTestKey'));
    } finally {
      await connection?.close();
      await server.stop();
    }
    assert.equal(isPidAlive(server.pid), false, 'server process should be gone');
    assert.equal(await isPortAccepting('127.0.0.1', port), false, 'port should be closed after stop()');
    // Idempotent.
    await server.stop();
  });

  test('refuses a busy port with a clear error', { timeout: 30_000 }, async () => {
    assert.ok(cliPath);
    await withBusyPort(async (port) => {
      await assert.rejects(startTemporalDevServer({ cliPath, port, namespace: 'default', log }), (err: Error) =>
        err.message.includes(`port ${port}`),
      );
    });
  });
});

describe('embedded postgres', () => {
  let baseDir = '';
  let dataDir = '';

  before(async () => {
    baseDir = await makeTempDir('punctual-pg-');
    dataDir = path.join(baseDir, 'postgres');
  });

  after(async () => {
    if (baseDir) await rm(baseDir, { recursive: true, force: true });
  });

  test('persists data across stop/start of the same data dir', { timeout: 120_000 }, async () => {
    const port = await freeLoopbackPort();
    const first = await startEmbeddedPostgres({ dataDir, port, log });
    try {
      assert.match(first.url, new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${port}/punctual\\?host=`));
      assert.equal(new URL(first.url).searchParams.get('host'), path.resolve(dataDir), 'the socket is in the data dir');
      assert.match(first.adminUrl, /\/postgres\?host=/);
      const client = new pg.Client({ connectionString: first.url });
      await client.connect();
      try {
        // No server address: the app's connection goes through the Unix socket, not loopback TCP.
        const { rows: via } = await client.query<{ addr: string | null }>('select inet_server_addr() as addr');
        assert.equal(via[0]?.addr, null);
        await client.query('CREATE TABLE kept (id int PRIMARY KEY, note text)');
        await client.query("INSERT INTO kept VALUES (1, 'survives restart ✓')");
      } finally {
        await client.end();
      }
    } finally {
      await first.stop();
    }
    assert.equal(await isPortAccepting('127.0.0.1', port), false, 'port should be closed after stop()');

    const passwordFile = path.join(baseDir, 'postgres-password');
    assert.equal((await stat(passwordFile)).mode & 0o777, 0o600);

    const port2 = await freeLoopbackPort();
    const second = await startEmbeddedPostgres({ dataDir, port: port2, log });
    try {
      assert.equal(new URL(second.url).password, new URL(first.url).password, 'password is reused');
      const client = new pg.Client({ connectionString: second.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ note: string }>('SELECT note FROM kept WHERE id = 1');
        assert.equal(rows[0]?.note, 'survives restart ✓');
      } finally {
        await client.end();
      }
    } finally {
      await second.stop();
    }
  });

  test('a stale postmaster.pid with a dead pid does not block start', { timeout: 60_000 }, async () => {
    // A pid that certainly existed and is now dead.
    const dead = spawn('true');
    const deadPid = dead.pid;
    assert.ok(deadPid !== undefined);
    await new Promise((resolve) => dead.once('exit', resolve));
    assert.ok(await waitForPidExit(deadPid, 5000));

    const pidFile = path.join(dataDir, 'postmaster.pid');
    await writeFile(pidFile, `${deadPid}\n${dataDir}\n1700000000\n5432\n\n127.0.0.1\n  1234567  1\nready   \n`);
    const port = await freeLoopbackPort();
    const pgHandle = await startEmbeddedPostgres({ dataDir, port, log });
    try {
      const livePid = Number((await readFile(pidFile, 'utf8')).split('\n', 1)[0]);
      assert.notEqual(livePid, deadPid);
      const client = new pg.Client({ connectionString: pgHandle.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM kept');
        assert.equal(rows[0]?.n, '1');
      } finally {
        await client.end();
      }
    } finally {
      await pgHandle.stop();
    }
  });

  test('an orphaned postmaster from a kill -9ed parent is stopped and replaced', { timeout: 90_000 }, async () => {
    const port = await freeLoopbackPort();
    const modulePath = path.join(projectRoot, 'dist', 'runtime', 'embedded-postgres.js');
    const script =
      `require(${JSON.stringify(modulePath)}).startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: ${port} })` +
      `.then(() => { process.stdout.write('READY\\n'); setInterval(() => {}, 1000); });`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      parent.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('READY')) resolve();
      });
      parent.once('exit', (code) => reject(new Error(`helper exited early with code ${String(code)}`)));
    });
    const orphanPid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n', 1)[0]);
    parent.kill('SIGKILL');
    await new Promise((resolve) => parent.once('exit', resolve));
    assert.ok(isPidAlive(orphanPid), 'postgres should have outlived its killed parent');

    const port2 = await freeLoopbackPort();
    const handle = await startEmbeddedPostgres({ dataDir, port: port2, log });
    try {
      assert.equal(isPidAlive(orphanPid), false, 'orphan should have been stopped');
      const client = new pg.Client({ connectionString: handle.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM kept');
        assert.equal(rows[0]?.n, '1');
      } finally {
        await client.end();
      }
    } finally {
      await handle.stop();
    }
  });

  test('refuses a busy port with a clear error', { timeout: 30_000 }, async () => {
    await withBusyPort(async (port) => {
      await assert.rejects(startEmbeddedPostgres({ dataDir, port, log }), (err: Error) =>
        err.message.includes(`port ${port}`),
      );
    });
  });
});
