import { and, asc, eq, gt, lte, sql, type SQL } from 'drizzle-orm';
import { flowLeases, flowLimits, flowWaiting, type FlowLimitRow } from '../drizzle/schema';
import type { Db, DbOrTx } from './db';

/**
 * Flow limits (ADR-0018): a tenant's rate (token bucket) and concurrency (leases) per key, kept
 * in PostgreSQL so that every worker shares them. An attempt of a call is sent only when every
 * limit of its keys admits it; a refused call is told how long to wait and registers as waiting,
 * so that the oldest dueAt goes first.
 */

export const FLOW_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const MAX_FLOW_KEYS = 3;
/** The key of the limit every call to a host is subject to, when the tenant defines it. */
export const HOST_KEY_PREFIX = 'host:';

export interface FlowLimitSpec {
  ratePerSecond: number | null;
  burst: number | null;
  concurrency: number | null;
}

export interface FlowLimit extends FlowLimitSpec {
  key: string;
  createdAt: string;
  updatedAt: string;
}

/** A limit with its live counts, as the list shows it. */
export interface FlowLimitSummary extends FlowLimit {
  /** Attempts holding a live lease of this key now. */
  inFlight: number;
  /** Calls waiting for this key now. */
  waiting: number;
}

export interface FlowLimitDetail extends FlowLimitSummary {
  /** The oldest waiting calls (by dueAt), at most WAITING_SHOWN. */
  waitingCalls: { id: string; dueAt: string; since: string }[];
}

export const WAITING_SHOWN = 100;

/** The burst a rate gets when none is given: one second's worth, at least one. */
export function defaultBurst(ratePerSecond: number): number {
  return Math.max(1, Math.ceil(ratePerSecond));
}

/** The keys whose limits a call is subject to: its own, and its host's (when the tenant has host limits). */
export function effectiveKeys(flowKeys: readonly string[] | undefined, url: string, hostLimits: boolean): string[] {
  const keys = new Set(flowKeys ?? []);
  if (hostLimits) keys.add(`${HOST_KEY_PREFIX}${new URL(url).hostname}`);
  return [...keys].sort();
}

/** Tokens in a bucket after `elapsedMs` of refill, never above its burst. */
export function refilled(tokens: number, elapsedMs: number, ratePerSecond: number, burst: number): number {
  return Math.min(burst, tokens + (Math.max(0, elapsedMs) * ratePerSecond) / 1000);
}

/** One key's limit as the admission sees it, with who is ahead of the asking call. */
export interface KeyState {
  key: string;
  ratePerSecond: number | null;
  burst: number | null;
  concurrency: number | null;
  /** Tokens now (already refilled). */
  tokens: number;
  /** How far ahead the key's last reserved send slot is (ms; ≤ 0 or null: none ahead). */
  reservedAheadMs: number | null;
  /** This call's own reserved slot, ms from now (≤ 0: due); null: it holds none. */
  slotInMs: number | null;
  /**
   * The earliest send slot another call holds on this key, ms from now, counting slots passed
   * within the last interval (their holders may be on their way); null: none. Slots reserved
   * ahead for calls due later (`reserveAhead`) leave free stretches before them, which a call
   * without a slot may use when it leaves the next holder its token.
   */
  nextSlotMs?: number | null;
  /** Other calls' live leases of this key. */
  inFlight: number;
  /** Live waiters of this key with an older dueAt than the asking call. */
  ahead: number;
  /** Those of them that are asking now or late to (their wait is over): they go first. */
  aheadAwake: number;
  /** Average lease hold (ms), or null before the first release. */
  holdMs: number | null;
}

/** Suggested wait of a call refused by concurrency before any lease was released once. */
export const DEFAULT_HOLD_MS = 500;
/** The shortest wait suggested: below it a timer costs more than it saves. */
export const MIN_WAIT_MS = 5;
/**
 * A call whose token (and slot) comes within this long is admitted now and told to send then
 * (`sendInMs`): the token is taken at that instant, so the target sees no more than the bucket
 * allows, and the bucket does not sit full meanwhile. Asking again at the instant instead lost
 * the time each ask took: with burst 1 a full bucket cannot bank it (measured: 0.93× of 10/s).
 */
export const ADMIT_AHEAD_MS = 100;

