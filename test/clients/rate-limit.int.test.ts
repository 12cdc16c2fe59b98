import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PunctualError } from '@punctual/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { apiUrl, clientFor } from './support';

/** The client's 429 path on the service's own per-tenant rate limit, set low through the environment. */

let env: TestEnv;
before(async () => {
  env = await createTestEnv({
    worker: false,
    relay: false,
    env: { RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '1' },
  });
});
after(async () => {
  await env?.close();
});

/** Spends the tenant's one token, so that the next request answers 429. */
async function exhaust() {
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${apiUrl(env)}/v1/service-calls`, {
      headers: { authorization: `Bearer ${env.tenants.a.key}` },
    });
    await r.body?.cancel();
    if (r.status === 429) return Number(r.headers.get('retry-after'));
  }
  throw new Error('never limited');
}

test('a 429 is retried after Retry-After with the same Idempotency-Key, and the submit is one call', async () => {
  const attempts: { status: number; key: string | null; at: number }[] = [];
  const client = clientFor(env, env.tenants.a, {
    fetch: async (request: Request) => {
      const response = await fetch(request);
      attempts.push({ status: response.status, key: request.headers.get('idempotency-key'), at: Date.now() });
      return response;
    },
  });
  const body = {
    request: { method: 'GET' as const, url: 'https://example.com/' },
    dueAt: new Date(Date.now() + 3_600_000).toISOString(),
  };
  const retryAfter = await exhaust();
  assert.ok(retryAfter >= 1, `Retry-After ${retryAfter}`);
  const started = Date.now();
  const submitted = await client.calls.submit(body);
  assert.deepEqual(
    attempts.map((a) => a.status),
    [429, 202],
  );
  assert.equal(attempts[0]!.key, submitted.idempotencyKey);
  assert.equal(attempts[1]!.key, submitted.idempotencyKey);
  assert.ok(attempts[1]!.at - started >= retryAfter * 1000 - 100, `retried after ${attempts[1]!.at - started} ms`);

  // The same key again is the same call: the retry did not make a second one.
  await exhaust();
  const again = await client.calls.submit(body, { idempotencyKey: submitted.idempotencyKey });
  assert.equal(again.id, submitted.id);
  assert.equal(again.replayed, true);
  const { rows } = await env.database.pool.query<{ n: string }>(
    `select count(distinct stream_id) as n from events where tenant_id = $1`,
    [env.tenants.a.id],
  );
  assert.equal(Number(rows[0]!.n), 1);
});

test('retries are bounded: with maxRetries 0 the 429 is a PunctualError carrying Retry-After', async () => {
  const client = clientFor(env, env.tenants.a, { maxRetries: 0 });
  await exhaust();
  await assert.rejects(client.calls.page(), (err: unknown) => {
    assert.ok(err instanceof PunctualError);
    assert.equal(err.status, 429);
    assert.equal(err.title, 'Too Many Requests');
    assert.ok(Number(err.headers.get('retry-after')) >= 1);
    return true;
  });
});
