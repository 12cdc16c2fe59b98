import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { workflowIdFor } from '../../core/ids';
import { lazyTemporalClient } from '../../core/temporal';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually } from '../support/net';

/** A planted secret reaches the target and nowhere else: not the database, logs, API or Temporal. */

const SECRET = `planted-${Math.random().toString(36).slice(2)}-secret`;
const logLines: string[] = [];
let env: TestEnv;

before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  env = await createTestEnv({ log: pino({ level: 'debug' }, sink) });
});
after(async () => {
  await env?.close();
});

const plantedRequest = () => ({
  request: {
    method: 'POST',
    url: env.target.url('/private'),
    headers: {
      Authorization: `Bearer ${SECRET}`,
      'X-Api-Key': SECRET,
      'X-Session-Token': SECRET,
      Accept: 'text/plain',
    },
    body: { password: SECRET },
  },
});

/** Every string inside a value, payload bytes decoded as UTF-8 as well. */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array)
    out.push(Buffer.from(value).toString('utf8'), Buffer.from(value).toString('base64'));
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) strings(v, out);
  return out;
}

test('the planted secret is found only where it must go', async () => {
  const submitted = await call(env, 'POST', '/v1/service-calls', {
    body: plantedRequest(),
    headers: { 'idempotency-key': 'privacy-1' },
  });
  assert.equal(submitted.status, 202);
  const id = String(submitted.body.id);
  const done = await eventually('the call to succeed', async () => {
    const r = await call(env, 'GET', `/v1/service-calls/${id}`);
    return r.body.status === 'Succeeded' ? r : undefined;
  });

  // It went where it must.
  const [hit] = env.target.hitsFor('/private');
  assert.equal(hit?.headers.authorization, `Bearer ${SECRET}`);
  assert.equal(hit?.headers['x-api-key'], SECRET);
  assert.deepEqual(JSON.parse(hit?.body ?? ''), { password: SECRET });

  // API output: detail, list and a replayed submit.
  const replay = await call(env, 'POST', '/v1/service-calls', {
    body: plantedRequest(),
    headers: { 'idempotency-key': 'privacy-1' },
  });
  assert.equal(replay.status, 200);
  const list = await call(env, 'GET', '/v1/service-calls');
  for (const output of [done.body, replay.body, list.body]) {
    assert.ok(!JSON.stringify(output).includes(SECRET), 'API output holds the secret');
  }
  assert.equal(done.body.request.headers.Authorization, '[REDACTED]');
  assert.equal(done.body.request.headers.Accept, 'text/plain');

  // Database: every row of every table, as text.
  const tables = await env.database.db.execute<{ table_name: string }>(
    sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`,
  );
  assert.ok(tables.rows.length >= 5);
  for (const { table_name } of tables.rows) {
    const rows = await env.database.db.execute<{ row: string }>(
      sql.raw(`select row_to_json(t)::text as row from "${table_name}" t`),
    );
    for (const { row } of rows.rows) {
      assert.ok(!row.includes(SECRET), `table ${table_name} holds the secret`);
      assert.ok(!row.includes(Buffer.from(SECRET).toString('base64')), `table ${table_name} holds it in base64`);
    }
  }

  // Logs of every role in this process.
  assert.ok(logLines.length > 0);
  assert.ok(
    logLines.some((l) => l.includes(id)),
    'the call was logged',
  );
  for (const line of logLines) assert.ok(!line.includes(SECRET), `a log line holds the secret: ${line}`);

  // Temporal history, payloads decoded.
  const { client, connection } = lazyTemporalClient({
    address: env.infra.temporalAddress,
    namespace: env.config.temporalNamespace,
  });
  try {
    const history = await client.workflow.getHandle(workflowIdFor(env.tenants.a.id, id)).fetchHistory();
    const all = strings(history);
    assert.ok(
      all.some((s) => s.includes(id)),
      'the history names the call',
    );
    for (const s of all) assert.ok(!s.includes(SECRET), 'Temporal history holds the secret');
  } finally {
    await connection.close();
  }
});
