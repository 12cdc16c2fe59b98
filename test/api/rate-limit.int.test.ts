import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { sleep } from '../support/net';
import { loadContract } from '../support/openapi';

/** The per-tenant rate limit, configured through the environment as in production. */

let env: TestEnv;
before(async () => {
  env = await createTestEnv({
    worker: false,
    relay: false,
    env: { RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '3' },
  });
});
after(async () => {
  await env?.close();
});

test('over the limit → 429 problem+json with Retry-After, per tenant, and it recovers', async () => {
  assert.deepEqual(env.config.rateLimit, { perSecond: 1, burst: 3 });
  const auth = { authorization: `Bearer ${env.tenants.a.key}` };
  // Ten at once, half of them submits: a burst of 3 (4 if a token refilled meanwhile) gets through.
  const answers = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      i % 2 === 0
        ? env.api.inject({ method: 'GET', url: '/v1/service-calls', headers: auth })
        : env.api.inject({
            method: 'POST',
            url: '/v1/service-calls',
            headers: auth,
            payload: { request: { method: 'GET', url: 'https://example.com' }, dueAt: '2030-01-01T00:00:00Z' },
          }),
    ),
  );
  const passed = answers.filter((r) => r.statusCode !== 429);
  assert.ok(
    passed.length >= 3 && passed.length <= 4,
    `${passed.length} passed: ${answers.map((r) => r.statusCode).join(',')}`,
  );
  // Every /v1 endpoint draws on the tenant's one bucket.
  assert.ok(
    answers.some((r, i) => i % 2 === 0 && r.statusCode === 429),
    'a list was limited',
  );
  assert.ok(
    answers.some((r, i) => i % 2 === 1 && r.statusCode === 429),
    'a submit was limited',
  );

  const raw = answers.find((r, i) => r.statusCode === 429 && i % 2 === 0)!;
  assert.match(String(raw.headers['content-type']), /^application\/problem\+json/);
  const body = raw.json<Record<string, unknown>>();
  assert.equal(body.status, 429);
  assert.equal(body.title, 'Too Many Requests');
  const retryAfter = Number(raw.headers['retry-after']);
  assert.ok(
    Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 2,
    `Retry-After: ${String(raw.headers['retry-after'])}`,
  );
  (await loadContract(env.api)).check('get', '/v1/service-calls', raw);

  // The other tenant has its own bucket; health checks are not limited.
  assert.equal((await call(env, 'GET', '/v1/service-calls', { tenant: env.tenants.b })).status, 200);
  for (let i = 0; i < 5; i++) assert.equal((await env.api.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);

  await sleep(retryAfter * 1000);
  assert.equal((await call(env, 'GET', '/v1/service-calls')).status, 200, 'allowed again after Retry-After');
});

test('unauthenticated requests answer 401 and do not use up the tenant’s tokens', async () => {
  await sleep(3_000); // refill
  for (let i = 0; i < 10; i++) {
    const r = await env.api.inject({
      method: 'GET',
      url: '/v1/service-calls',
      headers: { authorization: 'Bearer nope-nope-nope' },
    });
    assert.equal(r.statusCode, 401);
  }
  assert.equal((await call(env, 'GET', '/v1/service-calls')).status, 200);
});

test('a batch counts by items: it goes ahead on one token, and the requests after it wait for the rest', async () => {
  await sleep(3_000); // refill: 3 tokens
  const items = Array.from({ length: 6 }, () => ({
    request: { method: 'GET', url: 'https://example.com' },
    dueAt: new Date(Date.now() + 3_600_000).toISOString(),
  }));
  const r = await call(env, 'POST', '/v1/service-calls/batch', { body: { items } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(
    (r.body.items as { status: number }[]).map((i) => i.status),
    [202, 202, 202, 202, 202, 202],
  );
  // 3 − 6 = −3 tokens: four seconds until one is back, so the next request is refused.
  const next = await call(env, 'GET', '/v1/service-calls');
  assert.equal(next.status, 429);
  const retryAfter = Number(next.headers['retry-after']);
  assert.ok(retryAfter >= 3 && retryAfter <= 4, `Retry-After: ${String(next.headers['retry-after'])}`);
  // A single request never owes: the other tenant is untouched.
  assert.equal((await call(env, 'GET', '/v1/service-calls', { tenant: env.tenants.b })).status, 200);
});