export type KeyVerdict =
  | {
      admitted: true;
      /** Send this long from now (when the token and the call's slot are there); absent: now. */
      sendInMs?: number;
    }
  | {
      admitted: false;
      /** When to ask again: a little before the call can be admitted (ADMIT_AHEAD_MS). */
      waitMs: number;
      /** The call's send slot on this key (ms from now) to keep or to make; null: none. */
      slotInMs: number | null;
      /** Set when the slot is a new reservation: the key's reserved-until moves there. */
      reserves: boolean;
    };

/**
 * Whether one key admits the call now, and if not, how long until it might. Pure, so that tests
 * pin it without a database.
 *
 * The rate is a token bucket with reservations: a call the bucket refuses is given the next free
 * send slot (one interval after the last one handed out, or when the next token is due) and comes
 * back then; a call without a slot never takes a token while slots are handed out ahead of it, so
 * the reserved calls go in the order they asked and a returning call finds its token. A token
 * and slot due within ADMIT_AHEAD_MS admit the call to send then. The concurrency needs a free
 * place after the older waiters whose wait is over have theirs.
 */
export function judgeKey(k: KeyState): KeyVerdict {
  let waitMs = 0;
  let refused = false;
  let slotInMs: number | null = k.slotInMs;
  let reserves = false;
  let sendInMs = 0;
  /** Asks again this much before it can be admitted, to be admitted ahead. */
  const early = (ms: number) => Math.max(0, ms - ADMIT_AHEAD_MS / 2);
  if (k.ratePerSecond !== null) {
    const tokenInMs = k.tokens >= 1 ? 0 : ((1 - k.tokens) * 1000) / k.ratePerSecond;
    if (k.slotInMs !== null) {
      const w = Math.max(k.slotInMs, tokenInMs);
      if (w > ADMIT_AHEAD_MS) {
        refused = true;
        waitMs = Math.max(waitMs, early(w));
      } else sendInMs = Math.max(0, w);
    } else {
      const interval = 1000 / k.ratePerSecond;
      const ahead = k.reservedAheadMs !== null && k.reservedAheadMs > 0 ? k.reservedAheadMs : null;
      // Whether a send at `atMs` leaves the next slot holder its token: one interval before it.
      const fits = (atMs: number) =>
        k.nextSlotMs === undefined || k.nextSlotMs === null || k.nextSlotMs - atMs >= interval;
      const free = ahead === null || (k.nextSlotMs !== undefined && fits(tokenInMs));
      if (free && tokenInMs <= ADMIT_AHEAD_MS) sendInMs = tokenInMs;
      else {
        refused = true;
        // A free stretch before the reserved slots: the next token, held as a slot of its own
        // (the key's reserved-until stays where it is). Otherwise the next slot after the last.
        const inGap = ahead !== null && free;
        const slot = inGap ? tokenInMs : Math.max(tokenInMs, ahead === null ? 0 : ahead + interval);
        slotInMs = slot;
        reserves = !inGap;
        waitMs = Math.max(waitMs, early(slot));
      }
    }
  }
  if (k.concurrency !== null && k.inFlight + k.aheadAwake >= k.concurrency) {
    refused = true;
    const turns = Math.floor((k.inFlight + k.ahead - k.concurrency) / k.concurrency) + 1;
    waitMs = Math.max(waitMs, Math.max(1, turns) * (k.holdMs ?? DEFAULT_HOLD_MS));
  }
  if (!refused) return sendInMs > 0 ? { admitted: true, sendInMs } : { admitted: true };
  return { admitted: false, waitMs: Math.max(MIN_WAIT_MS, waitMs), slotInMs, reserves };
}

export interface AdmissionRequest {
  tenantId: string;
  serviceCallId: string;
  dueAt: string;
  keys: readonly string[];
}

export interface AdmissionPolicy {
  /** How long a lease lives without renewal: what a dead worker's attempt holds a place for. */
  leaseTtlMs: number;
  /** The longest wait suggested, so that a changed or deleted limit reaches waiting calls by then. */
  maxWaitMs: number;
  /**
   * Given when the waiting workflow wakes on `flowLimitChanged` (revision 5): a call refused by a
   * rate key sleeps until its send slot, up to this long, rather than asking again every
   * `maxWaitMs` (a workflow task each time). Waits for a concurrency place stay within `maxWaitMs`:
   * a place is given back without a signal.
   */
  maxSlotWaitMs?: number;
}

