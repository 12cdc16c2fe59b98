import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AGGREGATE_TYPE, SCHEMA_VERSION, type ServiceCallEvent } from '../../core/events';
import { evolve, fold, InvalidTransitionError, type ServiceCallState } from '../../core/service-call';

/** given events / when event / then state — the state machine of one call. */

const id = '11111111-1111-4111-8111-111111111111';
let version = 0;
function envelope(type: ServiceCallEvent['type'], at = '2030-01-01T00:00:00.000Z') {
  return {
    messageId: `00000000-0000-4000-8000-${String(++version).padStart(12, '0')}`,
    tenantId: 't1',
    aggregateType: AGGREGATE_TYPE,
    aggregateId: id,
    type,
    version: 0,
    timestamp: at,
    correlationId: 'c1',
    causationId: null,
    schemaVersion: SCHEMA_VERSION,
  } as const;
}
const submitted = (): ServiceCallEvent => ({
  ...envelope('ServiceCallSubmitted'),
  type: 'ServiceCallSubmitted',
  version: 1,
  data: {
    request: { method: 'POST', url: 'https://example.com', headers: { a: 'b' } },
    secrets: null,
    dueAt: '2030-01-01T00:01:00.000Z',
    tags: ['t'],
    idempotencyKey: null,
    retry: { maxAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 },
    timeoutMs: 10000,
  },
});
const due = (v: number): ServiceCallEvent => ({
  ...envelope('DueTimeReached'),
  type: 'DueTimeReached',
  version: v,
  data: { reachedAt: '2030-01-01T00:01:00.000Z' },
});
const cancelled = (v: number): ServiceCallEvent => ({
  ...envelope('ServiceCallCancelled'),
  type: 'ServiceCallCancelled',
  version: v,
  data: { source: 'api' },
});
const attempt = (n: number, statusCode: number) => ({
  attempt: n,
  startedAt: 'a',
  finishedAt: 'b',
  statusCode,
  latencyMs: 3,
  error: null,
  responseSnippet: 's',
  snippetEncoding: 'utf8' as const,
  truncated: false,
  responseHeaders: {},
});
const attemptFailed = (v: number, n: number): ServiceCallEvent => ({
  ...envelope('AttemptFailed'),
  type: 'AttemptFailed',
  version: v,
  data: { attempt: attempt(n, 503), retryAt: '2030-01-01T00:02:00.000Z' },
});
const finished = (v: number, ok: boolean): ServiceCallEvent => ({
  ...envelope(ok ? 'ServiceCallSucceeded' : 'ServiceCallFailed', '2030-01-01T00:01:01.000Z'),
  type: ok ? 'ServiceCallSucceeded' : 'ServiceCallFailed',
  version: v,
  data: {
    attempt: attempt(1, ok ? 200 : 500),
    result: {
      outcome: ok ? 'Succeeded' : 'Failed',
      statusCode: ok ? 200 : 500,
      latencyMs: 3,
      responseSnippet: 's',
      snippetEncoding: 'utf8',
      truncated: false,
      responseHeaders: {},
      error: null,
    },
  },
});

function given(...events: ServiceCallEvent[]): ServiceCallState | undefined {
  return fold(events);
}

describe('evolve', () => {
  test('submitted → Scheduled with the request, due time and tags', () => {
    const state = given(submitted());
    assert.equal(state?.status, 'Scheduled');
    assert.equal(state?.dueAt, '2030-01-01T00:01:00.000Z');
    assert.deepEqual(state?.tags, ['t']);
    assert.equal(state?.version, 1);
    assert.equal(state?.result, null);
  });

  test('due → Running; succeeded → Succeeded with its attempt and result', () => {
    const state = given(submitted(), due(2), finished(3, true));
    assert.equal(state?.status, 'Succeeded');
    assert.equal(state?.attempts.length, 1);
    assert.equal(state?.result?.statusCode, 200);
    assert.equal(state?.updatedAt, '2030-01-01T00:01:01.000Z');
    assert.equal(given(submitted(), due(2), finished(3, false))?.status, 'Failed');
  });

  test('a failed attempt keeps the call Running with the retry time; attempts stay in order', () => {
    const retrying = given(submitted(), due(2), attemptFailed(3, 1));
    assert.equal(retrying?.status, 'Running');
    assert.equal(retrying?.nextAttemptAt, '2030-01-01T00:02:00.000Z');
    assert.equal(retrying?.attempts.length, 1);
    const done = given(submitted(), due(2), attemptFailed(3, 1), {
      ...finished(4, true),
      data: { ...(finished(4, true).data as object), attempt: attempt(2, 200) },
    } as ServiceCallEvent);
    assert.equal(done?.status, 'Succeeded');
    assert.deepEqual(
      done?.attempts.map((a) => a.attempt),
      [1, 2],
    );
    assert.equal(done?.nextAttemptAt, null);
    // An attempt number out of order is refused.
    assert.throws(() => given(submitted(), due(2), attemptFailed(3, 2)), InvalidTransitionError);
    assert.throws(() => given(submitted(), attemptFailed(2, 1)), InvalidTransitionError);
  });

  test('cancel only while Scheduled', () => {
    assert.equal(given(submitted(), cancelled(2))?.status, 'Cancelled');
    assert.throws(() => given(submitted(), due(2), cancelled(3)), InvalidTransitionError);
    assert.throws(() => given(submitted(), cancelled(2), due(3)), InvalidTransitionError);
  });

  test('no outcome without due, no second outcome, no second submit, no gaps', () => {
    assert.throws(() => given(submitted(), finished(2, true)), InvalidTransitionError);
    assert.throws(() => given(submitted(), due(2), finished(3, true), finished(4, false)), InvalidTransitionError);
    assert.throws(() => evolve(given(submitted()), submitted()), InvalidTransitionError);
    assert.throws(() => given(submitted(), due(3)), InvalidTransitionError);
    assert.throws(() => given(due(1)), InvalidTransitionError);
  });
});
