import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decide,
  NotDueError,
  NotFoundError,
  StateConflictError,
  type Command,
  type RecordAttemptCommand,
} from '../../core/decider';
import { AGGREGATE_TYPE, SCHEMA_VERSION, type EventBody, type ServiceCallEvent } from '../../core/events';
import { ATTEMPT_FAILURE, type AttemptFailureKind } from '../../core/http-policy';
import { fold, STATUSES, type ServiceCallState, type Status } from '../../core/service-call';

/**
 * The decider as a specification: given the events of a call, when a command, then the events it
 * decides or the typed error it refuses with. Every command meets every status.
 */

const id = '22222222-2222-4222-8222-222222222222';
const DUE = '2030-01-01T00:01:00.000Z';
const BEFORE_DUE = new Date('2030-01-01T00:00:30.000Z');
const AFTER_DUE = new Date('2030-01-01T00:01:00.500Z');
const RETRY = { maxAttempts: 2, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 };

function event(version: number, body: EventBody): ServiceCallEvent {
  return {
    messageId: `00000000-0000-4000-8000-${String(version).padStart(12, '0')}`,
    tenantId: 't1',
    aggregateType: AGGREGATE_TYPE,
    aggregateId: id,
    version,
    timestamp: '2030-01-01T00:00:00.000Z',
    correlationId: 'c1',
    causationId: null,
    schemaVersion: SCHEMA_VERSION,
    ...body,
  };
}

const record = (attempt: number, statusCode: number) => ({
  attempt,
  startedAt: AFTER_DUE.toISOString(),
  finishedAt: AFTER_DUE.toISOString(),
  statusCode,
  latencyMs: 3,
  error: null,
  responseSnippet: null,
  snippetEncoding: 'utf8' as const,
  truncated: false,
  responseHeaders: {},
});

const submittedBody: EventBody = {
  type: 'ServiceCallSubmitted',
  data: {
    request: { method: 'POST', url: 'https://example.com/x', headers: { a: 'b' } },
    secrets: { kid: 'k1', data: 'sealed' },
    dueAt: DUE,
    tags: ['t'],
    idempotencyKey: null,
    retry: RETRY,
    timeoutMs: 5000,
  },
};
const dueBody: EventBody = { type: 'DueTimeReached', data: { reachedAt: AFTER_DUE.toISOString() } };
const outcome = (ok: boolean, attempt = 1): EventBody => ({
  type: ok ? 'ServiceCallSucceeded' : 'ServiceCallFailed',
  data: {
    attempt: record(attempt, ok ? 200 : 500),
    result: {
      outcome: ok ? 'Succeeded' : 'Failed',
      statusCode: ok ? 200 : 500,
      latencyMs: 3,
      responseSnippet: null,
      snippetEncoding: 'utf8',
      truncated: false,
      responseHeaders: {},
      error: null,
    },
  },
});

/** A history that leaves the call in each status. */
const HISTORIES: Record<Status, EventBody[]> = {
  Scheduled: [submittedBody],
  Running: [submittedBody, dueBody],
  Succeeded: [submittedBody, dueBody, outcome(true)],
  Failed: [submittedBody, dueBody, outcome(false)],
  Cancelled: [submittedBody, { type: 'ServiceCallCancelled', data: { source: 'api' } }],
};

function given(status: Status | 'absent'): ServiceCallState | undefined {
  if (status === 'absent') return undefined;
  const state = fold(HISTORIES[status].map((b, i) => event(i + 1, b)));
  assert.equal(state?.status, status);
  return state;
}

type Then = { events: EventBody['type'][] } | { error: new (...args: never[]) => Error };

function check(command: Command, status: Status | 'absent', then: Then): EventBody[] {
  const state = given(status);
  if ('error' in then) {
    assert.throws(() => decide(command, state), then.error, `${command.type} on ${status}`);
    return [];
  }
  const events = decide(command, state);
  assert.deepEqual(
    events.map((e) => e.type),
    then.events,
    `${command.type} on ${status}`,
  );
  // What is decided must be a transition the state machine accepts.
  if (state !== undefined && events.length > 0) {
    fold([
      ...HISTORIES[status as Status].map((b, i) => event(i + 1, b)),
      ...events.map((b, i) => event(state.version + 1 + i, b)),
    ]);
  }
  return events;
}

const none = { events: [] };
const notFound = { error: NotFoundError };
const conflict = { error: StateConflictError };