export type Admission =
  | {
      admitted: true;
      /** Keys of which this attempt holds a lease: to renew while it runs and release after. */
      leased: string[];
      /** The keys that had a limit (empty: nothing limited the call). */
      limited: string[];
      /** When the call was first refused for this attempt; null when admitted at once. */
      waitedSince: string | null;
      /** When it may send: the admission's instant, plus `sendInMs`. */
      at: string;
      /** Wait this long before sending (ADMIT_AHEAD_MS); 0: send now. */
      sendInMs: number;
    }
  | { admitted: false; waitingFor: string[]; waitMs: number; since: string };

/** Extra life of a waiting row past its suggested wait, for the timer and the workflow task to come back. */
const WAITER_GRACE_MS = 10_000;
/** A reserved slot this close is being taken now: an older call asking does not take it over. */
const SLOT_KEPT_MS = 50;

interface LimitStateRow extends Record<string, unknown> {
  key: string;
  rate_per_second: number | null;
  burst: number | null;
  concurrency: number | null;
  tokens: number;
  hold_ms: number | null;
  elapsed_ms: number;
  reserved_ahead_ms: number | null;
  next_slot_ms: number | null;
  in_flight: number;
  ahead: number;
  ahead_awake: number;
  db_now: Date;
}

/**
 * Asks every limit of the call's keys at once, in one transaction with the limits' rows locked
 * (in key order, so two calls never deadlock). Admitted: a token taken from each bucket, a lease
 * of each concurrency key, the call's waiting rows gone. Refused: the call waits for the keys
 * that refused it, for the longest of their suggested waits, holding the send slot a rate key
 * reserved for it (the key's `reserved_until` moves past it); nothing is taken.
 */
export async function acquire(db: Db, req: AdmissionRequest, policy: AdmissionPolicy): Promise<Admission> {
  return onKeys(req, (keyList) => acquireNow(db, req, keyList, policy));
}

/**
 * Runs `fn` with the SQL list of the request's keys, in this process's turn on each of them
 * (`inTurn`), taken in key order: the order their rows are locked in.
 */
function onKeys<T>(req: AdmissionRequest, fn: (keyList: SQL) => Promise<T>): Promise<T> {
  const keys = [...new Set(req.keys)].sort();
  const keyList = sql.join(
    keys.map((k) => sql`${k}`),
    sql`, `,
  );
  return inTurn(
    keys.map((k) => `${req.tenantId}\u0000${k}`),
    () => fn(keyList),
  );
}

/** A call's rows in flow_waiting: its waits and reserved slots on every key. */
function waitsOf(tenantId: string, serviceCallId: string): SQL | undefined {
  return and(eq(flowWaiting.tenantId, tenantId), eq(flowWaiting.serviceCallId, serviceCallId));
}

/** The last admission queued on each tenant's key in this process. */
const turns = new Map<string, Promise<void>>();

/**
 * Runs `fn` once every earlier admission of this process on each of the names has finished,
 * taking the names in the order given (sorted keys, as the rows are locked, so two stacked calls
 * never wait for each other in a cycle). The row lock alone would serialize them too, but each
 * waiter would hold one of the pool's connections meanwhile: sampled in the bench's flow phase,
 * 17 of the worker's 20 connections waited on one key's row (`Lock:tuple`), none with this queue.
 * Queued here, a saturated key holds one connection per process, and the rest of the pool stays
 * free for the worker's other queries; the lock still orders the processes.
 */
export async function inTurn<T>(names: readonly string[], fn: () => Promise<T>): Promise<T> {
  const [name, ...rest] = names;
  if (name === undefined) return fn();
  const before = turns.get(name) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  const last = before.then(() => mine);
  turns.set(name, last);
  try {
    await before;
    return await inTurn(rest, fn);
  } finally {
    done();
    if (turns.get(name) === last) turns.delete(name);
  }
}

