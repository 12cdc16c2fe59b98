import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readStream } from '../../core/event-store';
import { streamIdFor } from '../../core/ids';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually, sleep } from '../support/net';

/**
 * Reschedule end to end: real API, PostgreSQL, Temporal server, worker and relay, a real target.
 * The call runs at its new time, earlier or later, never at its old one; a reschedule that races
 * the due time either wins (the call moves) or loses with 409 (the call runs), never both.
 */

let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();

async function submitAt(path: string, dueAt: string, tenant = env.tenants.a): Promise<string> {
  const r = await call(env, 'POST', '/v1/service-calls', {
    body: { request: { method: 'POST', url: env.target.url(path), body: 'x' }, dueAt },
    tenant,
  });
  assert.equal(r.status, 202);
  return String(r.body.id);
}

async function waitForStatus(id: string, statuses: string[]) {
  return eventually(`call ${id} to reach ${statuses.join('/')}`, async () => {
    const r = await call(env, 'GET', `/v1/service-calls/${id}`);
    return statuses.includes(String(r.body.status)) ? r.body : undefined;
  });
}

async function eventTypes(id: string): Promise<string[]> {
  return (await readStream(env.database.db, streamIdFor(env.tenants.a.id, id))).map((e) => e.type);
}

/** Small allowance for the target's clock reading against ours. */
const SLACK_MS = 50;