describe('decide: every command on every status', () => {
  const attempt = (statusCode: number, n = 1): RecordAttemptCommand => ({
    type: 'RecordAttempt',
    now: AFTER_DUE,
    attempt: record(n, statusCode),
    retryAfterMs: null,
    failure: null,
  });
  const table: [string, Command, Record<Status | 'absent', Then>][] = [
    [
      'MarkDue after dueAt',
      { type: 'MarkDue', now: AFTER_DUE },
      {
        absent: notFound,
        Scheduled: { events: ['DueTimeReached'] },
        Running: none,
        Succeeded: none,
        Failed: none,
        Cancelled: none,
      },
    ],
    [
      'MarkDue before dueAt',
      { type: 'MarkDue', now: BEFORE_DUE },
      {
        absent: notFound,
        Scheduled: { error: NotDueError },
        Running: none,
        Succeeded: none,
        Failed: none,
        Cancelled: none,
      },
    ],
    [
      'RecordAttempt 2xx',
      attempt(200),
      {
        absent: notFound,
        Scheduled: none,
        Running: { events: ['ServiceCallSucceeded'] },
        Succeeded: none,
        Failed: none,
        Cancelled: none,
      },
    ],
    [
      'RecordAttempt 503 with a retry left',
      attempt(503),
      {
        absent: notFound,
        Scheduled: none,
        Running: { events: ['AttemptFailed'] },
        Succeeded: none,
        Failed: none,
        Cancelled: none,
      },
    ],
    [
      'RecordAttempt 404 (not worth a retry)',
      attempt(404),
      {
        absent: notFound,
        Scheduled: none,
        Running: { events: ['ServiceCallFailed'] },
        Succeeded: none,
        Failed: none,
        Cancelled: none,
      },
    ],
    [
      'RecordLostAttempt',
      { type: 'RecordLostAttempt', now: AFTER_DUE, attempt: 1, reason: 'worker died' },
      {
        absent: notFound,
        Scheduled: none,
        Running: { events: ['AttemptFailed'] },
        Succeeded: none,
        Failed: none,
        Cancelled: none,
      },
    ],
    [
      'Cancel from the API',
      { type: 'Cancel', source: 'api' },
      {
        absent: notFound,
        Scheduled: { events: ['ServiceCallCancelled'] },
        Running: conflict,
        Succeeded: conflict,
        Failed: conflict,
        Cancelled: none,
      },
    ],
    [
      'Cancel from the workflow',
      { type: 'Cancel', source: 'workflow' },
      {
        absent: notFound,
        Scheduled: { events: ['ServiceCallCancelled'] },
        Running: none,
        Succeeded: none,
        Failed: none,
        Cancelled: none,
      },
    ],
    [
      'Reschedule',
      { type: 'Reschedule', now: BEFORE_DUE, dueAt: new Date('2030-01-02T00:00:00.000Z') },
      {
        absent: notFound,
        Scheduled: { events: ['ServiceCallRescheduled'] },
        Running: conflict,
        Succeeded: conflict,
        Failed: conflict,
        Cancelled: conflict,
      },
    ],
    [
      'Replay',
      { type: 'Replay', now: AFTER_DUE, dueAt: undefined, secrets: null, idempotencyKey: null, callback: undefined },
      {
        absent: notFound,
        Scheduled: conflict,
        Running: conflict,
        Succeeded: { events: ['ServiceCallSubmitted'] },
        Failed: { events: ['ServiceCallSubmitted'] },
        Cancelled: { events: ['ServiceCallSubmitted'] },
      },
    ],
  ];
  for (const [name, command, thens] of table) {
    test(name, () => {
      for (const status of ['absent', ...STATUSES] as const) {
        // A replay's events start another stream: not folded onto the original.
        if (command.type === 'Replay' && 'events' in thens[status]) {
          assert.equal(decide(command, given(status))[0]?.type, 'ServiceCallSubmitted');
          continue;
        }
        check(command, status, thens[status]);
      }
    });
  }
  test('Submit: only on a call that does not exist yet', () => {
    const submit: Command = {
      type: 'Submit',
      now: BEFORE_DUE,
      request: { method: 'GET', url: 'https://example.com/', headers: {} },
      secrets: null,
      dueAt: undefined,
      tags: [],
      idempotencyKey: null,
      retry: RETRY,
      timeoutMs: 1000,
      callback: null,
    };
    assert.deepEqual(
      decide(submit, undefined).map((e) => e.type),
      ['ServiceCallSubmitted'],
    );
    for (const status of STATUSES) assert.throws(() => decide(submit, given(status)), StateConflictError);
  });
});

