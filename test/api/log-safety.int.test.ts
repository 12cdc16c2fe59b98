import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { createLogger } from '../../core/logger';
import { call, createTestEnv, type TestEnv } from '../support/env';

/**
 * A submit that fails at the database: the error is logged (it is a 500), and nothing the
 * tenant sent appears in any log line: not the URL or its query string, no header name or value,
 * no tag, no payload, no Idempotency-Key, no sealed ciphertext. PostgreSQL puts the failing row
 * into its error (`detail`) and drizzle the query's parameters into its message; the logger's
 * error serializer drops both.
 */

const MARKER = `mark${Math.random().toString(36).slice(2, 10)}`;
const lines: string[] = [];
let env: TestEnv;

before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  env = await createTestEnv({ worker: false, relay: false, log: createLogger('debug', 'punctual', sink) });
});
after(async () => {
  await env?.close();
});

test('a submit failing at the database logs the error without anything the tenant sent', async () => {
  // Every new event fails a check; NOT VALID leaves existing rows alone.
  await env.database.pool.query('alter table events add constraint planted_failure check (false) not valid');
  try {
    const r = await call(env, 'POST', '/v1/service-calls', {
      headers: { 'idempotency-key': `idem-${MARKER}` },
      body: {
        request: {
          method: 'POST',
          url: `https://${MARKER}.example.com/${MARKER}?q=${MARKER}`,
          headers: { [`X-${MARKER}`]: `plain-${MARKER}`, Authorization: `Bearer secret-${MARKER}` },
          body: { [MARKER]: `payload-${MARKER}` },
        },
        tags: [`tag-${MARKER}`],
      },
    });
    assert.equal(r.status, 500, JSON.stringify(r.body));
    assert.ok(!JSON.stringify(r.body).includes(MARKER), 'the answer holds the input');
  } finally {
    await env.database.pool.query('alter table events drop constraint planted_failure');
  }

  for (const line of lines) assert.ok(!line.includes(MARKER), `a log line holds the input: ${line}`);
  const errorLines = lines.filter((l) => l.includes('"unhandled error"'));
  assert.equal(errorLines.length, 1, 'the failure is logged');
  const logged = JSON.parse(errorLines[0]!) as { err: { message: string; cause?: { code?: string } } };
  // Still useful: the SQL and PostgreSQL's error code are there.
  assert.match(logged.err.message, /insert into "?events"?/i);
  assert.equal(logged.err.cause?.code, '23514');
});

test('the query string of a /v1 request is not logged (an API key given as ?api_key=…)', async () => {
  const before = lines.length;
  await call(env, 'GET', `/v1/service-calls?api_key=${MARKER}&tag=${MARKER}`);
  const mine = lines.slice(before);
  assert.ok(
    mine.some((l) => l.includes('"incoming request"') && l.includes('/v1/service-calls?[REDACTED]')),
    mine.join(''),
  );
  for (const line of mine) assert.ok(!line.includes(MARKER), `a log line holds the query string: ${line}`);
});