describe('reschedule', () => {
  test('to later: the target is hit at the new time, not at the old one', async () => {
    const oldDue = inMs(3_000);
    const id = await submitAt('/later', oldDue);
    // Let the workflow start and sleep on the old time first.
    await sleep(500);
    const newDue = inMs(7_000);
    const r = await call(env, 'POST', `/v1/service-calls/${id}/reschedule`, { body: { dueAt: newDue } });
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'Scheduled');
    assert.equal(r.body.dueAt, newDue);
    const detail = await call(env, 'GET', `/v1/service-calls/${id}`);
    assert.equal(detail.body.dueAt, newDue);
    await sleep(new Date(oldDue).getTime() - Date.now() + 1_500);
    assert.equal(env.target.hitsFor('/later').length, 0, 'hit at the old time');
    const done = await waitForStatus(id, ['Succeeded', 'Failed']);
    assert.equal(done.status, 'Succeeded');
    const hits = env.target.hitsFor('/later');
    assert.equal(hits.length, 1);
    assert.ok(hits[0]!.at >= new Date(newDue).getTime() - SLACK_MS, 'hit before the new dueAt');
    assert.ok(hits[0]!.at < new Date(newDue).getTime() + 3_000, 'hit long after the new dueAt');
    assert.deepEqual(await eventTypes(id), [
      'ServiceCallSubmitted',
      'ServiceCallRescheduled',
      'DueTimeReached',
      'ServiceCallSucceeded',
    ]);
    // The list reads the read model, which follows the events a moment later.
    const listedDue = await eventually('the Succeeded call in the list', async () => {
      const listed = await call(env, 'GET', `/v1/service-calls?status=Succeeded&limit=200`);
      return listed.body.items.find((i: { id: string }) => i.id === id)?.dueAt as string | undefined;
    });
    assert.equal(listedDue, newDue);
  });

  test('to earlier: the sleeping workflow wakes and runs at the new time', async () => {
    const id = await submitAt('/earlier', inMs(120_000));
    await sleep(500);
    const newDue = inMs(3_000);
    const r = await call(env, 'POST', `/v1/service-calls/${id}/reschedule`, { body: { dueAt: newDue } });
    assert.equal(r.status, 200);
    const done = await waitForStatus(id, ['Succeeded', 'Failed']);
    assert.equal(done.status, 'Succeeded');
    const [hit] = env.target.hitsFor('/earlier');
    assert.ok(hit !== undefined);
    assert.ok(hit.at >= new Date(newDue).getTime() - SLACK_MS, 'hit before the new dueAt');
    assert.ok(hit.at < new Date(newDue).getTime() + 3_000, `hit ${hit.at - new Date(newDue).getTime()} ms late`);
  });

  test('twice, and to the past (= now): the last dueAt holds', async () => {
    const id = await submitAt('/twice', inMs(60_000));
    await sleep(300);
    assert.equal(
      (await call(env, 'POST', `/v1/service-calls/${id}/reschedule`, { body: { dueAt: inMs(90_000) } })).status,
      200,
    );
    const r = await call(env, 'POST', `/v1/service-calls/${id}/reschedule`, {
      body: { dueAt: '2020-01-01T00:00:00Z' },
    });
    assert.equal(r.status, 200);
    assert.ok(Math.abs(new Date(String(r.body.dueAt)).getTime() - Date.now()) < 5_000, 'a past dueAt means now');
    const done = await waitForStatus(id, ['Succeeded', 'Failed']);
    assert.equal(done.status, 'Succeeded');
    assert.equal(env.target.hitsFor('/twice').length, 1);
  });

  test('racing the due time: exactly one of reschedule and due wins', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const path = `/race-${i}`;
        const dueMs = Date.now() + 2_500;
        const id = await submitAt(path, new Date(dueMs).toISOString());
        // Spread the reschedules across the due time, the timer lead and the in-worker wait.
        await sleep(Math.max(0, dueMs - Date.now() - 1_200 + i * 250));
        const r = await call(env, 'POST', `/v1/service-calls/${id}/reschedule`, { body: { dueAt: inMs(60_000) } });
        return { id, path, status: r.status };
      }),
    );
    await sleep(3_000);
    for (const { id, path, status } of results) {
      const types = await eventTypes(id);
      if (status === 200) {
        assert.deepEqual(types, ['ServiceCallSubmitted', 'ServiceCallRescheduled'], `${id} moved but ran`);
        assert.equal(env.target.hitsFor(path).length, 0, `${id} moved but hit`);
        assert.equal((await call(env, 'POST', `/v1/service-calls/${id}/cancel`)).status, 202);
      } else {
        assert.equal(status, 409);
        assert.equal(types[1], 'DueTimeReached', `${id}: refused, yet not due`);
        assert.ok(!types.includes('ServiceCallRescheduled'));
      }
    }
  });

  test('409 unless Scheduled, 400 for a bad dueAt, 404 for unknown or foreign calls', async () => {
    const id = await submitAt('/refusals', inMs(0));
    await waitForStatus(id, ['Succeeded']);
    const late = await call(env, 'POST', `/v1/service-calls/${id}/reschedule`, { body: { dueAt: inMs(60_000) } });
    assert.equal(late.status, 409);
    assert.match(String(late.body.detail), /Succeeded/);

    const pending = await submitAt('/refusals-pending', inMs(60_000));
    for (const [dueAt, field] of [
      ['tomorrow', 'dueAt'],
      ['2030-01-01T00:00:00', 'dueAt'],
      [new Date(Date.now() + 400 * 86_400_000).toISOString(), 'dueAt'],
    ] as const) {
      const bad = await call(env, 'POST', `/v1/service-calls/${pending}/reschedule`, { body: { dueAt } });
      assert.equal(bad.status, 400, dueAt);
      assert.match(String(bad.headers['content-type']), /problem\+json/);
      assert.equal(bad.body.errors?.[0]?.field, field);
    }
    const missing = await call(env, 'POST', `/v1/service-calls/${pending}/reschedule`, { body: {} });
    assert.equal(missing.status, 400);
    const foreign = await call(env, 'POST', `/v1/service-calls/${pending}/reschedule`, {
      body: { dueAt: inMs(1_000) },
      tenant: env.tenants.b,
    });
    assert.equal(foreign.status, 404);
    const unknown = await call(env, 'POST', '/v1/service-calls/00000000-0000-4000-8000-000000000000/reschedule', {
      body: { dueAt: inMs(1_000) },
    });
    assert.equal(unknown.status, 404);
    // Untouched by all of that.
    assert.deepEqual(await eventTypes(pending), ['ServiceCallSubmitted']);
    assert.equal((await call(env, 'POST', `/v1/service-calls/${pending}/cancel`)).status, 202);
    const cancelled = await call(env, 'POST', `/v1/service-calls/${pending}/reschedule`, {
      body: { dueAt: inMs(1_000) },
    });
    assert.equal(cancelled.status, 409);
  });
});