async function acquireNow(db: Db, req: AdmissionRequest, keyList: SQL, policy: AdmissionPolicy): Promise<Admission> {
  return db.transaction(async (tx) => {
    // The locks first, in a statement of their own: under READ COMMITTED a statement sees what
    // was committed when it began, so counting leases in the locking statement would miss those
    // of the transaction it waited for (measured: 5 in flight under a concurrency of 2).
    await tx.execute(sql`
      select 1 from flow_limits
      where tenant_id = ${req.tenantId} and key in (${keyList})
      order by key
      for update`);
    const { rows } = await tx.execute<LimitStateRow>(sql`
      select l.key, l.rate_per_second, l.burst, l.concurrency, l.tokens, l.hold_ms,
        extract(epoch from (clock_timestamp() - l.refilled_at)) * 1000 as elapsed_ms,
        extract(epoch from (l.reserved_until - clock_timestamp())) * 1000 as reserved_ahead_ms,
        (select extract(epoch from (min(w.slot_at) - clock_timestamp())) * 1000 from flow_waiting w
          where w.tenant_id = l.tenant_id and w.key = l.key and w.expires_at > clock_timestamp()
            and w.slot_at > clock_timestamp() - greatest(1000, 1000 / l.rate_per_second) * interval '1 millisecond'
            and w.service_call_id <> ${req.serviceCallId}) as next_slot_ms,
        (select count(*) from flow_leases f
          where f.tenant_id = l.tenant_id and f.key = l.key and f.expires_at > clock_timestamp()
            and f.service_call_id <> ${req.serviceCallId})::int as in_flight,
        (select count(*) from flow_waiting w
          where w.tenant_id = l.tenant_id and w.key = l.key and w.expires_at > clock_timestamp()
            and (w.due_at, w.service_call_id) < (${req.dueAt}::timestamptz, ${req.serviceCallId}::uuid))::int as ahead,
        (select count(*) from flow_waiting w
          where w.tenant_id = l.tenant_id and w.key = l.key and w.expires_at > clock_timestamp()
            and w.wake_at <= clock_timestamp()
            and (w.due_at, w.service_call_id) < (${req.dueAt}::timestamptz, ${req.serviceCallId}::uuid))::int as ahead_awake,
        clock_timestamp() as db_now
      from flow_limits l
      where l.tenant_id = ${req.tenantId} and l.key in (${keyList})
      order by l.key`);
    const first = rows[0];
    const dbNow = first === undefined ? new Date() : new Date(first.db_now);
    const waited = await tx
      .delete(flowWaiting)
      .where(waitsOf(req.tenantId, req.serviceCallId))
      .returning({ key: flowWaiting.key, since: flowWaiting.since, slotAt: flowWaiting.slotAt });
    const slots = new Map(waited.flatMap((w) => (w.slotAt === null ? [] : [[w.key, w.slotAt.getTime()] as const])));
    const since = waited.reduce<Date | null>((min, w) => (min === null || w.since < min ? w.since : min), null);
    if (rows.length === 0) {
      return {
        admitted: true,
        leased: [],
        limited: [],
        waitedSince: since?.toISOString() ?? null,
        at: dbNow.toISOString(),
        sendInMs: 0,
      };
    }
    const states = rows.map((r) => ({
      key: r.key,
      ratePerSecond: r.rate_per_second,
      burst: r.burst,
      concurrency: r.concurrency,
      tokens:
        r.rate_per_second === null
          ? 0
          : refilled(
              Number(r.tokens),
              Number(r.elapsed_ms),
              r.rate_per_second,
              r.burst ?? defaultBurst(r.rate_per_second),
            ),
      reservedAheadMs: r.reserved_ahead_ms === null ? null : Number(r.reserved_ahead_ms),
      slotInMs: slots.has(r.key) ? slots.get(r.key)! - dbNow.getTime() : null,
      nextSlotMs: r.next_slot_ms === null ? null : Number(r.next_slot_ms),
      inFlight: r.in_flight,
      ahead: r.ahead,
      aheadAwake: r.ahead_awake,
      holdMs: r.hold_ms,
    }));
    const verdicts = states.map((s) => ({ key: s.key, verdict: judgeKey(s) }));
    const refusals = verdicts.flatMap((j) => (j.verdict.admitted ? [] : [{ key: j.key, ...j.verdict }]));
    // Oldest dueAt first on a rate key too: a call that makes a reservation goes before the
    // reserved calls with a later dueAt. It takes the earliest of their slots, and each of them
    // moves to the next one (the last to the new slot at the end), so none moves earlier than
    // the timer it sleeps on and the order among them stays. Equal dueAt (a burst due at one
    // instant) keeps the order of asking, so a burst moves nobody.
    const reservedUntil = new Map(
      refusals.flatMap((r) =>
        r.reserves && r.slotInMs !== null ? [[r.key, dbNow.getTime() + r.slotInMs] as const] : [],
      ),
    );
    for (const [i, r] of refusals.entries()) {
      const tailMs = reservedUntil.get(r.key);
      if (tailMs === undefined) continue;
      const tail = new Date(tailMs);
      const { rows: taken } = await tx.execute<{ slot_at: Date }>(sql`
        with younger as (
          select service_call_id, slot_at,
            lead(slot_at) over (order by slot_at, service_call_id) as next_slot,
            row_number() over (order by slot_at, service_call_id) as n
          from flow_waiting
          where tenant_id = ${req.tenantId} and key = ${r.key} and slot_at is not null
            and slot_at > ${dbNow}::timestamptz + ${SLOT_KEPT_MS} * interval '1 millisecond'
            and expires_at > clock_timestamp() and due_at > ${req.dueAt}::timestamptz
        ), moved as (
          update flow_waiting w
          set slot_at = coalesce(y.next_slot, ${tail}::timestamptz),
            expires_at = greatest(w.expires_at,
              coalesce(y.next_slot, ${tail}::timestamptz) + ${WAITER_GRACE_MS} * interval '1 millisecond')
          from younger y
          where w.tenant_id = ${req.tenantId} and w.key = ${r.key} and w.service_call_id = y.service_call_id
          returning y.n, y.slot_at
        )
        select slot_at from moved where n = 1`);
      const slot = taken[0]?.slot_at;
      if (slot === undefined) continue;
      const state = states.find((s) => s.key === r.key)!;
      const verdict = judgeKey({ ...state, slotInMs: new Date(slot).getTime() - dbNow.getTime() });
      // Reserves stays set: the key's last slot is the new one at the end, now held by another call.
      if (!verdict.admitted) refusals[i] = { ...r, waitMs: verdict.waitMs, slotInMs: verdict.slotInMs };
    }
    if (refusals.length > 0) {
      const { maxWaitMs, maxSlotWaitMs } = policy;
      const waitOf = (r: { waitMs: number; slotInMs: number | null }) =>
        maxSlotWaitMs === undefined
          ? Math.min(maxWaitMs, r.waitMs)
          : Math.max(Math.min(maxWaitMs, r.waitMs), Math.min(maxSlotWaitMs, r.waitMs, r.slotInMs ?? 0));
      const waitMs = Math.max(...refusals.map(waitOf));
      const started = since ?? dbNow;
      const wakeAt = new Date(dbNow.getTime() + waitMs);
      // A slot far ahead keeps its row until then, whatever the wait suggested meanwhile.
      const latestSlot = Math.max(0, ...refusals.map((r) => r.slotInMs ?? 0));
      const expiresAt = new Date(Math.max(wakeAt.getTime(), dbNow.getTime() + latestSlot) + WAITER_GRACE_MS);
      // A reservation held on a key that admitted the call now is kept too: it is its place there.
      const kept = states.flatMap((s) =>
        s.slotInMs !== null && !refusals.some((r) => r.key === s.key) ? [{ key: s.key, slotInMs: s.slotInMs }] : [],
      );
      await tx.insert(flowWaiting).values(
        [...refusals, ...kept].map((r) => ({
          tenantId: req.tenantId,
          key: r.key,
          serviceCallId: req.serviceCallId,
          dueAt: new Date(req.dueAt),
          since: started,
          wakeAt,
          slotAt: r.slotInMs === null ? null : new Date(dbNow.getTime() + r.slotInMs),
          expiresAt,
        })),
      );
      for (const [key, untilMs] of reservedUntil) {
        await tx
          .update(flowLimits)
          .set({ reservedUntil: sql`greatest(${flowLimits.reservedUntil}, ${new Date(untilMs)}::timestamptz)` })
          .where(and(eq(flowLimits.tenantId, req.tenantId), eq(flowLimits.key, key)));
      }
      return {
        admitted: false,
        waitingFor: refusals.map((r) => r.key),
        waitMs: Math.ceil(waitMs),
        since: started.toISOString(),
      };
    }
    // Admitted ahead: the latest of the keys' instants. A bucket left below zero is the token
    // taken at that instant (it refills to zero by then).
    const sendInMs = Math.max(0, ...verdicts.map((v) => (v.verdict.admitted ? (v.verdict.sendInMs ?? 0) : 0)));
    for (const s of states) {
      if (s.ratePerSecond === null) continue;
      await tx
        .update(flowLimits)
        .set({ tokens: s.tokens - 1, refilledAt: dbNow })
        .where(and(eq(flowLimits.tenantId, req.tenantId), eq(flowLimits.key, s.key)));
    }
    const leased = states.filter((s) => s.concurrency !== null).map((s) => s.key);
    if (leased.length > 0) {
      const expiresAt = new Date(dbNow.getTime() + policy.leaseTtlMs);
      await tx
        .insert(flowLeases)
        .values(
          leased.map((key) => ({
            tenantId: req.tenantId,
            key,
            serviceCallId: req.serviceCallId,
            acquiredAt: dbNow,
            expiresAt,
          })),
        )
        .onConflictDoUpdate({
          target: [flowLeases.tenantId, flowLeases.key, flowLeases.serviceCallId],
          set: { acquiredAt: dbNow, expiresAt },
        });
    }
    return {
      admitted: true,
      leased,
      limited: states.map((s) => s.key),
      waitedSince: since?.toISOString() ?? null,
      at: new Date(dbNow.getTime() + sendInMs).toISOString(),
      sendInMs: Math.ceil(sendInMs),
    };
  });
}

