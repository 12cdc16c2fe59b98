import { isDeepStrictEqual } from 'node:util';
import { eq } from 'drizzle-orm';
import { serviceCalls } from '../../drizzle/schema';
import type { DbOrTx } from '../../core/db';
import type { StoredEvent } from '../../core/events';
import { LOG_START, readLogAfter } from '../../core/event-store';
import { fold, InvalidTransitionError, type ServiceCallState } from '../../core/service-call';
import { findServiceCall } from '../../projections/service-calls';
import { toView, type ServiceCallView } from '../../core/view';
import type { Hit } from '../support/target';

/**
 * The history checker: from what the client was told (acknowledged calls), what the target saw
 * (every hit, with its headers), the event store and the read model, it counts every way
 * Punctual could have broken its promise. It judges the event streams with the domain's own
 * state machine (`fold`/`evolve`), and the read model against a fold of each stream, so it
 * never re-implements what it checks.
 */

export interface AckedCall {
  /** The dueAt the API answered with. */
  dueAt: string;
}

export interface History {
  tenantId: string;
  /** Calls the API acknowledged (202, or 200 replaying a lost 202), by call id. */
  acked: ReadonlyMap<string, AckedCall>;
  hits: readonly Hit[];
  /** The call a hit was sent for, from where it arrived; undefined when it names none. */
  callOfHit(hit: Hit): string | undefined;
  /** The call whose callback a hit delivers; undefined for a hit that is no callback. */
  callbackOfHit?(hit: Hit): string | undefined;
  events: readonly StoredEvent[];
  /** The read model as the API shows it (toView of each row), by call id. */
  views: ReadonlyMap<string, ServiceCallView>;
  /**
   * When faults that can interrupt an HTTP attempt struck (a worker killed, Temporal or
   * PostgreSQL stopped), in ms since the epoch. Each call in flight at such a moment may be hit
   * once more: together they bound the duplicate hits. Empty where no fault can repeat one.
   */
  repeatableFaultsAt: readonly number[];
}

export interface CheckCounts {
  acked: number;
  events: number;
  hits: number;
  /** Acknowledged calls without a terminal event, or recorded as run but never hit. */
  lost: number;
  /** Calls with more than one Succeeded/Failed/Cancelled event. */
  multipleTerminal: number;
  /** Streams or hits for calls the API never acknowledged. */
  phantom: number;
  /** Streams the state machine rejects (InvalidTransitionError from fold). */
  invalidTransitions: number;
  /** Calls hit, or recorded as due, before their dueAt. */
  runBeforeDue: number;
  /** Calls hit although never recorded as due (e.g. run after a cancel). */
  runUnrecorded: number;
  /** Read-model rows that differ from a fold of their stream, or are missing or extra. */
  projectionMismatch: number;
  /** Hits beyond one per recorded attempt, over all calls. */
  duplicateHits: number;
  duplicateBound: number;
  /** Hits whose idempotency-key header differs from the first hit's (or, first, from the call id). */
  idempotencyKeyMismatch: number;
  /** Calls whose callback was due and never settled, or is recorded delivered but never arrived. */
  callbackLost: number;
  /** Callback deliveries of one call under more than one webhook-id, or under the call's own. */
  callbackIdMismatch: number;
}

export interface CheckReport {
  counts: CheckCounts;
  ok: boolean;
  /** A few examples per kind of violation, for the post-mortem; empty when ok. */
  problems: string[];
  /** A few of the repeated hits (allowed up to the bound), for the post-mortem. */
  duplicateExamples: string[];
}

const TERMINAL = new Set(['ServiceCallSucceeded', 'ServiceCallFailed', 'ServiceCallCancelled']);
/** Events that record one HTTP attempt each. */
const ATTEMPT_EVENTS = new Set(['AttemptFailed', 'ServiceCallSucceeded', 'ServiceCallFailed']);
const EXAMPLES_PER_KIND = 5;

/**
 * Calls in flight at `at`: recorded as due by then, and not finished by then. Read from the
 * event store after the fact, so it also works for a moment when the database was down.
 */
export function callsInFlightAt(events: readonly StoredEvent[], at: number): number {
  const due = new Map<string, number>();
  const finished = new Map<string, number>();
  for (const e of events) {
    const key = `${e.tenantId}/${e.aggregateId}`;
    if (e.type === 'DueTimeReached') due.set(key, Date.parse(e.timestamp));
    if (TERMINAL.has(e.type)) finished.set(key, Date.parse(e.timestamp));
  }
  let n = 0;
  for (const [key, dueAt] of due) if (dueAt <= at && (finished.get(key) ?? Infinity) > at) n++;
  return n;
}

/** JSON-equal: what the API would serialize. */
function sameJson(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
}

