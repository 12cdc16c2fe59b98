import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { ServiceCallEvent, StoredEvent } from '../../core/events';
import { fold } from '../../core/service-call';
import { toView, type ServiceCallView } from '../../core/view';
import type { Hit } from '../support/target';
import { checkHistory, type History } from './checker';

/** The checker sees each kind of violation, and nothing in a clean history. */

const TENANT = 't1';
const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();
let position = 0;

type Step = 'submit' | 'due' | 'retry' | 'succeed' | 'fail' | 'cancel';

function stream(id: string, steps: Step[], dueMs = 0): StoredEvent[] {
  return steps.map((step, i) => {
    const envelope = {
      messageId: randomUUID(),
      tenantId: TENANT,
      aggregateType: 'ServiceCall' as const,
      aggregateId: id,
      version: i + 1,
      timestamp: iso(i * 10),
      correlationId: 'c',
      causationId: null,
      schemaVersion: 1,
      globalPosition: ++position,
      tx: String(position),
    };
    const attempt = {
      attempt: 1,
      startedAt: iso(dueMs),
      finishedAt: iso(dueMs + 5),
      statusCode: 200,
      latencyMs: 5,
      error: null,
      responseSnippet: 'ok',
      snippetEncoding: 'utf8' as const,
      truncated: false,
      responseHeaders: {},
    };
    const result = {
      outcome: 'Succeeded' as const,
      statusCode: 200,
      latencyMs: 5,
      responseSnippet: 'ok',
      snippetEncoding: 'utf8' as const,
      truncated: false,
      responseHeaders: {},
      error: null,
    };
    const submitted = {
      request: { method: 'POST' as const, url: `http://t/c/${id}`, headers: {} },
      secrets: null,
      dueAt: iso(dueMs),
      tags: [],
      idempotencyKey: id,
      retry: { maxAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60_000 },
      timeoutMs: 10_000,
    };
    const event: ServiceCallEvent =
      step === 'submit'
        ? { ...envelope, type: 'ServiceCallSubmitted', data: submitted }
        : step === 'due'
          ? { ...envelope, type: 'DueTimeReached', data: { reachedAt: iso(dueMs) } }
          : step === 'cancel'
            ? { ...envelope, type: 'ServiceCallCancelled', data: { source: 'api' } }
            : step === 'retry'
              ? {
                  ...envelope,
                  type: 'AttemptFailed',
                  data: { attempt: { ...attempt, statusCode: 503 }, retryAt: iso(dueMs + 100) },
                }
              : {
                  ...envelope,
                  type: step === 'succeed' ? 'ServiceCallSucceeded' : 'ServiceCallFailed',
                  data: { attempt: { ...attempt, attempt: steps.filter((x) => x === 'retry').length + 1 }, result },
                };
    return event as StoredEvent;
  });
}

function hit(id: string, atMs: number, key: string = id): Hit {
  return { at: T0 + atMs, method: 'POST', path: `/c/${id}`, headers: { 'idempotency-key': key }, body: '' };
}

/** A history of one clean call `a`, plus whatever `change` does to it. */
function history(
  change: (
    h: History & {
      events: StoredEvent[];
      hits: Hit[];
      views: Map<string, ServiceCallView>;
      acked: Map<string, { dueAt: string }>;
    },
  ) => void = () => undefined,
) {
  const a = 'a0000000-0000-4000-8000-000000000001';
  const events = stream(a, ['submit', 'due', 'succeed'], 100);
  const h = {
    tenantId: TENANT,
    acked: new Map([[a, { dueAt: iso(100) }]]),
    hits: [hit(a, 100)],
    callOfHit: (x: Hit) => /^\/c\/(.+)$/.exec(x.path)?.[1],
    events,
    views: new Map([[a, toView(fold(events)!)]]),
    repeatableFaultsAt: [] as number[],
  };
  change(h);
  return checkHistory(h);
}

const B = 'b0000000-0000-4000-8000-000000000002';

test('a clean history counts nothing', () => {
  const report = history();
  assert.equal(report.ok, true);
  assert.deepEqual(report.problems, []);
  assert.equal(report.counts.acked, 1);
  assert.equal(report.counts.hits, 1);
});

test('an acknowledged call without events, or without a terminal event, is lost', () => {
  assert.equal(history((h) => h.acked.set(B, { dueAt: iso(0) })).counts.lost, 1);
  const unfinished = history((h) => {
    h.acked.set(B, { dueAt: iso(0) });
    const events = stream(B, ['submit', 'due']);
    h.events.push(...events);
    h.views.set(B, toView(fold(events)!));
  });
  assert.equal(unfinished.counts.lost, 1);
  assert.equal(unfinished.ok, false);
});

