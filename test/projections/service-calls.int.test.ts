import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import { consumerCheckpoints, serviceCalls } from '../../drizzle/schema';
import type { StoredEvent } from '../../core/events';
import { LOG_START, readLogAfter } from '../../core/event-store';
import { fold } from '../../core/service-call';
import { PROJECTION_NAME, applyEvents, findServiceCall, serviceCallsProjection } from '../../projections/service-calls';
import { toView } from '../../core/view';
import { runConsumerOnce, type LogConsumer } from '../../projections/relay';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually } from '../support/net';

let env: TestEnv;
before(async () => {
  env = await createTestEnv({ relay: false });
});
after(async () => {
  await env?.close();
});

/** Every call as folded straight from the event store: what a rebuild must produce. */
async function rebuildInMemory(): Promise<Map<string, ReturnType<typeof toView>>> {
  const all = await readLogAfter(env.database.db, LOG_START, 1_000_000);
  const byCall = new Map<string, StoredEvent[]>();
  for (const e of all)
    byCall.set(`${e.tenantId}/${e.aggregateId}`, [...(byCall.get(`${e.tenantId}/${e.aggregateId}`) ?? []), e]);
  const out = new Map<string, ReturnType<typeof toView>>();
  for (const [key, events] of byCall) {
    out.set(key, toView(fold(events.sort((a, b) => a.version - b.version))!));
  }
  return out;
}

test('the projection stopped and restarted mid-stream ends equal to a rebuild from the events', async () => {
  // A realistic log: calls that succeed, fail and get cancelled, run by the real worker.
  const relay = await env.startRelay();
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    const future = i % 5 === 0;
    const r = await call(env, 'POST', '/v1/service-calls', {
      body: {
        request: {
          method: 'POST',
          url: env.target.url(i % 3 === 0 ? '/status/503' : '/ok'),
          headers: { 'x-api-key': `k${i}` },
        },
        tags: [`n${i % 4}`],
        ...(future ? { dueAt: new Date(Date.now() + 60_000).toISOString() } : {}),
      },
    });
    ids.push(String(r.body.id));
    if (future) await call(env, 'POST', `/v1/service-calls/${String(r.body.id)}/cancel`);
  }
  await eventually(
    'every call to finish',
    async () => {
      const states = await Promise.all(ids.map((id) => findServiceCall(env.database.db, env.tenants.a.id, id)));
      return states.every((s) => s !== undefined && ['Succeeded', 'Failed', 'Cancelled'].includes(s.status))
        ? true
        : undefined;
    },
    30_000,
  );
  await relay.stop();

  // Start the read model over, then project in small batches with a crash in the middle.
  await env.database.db.delete(serviceCalls);
  await env.database.db.delete(consumerCheckpoints).where(eq(consumerCheckpoints.name, PROJECTION_NAME));
  let batches = 0;
  const crashing: LogConsumer = {
    ...serviceCallsProjection,
    async handle(batch, tx) {
      await applyEvents(tx, batch);
      if (++batches === 4) throw new Error('projector crashed mid-batch');
    },
  };
  assert.equal(await runConsumerOnce(env.database.db, crashing, 7), 7);
  assert.equal(await runConsumerOnce(env.database.db, crashing, 7), 7);
  assert.equal(await runConsumerOnce(env.database.db, crashing, 7), 7);
  await assert.rejects(runConsumerOnce(env.database.db, crashing, 7), /crashed/);
  const [partial] = await env.database.db.select({ n: sql<number>`count(*)::int` }).from(serviceCalls);
  assert.ok((partial?.n ?? 0) > 0 && (partial?.n ?? 0) <= 21, 'the crashed batch left nothing behind');

  // Restart: replays the crashed batch and carries on; running it again changes nothing.
  while ((await runConsumerOnce(env.database.db, serviceCallsProjection, 7)) > 0);
  const expected = await rebuildInMemory();
  const rows = await env.database.db.select().from(serviceCalls);
  assert.equal(rows.length, expected.size);
  for (const row of rows) {
    const state = await findServiceCall(env.database.db, row.tenantId, row.id);
    assert.deepEqual(toView(state!), expected.get(`${row.tenantId}/${row.id}`));
  }
  const statuses = rows.map((r) => r.status).sort();
  assert.ok(statuses.includes('Succeeded') && statuses.includes('Failed') && statuses.includes('Cancelled'));
  assert.ok(
    rows.every((r) => JSON.stringify(r.state.request.headers).includes('[REDACTED]')),
    'headers are stored redacted',
  );
});
