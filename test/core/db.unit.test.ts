import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { isConnectionError } from '../../core/db';

async function connectError(config: pg.ClientConfig): Promise<unknown> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    return err;
  } finally {
    await client.end().catch(() => undefined);
  }
  assert.fail('connecting was expected to fail');
}

test('a stopped server behind a Unix socket (the socket file is gone) is a connection error', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'no-socket-'));
  const err = await connectError({ host: dir, port: 5432, user: 'x', database: 'x' });
  assert.equal((err as NodeJS.ErrnoException).code, 'ENOENT');
  assert.equal(isConnectionError(err), true);
});

test('a refused TCP connection is a connection error; a file that is missing is not', async () => {
  const err = await connectError({ host: '127.0.0.1', port: 1, user: 'x', database: 'x' });
  assert.equal(isConnectionError(err), true);
  const fileErr = Object.assign(new Error("ENOENT: no such file or directory, open 'x'"), {
    code: 'ENOENT',
    syscall: 'open',
  });
  assert.equal(isConnectionError(fileErr), false);
});
