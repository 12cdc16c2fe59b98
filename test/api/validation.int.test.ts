import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApi } from '../../bin/roles';
import { call, createTestEnv, type TestEnv } from '../support/env';

/** Bad input of every field answers 400/401/404/413/415/422 as problem+json, never 500. */

let env: TestEnv;
before(async () => {
  env = await createTestEnv({ worker: false, relay: false });
});
after(async () => {
  await env?.close();
});

const valid = () => ({ request: { method: 'GET', url: 'https://example.com/hook' } });

function expectProblem(
  r: { status: number; headers: Record<string, unknown>; body: Record<string, any> },
  status: number,
  field?: string,
) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  assert.equal(r.body.status, status);
  assert.equal(typeof r.body.title, 'string');
  if (field !== undefined) {
    const fields = (r.body.errors as { field: string }[] | undefined)?.map((e) => e.field) ?? [];
    assert.ok(fields.includes(field), `expected field ${field} in ${JSON.stringify(r.body)}`);
  }
}

describe('authentication', () => {
  test('missing, malformed and unknown keys → 401 with WWW-Authenticate', async () => {
    for (const authorization of [undefined, 'Basic abc', 'Bearer', 'Bearer not-a-key']) {
      const r = await env.api.inject({
        method: 'POST',
        url: '/v1/service-calls',
        headers: authorization === undefined ? {} : { authorization },
        payload: valid(),
      });
      assert.equal(r.statusCode, 401);
      assert.equal(r.headers['www-authenticate'], 'Bearer');
      assert.match(String(r.headers['content-type']), /problem\+json/);
    }
    const get = await env.api.inject({ method: 'GET', url: '/v1/service-calls/00000000-0000-4000-8000-000000000000' });
    assert.equal(get.statusCode, 401);
  });

  test('health endpoints need no key', async () => {
    assert.equal((await env.api.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    const ready = await env.api.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);
    assert.deepEqual(ready.json().checks, { postgres: true, temporal: true });
  });
});

describe('without Temporal', () => {
  test('readiness says which dependency is down, promptly, and a submit is still accepted', async () => {
    // Nothing listens on port 1: this api's Temporal is unreachable, its Postgres is fine.
    const api = await startApi({
      config: env.config,
      infra: { ...env.infra, temporalAddress: '127.0.0.1:1' },
      log: env.log,
      keyring: () => env.keyring,
    });
    try {
      const started = Date.now();
      const ready = await api.fastify.inject({ method: 'GET', url: '/readyz' });
      assert.equal(ready.statusCode, 503);
      assert.deepEqual(ready.json().checks, { postgres: true, temporal: false });
      // Liveness, not speed: a probe that hangs would block an orchestrator.
      assert.ok(Date.now() - started < 15_000, 'readiness must not hang');
      const submitted = await api.fastify.inject({
        method: 'POST',
        url: '/v1/service-calls',
        headers: { authorization: `Bearer ${env.tenants.a.key}` },
        payload: valid(),
      });
      assert.equal(submitted.statusCode, 202, submitted.body);
    } finally {
      await api.stop();
    }
  });
});

describe('submit validation', () => {
  const cases: [string, unknown, string][] = [
    ['no request', {}, 'request'],
    ['request not an object', { request: 'GET /' }, 'request'],
    ['unknown top-level field', { ...valid(), priority: 1 }, 'priority'],
    ['unknown request field', { request: { ...valid().request, timeout: 5 } }, 'request.timeout'],
    ['missing method', { request: { url: 'https://example.com' } }, 'request.method'],
    ['bad method', { request: { method: 'TRACE', url: 'https://example.com' } }, 'request.method'],
    ['lower-case method', { request: { method: 'get', url: 'https://example.com' } }, 'request.method'],
    ['missing url', { request: { method: 'GET' } }, 'request.url'],
    ['url not a string', { request: { method: 'GET', url: 42 } }, 'request.url'],
    ['relative url', { request: { method: 'GET', url: '/hook' } }, 'request.url'],
    ['ftp url', { request: { method: 'GET', url: 'ftp://example.com/x' } }, 'request.url'],
    ['javascript url', { request: { method: 'GET', url: 'javascript:alert(1)' } }, 'request.url'],
    ['empty url', { request: { method: 'GET', url: '' } }, 'request.url'],
    ['headers not an object', { request: { ...valid().request, headers: ['a'] } }, 'request.headers'],
    ['header value not a string', { request: { ...valid().request, headers: { 'x-n': 1 } } }, 'request.headers.x-n'],
    ['bad header name', { request: { ...valid().request, headers: { 'bad name': 'x' } } }, 'request.headers.bad name'],
    [
      'header value with CRLF',
      { request: { ...valid().request, headers: { 'x-a': 'a\r\nx-b: b' } } },
      'request.headers.x-a',
    ],
    ['reserved header', { request: { ...valid().request, headers: { Host: 'evil.example' } } }, 'request.headers.Host'],
    [
      'duplicate header',
      { request: { ...valid().request, headers: { 'X-A': '1', 'x-a': '2' } } },
      'request.headers.x-a',
    ],
    ['HEAD with body', { request: { method: 'HEAD', url: 'https://example.com', body: 'x' } }, 'request.body'],
    ['dueAt without offset', { ...valid(), dueAt: '2030-01-01T10:00:00' }, 'dueAt'],
    ['dueAt not a date', { ...valid(), dueAt: 'tomorrow' }, 'dueAt'],
    ['dueAt a number', { ...valid(), dueAt: 1893456000000 }, 'dueAt'],
    ['dueAt impossible date', { ...valid(), dueAt: '2030-02-31T10:00:00Z' }, 'dueAt'],
    ['dueAt too far ahead', { ...valid(), dueAt: '2999-01-01T00:00:00Z' }, 'dueAt'],
    ['tags not an array', { ...valid(), tags: 'a' }, 'tags'],
    ['too many tags', { ...valid(), tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'tags'],
    ['empty tag', { ...valid(), tags: [''] }, 'tags.0'],
    ['tag too long', { ...valid(), tags: ['x'.repeat(65)] }, 'tags.0'],
    ['tag not a string', { ...valid(), tags: [1] }, 'tags.0'],
    ['duplicate tags', { ...valid(), tags: ['a', 'a'] }, 'tags'],
  ];
  for (const [name, body, field] of cases) {
    test(`${name} → 400 naming ${field}`, async () => {
      expectProblem(await call(env, 'POST', '/v1/service-calls', { body }), 400, field);
    });
  }

  test('a body that is not JSON → 400', async () => {
    const r = await env.api.inject({
      method: 'POST',
      url: '/v1/service-calls',
      headers: { authorization: `Bearer ${env.tenants.a.key}`, 'content-type': 'application/json' },
      payload: '{"request": ',
    });
    assert.equal(r.statusCode, 400);
    assert.match(String(r.headers['content-type']), /problem\+json/);
  });

  test('a non-JSON content type → 415', async () => {
    const r = await env.api.inject({
      method: 'POST',
      url: '/v1/service-calls',
      headers: { authorization: `Bearer ${env.tenants.a.key}`, 'content-type': 'text/plain' },
      payload: 'hello',
    });
    assert.equal(r.statusCode, 415);
    assert.match(String(r.headers['content-type']), /problem\+json/);
  });

  test('a body over 1 MiB → 413', async () => {
    const body = { request: { method: 'POST', url: 'https://example.com', body: 'x'.repeat(1024 * 1024 + 10) } };
    expectProblem(await call(env, 'POST', '/v1/service-calls', { body }), 413);
  });

  test('a body just under 1 MiB is accepted', async () => {
    const body = { request: { method: 'POST', url: 'https://example.com', body: 'x'.repeat(1000 * 1000) } };
    assert.equal((await call(env, 'POST', '/v1/service-calls', { body })).status, 202);
  });

  test('bad Idempotency-Key → 400 naming it', async () => {
    for (const key of ['', 'x'.repeat(256), 'naïve']) {
      const r = await call(env, 'POST', '/v1/service-calls', { body: valid(), headers: { 'idempotency-key': key } });
      expectProblem(r, 400, 'Idempotency-Key');
    }
    const ok = await call(env, 'POST', '/v1/service-calls', {
      body: valid(),
      headers: { 'idempotency-key': 'x'.repeat(255) },
    });
    assert.equal(ok.status, 202);
  });

  test('any JSON body value is accepted: object, array, number, null, string', async () => {
    for (const value of [{ a: 1 }, [1, 2], 3, null, 'plain', true]) {
      const r = await call(env, 'POST', '/v1/service-calls', {
        body: { request: { method: 'POST', url: 'https://example.com', body: value } },
      });
      assert.equal(r.status, 202, JSON.stringify(r.body));
    }
  });
});

describe('ids and routes', () => {
  test('a malformed id → 400; an unknown id → 404; an unknown route → 404', async () => {
    expectProblem(await call(env, 'GET', '/v1/service-calls/not-a-uuid'), 400, 'params.id');
    expectProblem(await call(env, 'POST', '/v1/service-calls/not-a-uuid/cancel'), 400, 'params.id');
    expectProblem(await call(env, 'GET', '/v1/service-calls/00000000-0000-4000-8000-000000000000'), 404);
    expectProblem(await call(env, 'GET', '/v1/nothing-here'), 404);
  });
});