/**
 * Reserves, ahead of a call's dueAt, its send slot on each rate key of its keys, so that its
 * workflow sleeps until the slot instead of waking at dueAt only to be told to wait (ADR-0018):
 * calls due at one instant under a rate then wake at the rate, one workflow task each, instead of
 * all at once. The slot is the key's next one at or after dueAt, one interval after the last
 * handed out (the latest of them over the call's keys, held on each); the bucket's burst is not
 * spent ahead. It is a reservation like the one a refused attempt gets: the attempt still needs
 * a token when it comes, and an older call asking meanwhile may move it on. Answers the slot, or
 * null when none of the keys has a rate (the call just sleeps until dueAt).
 */
export async function reserveAhead(db: Db, req: AdmissionRequest): Promise<string | null> {
  if (req.keys.length === 0) return null;
  return onKeys(req, (keyList) =>
    db.transaction(async (tx) => {
      const { rows } = await tx.execute<{ key: string; next_at: Date }>(sql`
          select key,
            greatest(${req.dueAt}::timestamptz, clock_timestamp(),
              reserved_until + 1000 / rate_per_second * interval '1 millisecond') as next_at
          from flow_limits
          where tenant_id = ${req.tenantId} and key in (${keyList}) and rate_per_second is not null
          order by key
          for update`);
      // A repeat (the dueAt was moved) gives up what the call held.
      await tx.delete(flowWaiting).where(waitsOf(req.tenantId, req.serviceCallId));
      if (rows.length === 0) return null;
      const slot = new Date(Math.max(...rows.map((r) => new Date(r.next_at).getTime())));
      const dueAt = new Date(req.dueAt);
      await tx.insert(flowWaiting).values(
        rows.map((r) => ({
          tenantId: req.tenantId,
          key: r.key,
          serviceCallId: req.serviceCallId,
          dueAt,
          // Waiting (its detail's waitingFor, the lists' counts) from dueAt on only.
          since: dueAt,
          wakeAt: slot,
          slotAt: slot,
          expiresAt: new Date(slot.getTime() + WAITER_GRACE_MS),
        })),
      );
      await tx
        .update(flowLimits)
        .set({ reservedUntil: sql`greatest(${flowLimits.reservedUntil}, ${slot}::timestamptz)` })
        .where(
          and(
            eq(flowLimits.tenantId, req.tenantId),
            sql`${flowLimits.key} in (${keyList})`,
            sql`${flowLimits.ratePerSecond} is not null`,
          ),
        );
      return slot.toISOString();
    }),
  );
}

