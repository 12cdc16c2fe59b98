import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readStream } from '../../core/event-store';
import { streamIdFor } from '../../core/ids';
import { lazyTemporalClient } from '../../core/temporal';
import { workflowIdFor } from '../../core/ids';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually, sleep } from '../support/net';

/**
 * The core contract end to end: real API, real PostgreSQL, real Temporal server and worker,
 * a real HTTP target on loopback.
 */

let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

async function submit(body: unknown, headers: Record<string, string> = {}, tenant = env?.tenants.a) {
  return call(env, 'POST', '/v1/service-calls', { body, headers, tenant });
}

async function waitForStatus(id: string, statuses: string[], tenant = env.tenants.a) {
  return eventually(`call ${id} to reach ${statuses.join('/')}`, async () => {
    const r = await call(env, 'GET', `/v1/service-calls/${id}`, { tenant });
    return statuses.includes(String(r.body.status)) ? r.body : undefined;
  });
}

describe('due-now calls', () => {
  test('a 2xx target: hit exactly once, Succeeded with code, latency and snippet', async () => {
    env.target.route('/ok', () => ({ status: 201, body: 'created it', headers: { 'content-type': 'text/plain' } }));
    const submitted = await submit({
      request: {
        method: 'POST',
        url: env.target.url('/ok'),
        headers: { 'X-Custom': 'yes', Authorization: 'Bearer tenant-secret' },
        body: { hello: 'world' },
      },
      tags: ['billing'],
    });
    assert.equal(submitted.status, 202);
    const id = String(submitted.body.id);
    assert.equal(submitted.headers.location, `/v1/service-calls/${id}`);
    assert.equal(submitted.body.status, 'Scheduled');

    const done = await waitForStatus(id, ['Succeeded', 'Failed']);
    assert.equal(done.status, 'Succeeded');
    assert.equal(done.result.statusCode, 201);
    assert.equal(done.result.outcome, 'Succeeded');
    assert.equal(done.result.responseSnippet, 'created it');
    assert.equal(done.result.truncated, false);
    assert.equal(typeof done.result.latencyMs, 'number');
    assert.equal(done.attempts.length, 1);
    assert.equal(done.attempts[0].statusCode, 201);
    assert.deepEqual(done.tags, ['billing']);
    assert.equal(done.request.headers.Authorization, '[REDACTED]');
    assert.equal(done.request.headers['X-Custom'], 'yes');

    await sleep(300);
    const hits = env.target.hitsFor('/ok');
    assert.equal(hits.length, 1);
    const [hit] = hits;
    assert.equal(hit?.method, 'POST');
    assert.equal(hit?.headers['content-type'], 'application/json');
    assert.equal(hit?.headers.authorization, 'Bearer tenant-secret');
    assert.equal(hit?.headers['x-custom'], 'yes');
    assert.equal(hit?.headers['idempotency-key'], id);
    assert.deepEqual(JSON.parse(hit?.body ?? ''), { hello: 'world' });
  });

  test('a 500 target: Failed after exactly one hit', async () => {
    const submitted = await submit({ request: { method: 'GET', url: env.target.url('/status/500') } });
    const id = String(submitted.body.id);
    const done = await waitForStatus(id, ['Succeeded', 'Failed']);
    assert.equal(done.status, 'Failed');
    assert.equal(done.result.statusCode, 500);
    assert.equal(done.result.outcome, 'Failed');
    assert.match(String(done.result.error), /500/);
    await sleep(500);
    assert.equal(env.target.hitsFor('/status/500').length, 1);
  });

  test('an unreachable target: Failed with a network error, no status code', async () => {
    const submitted = await submit({ request: { method: 'GET', url: 'http://127.0.0.1:1/nothing' } });
    const done = await waitForStatus(String(submitted.body.id), ['Succeeded', 'Failed']);
    assert.equal(done.status, 'Failed');
    assert.equal(done.result.statusCode, null);
    assert.match(String(done.result.error), /ECONNREFUSED|connect/i);
  });

  test('a large response is cut to an 8 KiB snippet and flagged truncated', async () => {
    env.target.route('/big', () => ({ status: 200, body: 'x'.repeat(100_000) }));
    const submitted = await submit({ request: { method: 'GET', url: env.target.url('/big') } });
    const done = await waitForStatus(String(submitted.body.id), ['Succeeded', 'Failed']);
    assert.equal(done.status, 'Succeeded');
    assert.equal(done.result.truncated, true);
    assert.equal(String(done.result.responseSnippet).length, 8192);
  });
});

