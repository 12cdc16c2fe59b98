import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ADMIT_AHEAD_MS,
  defaultBurst,
  effectiveKeys,
  inTurn,
  judgeKey,
  refilled,
  type KeyState,
} from '../../core/flow-limits';

/** The pure parts of flow-limit admission (ADR-0018): the bucket, reserved slots, concurrency. */

const key = (over: Partial<KeyState>): KeyState => ({
  key: 'k',
  ratePerSecond: null,
  burst: null,
  concurrency: null,
  tokens: 0,
  reservedAheadMs: null,
  slotInMs: null,
  inFlight: 0,
  ahead: 0,
  aheadAwake: 0,
  holdMs: null,
  ...over,
});

test('the bucket refills at the rate, never above its burst; the default burst is one second of rate', () => {
  assert.equal(refilled(0, 500, 10, 1), 1);
  assert.equal(refilled(0, 50, 10, 5), 0.5);
  assert.equal(refilled(-1, 100, 10, 1), 0);
  assert.equal(defaultBurst(2.5), 3);
  assert.equal(defaultBurst(0.1), 1);
});

test('a token and no slot ahead admits; a token due soon admits to send then; a later one reserves the next slot', () => {
  assert.deepEqual(judgeKey(key({ ratePerSecond: 10, burst: 1, tokens: 1 })), { admitted: true });
  // The token is 50 ms away (≤ ADMIT_AHEAD_MS): admitted now, to send when it is there.
  assert.deepEqual(judgeKey(key({ ratePerSecond: 10, burst: 1, tokens: 0.5 })), { admitted: true, sendInMs: 50 });
  // 1/s: the token is 500 ms away. A slot there, and the call asks again 50 ms before it.
  assert.deepEqual(judgeKey(key({ ratePerSecond: 1, burst: 1, tokens: 0.5 })), {
    admitted: false,
    waitMs: 500 - ADMIT_AHEAD_MS / 2,
    slotInMs: 500,
    reserves: true,
  });
});

test('a call without a slot queues behind the slots handed out, even with a token there', () => {
  const v = judgeKey(key({ ratePerSecond: 10, burst: 1, tokens: 1, reservedAheadMs: 300 }));
  assert.deepEqual(v, { admitted: false, waitMs: 400 - ADMIT_AHEAD_MS / 2, slotInMs: 400, reserves: true });
});

test('slots reserved ahead leave free stretches: a call without a slot uses one when it leaves the next holder its token', () => {
  // The next holder's slot is 2 s away (reserved ahead for calls due then): a token now is free.
  assert.deepEqual(
    judgeKey(key({ ratePerSecond: 10, burst: 1, tokens: 1, reservedAheadMs: 5_000, nextSlotMs: 2_000 })),
    { admitted: true },
  );
  // The next token soon: admitted to send then. Later (1/s): held as a slot of its own in the
  // stretch, and the key's last slot stays where it is.
  assert.deepEqual(
    judgeKey(key({ ratePerSecond: 10, burst: 1, tokens: 0.5, reservedAheadMs: 5_000, nextSlotMs: 2_000 })),
    { admitted: true, sendInMs: 50 },
  );
  assert.deepEqual(
    judgeKey(key({ ratePerSecond: 1, burst: 1, tokens: 0.5, reservedAheadMs: 9_000, nextSlotMs: 4_000 })),
    { admitted: false, waitMs: 500 - ADMIT_AHEAD_MS / 2, slotInMs: 500, reserves: false },
  );
  // The next holder is within an interval, or late (its slot just passed): it gets the token, and
  // this call queues behind the last slot.
  for (const nextSlotMs of [60, -40]) {
    assert.deepEqual(
      judgeKey(key({ ratePerSecond: 10, burst: 1, tokens: 1, reservedAheadMs: 300, nextSlotMs })),
      { admitted: false, waitMs: 400 - ADMIT_AHEAD_MS / 2, slotInMs: 400, reserves: true },
      `next slot in ${nextSlotMs} ms`,
    );
  }
  // Slots ahead but none held any more (their calls went, or gave them up): the token is free.
  assert.deepEqual(judgeKey(key({ ratePerSecond: 10, burst: 1, tokens: 1, reservedAheadMs: 300, nextSlotMs: null })), {
    admitted: true,
  });
});

