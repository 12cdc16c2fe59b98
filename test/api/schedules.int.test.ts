import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { registerApiKey } from '../../core/api-keys';
import { submitScheduleRun } from '../../core/schedule-commands';
import { createHeaderRedactor } from '../../core/redact';
import { AppendNotifier, readLogAfter } from '../../core/event-store';
import { readCheckpoint } from '../../projections/relay';
import { SCHEDULE_SYNCER_NAME } from '../../projections/schedule-syncer';
import { temporalScheduleIdFor } from '../../core/ids';
import { lazyTemporalClient } from '../../core/temporal';
import { Reconciler } from '../../projections/reconciler';
import { call, createTestEnv, type Tenant, type TestEnv } from '../support/env';
import { eventually } from '../support/net';

/**
 * Schedules end to end (ADR-0017) on the real PostgreSQL and Temporal server, with the worker
 * and the relay running: Temporal Schedules fire, every run is an ordinary call that hits the
 * target once, and pause, resume, trigger, PATCH and delete change what Temporal does.
 */

const LIMIT = 20;
let env: TestEnv;
let limited: Tenant;

before(async () => {
  env = await createTestEnv({ env: { SCHEDULES_PER_TENANT: String(LIMIT) } });
  limited = { id: `tenant-c-${randomBytes(4).toString('hex')}`, key: `key-c-${randomBytes(16).toString('hex')}` };
  await registerApiKey(env.database.db, limited.id, limited.key);
});
after(async () => {
  await env?.close();
});

type Json = Record<string, any>;

