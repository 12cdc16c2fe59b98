import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import { createHttpDispatcher } from '../../activities/http';
import { EgressPolicy } from '../../core/egress-policy';
import { nextEventEnvelope } from '../../core/commands';
import { AppendNotifier, appendToStream, readStream } from '../../core/event-store';
import { streamIdFor } from '../../core/ids';
import { createHeaderRedactor } from '../../core/redact';
import { fold } from '../../core/service-call';
import { call, createTestEnv, type TestEnv } from '../support/env';

/**
 * The attempt activity against the real event store, outside Temporal: what it does when it runs
 * too early, when it is repeated after it recorded, and when an attempt is lost.
 */

let env: TestEnv;
let activities: ReturnType<typeof createActivities>;
const http = createHttpDispatcher({ policy: new EgressPolicy(['127.0.0.1']) });

const activitiesDeps = () => ({
  db: env.database.db,
  notifier: new AppendNotifier(env.database.pool),
  keyring: env.keyring,
  redactor: createHeaderRedactor(),
  http,
  log: env.log,
});

before(async () => {
  env = await createTestEnv({ worker: false, relay: false });
  activities = createActivities(activitiesDeps());
});
after(async () => {
  await http.close();
  await env?.close();
});

/** Runs one activity call in a mock activity context (heartbeats, cancellation signal). */
async function run<T>(fn: () => Promise<T>): Promise<T> {
  return new MockActivityEnvironment().run<[], T, () => Promise<T>>(fn);
}

async function submit(body: Record<string, unknown>): Promise<string> {
  const r = await call(env, 'POST', '/v1/service-calls', { body });
  assert.equal(r.status, 202);
  return String(r.body.id);
}