test('a reserved call takes a token at its slot, waits for its slot before, and for a token after', () => {
  assert.deepEqual(judgeKey(key({ ratePerSecond: 10, tokens: 1, slotInMs: -20, reservedAheadMs: 500 })), {
    admitted: true,
  });
  // Its slot 200 ms away: it asks again 50 ms before, and is then admitted to send at the slot.
  assert.deepEqual(judgeKey(key({ ratePerSecond: 10, tokens: 1, slotInMs: 200 })), {
    admitted: false,
    waitMs: 200 - ADMIT_AHEAD_MS / 2,
    slotInMs: 200,
    reserves: false,
  });
  assert.deepEqual(judgeKey(key({ ratePerSecond: 10, tokens: 1, slotInMs: 40 })), { admitted: true, sendInMs: 40 });
  // Late for its slot, and the token 80 ms away (the one before it took its own late): send then.
  assert.deepEqual(judgeKey(key({ ratePerSecond: 10, tokens: 0.2, slotInMs: -30 })), { admitted: true, sendInMs: 80 });
  // A bucket below zero (a token taken ahead): the next token is that much later.
  assert.deepEqual(judgeKey(key({ ratePerSecond: 1, tokens: -0.5, slotInMs: -30 })), {
    admitted: false,
    waitMs: 1_500 - ADMIT_AHEAD_MS / 2,
    slotInMs: -30,
    reserves: false,
  });
});

test('concurrency: a free place admits unless older awake waiters take it; the wait is turns of the hold', () => {
  assert.deepEqual(judgeKey(key({ concurrency: 2, inFlight: 1 })), { admitted: true });
  assert.equal(judgeKey(key({ concurrency: 2, inFlight: 1, aheadAwake: 1, ahead: 1 })).admitted, false);
  // Older waiters still asleep do not hold a free place back.
  assert.deepEqual(judgeKey(key({ concurrency: 2, inFlight: 1, ahead: 3 })), { admitted: true });
  const v = judgeKey(key({ concurrency: 2, inFlight: 2, ahead: 2, holdMs: 300 }));
  assert.ok(!v.admitted && v.waitMs === 600 && v.slotInMs === null);
});

test('the keys of a call: its own, and its host when the tenant has host limits', () => {
  assert.deepEqual(effectiveKeys(['b', 'a', 'b'], 'https://api.example.com/x', false), ['a', 'b']);
  assert.deepEqual(effectiveKeys(undefined, 'https://api.example.com/x', true), ['host:api.example.com']);
});

test('admissions of one process take their turns per key, in key order, and a failed one passes its turn on', async () => {
  const open = new Map<string, number>();
  let most = 0;
  const trace: string[] = [];
  const holding = (names: string[], label: string, ms: number, fail = false) =>
    inTurn(names, async () => {
      for (const n of names) open.set(n, (open.get(n) ?? 0) + 1);
      most = Math.max(most, ...open.values());
      trace.push(`${label}+`);
      await new Promise((r) => setTimeout(r, ms));
      trace.push(`${label}-`);
      for (const n of names) open.set(n, open.get(n)! - 1);
      if (fail) throw new Error(`${label} failed`);
      return label;
    });
  const results = await Promise.allSettled([
    holding(['t\0a'], 'A', 30),
    holding(['t\0a', 't\0b'], 'B', 10, true),
    holding(['t\0b'], 'C', 10),
    holding(['u\0a'], 'D', 5),
    holding(['t\0a'], 'E', 5),
  ]);
  assert.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    ['A', 'B failed', 'C', 'D', 'E'],
  );
  assert.equal(most, 1, 'never two admissions on one name at once');
  // D (another tenant's key) and C (key b, free until B takes it) run beside A; B waits for A,
  // then for C; E, queued on a behind B, runs once B failed.
  assert.ok(trace.indexOf('D+') < trace.indexOf('A-'));
  assert.ok(trace.indexOf('C+') < trace.indexOf('A-'));
  assert.ok(trace.indexOf('B+') > trace.indexOf('A-') && trace.indexOf('B+') > trace.indexOf('C-'));
  assert.ok(trace.indexOf('E+') > trace.indexOf('B-'));
});
