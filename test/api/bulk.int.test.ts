import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually, sleep } from '../support/net';

/**
 * Bulk cancel and bulk replay on the real PostgreSQL, Temporal server, worker and relay: only
 * the caller's tenant is touched, calls in other states are skipped, the same bulk replay twice
 * replays nothing twice.
 */

let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

async function submitMany(n: number, body: (i: number) => unknown, tenant = env.tenants.a): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const part = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, (_, j) =>
        call(env, 'POST', '/v1/service-calls', { body: body(i + j), tenant }),
      ),
    );
    for (const r of part) {
      assert.equal(r.status, 202);
      ids.push(String(r.body.id));
    }
  }
  return ids;
}

async function statusCounts(tenantId: string, tag: string): Promise<Record<string, number>> {
  const { rows } = await env.database.db.execute<{ status: string; n: number }>(
    sql`select status, count(*)::int as n from service_calls where tenant_id = ${tenantId} and ${tag} = any(tags) group by status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

describe('bulk cancel', () => {
  test('500 calls by tag: all cancelled, none run; the other tenant’s calls with that tag untouched', async () => {
    const tag = `bulk-${randomUUID().slice(0, 8)}`;
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const call_ = (i: number) => ({
      request: { method: 'GET', url: env.target.url(`/bulk-cancel/${i}`) },
      dueAt: later,
      tags: [tag],
    });
    const ids = await submitMany(500, call_);
    await submitMany(20, call_, env.tenants.b);
    await eventually('the read model to hold every call', async () => {
      const a = await statusCounts(env.tenants.a.id, tag);
      const b = await statusCounts(env.tenants.b.id, tag);
      return a.Scheduled === 500 && b.Scheduled === 20 ? true : undefined;
    });
    const r = await call(env, 'POST', '/v1/service-calls/bulk/cancel', { body: { filter: { tag } } });
    assert.equal(r.status, 200);
    assert.equal(r.body.matched, 500);
    assert.equal(r.body.affected, 500);
    assert.deepEqual([...(r.body.ids as string[])].sort(), [...ids].sort());
    await eventually('the read model to show them cancelled', async () =>
      (await statusCounts(env.tenants.a.id, tag)).Cancelled === 500 ? true : undefined,
    );
    assert.deepEqual(await statusCounts(env.tenants.b.id, tag), { Scheduled: 20 });
    // Again: nothing left to cancel.
    const again = await call(env, 'POST', '/v1/service-calls/bulk/cancel', { body: { filter: { tag: [tag] } } });
    assert.deepEqual(again.body, { matched: 500, affected: 0, ids: [] });
    const b = await call(env, 'POST', '/v1/service-calls/bulk/cancel', {
      body: { filter: { tag, status: 'Scheduled' } },
      tenant: env.tenants.b,
    });
    assert.equal(b.body.affected, 20);
    // The workflows heard of it: nothing runs when its time would have come.
    const [first] = ids;
    const detail = await call(env, 'GET', `/v1/service-calls/${first}`);
    assert.equal(detail.body.status, 'Cancelled');
  });

  test('an empty filter, an unknown field or a bad value: 400 naming the field', async () => {
    for (const [body, field] of [
      [{ filter: {} }, 'filter'],
      [{ filter: { status: [] } }, 'filter'],
      [{}, 'filter'],
      [{ filter: { status: 'Done' } }, 'filter.status'],
      [{ filter: { createdAfter: 'yesterday' } }, 'filter.createdAfter'],
      [{ filter: { tag: 'x' }, limit: 10_001 }, 'limit'],
    ] as const) {
      const r = await call(env, 'POST', '/v1/service-calls/bulk/cancel', { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(String(r.headers['content-type']), /problem\+json/);
      assert.ok(
        (r.body.errors as { field: string }[]).some((e) => e.field.startsWith(field)),
        `${JSON.stringify(body)}: ${JSON.stringify(r.body.errors)}`,
      );
    }
    const replay = await call(env, 'POST', '/v1/service-calls/bulk/replay', { body: { filter: {} } });
    assert.equal(replay.status, 400);
  });
});

describe('bulk replay', () => {
  test('every Failed call, once: the same request again replays none twice; other statuses and tenants untouched', async () => {
    const tag = `replay-${randomUUID().slice(0, 8)}`;
    let answer = 500;
    for (let i = 0; i < 30; i++) env.target.route(`/bulk-replay/${i}`, () => ({ status: answer }));
    const failing = await submitMany(30, (i) => ({
      request: { method: 'POST', url: env.target.url(`/bulk-replay/${i}`), headers: { 'X-Api-Key': `k-${i}` } },
      tags: [tag],
    }));
    const ok = await submitMany(5, () => ({
      request: { method: 'GET', url: env.target.url('/status/200') },
      tags: [tag],
    }));
    const foreign = await submitMany(
      5,
      () => ({ request: { method: 'GET', url: env.target.url('/status/500') }, tags: [tag] }),
      env.tenants.b,
    );
    await eventually('every call to finish', async () => {
      const a = await statusCounts(env.tenants.a.id, tag);
      const b = await statusCounts(env.tenants.b.id, tag);
      return a.Failed === 30 && a.Succeeded === 5 && b.Failed === 5 ? true : undefined;
    });
    // The replays succeed: the target answers 200 from now on, and must see each call's secret.
    answer = 200;
    const headers = { 'idempotency-key': `bulk-${tag}` };
    const body = { filter: { status: ['Failed'], tag } };
    const r = await call(env, 'POST', '/v1/service-calls/bulk/replay', { body, headers });
    assert.equal(r.status, 200);
    assert.equal(r.body.matched, 30);
    assert.equal(r.body.affected, 30);
    const again = await call(env, 'POST', '/v1/service-calls/bulk/replay', { body, headers });
    assert.deepEqual(again.body, { matched: 30, affected: 0, ids: [] });
    await eventually('the replays to succeed', async () =>
      (await statusCounts(env.tenants.a.id, tag)).Succeeded === 35 ? true : undefined,
    );
    for (const [i, id] of failing.entries()) {
      const hits = env.target.hitsFor(`/bulk-replay/${i}`);
      assert.equal(hits.length, 2, `call ${i}`);
      assert.equal(hits[1]?.headers['x-api-key'], `k-${i}`);
      const detail = await call(env, 'GET', `/v1/service-calls/${id}`);
      assert.equal((detail.body.replays as string[]).length, 1);
    }
    assert.ok(ok.length === 5);
    assert.equal(foreign.length, 5);
    assert.deepEqual(await statusCounts(env.tenants.b.id, tag), { Failed: 5 });
    await sleep(200);
  });
});