test('a timer that fires long before dueAt (skewed clocks) hands the wait back to the workflow', async () => {
  const id = await submit({
    request: { method: 'GET', url: env.target.url('/early') },
    dueAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
  const ref = { tenantId: env.tenants.a.id, serviceCallId: id, attempt: 1 };
  const report = await run(() => activities.runAttempt(ref));
  assert.equal(report.status, 'Scheduled');
  assert.ok(report.retryInMs !== null && report.retryInMs > 3_500_000 && report.retryInMs <= 3_600_000);
  const events = await readStream(env.database.db, streamIdFor(env.tenants.a.id, id));
  assert.deepEqual(
    events.map((e) => e.type),
    ['ServiceCallSubmitted'],
  );
  assert.equal(env.target.hitsFor('/early').length, 0);
  // A lost attempt before the call is due records nothing either: the workflow tries again.
  const lost = await run(() => activities.recordLostAttempt({ ...ref, reason: 'worker died' }));
  assert.deepEqual(lost, { status: 'Scheduled', retryInMs: null });
});

test('an attempt repeated after it was recorded does not call the target again', async () => {
  const id = await submit({ request: { method: 'POST', url: env.target.url('/once'), body: 'x' } });
  const ref = { tenantId: env.tenants.a.id, serviceCallId: id, attempt: 1 };
  const first = await run(() => activities.runAttempt(ref));
  assert.deepEqual(first, { status: 'Succeeded', retryInMs: null });
  const again = await run(() => activities.runAttempt(ref));
  assert.deepEqual(again, { status: 'Succeeded', retryInMs: null });
  assert.equal(env.target.hitsFor('/once').length, 1);
  const events = await readStream(env.database.db, streamIdFor(env.tenants.a.id, id));
  assert.deepEqual(
    events.map((e) => e.type),
    ['ServiceCallSubmitted', 'DueTimeReached', 'ServiceCallSucceeded'],
  );
});

test('a call already due with no attempt recorded (its workflow started again) is sent', async () => {
  // As after Temporal lost its data mid-attempt: DueTimeReached is in the store, the attempt's
  // outcome is not, and the reconciler's new workflow runs attempt 1 again.
  const id = await submit({ request: { method: 'POST', url: env.target.url('/restarted'), body: 'x' } });
  const streamId = streamIdFor(env.tenants.a.id, id);
  const history = await readStream(env.database.db, streamId);
  const state = fold(history);
  assert.ok(state !== undefined);
  const now = new Date();
  await appendToStream(env.database.db, streamId, history.length, [
    {
      ...nextEventEnvelope(state, history, randomUUID(), now),
      type: 'DueTimeReached',
      data: { reachedAt: now.toISOString() },
    },
  ]);
  const report = await run(() => activities.runAttempt({ tenantId: env.tenants.a.id, serviceCallId: id, attempt: 1 }));
  assert.deepEqual(report, { status: 'Succeeded', retryInMs: null });
  assert.equal(env.target.hitsFor('/restarted').length, 1);
  const events = await readStream(env.database.db, streamId);
  assert.deepEqual(
    events.map((e) => e.type),
    ['ServiceCallSubmitted', 'DueTimeReached', 'ServiceCallSucceeded'],
  );
});

test('a lost attempt is recorded as a failed attempt and retried by policy', async () => {
  const id = await submit({
    request: { method: 'GET', url: env.target.url('/lost') },
    retry: { maxAttempts: 2, initialIntervalMs: 100 },
  });
  const ref = { tenantId: env.tenants.a.id, serviceCallId: id };
  // The call became due (DueTimeReached) but its first attempt never finished.
  env.target.route('/lost', () => ({ status: 500 }));
  const first = await run(() => activities.runAttempt({ ...ref, attempt: 1 }));
  assert.equal(first.status, 'Running');
  assert.equal(first.retryInMs, 100);
  const lost = await run(() => activities.recordLostAttempt({ ...ref, attempt: 2, reason: 'worker died twice' }));
  assert.deepEqual(lost, { status: 'Failed', retryInMs: null });
  const events = await readStream(env.database.db, streamIdFor(env.tenants.a.id, id));
  assert.deepEqual(
    events.map((e) => e.type),
    ['ServiceCallSubmitted', 'DueTimeReached', 'AttemptFailed', 'ServiceCallFailed'],
  );
  const last = events[3];
  assert.ok(last?.type === 'ServiceCallFailed');
  assert.match(String(last.data.result.error), /worker died twice/);
});

/**
 * The event store as the activities see it, with a switch that makes every statement fail the way
 * an unreachable PostgreSQL does.
 */
function flakyDb() {
  const state = { down: false, refused: 0 };
  const db = new Proxy(env.database.db, {
    get(target, prop, receiver) {
      if (prop === 'execute' && state.down) {
        return () => {
          state.refused++;
          return Promise.reject(
            Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
          );
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { state, db };
}

test('a database failure before the request is sent is AttemptNotSent, and nothing is sent', async () => {
  const id = await submit({ request: { method: 'GET', url: env.target.url('/not-sent') } });
  const { state, db } = flakyDb();
  const flaky = createActivities({ ...activitiesDeps(), db });
  state.down = true;
  await assert.rejects(
    run(() => flaky.runAttempt({ tenantId: env.tenants.a.id, serviceCallId: id, attempt: 1 })),
    (err: unknown) => err instanceof ApplicationFailure && err.type === 'AttemptNotSent' && err.nonRetryable,
  );
  assert.ok(state.refused > 0);
  assert.equal(env.target.hitsFor('/not-sent').length, 0);
  // Once the database is back, the same attempt runs and is recorded.
  state.down = false;
  const report = await run(() => flaky.runAttempt({ tenantId: env.tenants.a.id, serviceCallId: id, attempt: 1 }));
  assert.deepEqual(report, { status: 'Succeeded', retryInMs: null });
  assert.equal(env.target.hitsFor('/not-sent').length, 1);
});

test('an outcome that cannot be recorded at once waits for the database instead of sending again', async () => {
  const id = await submit({ request: { method: 'GET', url: env.target.url('/record-later') } });
  const { state, db } = flakyDb();
  let waits = 0;
  const flaky = createActivities({
    ...activitiesDeps(),
    db,
    // The record loop's pauses: the database comes back after the fifth.
    sleep: () => {
      if (++waits === 5) state.down = false;
      return Promise.resolve();
    },
  });
  env.target.route('/record-later', () => {
    state.down = true;
    return { status: 200, body: 'ok' };
  });
  const report = await run(() => flaky.runAttempt({ tenantId: env.tenants.a.id, serviceCallId: id, attempt: 1 }));
  assert.deepEqual(report, { status: 'Succeeded', retryInMs: null });
  assert.equal(waits, 5);
  assert.ok(state.refused >= 5);
  assert.equal(env.target.hitsFor('/record-later').length, 1);
  const events = await readStream(env.database.db, streamIdFor(env.tenants.a.id, id));
  assert.deepEqual(
    events.map((e) => e.type),
    ['ServiceCallSubmitted', 'DueTimeReached', 'ServiceCallSucceeded'],
  );
});
