import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { call, createTestEnv, type Tenant, type TestEnv } from '../support/env';
import { eventually } from '../support/net';
import type { Hit } from '../support/target';

/**
 * Callbacks end to end on the real PostgreSQL, Temporal server, worker and relay (ADR-0016): the
 * call's end is POSTed to the callback URL, signed as Standard Webhooks (checked with the
 * independent `standardwebhooks` package), retried until a 2xx under one webhook-id, and every
 * delivery attempt is recorded on the call. Retries are fast here (CALLBACK_RETRY_*).
 */

let env: TestEnv;

before(async () => {
  env = await createTestEnv({
    env: { CALLBACK_RETRY_INITIAL_MS: '200', CALLBACK_RETRY_MAX_MS: '400', CALLBACK_MAX_ATTEMPTS: '5' },
  });
});
after(async () => {
  await env?.close();
});

type Json = Record<string, any>;

async function submit(body: Json, tenant?: Tenant) {
  const r = await call(env, 'POST', '/v1/service-calls', { body, ...(tenant === undefined ? {} : { tenant }) });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return String(r.body.id);
}

/** The call once its callback is settled (anything but Pending). */
async function settled(id: string): Promise<Json> {
  return eventually(`callback of ${id} to settle`, async () => {
    const r = await call(env, 'GET', `/v1/service-calls/${id}`);
    const status = r.body.callback?.status;
    return status !== undefined && status !== 'Pending' ? r.body : undefined;
  });
}

async function signingSecrets(tenant: Tenant = env.tenants.a): Promise<string[]> {
  const r = await call(env, 'GET', '/v1/signing-secrets', { tenant });
  return (r.body.secrets as { secret: string }[]).map((s) => s.secret);
}