/** Gives up the call's waits and reserved slots (a call cancelled while it held them). */
export async function giveUpWaits(db: Db, tenantId: string, serviceCallId: string): Promise<void> {
  await db.delete(flowWaiting).where(waitsOf(tenantId, serviceCallId));
}

/** Keeps a running attempt's leases alive (called on the attempt's heartbeat). */
export async function renewLeases(db: Db, tenantId: string, serviceCallId: string, ttlMs: number): Promise<void> {
  await db.execute(sql`
    update flow_leases set expires_at = clock_timestamp() + ${ttlMs} * interval '1 millisecond'
    where tenant_id = ${tenantId} and service_call_id = ${serviceCallId}`);
}

/**
 * Gives back a call's leases once its attempt's outcome is recorded, and folds how long they were
 * held into each key's average (the wait suggested to calls the concurrency refuses).
 */
export async function releaseLeases(db: Db, tenantId: string, serviceCallId: string): Promise<void> {
  await db.execute(sql`
    with gone as (
      delete from flow_leases where tenant_id = ${tenantId} and service_call_id = ${serviceCallId}
      returning key, extract(epoch from (clock_timestamp() - acquired_at)) * 1000 as held_ms
    )
    update flow_limits l
    set hold_ms = case when l.hold_ms is null then gone.held_ms else l.hold_ms * 0.8 + gone.held_ms * 0.2 end
    from gone where l.tenant_id = ${tenantId} and l.key = gone.key`);
}

