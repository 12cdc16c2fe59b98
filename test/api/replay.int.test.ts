import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually } from '../support/net';

/**
 * Replay end to end on the real PostgreSQL, Temporal server, worker and relay: a finished call
 * runs again as a new call with the same request (its secrets reach the target), policy, timeout
 * and tags, linked both ways (replayOf, replays).
 */

let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

async function waitForStatus(id: string, statuses: string[], tenant = env.tenants.a) {
  return eventually(`call ${id} to reach ${statuses.join('/')}`, async () => {
    const r = await call(env, 'GET', `/v1/service-calls/${id}`, { tenant });
    return statuses.includes(String(r.body.status)) ? r.body : undefined;
  });
}

describe('replay', () => {
  test('a failed call with a secret header: the replay reaches the target with the secret, linked both ways', async () => {
    let answer = 500;
    env.target.route('/flaky', () => ({ status: answer }));
    const submitted = await call(env, 'POST', '/v1/service-calls', {
      body: {
        request: {
          method: 'POST',
          url: env.target.url('/flaky'),
          headers: { Authorization: 'Bearer s3cret-token', 'X-Plain': 'p' },
          body: { n: 1 },
        },
        tags: ['replay-me', 'billing'],
        retry: { maxAttempts: 1 },
        timeoutMs: 4000,
      },
    });
    const id = String(submitted.body.id);
    const failed = await waitForStatus(id, ['Failed', 'Succeeded']);
    assert.equal(failed.status, 'Failed');

    answer = 200;
    const replay = await call(env, 'POST', `/v1/service-calls/${id}/replay`, { body: {} });
    assert.equal(replay.status, 202);
    const newId = String(replay.body.id);
    assert.notEqual(newId, id);
    assert.equal(replay.headers.location, `/v1/service-calls/${newId}`);
    assert.equal(replay.body.replayOf, id);
    const done = await waitForStatus(newId, ['Failed', 'Succeeded']);
    assert.equal(done.status, 'Succeeded');
    assert.equal(done.replayOf, id);
    assert.deepEqual(done.tags, ['replay-me', 'billing']);
    assert.equal(done.timeoutMs, 4000);
    assert.equal(done.retry.maxAttempts, 1);
    assert.equal(done.request.headers.Authorization, '[REDACTED]');

    const hits = env.target.hitsFor('/flaky');
    assert.equal(hits.length, 2);
    assert.equal(hits[1]?.headers.authorization, 'Bearer s3cret-token');
    assert.equal(hits[1]?.headers['x-plain'], 'p');
    assert.deepEqual(JSON.parse(hits[1]?.body ?? ''), { n: 1 });
    assert.equal(hits[1]?.headers['idempotency-key'], newId);

    const original = await eventually('the replay in the read model', async () => {
      const r = await call(env, 'GET', `/v1/service-calls/${id}`);
      return (r.body.replays as string[]).length > 0 ? r.body : undefined;
    });
    assert.deepEqual(original.replays, [newId]);
    assert.equal(original.status, 'Failed');
    assert.equal(original.replayOf, null);
    const listed = await call(env, 'GET', `/v1/service-calls?replayOf=${id}`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.items.map((i: { id: string }) => i.id),
      [newId],
    );
    assert.equal(listed.body.items[0].replayOf, id);
    const bad = await call(env, 'GET', '/v1/service-calls?replayOf=nope');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors?.[0]?.field, 'replayOf');
  });

  test('an Idempotency-Key: the same replay twice is one call; another body with that key is 422', async () => {
    const submitted = await call(env, 'POST', '/v1/service-calls', {
      body: { request: { method: 'GET', url: env.target.url('/status/404') } },
    });
    const id = String(submitted.body.id);
    await waitForStatus(id, ['Failed']);
    const headers = { 'idempotency-key': `replay-${id}` };
    const first = await call(env, 'POST', `/v1/service-calls/${id}/replay`, { headers });
    assert.equal(first.status, 202);
    const again = await call(env, 'POST', `/v1/service-calls/${id}/replay`, { headers });
    assert.equal(again.status, 200);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.body.id, first.body.id);
    const other = await call(env, 'POST', `/v1/service-calls/${id}/replay`, {
      headers,
      body: { dueAt: new Date(Date.now() + 60_000).toISOString() },
    });
    assert.equal(other.status, 422);
    await waitForStatus(String(first.body.id), ['Failed']);
  });

  test('409 while Scheduled, 404 for unknown or foreign calls, 400 for a bad dueAt; a later dueAt is kept', async () => {
    const submitted = await call(env, 'POST', '/v1/service-calls', {
      body: {
        request: { method: 'GET', url: env.target.url('/status/200') },
        dueAt: new Date(Date.now() + 60_000).toISOString(),
      },
    });
    const id = String(submitted.body.id);
    const early = await call(env, 'POST', `/v1/service-calls/${id}/replay`);
    assert.equal(early.status, 409);
    assert.match(String(early.body.detail), /Scheduled/);
    assert.equal((await call(env, 'POST', `/v1/service-calls/${id}/replay`, { tenant: env.tenants.b })).status, 404);
    assert.equal(
      (await call(env, 'POST', '/v1/service-calls/00000000-0000-4000-8000-000000000000/replay')).status,
      404,
    );
    assert.equal((await call(env, 'POST', `/v1/service-calls/${id}/cancel`)).status, 202);
    const bad = await call(env, 'POST', `/v1/service-calls/${id}/replay`, { body: { dueAt: 'soon' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors?.[0]?.field, 'dueAt');
    const later = new Date(Date.now() + 120_000).toISOString();
    const replay = await call(env, 'POST', `/v1/service-calls/${id}/replay`, { body: { dueAt: later } });
    assert.equal(replay.status, 202);
    assert.equal(replay.body.dueAt, later);
    assert.equal((await call(env, 'POST', `/v1/service-calls/${String(replay.body.id)}/cancel`)).status, 202);
  });
});
