import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { flowWaiting } from '../../drizzle/schema';
import { acquire, getFlowLimit, putFlowLimit, reserveAhead, waitingFor, type Admission } from '../../core/flow-limits';
import { createTestEnv, type TestEnv } from '../support/env';

/**
 * Admission order on a rate key (issue 16: "waiting calls are admitted oldest dueAt first"),
 * against the real PostgreSQL: a call that asks after younger calls reserved their send slots
 * takes the earliest of them, and they each move one slot on, in their order.
 */

let env: TestEnv;
before(async () => {
  env = await createTestEnv({ worker: false, relay: false });
});
after(async () => {
  await env?.close();
});

const POLICY = { leaseTtlMs: 15_000, maxWaitMs: 60_000 };

async function ask(tenantId: string, key: string, id: string, dueAt: Date): Promise<Admission> {
  return acquire(env.database.db, { tenantId, serviceCallId: id, dueAt: dueAt.toISOString(), keys: [key] }, POLICY);
}

async function slotsOf(tenantId: string, key: string): Promise<Map<string, number>> {
  const rows = await env.database.db
    .select({ id: flowWaiting.serviceCallId, slotAt: flowWaiting.slotAt })
    .from(flowWaiting)
    .where(and(eq(flowWaiting.tenantId, tenantId), eq(flowWaiting.key, key)));
  return new Map(rows.map((r) => [r.id, r.slotAt?.getTime() ?? Number.NaN]));
}

test('a rate key: an older call asking late takes the first reserved slot, the younger ones move one slot on', async () => {
  const tenant = env.tenants.a.id;
  const key = 'order-rate';
  // 1/s with burst 1: slots a second apart, far more than the time these requests take.
  await putFlowLimit(env.database.db, tenant, key, { ratePerSecond: 1, burst: 1, concurrency: null });
  const now = Date.now();
  const first = await ask(tenant, key, randomUUID(), new Date(now - 1_000));
  assert.equal(first.admitted, true, 'the full bucket admits the first call');

  const younger = [randomUUID(), randomUUID(), randomUUID()];
  for (const id of younger) assert.equal((await ask(tenant, key, id, new Date(now - 1_000))).admitted, false);
  const before = await slotsOf(tenant, key);
  const slots = younger.map((id) => before.get(id)!);
  for (let i = 1; i < slots.length; i++) {
    assert.ok(slots[i]! - slots[i - 1]! > 900, `slots a second apart in the order asked: ${slots.join(', ')}`);
  }

  // Same dueAt as theirs: it keeps the order of asking and goes last.
  const sameDue = randomUUID();
  const same = await ask(tenant, key, sameDue, new Date(now - 1_000));
  assert.equal(same.admitted, false);
  const afterSame = await slotsOf(tenant, key);
  for (const [i, id] of younger.entries()) assert.equal(afterSame.get(id), slots[i], 'nobody moved for an equal dueAt');
  const lastSlot = afterSame.get(sameDue)!;
  assert.ok(lastSlot - slots[2]! > 900, 'the equal call got the slot after the others');

  // Older than all of them: it takes the first reserved slot, and is told to come back then.
  const older = randomUUID();
  const verdict = await ask(tenant, key, older, new Date(now - 60_000));
  assert.equal(verdict.admitted, false);
  const afterOlder = await slotsOf(tenant, key);
  assert.equal(afterOlder.get(older), slots[0], 'the older call holds the first slot');
  assert.equal(afterOlder.get(younger[0]!), slots[1]);
  assert.equal(afterOlder.get(younger[1]!), slots[2]);
  assert.equal(afterOlder.get(younger[2]!), lastSlot);
  assert.ok(afterOlder.get(sameDue)! - lastSlot > 900, 'the last one moved to a new slot at the end');
  if (!verdict.admitted) {
    const comesBackIn = verdict.waitMs;
    assert.ok(
      comesBackIn < slots[1]! - Date.now(),
      `told to come back at its slot (${comesBackIn} ms), not at the end`,
    );
  }

  // A younger call coming back at its old slot's time finds its new one, later, and waits again.
  const again = await acquire(
    env.database.db,
    { tenantId: tenant, serviceCallId: younger[0]!, dueAt: new Date(now - 1_000).toISOString(), keys: [key] },
    POLICY,
  );
  assert.equal(again.admitted, false, 'its slot moved on: not yet');
});