export function checkHistory(history: History): CheckReport {
  const problems = new Map<string, string[]>();
  const duplicateExamples: string[] = [];
  const problem = (kind: keyof CheckCounts, message: string) => {
    const list = problems.get(kind) ?? [];
    if (list.length < EXAMPLES_PER_KIND) list.push(`${kind}: ${message}`);
    problems.set(kind, list);
  };
  const counts: CheckCounts = {
    acked: history.acked.size,
    events: history.events.length,
    hits: history.hits.length,
    lost: 0,
    multipleTerminal: 0,
    phantom: 0,
    invalidTransitions: 0,
    runBeforeDue: 0,
    runUnrecorded: 0,
    projectionMismatch: 0,
    duplicateHits: 0,
    duplicateBound: history.repeatableFaultsAt.reduce((sum, at) => sum + callsInFlightAt(history.events, at), 0),
    idempotencyKeyMismatch: 0,
    callbackLost: 0,
    callbackIdMismatch: 0,
  };

  const streams = new Map<string, StoredEvent[]>();
  for (const e of history.events) {
    if (e.tenantId !== history.tenantId) {
      counts.phantom++;
      problem('phantom', `event ${e.type} of another tenant ${e.tenantId}/${e.aggregateId}`);
      continue;
    }
    const list = streams.get(e.aggregateId) ?? [];
    list.push(e);
    streams.set(e.aggregateId, list);
  }
  for (const list of streams.values()) list.sort((a, b) => a.version - b.version);

  const hitsByCall = new Map<string, Hit[]>();
  const callbackHits = new Map<string, Hit[]>();
  for (const hit of history.hits) {
    const callbackOf = history.callbackOfHit?.(hit);
    if (callbackOf !== undefined) {
      const list = callbackHits.get(callbackOf) ?? [];
      list.push(hit);
      callbackHits.set(callbackOf, list);
      continue;
    }
    const id = history.callOfHit(hit);
    if (id === undefined || !history.acked.has(id)) {
      counts.phantom++;
      problem('phantom', `hit ${hit.method} ${hit.path} for no acknowledged call`);
      if (id === undefined) continue;
    }
    const list = hitsByCall.get(id) ?? [];
    list.push(hit);
    hitsByCall.set(id, list);
  }
  for (const list of hitsByCall.values()) list.sort((a, b) => a.at - b.at);

  for (const id of streams.keys()) {
    if (!history.acked.has(id)) {
      counts.phantom++;
      problem('phantom', `stream ${id} was never acknowledged to the client`);
    }
  }

  for (const id of history.acked.keys()) {
    const stream = streams.get(id);
    const terminal = stream?.filter((e) => TERMINAL.has(e.type)) ?? [];
    if (stream === undefined || terminal.length === 0) {
      counts.lost++;
      problem(
        'lost',
        `${id}: ${stream === undefined ? 'no events at all' : `never finished (last event ${stream.at(-1)?.type})`}`,
      );
    } else if (terminal[0]!.type !== 'ServiceCallCancelled' && (hitsByCall.get(id)?.length ?? 0) === 0) {
      counts.lost++;
      problem('lost', `${id}: recorded ${terminal[0]!.type} but the target was never hit`);
    }
  }

  for (const [id, stream] of streams) {
    const terminal = stream.filter((e) => TERMINAL.has(e.type));
    if (terminal.length > 1) {
      counts.multipleTerminal++;
      problem('multipleTerminal', `${id}: ${terminal.map((e) => `${e.type}@v${e.version}`).join(', ')}`);
    }

    let state: ServiceCallState | undefined;
    try {
      state = fold(stream);
    } catch (err) {
      if (!(err instanceof InvalidTransitionError)) throw err;
      counts.invalidTransitions++;
      problem('invalidTransitions', `${id}: ${err.message}`);
    }

    const submitted = stream.find((e) => e.type === 'ServiceCallSubmitted');
    const due = stream.find((e) => e.type === 'DueTimeReached');
    const hits = hitsByCall.get(id) ?? [];
    if (submitted?.type === 'ServiceCallSubmitted') {
      // A reschedule moves the time before which nothing may run (ADR-0012): the last one counts.
      const moved = stream.filter((e) => e.type === 'ServiceCallRescheduled').pop();
      const dueIso = moved?.type === 'ServiceCallRescheduled' ? moved.data.dueAt : submitted.data.dueAt;
      const dueAt = Date.parse(dueIso);
      const early = hits.find((h) => h.at < dueAt);
      if (early !== undefined || (due?.type === 'DueTimeReached' && Date.parse(due.data.reachedAt) < dueAt)) {
        counts.runBeforeDue++;
        problem(
          'runBeforeDue',
          `${id}: due ${dueIso}, ${early !== undefined ? `hit at ${new Date(early.at).toISOString()}` : `recorded due at ${due?.type === 'DueTimeReached' ? due.data.reachedAt : '?'}`}`,
        );
      }
    }
    if (hits.length > 0 && (due === undefined || terminal.some((e) => e.type === 'ServiceCallCancelled'))) {
      counts.runUnrecorded++;
      problem('runUnrecorded', `${id}: hit ${hits.length}× but its events are ${stream.map((e) => e.type).join(', ')}`);
    }

    const delivered = callbackHits.get(id) ?? [];
    if (state !== undefined && state.callback !== null && state.callback.status !== 'NotRequired') {
      // Due (the call ended with an outcome it was asked for): settled, and arrived at least once.
      if (state.callback.status === 'Pending' || (state.callback.status === 'Delivered' && delivered.length === 0)) {
        counts.callbackLost++;
        problem(
          'callbackLost',
          `${id}: callback ${state.callback.status} after ${state.callback.attempts.length} attempts, ${delivered.length} deliveries seen`,
        );
      }
      const ids = new Set(delivered.map((h) => String(h.headers['webhook-id'])));
      if (ids.size > 1 || ids.has(id)) {
        counts.callbackIdMismatch++;
        problem('callbackIdMismatch', `${id}: callback deliveries under webhook-ids ${[...ids].join(', ')}`);
      }
    } else if (delivered.length > 0) {
      counts.phantom++;
      problem('phantom', `${id}: ${delivered.length} callback deliveries for a call with no callback due`);
    }

    if (state !== undefined) {
      const view = history.views.get(id);
      if (view === undefined || !sameJson(view, toView(state))) {
        counts.projectionMismatch++;
        problem(
          'projectionMismatch',
          `${id}: read model ${view === undefined ? 'has no row' : `says ${view.status}, updated ${view.updatedAt}`}; the events fold to ${state.status}, updated ${state.updatedAt}`,
        );
      }
    }
  }
  for (const id of history.views.keys()) {
    if (!streams.has(id)) {
      counts.projectionMismatch++;
      problem('projectionMismatch', `${id}: read-model row without events`);
    }
  }

  for (const [id, hits] of hitsByCall) {
    // One hit per recorded attempt is intended (a call with a retry policy has several);
    // every hit beyond that repeats an attempt.
    const attempts = (streams.get(id) ?? []).filter((e) => ATTEMPT_EVENTS.has(e.type)).length;
    const intended = Math.max(1, attempts);
    if (hits.length > intended) {
      counts.duplicateHits += hits.length - intended;
      if (duplicateExamples.length < EXAMPLES_PER_KIND) {
        duplicateExamples.push(
          `${id}: hit ${hits.length}× (${hits.map((h) => new Date(h.at).toISOString().slice(11, 23)).join(', ')})`,
        );
      }
    }
    const first = hits[0]?.headers['idempotency-key'];
    // This suite never sets the header itself, so Punctual's own value, the call id, is expected.
    if (first !== id) {
      counts.idempotencyKeyMismatch++;
      problem('idempotencyKeyMismatch', `${id}: first hit carried idempotency-key ${String(first)}`);
    }
    // The key is the same on every request of a call, deliberate retries and repeats alike.
    for (const hit of hits.slice(1)) {
      if (hit.headers['idempotency-key'] !== first) {
        counts.idempotencyKeyMismatch++;
        problem(
          'idempotencyKeyMismatch',
          `${id}: a repeat hit carried ${String(hit.headers['idempotency-key'])}, the first ${String(first)}`,
        );
      }
    }
  }

  const ok =
    counts.lost === 0 &&
    counts.multipleTerminal === 0 &&
    counts.phantom === 0 &&
    counts.invalidTransitions === 0 &&
    counts.runBeforeDue === 0 &&
    counts.runUnrecorded === 0 &&
    counts.projectionMismatch === 0 &&
    counts.duplicateHits <= counts.duplicateBound &&
    counts.idempotencyKeyMismatch === 0 &&
    counts.callbackLost === 0 &&
    counts.callbackIdMismatch === 0;
  if (counts.duplicateHits > counts.duplicateBound) {
    problems.set('bound', [`duplicate hits ${counts.duplicateHits} exceed the bound ${counts.duplicateBound}`]);
  }
  return { counts, ok, problems: [...problems.values()].flat(), duplicateExamples };
}

/** The event store and the read model of one database, as the checker needs them. */
export async function loadStoreAndReadModel(
  db: DbOrTx,
  tenantId: string,
): Promise<{ events: StoredEvent[]; views: Map<string, ServiceCallView> }> {
  const events = await readLogAfter(db, LOG_START, 10_000_000);
  const rows = await db.select({ id: serviceCalls.id }).from(serviceCalls).where(eq(serviceCalls.tenantId, tenantId));
  const views = new Map<string, ServiceCallView>();
  for (const { id } of rows) {
    const state = await findServiceCall(db, tenantId, id);
    if (state !== undefined) views.set(id, toView(state));
  }
  return { events, views };
}