describe('future calls', () => {
  test('dueAt 3 s ahead: Scheduled until then, hit once, never before dueAt', async () => {
    const dueAt = new Date(Date.now() + 3_000);
    const submitted = await submit({
      request: { method: 'GET', url: env.target.url('/later') },
      dueAt: dueAt.toISOString(),
    });
    assert.equal(submitted.status, 202);
    assert.equal(submitted.body.dueAt, dueAt.toISOString());
    const id = String(submitted.body.id);

    await sleep(1_500);
    const midway = await call(env, 'GET', `/v1/service-calls/${id}`);
    assert.equal(midway.body.status, 'Scheduled');
    assert.equal(env.target.hitsFor('/later').length, 0);

    const done = await waitForStatus(id, ['Succeeded', 'Failed']);
    assert.equal(done.status, 'Succeeded');
    await sleep(300);
    const hits = env.target.hitsFor('/later');
    assert.equal(hits.length, 1);
    assert.ok(hits[0]!.at >= dueAt.getTime(), `hit at ${hits[0]!.at} before dueAt ${dueAt.getTime()}`);
  });

  test('a dueAt in the past runs now', async () => {
    const submitted = await submit({
      request: { method: 'GET', url: env.target.url('/past') },
      dueAt: '2001-01-01T00:00:00+02:00',
    });
    assert.equal(submitted.status, 202);
    assert.equal(submitted.body.dueAt, submitted.body.createdAt);
    await waitForStatus(String(submitted.body.id), ['Succeeded']);
  });
});