describe('decide: the rules', () => {
  test('a submit or reschedule to the past means now; a future instant is kept', () => {
    const submit = (dueAt: Date | undefined) =>
      decide(
        {
          type: 'Submit',
          now: BEFORE_DUE,
          request: { method: 'GET', url: 'https://example.com/', headers: {} },
          secrets: null,
          dueAt,
          tags: [],
          idempotencyKey: null,
          retry: RETRY,
          timeoutMs: 1000,
          callback: null,
        },
        undefined,
      )[0];
    assert.equal((submit(undefined)?.data as { dueAt: string }).dueAt, BEFORE_DUE.toISOString());
    assert.equal((submit(new Date('2000-01-01T00:00:00Z'))?.data as { dueAt: string }).dueAt, BEFORE_DUE.toISOString());
    assert.equal((submit(new Date(DUE))?.data as { dueAt: string }).dueAt, DUE);
    const [moved] = decide(
      { type: 'Reschedule', now: BEFORE_DUE, dueAt: new Date('1999-01-01T00:00:00Z') },
      given('Scheduled'),
    );
    assert.deepEqual(moved, {
      type: 'ServiceCallRescheduled',
      data: { previousDueAt: DUE, dueAt: BEFORE_DUE.toISOString() },
    });
  });

  test('a rescheduled call is due at its new time, not its old one', () => {
    const later = '2030-01-01T01:00:00.000Z';
    const state = fold([
      event(1, submittedBody),
      event(2, { type: 'ServiceCallRescheduled', data: { previousDueAt: DUE, dueAt: later } }),
    ]);
    assert.equal(state?.dueAt, later);
    assert.throws(
      () => decide({ type: 'MarkDue', now: AFTER_DUE }, state),
      (err: unknown) => err instanceof NotDueError && err.dueAt === later && err.earlyMs > 3_500_000,
    );
    assert.deepEqual(
      decide({ type: 'MarkDue', now: new Date(later) }, state).map((e) => e.type),
      ['DueTimeReached'],
    );
  });

  test('no answer: the failure kind decides, a refused destination is final and a lost attempt is retried', () => {
    const running = given('Running');
    const unanswered = { ...record(1, 0), statusCode: null, latencyMs: null, error: 'no answer' };
    const typesFor = (failure: AttemptFailureKind) =>
      decide({ type: 'RecordAttempt', now: AFTER_DUE, attempt: unanswered, retryAfterMs: null, failure }, running).map(
        (e) => e.type,
      );
    assert.deepEqual(typesFor(ATTEMPT_FAILURE.EgressRefused), ['ServiceCallFailed']);
    assert.deepEqual(typesFor(ATTEMPT_FAILURE.Network), ['AttemptFailed']);
    assert.deepEqual(typesFor(ATTEMPT_FAILURE.Timeout), ['AttemptFailed']);
    assert.deepEqual(
      decide({ type: 'RecordLostAttempt', now: AFTER_DUE, attempt: 1, reason: 'workers died' }, running).map(
        (e) => e.type,
      ),
      ['AttemptFailed'],
    );
  });

  test('retry decision: backoff from the policy, Retry-After honoured, the last attempt fails the call', () => {
    const running = given('Running');
    const [failed] = decide(
      { type: 'RecordAttempt', now: AFTER_DUE, attempt: record(1, 503), retryAfterMs: null, failure: null },
      running,
    );
    assert.equal((failed?.data as { retryAt: string }).retryAt, new Date(AFTER_DUE.getTime() + 1000).toISOString());
    const [later] = decide(
      { type: 'RecordAttempt', now: AFTER_DUE, attempt: record(1, 429), retryAfterMs: 7000, failure: null },
      running,
    );
    assert.equal((later?.data as { retryAt: string }).retryAt, new Date(AFTER_DUE.getTime() + 7000).toISOString());
    const retrying = fold([...HISTORIES.Running.map((b, i) => event(i + 1, b)), event(3, failed!)]);
    assert.deepEqual(
      decide(
        { type: 'RecordAttempt', now: AFTER_DUE, attempt: record(2, 503), retryAfterMs: null, failure: null },
        retrying,
      ).map((e) => e.type),
      ['ServiceCallFailed'],
    );
    // Attempt 1 again (a retried activity): recorded already, nothing to add.
    assert.deepEqual(
      decide(
        { type: 'RecordAttempt', now: AFTER_DUE, attempt: record(1, 200), retryAfterMs: null, failure: null },
        retrying,
      ),
      [],
    );
  });

  test('a replay copies the request, policy, timeout and tags, takes the re-sealed secrets and names its original', () => {
    const sealed = { kid: 'k1', data: 'resealed-for-the-new-stream' };
    const [body] = decide(
      { type: 'Replay', now: AFTER_DUE, dueAt: undefined, secrets: sealed, idempotencyKey: 'k', callback: undefined },
      given('Failed'),
    );
    assert.equal(body?.type, 'ServiceCallSubmitted');
    const data = body.type === 'ServiceCallSubmitted' ? body.data : undefined;
    assert.deepEqual(data?.request, { method: 'POST', url: 'https://example.com/x', headers: { a: 'b' } });
    assert.deepEqual(data?.retry, RETRY);
    assert.equal(data?.timeoutMs, 5000);
    assert.deepEqual(data?.tags, ['t']);
    assert.deepEqual(data?.secrets, sealed);
    assert.equal(data?.replayOf, id);
    assert.equal(data?.idempotencyKey, 'k');
    assert.equal(data?.dueAt, AFTER_DUE.toISOString());
  });
});

