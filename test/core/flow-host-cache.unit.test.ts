import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Db } from '../../core/db';
import { hostLimitCache } from '../../core/flow-limits';

/**
 * The per-process cache of which tenants have `host:` limits (ADR-0018): one query per TTL, and
 * never an answer older than the TTL, however long the worker was idle.
 */

/** A stand-in for the one query the cache makes: answers `tenants()` as it is when asked. */
function fakeDb(tenants: () => string[]) {
  let queries = 0;
  const db = {
    selectDistinct: () => ({
      from: () => ({
        where: () => {
          queries++;
          const rows = tenants().map((tenantId) => ({ tenantId }));
          return Promise.resolve(rows);
        },
      }),
    }),
  } as unknown as Db;
  return { db, queries: () => queries };
}

test('within the TTL the cached answer stands: one query for many calls', async () => {
  let clock = 1_000;
  const { db, queries } = fakeDb(() => ['t1']);
  const cache = hostLimitCache(db, 5_000, () => clock);
  assert.equal(await cache.has('t1'), true);
  clock += 4_000;
  assert.deepEqual(await Promise.all([cache.has('t1'), cache.has('t2'), cache.has('t1')]), [true, false, true]);
  assert.equal(queries(), 1);
});

test('a limit defined while the worker was idle applies to its next call after the TTL', async () => {
  let clock = 1_000;
  let defined: string[] = [];
  const { db, queries } = fakeDb(() => defined);
  const cache = hostLimitCache(db, 5_000, () => clock);
  assert.equal(await cache.has('t1'), false);
  defined = ['t1'];
  clock += 60_000;
  // The first call after a quiet spell waits for the set to be read again, instead of being
  // answered from the stale one (which would send it unlimited).
  assert.equal(await cache.has('t1'), true);
  assert.equal(queries(), 2);
});

test('calls that find the set stale together share one query', async () => {
  let clock = 1_000;
  const { db, queries } = fakeDb(() => ['t1']);
  const cache = hostLimitCache(db, 100, () => clock);
  await cache.has('t1');
  clock += 1_000;
  await Promise.all(Array.from({ length: 5 }, () => cache.has('t1')));
  assert.equal(queries(), 2);
});