/** The keys a call waits for now (its detail's `waitingFor`). */
export async function waitingFor(db: Db, tenantId: string, serviceCallId: string): Promise<string[]> {
  const rows = await db
    .select({ key: flowWaiting.key })
    .from(flowWaiting)
    .where(
      and(
        eq(flowWaiting.tenantId, tenantId),
        eq(flowWaiting.serviceCallId, serviceCallId),
        gt(flowWaiting.expiresAt, sql`clock_timestamp()`),
        lte(flowWaiting.since, sql`clock_timestamp()`),
      ),
    )
    .orderBy(asc(flowWaiting.key));
  return rows.map((r) => r.key);
}

/**
 * The tenants that have at least one `host:` limit, cached for `ttlMs` per process, so a call
 * without flow keys costs no query on its way to the target: once the set is older than the TTL,
 * the next call waits for it to be read again (one query per process per TTL, whatever the
 * traffic; calls asking meanwhile share that query). Not answered from the stale set while it
 * reloads: a worker idle for longer than the TTL would send its next call unlimited, so a
 * `host:` limit would not be sure to apply `ttlMs` after it was defined.
 */
export function hostLimitCache(db: Db, ttlMs: number, now: () => number = Date.now) {
  let tenants: ReadonlySet<string> | undefined;
  let loadedAt = 0;
  let loading: Promise<ReadonlySet<string>> | undefined;
  const load = () => {
    // The set is as old as the query's start: what was defined before it is in it.
    const askedAt = now();
    loading ??= db
      .selectDistinct({ tenantId: flowLimits.tenantId })
      .from(flowLimits)
      .where(sql`${flowLimits.key} like ${`${HOST_KEY_PREFIX}%`}`)
      .then((rows) => {
        tenants = new Set(rows.map((r) => r.tenantId));
        loadedAt = askedAt;
        return tenants;
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  };
  return {
    async has(tenantId: string): Promise<boolean> {
      if (tenants === undefined || now() - loadedAt > ttlMs) return (await load()).has(tenantId);
      return tenants.has(tenantId);
    },
  };
}

function limitOf(row: FlowLimitRow): FlowLimit {
  return {
    key: row.key,
    ratePerSecond: row.ratePerSecond,
    burst: row.burst,
    concurrency: row.concurrency,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/**
 * Defines or replaces a limit. A new bucket starts full; a changed one keeps its tokens, never
 * above the new burst. The calls already waiting give up their send slots (made for the old rate)
 * and meet the new limit when they next ask: `waiting` are their ids, to wake them now.
 */
export async function putFlowLimit(
  db: Db,
  tenantId: string,
  key: string,
  spec: FlowLimitSpec,
): Promise<{ limit: FlowLimit; waiting: string[] }> {
  return db.transaction(async (tx) => {
    const limit = await upsertFlowLimit(tx, tenantId, key, spec);
    const waiting = await tx
      .update(flowWaiting)
      .set({ slotAt: null })
      .where(and(eq(flowWaiting.tenantId, tenantId), eq(flowWaiting.key, key)))
      .returning({ id: flowWaiting.serviceCallId });
    return { limit, waiting: waiting.map((w) => w.id) };
  });
}

async function upsertFlowLimit(db: DbOrTx, tenantId: string, key: string, spec: FlowLimitSpec): Promise<FlowLimit> {
  const [row] = await db
    .insert(flowLimits)
    .values({ tenantId, key, ...spec, tokens: spec.burst ?? 0 })
    .onConflictDoUpdate({
      target: [flowLimits.tenantId, flowLimits.key],
      set: {
        ...spec,
        // A bucket that had no rate starts full; one that had keeps its tokens, within the new burst.
        tokens: sql`case when ${flowLimits.burst} is null then ${spec.burst ?? 0} else least(${flowLimits.tokens}, ${spec.burst ?? 0}) end`,
        // Slots already handed out stand; calls asking from now on queue under the new rate.
        reservedUntil: null,
        updatedAt: sql`now()`,
      },
    })
    .returning();
  if (row === undefined) throw new Error('upsert of a flow limit returned nothing');
  return limitOf(row);
}

/** The live rows of a limit's leases or waiters, counted beside it in one statement. */
function liveCount(t: 'flow_leases' | 'flow_waiting') {
  // Spelled out: in a select from one table drizzle leaves columns unqualified, so `${t.tenantId}
  // = ${flowLimits.tenantId}` compared the inner table's column with itself and counted every
  // tenant's rows. A slot reserved ahead (reserveAhead) is not a wait until its call is due.
  const waiting = t === 'flow_waiting' ? sql` and c.since <= clock_timestamp()` : sql``;
  return sql<number>`(select count(*) from ${sql.identifier(t)} c where c.tenant_id = "flow_limits"."tenant_id"
    and c.key = "flow_limits"."key" and c.expires_at > clock_timestamp()${waiting})::int`;
}

/** Limits with their live counts, in one statement. */
function limitsWithCounts(db: Db, where: SQL | undefined) {
  return db
    .select({ limit: flowLimits, inFlight: liveCount('flow_leases'), waiting: liveCount('flow_waiting') })
    .from(flowLimits)
    .where(where)
    .orderBy(asc(flowLimits.key));
}

export async function listFlowLimits(db: Db, tenantId: string): Promise<FlowLimitSummary[]> {
  const rows = await limitsWithCounts(db, eq(flowLimits.tenantId, tenantId));
  return rows.map((r) => ({ ...limitOf(r.limit), inFlight: r.inFlight, waiting: r.waiting }));
}

export async function getFlowLimit(db: Db, tenantId: string, key: string): Promise<FlowLimitDetail | undefined> {
  const [row] = await limitsWithCounts(db, and(eq(flowLimits.tenantId, tenantId), eq(flowLimits.key, key)));
  if (row === undefined) return undefined;
  const oldest = await db
    .select({ id: flowWaiting.serviceCallId, dueAt: flowWaiting.dueAt, since: flowWaiting.since })
    .from(flowWaiting)
    .where(
      and(
        eq(flowWaiting.tenantId, tenantId),
        eq(flowWaiting.key, key),
        gt(flowWaiting.expiresAt, sql`clock_timestamp()`),
        lte(flowWaiting.since, sql`clock_timestamp()`),
      ),
    )
    .orderBy(asc(flowWaiting.dueAt), asc(flowWaiting.serviceCallId))
    .limit(WAITING_SHOWN);
  return {
    ...limitOf(row.limit),
    inFlight: row.inFlight,
    waiting: row.waiting,
    waitingCalls: oldest.map((w) => ({ id: w.id, dueAt: w.dueAt.toISOString(), since: w.since.toISOString() })),
  };
}

/**
 * Deletes a limit; its leases and waiters go with it, so waiting calls are admitted when they next
 * ask. Answers the waiting calls' ids (to wake them now), or undefined when there was no limit.
 */
export async function deleteFlowLimit(db: Db, tenantId: string, key: string): Promise<string[] | undefined> {
  return db.transaction(async (tx) => {
    const gone = await tx
      .delete(flowLimits)
      .where(and(eq(flowLimits.tenantId, tenantId), eq(flowLimits.key, key)))
      .returning({ key: flowLimits.key });
    if (gone.length === 0) return undefined;
    await tx.delete(flowLeases).where(and(eq(flowLeases.tenantId, tenantId), eq(flowLeases.key, key)));
    const waiting = await tx
      .delete(flowWaiting)
      .where(and(eq(flowWaiting.tenantId, tenantId), eq(flowWaiting.key, key)))
      .returning({ id: flowWaiting.serviceCallId });
    return waiting.map((w) => w.id);
  });
}

/** Per-key live counts across all workers, for the in-flight and waiting gauges. */
export async function flowGaugeValues(
  db: Db,
): Promise<{ tenantId: string; key: string; inFlight: number; waiting: number }[]> {
  const rows = await limitsWithCounts(db, undefined);
  return rows.map((r) => ({ tenantId: r.limit.tenantId, key: r.limit.key, inFlight: r.inFlight, waiting: r.waiting }));
}