/** Verifies a hit with the standardwebhooks package against any of the tenant's secrets. */
async function verify(hit: Hit, tenant?: Tenant): Promise<unknown> {
  const headers = {
    'webhook-id': String(hit.headers['webhook-id']),
    'webhook-timestamp': String(hit.headers['webhook-timestamp']),
    'webhook-signature': String(hit.headers['webhook-signature']),
  };
  let lastError: unknown;
  for (const secret of await signingSecrets(tenant)) {
    try {
      return new Webhook(secret).verify(hit.body, headers);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

describe('callbacks', () => {
  test('on success: one signed POST with the call as its detail shows it, secrets redacted', async () => {
    const id = await submit({
      request: {
        method: 'POST',
        url: env.target.url('/cb-ok/target'),
        headers: { Authorization: 'Bearer very-secret-token' },
        body: { n: 1 },
      },
      callback: { url: env.target.url('/cb-ok/callback') },
    });
    const done = await settled(id);
    assert.equal(done.status, 'Succeeded');
    assert.equal(done.callback.status, 'Delivered');
    assert.deepEqual(done.callback.on, ['Succeeded', 'Failed'], 'on defaults to the call’s own outcomes');
    assert.equal(done.callback.url, env.target.url('/cb-ok/callback'));
    assert.equal(done.callback.attempts.length, 1);
    assert.equal(done.callback.attempts[0].statusCode, 200);

    const [hit, ...more] = env.target.hitsFor('/cb-ok/callback');
    assert.ok(hit !== undefined && more.length === 0, 'delivered once');
    assert.equal(hit.method, 'POST');
    assert.match(String(hit.headers['content-type']), /^application\/json/);
    const payload = (await verify(hit)) as Json;
    assert.equal(payload.type, 'service-call.succeeded');
    assert.ok(!Number.isNaN(Date.parse(payload.timestamp)));
    assert.equal(payload.data.id, id);
    assert.equal(payload.data.status, 'Succeeded');
    assert.equal(payload.data.attempts.length, 1);
    assert.equal(payload.data.attempts[0].statusCode, 200);
    assert.equal(payload.data.request.headers.Authorization, '[REDACTED]');
    assert.ok(!hit.body.includes('very-secret-token'), 'no secret in the callback');
    const [targetHit] = env.target.hitsFor('/cb-ok/target');
    assert.notEqual(hit.headers['webhook-id'], targetHit?.headers['webhook-id'], 'its own webhook-id');
  });

  test('on failure: told as service-call.failed', async () => {
    const id = await submit({
      request: { method: 'GET', url: env.target.url('/status/500') },
      retry: { maxAttempts: 1 },
      callback: { url: env.target.url('/cb-fail/callback') },
    });
    const done = await settled(id);
    assert.equal(done.status, 'Failed');
    assert.equal(done.callback.status, 'Delivered');
    const [hit] = env.target.hitsFor('/cb-fail/callback');
    assert.ok(hit !== undefined);
    const payload = (await verify(hit)) as Json;
    assert.equal(payload.type, 'service-call.failed');
    assert.equal(payload.data.result.statusCode, 500);
  });

  test('a receiver that fails three times then answers 200: four deliveries, one webhook-id, Delivered', async () => {
    let answered = 0;
    env.target.route('/cb-flaky/callback', () => ({ status: ++answered <= 3 ? 503 : 200 }));
    const id = await submit({
      request: { method: 'GET', url: env.target.url('/cb-flaky/target') },
      callback: { url: env.target.url('/cb-flaky/callback') },
    });
    const done = await settled(id);
    assert.equal(done.callback.status, 'Delivered');
    assert.deepEqual(
      (done.callback.attempts as Json[]).map((a): unknown[] => [a.attempt, a.statusCode]),
      [
        [1, 503],
        [2, 503],
        [3, 503],
        [4, 200],
      ],
    );
    assert.match(String(done.callback.attempts[0].error), /503/);
    const hits = env.target.hitsFor('/cb-flaky/callback');
    assert.equal(hits.length, 4);
    assert.equal(new Set(hits.map((h) => h.headers['webhook-id'])).size, 1, 'one webhook-id for every retry');
    assert.equal(new Set(hits.map((h) => h.body)).size, 1, 'the same body every time');
    for (const hit of hits) await verify(hit);
    assert.equal(done.status, 'Succeeded', 'the callback never changes the call');
  });

  test('a receiver that never answers 2xx: given up after CALLBACK_MAX_ATTEMPTS, listed by callbackStatus=Failed', async () => {
    const id = await submit({
      request: { method: 'GET', url: env.target.url('/cb-down/target') },
      callback: { url: env.target.url('/status/502') },
      tags: ['cb-down'],
    });
    const done = await settled(id);
    assert.equal(done.status, 'Succeeded');
    assert.equal(done.callback.status, 'Failed');
    assert.equal(done.callback.attempts.length, 5);
    const ok = await submit({
      request: { method: 'GET', url: env.target.url('/cb-down/target') },
      callback: { url: env.target.url('/cb-down/fine') },
      tags: ['cb-down'],
    });
    await settled(ok);
    const listed = await eventually('the read model to list the failed callback', async () => {
      const r = await call(env, 'GET', '/v1/service-calls?tag=cb-down&callbackStatus=Failed');
      assert.equal(r.status, 200);
      return r.body.items.length > 0 ? (r.body.items as Json[]) : undefined;
    });
    assert.deepEqual(
      listed.map((i: Json): unknown => i.id),
      [id],
    );
    assert.equal(listed[0]?.callback.status, 'Failed');
    const bad = await call(env, 'GET', '/v1/service-calls?callbackStatus=Lost');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].field, 'callbackStatus');
  });

  test('on: ["Cancelled"]: a cancel is told, a success is not (NotRequired)', async () => {
    const later = new Date(Date.now() + 3600_000).toISOString();
    const cancelled = await submit({
      request: { method: 'GET', url: env.target.url('/cb-cancel/target') },
      dueAt: later,
      callback: { url: env.target.url('/cb-cancel/callback'), on: ['Cancelled'] },
    });
    const succeeded = await submit({
      request: { method: 'GET', url: env.target.url('/cb-cancel/target') },
      callback: { url: env.target.url('/cb-cancel/not-told'), on: ['Cancelled'] },
    });
    const c = await call(env, 'POST', `/v1/service-calls/${cancelled}/cancel`);
    assert.equal(c.status, 202);
    assert.equal(c.body.callback.status, 'Pending');
    const done = await settled(cancelled);
    assert.equal(done.status, 'Cancelled');
    assert.equal(done.callback.status, 'Delivered');
    const [hit] = env.target.hitsFor('/cb-cancel/callback');
    assert.equal(((await verify(hit!)) as Json).type, 'service-call.cancelled');

    const notTold = await settled(succeeded);
    assert.equal(notTold.status, 'Succeeded');
    assert.equal(notTold.callback.status, 'NotRequired');
    assert.deepEqual(notTold.callback.attempts, []);
    assert.equal(env.target.hitsFor('/cb-cancel/not-told').length, 0);
  });

  test('a callback URL the egress guard refuses → 422 naming callback.url; a bad one → 400', async () => {
    const refused = await call(env, 'POST', '/v1/service-calls', {
      body: {
        request: { method: 'GET', url: env.target.url('/cb-refused') },
        callback: { url: 'http://10.1.2.3/hook' },
      },
    });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.errors[0].field, 'callback.url');
    for (const callback of [{ url: 'ftp://example.com/x' }, { url: 'https://example.com/', on: ['Maybe'] }, {}]) {
      const bad = await call(env, 'POST', '/v1/service-calls', {
        body: { request: { method: 'GET', url: env.target.url('/cb-refused') }, callback },
      });
      assert.equal(bad.status, 400, JSON.stringify(bad.body));
      assert.match(String(bad.body.errors[0].field), /^callback/);
    }
    const batch = await call(env, 'POST', '/v1/service-calls/batch', {
      body: {
        items: [
          { request: { method: 'GET', url: env.target.url('/cb-batch') }, callback: { url: 'http://10.1.2.3/' } },
          { request: { method: 'GET', url: env.target.url('/cb-batch') }, callback: { url: env.target.url('/cb-b') } },
        ],
      },
    });
    assert.equal(batch.status, 200);
    assert.equal(batch.body.items[0].status, 422);
    assert.equal(batch.body.items[0].error.errors[0].field, 'callback.url');
    assert.equal(batch.body.items[1].status, 202);
    assert.equal((await settled(String(batch.body.items[1].id))).callback.status, 'Delivered');
  });

  test('an Idempotency-Key covers the callback: the same key with another callback → 422', async () => {
    const dueAt = new Date(Date.now() + 3600_000).toISOString();
    const body = (path: string) => ({
      request: { method: 'GET', url: env.target.url('/cb-idem') },
      dueAt,
      callback: { url: env.target.url(path) },
    });
    const headers = { 'idempotency-key': `cb-idem-${Date.now()}` };
    assert.equal((await call(env, 'POST', '/v1/service-calls', { body: body('/a'), headers })).status, 202);
    assert.equal((await call(env, 'POST', '/v1/service-calls', { body: body('/a'), headers })).status, 200);
    assert.equal((await call(env, 'POST', '/v1/service-calls', { body: body('/b'), headers })).status, 422);
  });

  test('a replay keeps the original’s callback unless it gives one; null asks for none', async () => {
    const id = await submit({
      request: { method: 'GET', url: env.target.url('/status/404') },
      callback: { url: env.target.url('/cb-replay/original'), on: ['Failed'] },
    });
    assert.equal((await settled(id)).status, 'Failed');
    const kept = await call(env, 'POST', `/v1/service-calls/${id}/replay`, { body: {} });
    assert.equal(kept.status, 202);
    const keptDone = await settled(String(kept.body.id));
    assert.deepEqual(keptDone.callback.on, ['Failed']);
    assert.equal(keptDone.callback.status, 'Delivered');
    assert.equal(env.target.hitsFor('/cb-replay/original').length, 2);

    const none = await call(env, 'POST', `/v1/service-calls/${id}/replay`, { body: { callback: null } });
    assert.equal(none.status, 202);
    const other = await call(env, 'POST', `/v1/service-calls/${id}/replay`, {
      body: { callback: { url: env.target.url('/cb-replay/other') } },
    });
    assert.equal(other.status, 202);
    const otherDone = await settled(String(other.body.id));
    assert.equal(otherDone.callback.url, env.target.url('/cb-replay/other'));
    const noneDone = await eventually('the replay without callback to finish', async () => {
      const r = await call(env, 'GET', `/v1/service-calls/${String(none.body.id)}`);
      return r.body.status === 'Failed' ? r.body : undefined;
    });
    assert.equal(noneDone.callback, null);
  });

  test('another tenant never sees a callback’s call', async () => {
    const id = await submit({
      request: { method: 'GET', url: env.target.url('/cb-tenant') },
      callback: { url: env.target.url('/cb-tenant/callback') },
    });
    await settled(id);
    const r = await call(env, 'GET', `/v1/service-calls/${id}`, { tenant: env.tenants.b });
    assert.equal(r.status, 404);
    const listed = await call(env, 'GET', '/v1/service-calls?callbackStatus=Delivered', { tenant: env.tenants.b });
    assert.deepEqual(listed.body.items, []);
  });
});
