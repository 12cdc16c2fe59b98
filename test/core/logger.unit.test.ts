import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { redactUrl, serializeError, serializeRequest } from '../../core/logger';

/** What a database error looks like when it reaches the logger, with a value planted everywhere. */
function databaseError(secret: string): Error {
  const cause = Object.assign(new Error(`invalid input syntax for type uuid: "${secret}"`), {
    code: '22P02',
    severity: 'ERROR',
    detail: `Failing row contains (${secret})`,
    where: `JSON data, line 1: {"url":"${secret}`,
    internalQuery: `select '${secret}'`,
    routine: 'string_to_uuid',
    table: 'events',
  });
  return new DrizzleQueryError('insert into "events" ("data") values ($1)', [`{"url":"${secret}"}`, secret], cause);
}

test('a failed query is serialized with its SQL and error code, without its parameters or values', () => {
  const secret = 'planted-value-123';
  const serialized = serializeError(databaseError(secret)) as Record<string, any>;
  const text = JSON.stringify(serialized);
  assert.ok(!text.includes(secret), text);
  assert.equal(serialized.message, 'Failed query: insert into "events" ("data") values ($1)');
  assert.match(String(serialized.stack), /^Error: Failed query: insert into "events"/);
  assert.match(String(serialized.stack), /\n\s+at /, 'the frames are kept');
  assert.equal(serialized.cause.code, '22P02');
  assert.equal(serialized.cause.table, 'events');
  assert.equal(serialized.cause.message, 'invalid input syntax for type uuid: "…"');
});

test('errors nested as properties or causes are serialized the same way, to a bounded depth', () => {
  const secret = 'nested-secret';
  let err: Error = databaseError(secret);
  for (let i = 0; i < 20; i++) err = new Error(`level ${i}`, { cause: err });
  const outer = Object.assign(new Error('outer'), { inner: databaseError(secret) });
  for (const e of [err, outer]) assert.ok(!JSON.stringify(serializeError(e)).includes(secret));
  assert.equal(serializeError('not an error'), 'not an error');
});

test('query strings of /v1 URLs are redacted; other URLs and plain paths are kept', () => {
  assert.equal(redactUrl('/v1/service-calls?api_key=abc&tag=x'), '/v1/service-calls?[REDACTED]');
  assert.equal(redactUrl('/v1/service-calls'), '/v1/service-calls');
  assert.equal(redactUrl('/docs/static/index.html?v=1'), '/docs/static/index.html?v=1');
  const req = { method: 'GET', url: '/v1/x?api_key=abc', ip: '127.0.0.1', host: 'h', socket: { remotePort: 1 } };
  assert.deepEqual(serializeRequest(req), {
    method: 'GET',
    url: '/v1/x?[REDACTED]',
    host: 'h',
    remoteAddress: '127.0.0.1',
    remotePort: 1,
  });
});