describe('idempotent submit', () => {
  test('replay with the same key and body: 200, same body, one ServiceCallSubmitted', async () => {
    const body = { request: { method: 'PUT', url: env.target.url('/replay'), body: 'text body' }, tags: ['a', 'b'] };
    const first = await submit(body, { 'idempotency-key': 'order-42' });
    assert.equal(first.status, 202);
    const second = await submit(body, { 'idempotency-key': 'order-42' });
    assert.equal(second.status, 200);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.deepEqual(second.body, first.body);
    assert.equal(second.headers.location, first.headers.location);
    const events = await readStream(env.database.db, streamIdFor(env.tenants.a.id, String(first.body.id)));
    assert.equal(events.filter((e) => e.type === 'ServiceCallSubmitted').length, 1);
    await waitForStatus(String(first.body.id), ['Succeeded']);
    await sleep(300);
    assert.equal(env.target.hitsFor('/replay').length, 1);
    assert.equal(env.target.hitsFor('/replay')[0]?.body, 'text body');
  });

  test('the same instant written another way is the same request', async () => {
    const at = Date.now() + 60_000;
    const a = new Date(at).toISOString();
    const b = new Date(at).toISOString().replace('Z', '+00:00');
    const first = await submit(
      { request: { method: 'GET', url: env.target.url('/x') }, dueAt: a },
      { 'idempotency-key': 'same-instant' },
    );
    const second = await submit(
      { dueAt: b, request: { url: env.target.url('/x'), method: 'GET' } },
      { 'idempotency-key': 'same-instant' },
    );
    assert.equal(first.status, 202);
    assert.equal(second.status, 200);
    await call(env, 'POST', `/v1/service-calls/${String(first.body.id)}/cancel`);
  });

  test('20 concurrent submits with one key: one id, one workflow, one hit', async () => {
    const body = { request: { method: 'POST', url: env.target.url('/concurrent'), body: { n: 1 } } };
    const results = await Promise.all(Array.from({ length: 20 }, () => submit(body, { 'idempotency-key': 'burst-1' })));
    const ids = new Set(results.map((r) => String(r.body.id)));
    assert.equal(ids.size, 1);
    assert.equal(results.filter((r) => r.status === 202).length, 1);
    assert.equal(results.filter((r) => r.status === 200).length, 19);
    const id = String(results[0]!.body.id);
    await waitForStatus(id, ['Succeeded']);
    await sleep(500);
    assert.equal(env.target.hitsFor('/concurrent').length, 1);
    const events = await readStream(env.database.db, streamIdFor(env.tenants.a.id, id));
    assert.deepEqual(
      events.map((e) => e.type),
      ['ServiceCallSubmitted', 'DueTimeReached', 'ServiceCallSucceeded'],
    );
    const { client, connection } = lazyTemporalClient({
      address: env.infra.temporalAddress,
      namespace: env.config.temporalNamespace,
    });
    try {
      const runs = [];
      for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowIdFor(env.tenants.a.id, id)}'` })) {
        runs.push(wf);
      }
      const description = await client.workflow.getHandle(workflowIdFor(env.tenants.a.id, id)).describe();
      assert.equal(description.status.name, 'COMPLETED');
      assert.ok(runs.length <= 1, `expected one run, saw ${runs.length}`);
    } finally {
      await connection.close();
    }
  });

  test('same key, different body → 422; same key under another tenant is unrelated', async () => {
    const first = await submit(
      { request: { method: 'GET', url: env.target.url('/k') } },
      { 'idempotency-key': 'shared-key' },
    );
    assert.equal(first.status, 202);
    const changed = await submit(
      { request: { method: 'GET', url: env.target.url('/k2') } },
      { 'idempotency-key': 'shared-key' },
    );
    assert.equal(changed.status, 422);
    assert.equal(changed.headers['content-type'], 'application/problem+json; charset=utf-8');
    const other = await submit(
      { request: { method: 'GET', url: env.target.url('/k') } },
      { 'idempotency-key': 'shared-key' },
      env.tenants.b,
    );
    assert.equal(other.status, 202);
    assert.notEqual(other.body.id, first.body.id);
    const cross = await call(env, 'GET', `/v1/service-calls/${String(first.body.id)}`, { tenant: env.tenants.b });
    assert.equal(cross.status, 404);
  });
});

describe('cancel', () => {
  test('before dueAt: Cancelled, target never hit', async () => {
    const submitted = await submit({
      request: { method: 'GET', url: env.target.url('/cancel-me') },
      dueAt: new Date(Date.now() + 2_000).toISOString(),
    });
    const id = String(submitted.body.id);
    const cancelled = await call(env, 'POST', `/v1/service-calls/${id}/cancel`);
    assert.equal(cancelled.status, 202);
    assert.equal(cancelled.body.status, 'Cancelled');
    const again = await call(env, 'POST', `/v1/service-calls/${id}/cancel`);
    assert.equal(again.status, 202);
    await sleep(3_000);
    assert.equal(env.target.hitsFor('/cancel-me').length, 0);
    const shown = await waitForStatus(id, ['Cancelled']);
    assert.equal(shown.result, null);
    const events = await readStream(env.database.db, streamIdFor(env.tenants.a.id, id));
    assert.deepEqual(
      events.map((e) => e.type),
      ['ServiceCallSubmitted', 'ServiceCallCancelled'],
    );
  });

  test('after it ran: 409; another tenant or an unknown id: 404', async () => {
    const submitted = await submit({ request: { method: 'GET', url: env.target.url('/ran') } });
    const id = String(submitted.body.id);
    await waitForStatus(id, ['Succeeded']);
    const late = await call(env, 'POST', `/v1/service-calls/${id}/cancel`);
    assert.equal(late.status, 409);
    assert.match(String(late.body.detail), /Succeeded/);
    const foreign = await call(env, 'POST', `/v1/service-calls/${id}/cancel`, { tenant: env.tenants.b });
    assert.equal(foreign.status, 404);
    const unknown = await call(env, 'POST', '/v1/service-calls/00000000-0000-4000-8000-000000000000/cancel');
    assert.equal(unknown.status, 404);
  });
});