test('two terminal events are counted, and the state machine rejects the stream', () => {
  const report = history((h) => {
    h.acked.set(B, { dueAt: iso(0) });
    h.events.push(...stream(B, ['submit', 'due', 'succeed', 'fail']));
    h.hits.push(hit(B, 0));
  });
  assert.equal(report.counts.multipleTerminal, 1);
  assert.equal(report.counts.invalidTransitions, 1);
  assert.equal(report.ok, false);
});

test('streams and hits for calls never acknowledged are phantoms', () => {
  const report = history((h) => {
    const events = stream(B, ['submit', 'due', 'succeed']);
    h.events.push(...events);
    h.views.set(B, toView(fold(events)!));
    h.hits.push(hit(B, 0), { ...hit('x', 0), path: '/elsewhere' });
  });
  assert.equal(report.counts.phantom, 3);
});

test('a hit before dueAt is a run before due', () => {
  const report = history((h) => {
    h.hits[0] = hit(h.hits[0]!.path.slice(3), 99);
  });
  assert.equal(report.counts.runBeforeDue, 1);
  assert.equal(report.ok, false);
});

test('a rescheduled call: a hit before its new dueAt is a run before due, one after its old dueAt is not', () => {
  const reschedule = (events: StoredEvent[], toMs: number) => {
    const [submit, ...rest] = events;
    const moved = {
      ...submit!,
      messageId: randomUUID(),
      version: 2,
      type: 'ServiceCallRescheduled',
      data: { previousDueAt: iso(100), dueAt: iso(toMs) },
    } as StoredEvent;
    return [submit!, moved, ...rest.map((e) => ({ ...e, version: e.version + 1 }))];
  };
  const later = history((h) => {
    h.events.splice(0, h.events.length, ...reschedule(h.events, 500));
    h.hits[0] = hit(h.hits[0]!.path.slice(3), 300);
  });
  assert.equal(later.counts.runBeforeDue, 1);
  const earlier = history((h) => {
    h.events.splice(0, h.events.length, ...reschedule(h.events, 50));
    h.hits[0] = hit(h.hits[0]!.path.slice(3), 60);
  });
  assert.equal(earlier.counts.runBeforeDue, 0);
});

test('a hit for a cancelled call is a run that was never recorded', () => {
  const report = history((h) => {
    h.acked.set(B, { dueAt: iso(0) });
    const events = stream(B, ['submit', 'cancel']);
    h.events.push(...events);
    h.views.set(B, toView(fold(events)!));
    h.hits.push(hit(B, 0));
  });
  assert.equal(report.counts.runUnrecorded, 1);
});

test('a read-model row that differs from the fold of its stream, or has no stream, is a mismatch', () => {
  const report = history((h) => {
    const [id, view] = [...h.views][0]!;
    h.views.set(id, { ...view, status: 'Running' });
    h.views.set(B, { ...view, id: B });
  });
  assert.equal(report.counts.projectionMismatch, 2);
});

test('each recorded attempt accounts for one hit: deliberate retries are not repeats', () => {
  const report = history((h) => {
    h.acked.set(B, { dueAt: iso(0) });
    const events = stream(B, ['submit', 'due', 'retry', 'succeed']);
    h.events.push(...events);
    h.views.set(B, toView(fold(events)!));
    h.hits.push(hit(B, 0), hit(B, 100));
  });
  assert.equal(report.counts.duplicateHits, 0);
  assert.equal(report.ok, true);
});

test('repeated hits are allowed up to the bound, and only with the first hit’s idempotency-key', () => {
  // The call is recorded due at +10 ms and finished at +20 ms: a fault at +15 ms caught it in flight.
  const twice = (faultAt: number, key?: string) =>
    history((h) => {
      const id = h.hits[0]!.path.slice(3);
      h.hits.push(hit(id, 150, key));
      h.repeatableFaultsAt = [T0 + faultAt];
    });
  assert.equal(twice(15).counts.duplicateBound, 1);
  assert.equal(twice(15).ok, true);
  assert.equal(twice(15).counts.duplicateHits, 1);
  assert.equal(twice(25).counts.duplicateBound, 0);
  assert.equal(twice(25).ok, false);
  const otherKey = twice(15, 'something-else');
  assert.equal(otherKey.counts.idempotencyKeyMismatch, 1);
  assert.equal(otherKey.ok, false);
});
