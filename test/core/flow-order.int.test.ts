import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { flowWaiting } from '../../drizzle/schema';
import { acquire, putFlowLimit, type Admission } from '../../core/flow-limits';
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