describe('decide: callbacks (ADR-0016)', () => {
  const withCallback = (on: ('Succeeded' | 'Failed' | 'Cancelled')[], ...rest: EventBody[]) => {
    const submitted = submittedBody;
    const bodies: EventBody[] = [
      { type: 'ServiceCallSubmitted', data: { ...submitted.data, callback: { url: 'https://cb.example.com/', on } } },
      ...rest,
    ];
    return fold(bodies.map((b, i) => event(i + 1, b)))!;
  };
  const deliver = (attempt: number, statusCode: number | null, maxAttempts = 3): Command => ({
    type: 'RecordCallbackAttempt',
    attempt: { attempt, at: AFTER_DUE.toISOString(), statusCode, latencyMs: 2, error: null },
    maxAttempts,
  });

  test('pending from the submit; NotRequired when the outcome is not asked for', () => {
    assert.equal(withCallback(['Failed']).callback?.status, 'Pending');
    assert.equal(withCallback(['Failed'], dueBody, outcome(true)).callback?.status, 'NotRequired');
    assert.equal(withCallback(['Failed'], dueBody, outcome(false)).callback?.status, 'Pending');
    assert.equal(
      withCallback(['Cancelled'], { type: 'ServiceCallCancelled', data: { source: 'api' } }).callback?.status,
      'Pending',
    );
  });

  test('an attempt before the call ended, or when none is due, adds nothing', () => {
    assert.deepEqual(decide(deliver(1, 200), withCallback(['Succeeded'], dueBody)), []);
    assert.deepEqual(decide(deliver(1, 200), withCallback(['Failed'], dueBody, outcome(true))), []);
    assert.deepEqual(decide(deliver(1, 200), given('Succeeded')), [], 'a call without a callback');
  });

  test('a 2xx delivers, another answer retries until maxAttempts, then gives up', () => {
    const ended = withCallback(['Succeeded'], dueBody, outcome(true));
    assert.equal(decide(deliver(1, 204), ended)[0]?.type, 'CallbackDelivered');
    const [failed] = decide(deliver(1, 500), ended);
    assert.equal(failed?.type, 'CallbackAttemptFailed');
    const after1 = withCallback(['Succeeded'], dueBody, outcome(true), failed);
    assert.equal(after1.callback?.attempts.length, 1);
    assert.deepEqual(decide(deliver(1, 500), after1), [], 'attempt 1 again (a retried activity) is recorded once');
    assert.equal(decide(deliver(2, null), after1)[0]?.type, 'CallbackAttemptFailed');
    assert.deepEqual(decide(deliver(3, 500), after1), [], 'not the next attempt: no gap');
    const last = decide(deliver(2, 503, 2), after1)[0]!;
    assert.equal(last.type, 'CallbackFailed');
    const gaveUp = withCallback(['Succeeded'], dueBody, outcome(true), failed, last);
    assert.equal(gaveUp.callback?.status, 'Failed');
    assert.deepEqual(decide(deliver(3, 200), gaveUp), [], 'settled: nothing more');
  });

  test('a replay keeps the original’s callback, takes its own, or none', () => {
    const original = withCallback(['Failed'], dueBody, outcome(false));
    const replay = (callback: { url: string; on: ('Succeeded' | 'Failed' | 'Cancelled')[] } | null | undefined) => {
      const [body] = decide(
        { type: 'Replay', now: AFTER_DUE, dueAt: undefined, secrets: null, idempotencyKey: null, callback },
        original,
      );
      return body?.type === 'ServiceCallSubmitted' ? body.data.callback : 'not a submit';
    };
    assert.deepEqual(replay(undefined), { url: 'https://cb.example.com/', on: ['Failed'] });
    assert.equal(replay(null), undefined);
    assert.deepEqual(replay({ url: 'https://other.example.com/', on: ['Succeeded'] }), {
      url: 'https://other.example.com/',
      on: ['Succeeded'],
    });
  });
});