async function send(method: 'PATCH' | 'DELETE', url: string, body?: unknown, tenant: Tenant = env.tenants.a) {
  const response = await env.api.inject({
    method,
    url,
    headers: { authorization: `Bearer ${tenant.key}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });
  return { status: response.statusCode, body: response.body === '' ? {} : response.json<Json>() };
}

async function create(body: Json, tenant?: Tenant): Promise<Json> {
  const r = await call(env, 'POST', '/v1/schedules', { body, ...(tenant === undefined ? {} : { tenant }) });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function runsOf(id: string, tenant?: Tenant): Promise<Json[]> {
  const r = await call(env, 'GET', `/v1/service-calls?scheduleId=${id}&limit=200`, {
    ...(tenant === undefined ? {} : { tenant }),
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.items as Json[];
}

const idOf = (s: Json) => String(s.id);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until no new run shows for `quietMs` (a run in flight when a change landed may still come). */
async function settledRuns(id: string, quietMs = 2_500): Promise<number> {
  let last = -1;
  for (;;) {
    const n = (await runsOf(id)).length;
    if (n === last) return n;
    last = n;
    await sleep(quietMs);
  }
}

const request = (path: string) => ({ method: 'POST', url: env.target.url(path), body: { hello: 'schedule' } });

describe('schedules', () => {
  test('intervalSeconds 2: a call about every 2 s, each hitting the target once', async () => {
    const schedule = await create({ intervalSeconds: 2, request: request('/sched/interval'), tags: ['every-2'] });
    assert.equal(schedule.status, 'Active');
    assert.equal(schedule.nextRunAts.length, 5);
    const gaps = schedule.nextRunAts
      .slice(1)
      .map((at: string, i: number) => Date.parse(at) - Date.parse(schedule.nextRunAts[i]));
    assert.deepEqual(gaps, [2000, 2000, 2000, 2000], 'Temporal lists the next runs 2 s apart');

    const runs = await eventually(
      'three finished runs',
      async () => {
        const items = (await runsOf(schedule.id)).filter((c) => c.status === 'Succeeded');
        return items.length >= 3 ? items : undefined;
      },
      30_000,
      200,
    );
    const deleted = await send('DELETE', `/v1/schedules/${schedule.id}`);
    assert.equal(deleted.status, 204);
    const all = await runsOf(schedule.id);
    const scheduled = all.map((c) => Date.parse(c.scheduledAt)).sort((a, b) => a - b);
    for (let i = 1; i < scheduled.length; i++) {
      assert.equal(
        scheduled[i]! - scheduled[i - 1]!,
        2000,
        `runs are 2 s apart: ${JSON.stringify(all.map((c) => c.scheduledAt as unknown))}`,
      );
    }
    for (const run of runs) {
      assert.equal(run.scheduleId, schedule.id);
      assert.deepEqual(run.tags, ['every-2']);
      // Due at its scheduled instant, and run then (not a backlog made up later).
      assert.ok(Math.abs(Date.parse(run.dueAt) - Date.parse(run.scheduledAt)) < 2000, JSON.stringify(run));
    }
    await eventually('every run finished', async () =>
      (await runsOf(schedule.id)).every((c) => c.status === 'Succeeded') ? true : undefined,
    );
    const finished = await runsOf(schedule.id);
    assert.equal(env.target.hitsFor('/sched/interval').length, finished.length, 'one hit per run');
    const detail = await call(env, 'GET', `/v1/service-calls/${finished[0]!.id}`);
    assert.equal(detail.body.scheduleId, schedule.id);
  });

  test('pause stops the runs, resume restarts them', async () => {
    const schedule = await create({ intervalSeconds: 1, request: request('/sched/pause') });
    await eventually('a first run', async () => ((await runsOf(schedule.id)).length > 0 ? true : undefined), 20_000);
    const paused = await call(env, 'POST', `/v1/schedules/${schedule.id}/pause`);
    assert.equal(paused.status, 200);
    assert.equal(paused.body.status, 'Paused');
    assert.deepEqual(paused.body.nextRunAts, []);
    const atPause = await settledRuns(schedule.id);
    await sleep(3_000);
    assert.equal((await runsOf(schedule.id)).length, atPause, 'no run while paused');

    const resumed = await call(env, 'POST', `/v1/schedules/${schedule.id}/resume`);
    assert.equal(resumed.body.status, 'Active');
    await eventually(
      'runs again',
      async () => ((await runsOf(schedule.id)).length >= atPause + 2 ? true : undefined),
      20_000,
      200,
    );
    assert.equal((await send('DELETE', `/v1/schedules/${schedule.id}`)).status, 204);
  });

  test('trigger runs one now and answers its call; delete stops the runs and then 404s', async () => {
    // A yearly cron: no regular run during the test.
    const schedule = await create({ cron: '0 0 1 1 *', request: request('/sched/trigger') });
    const triggered = await call(env, 'POST', `/v1/schedules/${schedule.id}/trigger`);
    assert.equal(triggered.status, 202, JSON.stringify(triggered.body));
    const callId = String(triggered.body.serviceCallId);
    assert.equal(triggered.headers.location, `/v1/service-calls/${callId}`);
    const done = await eventually('the triggered run to succeed', async () => {
      const r = await call(env, 'GET', `/v1/service-calls/${callId}`);
      return r.body.status === 'Succeeded' ? r.body : undefined;
    });
    assert.equal(done.scheduleId, schedule.id);
    assert.equal(done.scheduledAt, triggered.body.scheduledAt);
    assert.equal(env.target.hitsFor('/sched/trigger').length, 1);
    const shown = await eventually('the run in recentRuns', async () => {
      const r = await call(env, 'GET', `/v1/schedules/${schedule.id}`);
      return r.body.recentRuns.length === 1 ? r.body : undefined;
    });
    assert.deepEqual(shown.recentRuns, [{ scheduledAt: triggered.body.scheduledAt, serviceCallId: callId }]);

    const every = await create({ intervalSeconds: 1, request: request('/sched/delete') });
    await eventually('a first run', async () => ((await runsOf(every.id)).length > 0 ? true : undefined), 20_000);
    assert.equal((await send('DELETE', `/v1/schedules/${every.id}`)).status, 204);
    const atDelete = await settledRuns(every.id);
    await sleep(3_000);
    assert.equal((await runsOf(every.id)).length, atDelete, 'no run after delete');
    assert.equal((await call(env, 'GET', `/v1/schedules/${every.id}`)).status, 404);
    assert.equal((await call(env, 'POST', `/v1/schedules/${every.id}/trigger`)).status, 404);
    assert.equal((await send('DELETE', `/v1/schedules/${every.id}`)).status, 404);
    const listed = await call(env, 'GET', '/v1/schedules?limit=200');
    assert.ok(!listed.body.items.some((s: Json) => s.id === every.id), 'a deleted schedule is not listed');
  });

  test('overlap Skip: no run starts while the previous call is still running', async () => {
    env.target.route('/sched/skip', () => ({ status: 200, body: 'slow', delayMs: 3_500 }));
    const schedule = await create({
      intervalSeconds: 1,
      overlap: 'Skip',
      retry: { maxAttempts: 1 },
      request: request('/sched/skip'),
    });
    assert.equal(schedule.overlap, 'Skip');
    await eventually(
      'three runs',
      async () => ((await runsOf(schedule.id)).length >= 3 ? true : undefined),
      40_000,
      250,
    );
    assert.equal((await send('DELETE', `/v1/schedules/${schedule.id}`)).status, 204);
    const instants = (await runsOf(schedule.id)).map((c) => Date.parse(c.scheduledAt)).sort((a, b) => a - b);
    for (let i = 1; i < instants.length; i++) {
      // Each call takes 3.5 s: the instants fired meanwhile were skipped, not queued.
      assert.ok(instants[i]! - instants[i - 1]! >= 3_000, `runs ${JSON.stringify(instants)} overlap`);
    }
  });

  test('a Temporal Schedule that Temporal lost is made again by the reconciler, from the stream', async () => {
    const schedule = await create({ cron: '15 6 * * *', paused: true, request: request('/sched/lost') });
    const temporal = lazyTemporalClient({
      address: env.infra.temporalAddress,
      namespace: env.config.temporalNamespace,
    });
    after(() => temporal.connection.close());
    const client = temporal.client;
    // The syncer makes it too (Postgres says it must exist): let it be done before "losing" it.
    await eventually('the schedule syncer to catch up', async () => {
      const at = await readCheckpoint(env.database.db, SCHEDULE_SYNCER_NAME);
      return (await readLogAfter(env.database.db, at, 1)).length === 0 ? true : undefined;
    });
    const handle = client.schedule.getHandle(temporalScheduleIdFor(env.tenants.a.id, String(schedule.id)));
    await handle.delete();
    await assert.rejects(handle.describe(), /not found/i);
    const reconciler = new Reconciler({
      db: env.database.db,
      start: { client, taskQueue: env.config.temporalTaskQueue, callbackPolicy: env.config.callback },
      log: env.log,
      intervalMs: 60_000,
    });
    // The server finishes a delete a moment after it answered: until then a create is refused.
    await eventually(
      'a pass that restores it',
      async () => (((await reconciler.runPass()).schedulesRestored ?? 0) >= 1 ? true : undefined),
      20_000,
      250,
    );
    const described = await handle.describe();
    assert.equal(described.state.paused, true, 'made as the stream says: paused');
    const again = await reconciler.runPass();
    assert.equal(again.schedulesRestored, 0, 'an existing one is left to the syncer');
    const resumed = await call(env, 'POST', `/v1/schedules/${String(schedule.id)}/resume`);
    assert.equal(resumed.body.status, 'Active');
    await eventually('the restored schedule lists its next run', async () => {
      const r = await call(env, 'GET', `/v1/schedules/${String(schedule.id)}`);
      const [at] = r.body.nextRunAts as string[];
      return at !== undefined && new Date(at).getUTCHours() === 6 && new Date(at).getUTCMinutes() === 15
        ? true
        : undefined;
    });
  });

  test('PATCH changes the next run', async () => {
    const schedule = await create({ cron: '0 9 * * *', request: request('/sched/patch') });
    assert.equal(new Date(schedule.nextRunAts[0]).getUTCHours(), 9);
    assert.equal(new Date(schedule.nextRunAts[0]).getUTCMinutes(), 0);
    const patched = await send('PATCH', `/v1/schedules/${schedule.id}`, { cron: '30 10 * * *', tags: ['moved'] });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.spec.cron, '30 10 * * *');
    assert.deepEqual(patched.body.tags, ['moved']);
    assert.equal(patched.body.request.url, env.target.url('/sched/patch'), 'what was not given is kept');
    // Temporal applies an update to its scheduler a moment after it accepted it.
    const nextRunAt = async () => {
      const r = await call(env, 'GET', `/v1/schedules/${schedule.id}`);
      return (r.body.nextRunAts as string[]).map((at) => new Date(at));
    };
    await eventually('the next run at 10:30', async () => {
      const [next] = await nextRunAt();
      return next?.getUTCHours() === 10 && next.getUTCMinutes() === 30 ? true : undefined;
    });
    const toInterval = await send('PATCH', `/v1/schedules/${schedule.id}`, { intervalSeconds: 60 });
    assert.equal(toInterval.body.spec.cron, null, 'an interval replaces the cron');
    assert.equal(toInterval.body.spec.intervalSeconds, 60);
    await eventually('runs a minute apart', async () => {
      const [a, b] = await nextRunAt();
      return a !== undefined && b !== undefined && b.getTime() - a.getTime() === 60_000 ? true : undefined;
    });
  });

  test('a cron in America/New_York lists its next runs by the wall clock across the spring-forward day', async () => {
    // 2027-03-14 is the second Sunday of March: 02:00 EST jumps to 03:00 EDT, so there is no 02:30.
    const schedule = await create({
      cron: '30 2 * * *',
      timezone: 'America/New_York',
      startAt: '2027-03-12T00:00:00Z',
      request: request('/sched/dst'),
    });
    assert.deepEqual(schedule.nextRunAts, [
      '2027-03-12T07:30:00.000Z', // 02:30 EST (UTC−5)
      '2027-03-13T07:30:00.000Z',
      // 14 March has no 02:30: Temporal's calendar matching takes no run that day.
      '2027-03-15T06:30:00.000Z', // 02:30 EDT (UTC−4)
      '2027-03-16T06:30:00.000Z',
      '2027-03-17T06:30:00.000Z',
    ]);
  });

  test('another tenant sees nothing of a schedule', async () => {
    const schedule = await create({ cron: '0 0 1 1 *', request: request('/sched/tenancy') });
    await call(env, 'POST', `/v1/schedules/${schedule.id}/trigger`);
    const b = env.tenants.b;
    assert.equal((await call(env, 'GET', `/v1/schedules/${schedule.id}`, { tenant: b })).status, 404);
    for (const action of ['pause', 'resume', 'trigger']) {
      assert.equal((await call(env, 'POST', `/v1/schedules/${schedule.id}/${action}`, { tenant: b })).status, 404);
    }
    assert.equal((await send('PATCH', `/v1/schedules/${schedule.id}`, { tags: ['x'] }, b)).status, 404);
    assert.equal((await send('DELETE', `/v1/schedules/${schedule.id}`, undefined, b)).status, 404);
    const listed = await call(env, 'GET', '/v1/schedules', { tenant: b });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.items, []);
    assert.deepEqual(await runsOf(schedule.id, b), []);
    // And still there, unchanged, for its own tenant.
    const own = await call(env, 'GET', `/v1/schedules/${schedule.id}`);
    assert.equal(own.body.status, 'Active');
    assert.deepEqual(own.body.tags, []);
  });

  test('a call id is no schedule, a schedule id no call', async () => {
    const schedule = await create({ cron: '0 0 1 1 *', request: request('/sched/ids') });
    assert.equal((await call(env, 'GET', `/v1/service-calls/${schedule.id}`)).status, 404);
    const submitted = await call(env, 'POST', '/v1/service-calls', { body: { request: request('/sched/ids-call') } });
    assert.equal((await call(env, 'GET', `/v1/schedules/${String(submitted.body.id)}`)).status, 404);
  });

  test('400s name the field: bad cron, unknown time zone, endAt before startAt, both or neither cadence', async () => {
    const cases: [Json, string][] = [
      [{ cron: '61 * * * *' }, 'cron'],
      [{ cron: '* * * *' }, 'cron'],
      [{ cron: '0 9 * * MON-XYZ' }, 'cron'],
      [{ cron: '0 9 * * *', timezone: 'Mars/Olympus_Mons' }, 'timezone'],
      [{ intervalSeconds: 60, startAt: '2030-01-02T00:00:00Z', endAt: '2030-01-01T00:00:00Z' }, 'endAt'],
      [{ cron: '0 9 * * *', intervalSeconds: 60 }, 'intervalSeconds'],
      [{}, 'cron'],
      [{ intervalSeconds: 0 }, 'intervalSeconds'],
    ];
    for (const [spec, field] of cases) {
      const r = await call(env, 'POST', '/v1/schedules', { body: { ...spec, request: request('/sched/bad') } });
      assert.equal(r.status, 400, `${JSON.stringify(spec)}: ${JSON.stringify(r.body)}`);
      assert.match(String(r.headers['content-type']), /application\/problem\+json/);
      assert.ok(
        (r.body.errors as { field: string }[]).some((e) => e.field === field),
        `${JSON.stringify(spec)} names ${field}: ${JSON.stringify(r.body)}`,
      );
    }
    const schedule = await create({ cron: '0 9 * * *', request: request('/sched/bad-patch') });
    const badPatch = await send('PATCH', `/v1/schedules/${schedule.id}`, { timezone: 'Nowhere/Atlantis' });
    assert.equal(badPatch.status, 400);
    assert.equal(badPatch.body.errors[0].field, 'timezone');
  });

  test('Idempotency-Key: the same create again is the same schedule; another body with it is 422', async () => {
    const body = { cron: '0 7 * * *', request: request('/sched/idem') };
    const headers = { 'idempotency-key': `sched-${randomBytes(4).toString('hex')}` };
    const first = await call(env, 'POST', '/v1/schedules', { body, headers });
    assert.equal(first.status, 201);
    const again = await call(env, 'POST', '/v1/schedules', { body, headers });
    assert.equal(again.status, 200);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.body.id, first.body.id);
    const other = await call(env, 'POST', '/v1/schedules', { body: { ...body, cron: '0 8 * * *' }, headers });
    assert.equal(other.status, 422);

    // Deleted since: the key's schedule is gone, and a replay says so rather than making it again.
    assert.equal((await send('DELETE', `/v1/schedules/${first.body.id}`)).status, 204);
    const afterDelete = await call(env, 'POST', '/v1/schedules', { body, headers });
    assert.equal(afterDelete.status, 409);
    assert.match(String(afterDelete.headers['content-type']), /^application\/problem\+json/);
    assert.match(afterDelete.body.detail, new RegExp(`${first.body.id}\\) has been deleted`));
  });

  test('a run retried for the same instant is created once', async () => {
    const schedule = await create({ cron: '0 0 1 1 *', paused: true, request: request('/sched/retry') });
    const deps = {
      db: env.database.db,
      notifier: new AppendNotifier(env.database.pool),
      keyring: env.keyring,
      redactor: createHeaderRedactor([]),
    };
    const at = new Date('2030-01-01T00:00:00Z');
    const run = { tenantId: env.tenants.a.id, scheduleId: String(schedule.id), scheduledAt: at, manual: true };
    const [one, two] = await Promise.all([submitScheduleRun(deps, run), submitScheduleRun(deps, run)]);
    assert.ok(one.created && two.created);
    assert.equal(one.serviceCallId, two.serviceCallId);
    assert.notEqual(one.replayed, two.replayed, 'one made it, the other found it');
    // A fired action of a paused schedule makes nothing: Postgres is the truth, not Temporal.
    const fired = await submitScheduleRun(deps, {
      ...run,
      scheduledAt: new Date('2031-01-01T00:00:00Z'),
      manual: false,
    });
    assert.deepEqual(fired, { created: false, reason: 'Paused' });
    const runs = await eventually('the run listed', async () => {
      const items = await runsOf(schedule.id);
      return items.length > 0 ? items : undefined;
    });
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.scheduledAt, at.toISOString());
  });

  test(`a tenant holds at most SCHEDULES_PER_TENANT (${LIMIT}) schedules`, async () => {
    const ids: string[] = [];
    for (let i = 0; i < LIMIT; i++)
      ids.push(String((await create({ cron: '0 0 1 1 *', request: request('/sched/limit') }, limited)).id));
    const over = await call(env, 'POST', '/v1/schedules', {
      tenant: limited,
      body: { cron: '0 0 1 1 *', request: request('/sched/limit') },
    });
    assert.equal(over.status, 409, JSON.stringify(over.body));
    assert.match(String(over.body.detail), /SCHEDULES_PER_TENANT/);
    assert.equal((await send('DELETE', `/v1/schedules/${ids[0]!}`, undefined, limited)).status, 204);
    await create({ cron: '0 0 1 1 *', request: request('/sched/limit') }, limited);
    // Another tenant is not counted against it.
    await create({ cron: '0 0 1 1 *', request: request('/sched/limit') }, env.tenants.b);
  });

  test('the list pages newest first and filters by status and tag', async () => {
    const tag = `list-${randomBytes(3).toString('hex')}`;
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      made.push(String((await create({ cron: '0 0 1 1 *', tags: [tag], request: request('/sched/list') })).id));
    }
    await call(env, 'POST', `/v1/schedules/${made[1]!}/pause`);
    const first = await call(env, 'GET', `/v1/schedules?tag=${tag}&limit=2`);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body.items.map(idOf), [made[2], made[1]]);
    const second = await call(env, 'GET', `/v1/schedules?tag=${tag}&limit=2&cursor=${String(first.body.nextCursor)}`);
    assert.deepEqual(second.body.items.map(idOf), [made[0]]);
    assert.equal(second.body.nextCursor, null);
    const paused = await call(env, 'GET', `/v1/schedules?tag=${tag}&status=Paused`);
    assert.deepEqual(paused.body.items.map(idOf), [made[1]]);
    const ended = await create({
      intervalSeconds: 60,
      startAt: '2020-01-01T00:00:00Z',
      endAt: '2020-01-02T00:00:00Z',
      tags: [tag],
      request: request('/sched/list'),
    });
    assert.equal(ended.status, 'Ended');
    assert.deepEqual(ended.nextRunAts, []);
    const endedList = await call(env, 'GET', `/v1/schedules?tag=${tag}&status=Ended`);
    assert.deepEqual(endedList.body.items.map(idOf), [ended.id]);
  });
});
