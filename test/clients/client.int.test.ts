import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PunctualError, verifyWebhook, WebhookVerificationError, type Punctual } from '@punctual/client';
import { createTestEnv, type TestEnv } from '../support/env';
import { eventually } from '../support/net';
import { clientFor } from './support';

/**
 * Every method of @punctual/client against the real service (API, worker, relay, PostgreSQL,
 * Temporal) over HTTP, as a tenant's code would use it.
 */

let env: TestEnv;
let client: Punctual;
before(async () => {
  env = await createTestEnv();
  client = clientFor(env);
});
after(async () => {
  await env?.close();
});

const tomorrow = () => new Date(Date.now() + 24 * 3600 * 1000).toISOString();

/** The list reads the read model, which the relay builds a moment after the submit. */
async function listed(tag: string, count: number) {
  return eventually(`${count} calls tagged ${tag} in the list`, async () => {
    const ids: string[] = [];
    for await (const call of client.calls.list({ tag: [tag], limit: 100 })) ids.push(call.id);
    return ids.length === count ? ids : undefined;
  });
}

describe('@punctual/client', () => {
  test('submit, waitFor until Succeeded, get; the same idempotency key again is the same call', async () => {
    const submitted = await client.calls.submit({
      request: { method: 'POST', url: env.target.url('/client-ok'), body: { n: 1 } },
      tags: ['client'],
    });
    assert.equal(submitted.status, 'Scheduled');
    assert.equal(submitted.replayed, false);
    assert.match(submitted.idempotencyKey, /^[0-9a-f-]{36}$/);
    const done = await client.calls.waitFor(submitted.id, { timeoutMs: 30_000, intervalMs: 100 });
    assert.equal(done.status, 'Succeeded');
    assert.equal(done.result?.statusCode, 200);
    assert.equal((await client.calls.get(submitted.id)).attempts.length, 1);

    const again = await client.calls.submit(
      { request: { method: 'POST', url: env.target.url('/client-ok'), body: { n: 1 } }, tags: ['client'] },
      { idempotencyKey: submitted.idempotencyKey },
    );
    assert.equal(again.id, submitted.id);
    assert.equal(again.replayed, true);
    assert.equal(env.target.hitsFor('/client-ok').length, 1);
  });

  test('cancel, reschedule and replay; waitFor times out on a call that is not due', async () => {
    const later = await client.calls.submit({
      request: { method: 'GET', url: env.target.url('/later') },
      dueAt: tomorrow(),
    });
    const dueAt = new Date(Date.now() + 2 * 24 * 3600 * 1000);
    const moved = await client.calls.reschedule(later.id, dueAt);
    assert.equal(Date.parse(moved.dueAt), dueAt.getTime());
    await assert.rejects(client.calls.waitFor(later.id, { timeoutMs: 300, intervalMs: 100 }), {
      name: 'PunctualTimeoutError',
    });
    const cancelled = await client.calls.cancel(later.id);
    assert.equal(cancelled.status, 'Cancelled');
    assert.equal((await client.calls.cancel(later.id)).status, 'Cancelled', 'a repeated cancel changes nothing');
    await assert.rejects(client.calls.reschedule(later.id, dueAt), (err: unknown) => {
      assert.ok(err instanceof PunctualError);
      assert.equal(err.status, 409);
      assert.equal(err.title, 'Conflict');
      return true;
    });

    const replay = await client.calls.replay(later.id);
    assert.equal(replay.replayOf, later.id);
    assert.equal((await client.calls.waitFor(replay.id, { timeoutMs: 30_000, intervalMs: 100 })).status, 'Succeeded');
    const same = await client.calls.replay(later.id, {}, { idempotencyKey: replay.idempotencyKey });
    assert.equal(same.id, replay.id);
    assert.equal(same.replayed, true);
  });

  test('batch, bulkCancel and bulkReplay by a tag', async () => {
    const tag = `bulk-${randomUUID().slice(0, 8)}`;
    const batch = await client.calls.batch(
      [1, 2, 3].map(() => ({
        request: { method: 'GET' as const, url: env.target.url('/bulk') },
        dueAt: tomorrow(),
        tags: [tag],
      })),
    );
    assert.deepEqual(
      batch.items.map((i) => i.status),
      [202, 202, 202],
    );
    await listed(tag, 3);
    const cancelled = await client.calls.bulkCancel({ filter: { tag, status: 'Scheduled' } });
    assert.equal(cancelled.affected, 3);
    await eventually('the cancels in the read model', async () => {
      const page = await client.calls.page({ tag: [tag], status: ['Cancelled'] });
      return page.items.length === 3 ? true : undefined;
    });
    const replayed = await client.calls.bulkReplay({ filter: { tag, status: 'Cancelled' } });
    assert.equal(replayed.affected, 3);
    assert.equal((await client.calls.bulkReplay({ filter: { tag, status: 'Cancelled' } })).affected, 0);
  });

  test('list walks every page: 250 calls, each once', async () => {
    const tag = `page-${randomUUID().slice(0, 8)}`;
    const answer = await client.calls.batch(
      Array.from({ length: 250 }, (_, i) => ({
        request: { method: 'GET' as const, url: env.target.url(`/page/${i}`) },
        dueAt: tomorrow(),
        tags: [tag],
      })),
    );
    const submitted = answer.items.map((i) => i.id!);
    const ids = await listed(tag, 250);
    assert.equal(new Set(ids).size, 250);
    assert.deepEqual([...ids].sort(), [...submitted].sort());
    const first = await client.calls.page({ tag: [tag], limit: 100 });
    assert.equal(first.items.length, 100);
    assert.notEqual(first.nextCursor, null);
    await client.calls.bulkCancel({ filter: { tag } });
  });

  test('a 400 is a PunctualError with the problem’s title, detail and the field at fault', async () => {
    await assert.rejects(
      client.calls.submit({ request: { method: 'GET', url: 'ftp://example.com/file' } }),
      (err: unknown) => {
        assert.ok(err instanceof PunctualError, String(err));
        assert.equal(err.status, 400);
        assert.equal(err.title, 'Bad Request');
        assert.ok(err.detail !== undefined && err.detail.length > 0);
        assert.ok(
          err.errors.some((e) => e.field.endsWith('request.url')),
          JSON.stringify(err.errors),
        );
        return true;
      },
    );
    await assert.rejects(client.calls.get(randomUUID()), { name: 'PunctualError', status: 404 });
    await assert.rejects(clientFor(env, { id: 'nobody', key: 'not-a-key-at-all-0000' }).calls.page(), {
      status: 401,
    });
  });

  test('schedules: create (keyed), get with next runs, list, update, pause, resume, trigger, delete', async () => {
    const body = {
      intervalSeconds: 3600,
      request: { method: 'POST' as const, url: env.target.url('/client-schedule'), body: { from: 'schedule' } },
      tags: ['client-schedule'],
      flowKeys: ['client-schedule-key'],
    };
    const created = await client.schedules.create(body);
    assert.equal(created.status, 'Active');
    assert.equal(created.spec.intervalSeconds, 3600);
    assert.deepEqual(created.flowKeys, ['client-schedule-key']);
    assert.equal(created.replayed, false);
    const again = await client.schedules.create(body, { idempotencyKey: created.idempotencyKey });
    assert.equal(again.id, created.id);
    assert.equal(again.replayed, true);

    const shown = await eventually('the schedule’s next runs', async () => {
      const schedule = await client.schedules.get(created.id);
      return schedule.nextRunAts.length === 5 ? schedule : undefined;
    });
    const gaps = shown.nextRunAts.slice(1).map((at, i) => Date.parse(at) - Date.parse(shown.nextRunAts[i]!));
    assert.deepEqual(gaps, [3_600_000, 3_600_000, 3_600_000, 3_600_000]);
    const listed = [];
    for await (const schedule of client.schedules.list({ tag: 'client-schedule' })) listed.push(schedule.id);
    assert.deepEqual(listed, [created.id]);

    const updated = await client.schedules.update(created.id, { tags: ['client-schedule', 'updated'], flowKeys: [] });
    assert.deepEqual(updated.tags, ['client-schedule', 'updated']);
    assert.deepEqual(updated.flowKeys, []);
    assert.equal((await client.schedules.pause(created.id)).status, 'Paused');
    const paused = [];
    for await (const schedule of client.schedules.list({ status: 'Paused', tag: 'updated' })) paused.push(schedule.id);
    assert.deepEqual(paused, [created.id]);
    assert.equal((await client.schedules.resume(created.id)).status, 'Active');

    const run = await client.schedules.trigger(created.id);
    assert.equal(run.scheduleId, created.id);
    const call = await client.calls.waitFor(run.serviceCallId, { timeoutMs: 30_000, intervalMs: 100 });
    assert.equal(call.status, 'Succeeded');
    assert.equal(call.scheduleId, created.id);
    const runs = await eventually('the run listed by scheduleId', async () => {
      const ids: string[] = [];
      for await (const item of client.calls.list({ scheduleId: created.id })) ids.push(item.id);
      return ids.length > 0 ? ids : undefined;
    });
    assert.deepEqual(runs, [run.serviceCallId]);

    await client.schedules.delete(created.id);
    await assert.rejects(client.schedules.get(created.id), (err: unknown) => {
      assert.ok(err instanceof PunctualError);
      assert.equal(err.status, 404);
      return true;
    });
    await assert.rejects(
      client.schedules.create({ ...body, intervalSeconds: undefined, cron: '61 * * * *' }),
      (err: unknown) => {
        assert.ok(err instanceof PunctualError);
        assert.equal(err.status, 400);
        assert.equal(err.errors[0]?.field, 'cron');
        return true;
      },
    );
  });

  test('flowLimits: put, get with inFlight and waiting, list, delete (then 404)', async () => {
    const key = `client-flow-${randomUUID().slice(0, 8)}`;
    const put = await client.flowLimits.put(key, { concurrency: 1 });
    assert.equal(put.key, key);
    assert.equal(put.concurrency, 1);
    assert.equal(put.ratePerSecond, null);
    env.target.route('/client-flow', () => ({ status: 200, body: 'ok', delayMs: 1_500 }));
    const first = await client.calls.submit({
      request: { method: 'GET', url: env.target.url('/client-flow') },
      flowKeys: [key],
    });
    const second = await client.calls.submit({
      request: { method: 'GET', url: env.target.url('/client-flow') },
      flowKeys: [key],
    });
    // One holds the limit's one place at the target; the other waits for it, and says so.
    const busy = await eventually(
      'one call in flight and one waiting',
      async () => {
        const limit = await client.flowLimits.get(key);
        const listed = (await client.flowLimits.list()).find((l) => l.key === key);
        return limit.inFlight === 1 && limit.waiting === 1 && listed?.inFlight === 1 && listed.waiting === 1
          ? limit
          : undefined;
      },
      20_000,
      50,
    );
    assert.equal(busy.waitingCalls.length, 1);
    const waiter = busy.waitingCalls[0]!.id;
    assert.ok([first.id, second.id].includes(waiter));
    for (const id of [first.id, second.id]) {
      assert.equal((await client.calls.waitFor(id, { timeoutMs: 30_000, intervalMs: 100 })).status, 'Succeeded');
    }
    const idle = await client.flowLimits.get(key);
    assert.equal(idle.inFlight, 0);
    assert.equal(idle.waiting, 0);
    assert.ok((await client.flowLimits.list()).some((l) => l.key === key && l.concurrency === 1));

    await client.flowLimits.delete(key);
    await assert.rejects(client.flowLimits.get(key), (err: unknown) => {
      assert.ok(err instanceof PunctualError);
      assert.equal(err.status, 404);
      return true;
    });
    assert.ok(!(await client.flowLimits.list()).some((l) => l.key === key));
  });

  test('secrets: list and rotate', async () => {
    const before = await client.secrets.list();
    assert.ok(before.length >= 1);
    assert.match(before[0]!.secret, /^whsec_/);
    const rotated = await client.secrets.rotate({ graceSeconds: 3600 });
    assert.equal(rotated.length, before.length + 1);
    assert.deepEqual(await client.secrets.list(), rotated);
  });

  test('verifyWebhook accepts a real signed request from the service and refuses a tampered one', async () => {
    const secrets = await client.secrets.list();
    const submitted = await client.calls.submit({
      request: { method: 'POST', url: env.target.url('/signed'), body: { invoice: 1042 } },
    });
    await client.calls.waitFor(submitted.id, { timeoutMs: 30_000, intervalMs: 100 });
    const [hit] = env.target.hitsFor('/signed');
    assert.ok(hit !== undefined);
    const verified = verifyWebhook(hit.headers, hit.body, secrets);
    assert.equal(verified.body, hit.body);
    assert.deepEqual(JSON.parse(verified.body), { invoice: 1042 });
    assert.equal(verified.id, hit.headers['webhook-id']);
    // A Fetch Headers object and one secret alone work too; the newest secret signs as well.
    verifyWebhook(new Headers(hit.headers as Record<string, string>), Buffer.from(hit.body), secrets.at(-1)!.secret);

    assert.throws(
      () => verifyWebhook(hit.headers, hit.body.replace('1042', '1043'), secrets),
      WebhookVerificationError,
    );
    const { 'webhook-signature': _signature, ...unsigned } = hit.headers;
    assert.throws(() => verifyWebhook(unsigned, hit.body, secrets), WebhookVerificationError);
    const other = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    assert.throws(() => verifyWebhook(hit.headers, hit.body, [other]), WebhookVerificationError);
  });
});