test('slots reserved ahead: one interval apart from dueAt on, not waits until then, and the stretch before them stays usable', async () => {
  const tenant = env.tenants.a.id;
  const key = 'ahead-rate';
  await putFlowLimit(env.database.db, tenant, key, { ratePerSecond: 2, burst: 1, concurrency: null });
  const dueAt = new Date(Math.ceil(Date.now() / 1000) * 1000 + 20_000);
  const ids = [randomUUID(), randomUUID(), randomUUID()];
  const slots: number[] = [];
  for (const id of ids) {
    const slot = await reserveAhead(env.database.db, {
      tenantId: tenant,
      serviceCallId: id,
      dueAt: dueAt.toISOString(),
      keys: [key, 'no-such-limit'],
    });
    assert.ok(slot !== null, 'a rate key gives a slot');
    slots.push(new Date(slot).getTime());
  }
  assert.deepEqual(
    slots.map((s) => s - dueAt.getTime()),
    [0, 500, 1000],
    'the first at dueAt, then one interval (1/2 s) apart',
  );
  // Not due yet: nobody waits for the limit, though the slots are held.
  assert.deepEqual(await waitingFor(env.database.db, tenant, ids[0]!), []);
  assert.equal((await getFlowLimit(env.database.db, tenant, key))?.waiting, 0);
  assert.deepEqual(await slotsOf(tenant, key), new Map(ids.map((id, i) => [id, slots[i]!])));

  // A call due now is not queued behind them: the bucket's token now is free, and the next one
  // is held in the stretch before dueAt.
  const now = new Date(Date.now() - 100);
  assert.equal((await ask(tenant, key, randomUUID(), now)).admitted, true, 'the token there is free');
  const next = await ask(tenant, key, randomUUID(), now);
  assert.ok(!next.admitted && next.waitMs <= 600, `the next token, not a slot after dueAt: ${JSON.stringify(next)}`);

  // Moved: a repeat replaces the call's reservation; a key without a rate gives none.
  const again = await reserveAhead(env.database.db, {
    tenantId: tenant,
    serviceCallId: ids[0]!,
    dueAt: dueAt.toISOString(),
    keys: [key],
  });
  assert.equal(new Date(again!).getTime() - dueAt.getTime(), 1500, 'after the last slot handed out');
  assert.equal((await slotsOf(tenant, key)).size, 4, "its old slot is gone, the due-now call's is there");
  await putFlowLimit(env.database.db, tenant, 'ahead-conc', { ratePerSecond: null, burst: null, concurrency: 1 });
  assert.equal(
    await reserveAhead(env.database.db, {
      tenantId: tenant,
      serviceCallId: randomUUID(),
      dueAt: dueAt.toISOString(),
      keys: ['ahead-conc'],
    }),
    null,
  );
});

test("a limit's counts are its own: another tenant's (and another key's) waiting calls and leases do not show in them", async () => {
  const [a, b] = [env.tenants.a.id, env.tenants.b.id];
  for (const tenant of [a, b]) {
    await putFlowLimit(env.database.db, tenant, 'counted', { ratePerSecond: null, burst: null, concurrency: 1 });
  }
  await putFlowLimit(env.database.db, b, 'other', { ratePerSecond: null, burst: null, concurrency: 1 });
  const dueAt = new Date(Date.now() - 1_000);
  // Tenant b: one call in flight and one waiting on 'counted', one in flight on 'other'.
  assert.equal((await ask(b, 'counted', randomUUID(), dueAt)).admitted, true);
  assert.equal((await ask(b, 'counted', randomUUID(), dueAt)).admitted, false);
  assert.equal((await ask(b, 'other', randomUUID(), dueAt)).admitted, true);
  const mine = await getFlowLimit(env.database.db, a, 'counted');
  assert.deepEqual([mine?.inFlight, mine?.waiting], [0, 0]);
  const theirs = await getFlowLimit(env.database.db, b, 'counted');
  assert.deepEqual([theirs?.inFlight, theirs?.waiting], [1, 1]);
});
