import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually } from '../support/net';

/**
 * POST /v1/service-calls/batch on the real PostgreSQL, Temporal server, worker and relay: each
 * item answered as the single submit would answer it, in order; the accepted ones run once; keys
 * shared by concurrent batches make one call per key.
 */

let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

type Item = { status: number; id?: string; dueAt?: string; createdAt?: string; error?: Record<string, any> };

const batch = async (items: unknown[], opts: { tenant?: TestEnv['tenants']['a'] } = {}) =>
  call(env, 'POST', '/v1/service-calls/batch', { body: { items }, ...opts });

async function eventsOf(tenantId: string, id: string): Promise<string[]> {
  const { rows } = await env.database.db.execute<{ type: string }>(
    sql`select type from events where tenant_id = ${tenantId} and aggregate_id = ${id}::uuid order by version`,
  );
  return rows.map((r) => r.type);
}

describe('batch submit', () => {
  test('good, invalid, refused and replayed items are answered one by one, in order; the good ones run', async () => {
    const run = randomUUID().slice(0, 8);
    const key = `batch-${run}-replayed`;
    const first = await call(env, 'POST', '/v1/service-calls', {
      body: { request: { method: 'POST', url: env.target.url(`/batch/${run}/replayed`), body: { n: 1 } } },
      headers: { 'idempotency-key': key },
    });
    assert.equal(first.status, 202);
    const r = await batch([
      { request: { method: 'POST', url: env.target.url(`/batch/${run}/0`), body: { n: 0 } }, tags: ['batch'] },
      { request: { method: 'GET', url: 'ftp://example.com/' } },
      { request: { method: 'GET', url: 'http://169.254.169.254/latest/meta-data/' } },
      {
        request: { method: 'POST', url: env.target.url(`/batch/${run}/replayed`), body: { n: 1 } },
        idempotencyKey: key,
      },
      { request: { method: 'POST', url: env.target.url(`/batch/${run}/other`) }, idempotencyKey: key },
      { request: { method: 'GET', url: env.target.url(`/batch/${run}/5`) }, tags: ['a\u0000b'] },
      { request: { method: 'GET', url: env.target.url(`/batch/${run}/6`), headers: { 'X-A': 'ключ' } } },
      { request: { method: 'GET', url: env.target.url(`/batch/${run}/7`) }, unknown: true },
      { request: { method: 'GET', url: env.target.url(`/batch/${run}/8`) }, idempotencyKey: 'é' },
      {
        request: { method: 'GET', url: env.target.url(`/batch/${run}/9`) },
        dueAt: new Date(Date.now() + 1_000).toISOString(),
      },
    ]);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const items = r.body.items as Item[];
    assert.deepEqual(
      items.map((i) => i.status),
      [202, 400, 422, 200, 422, 400, 400, 400, 400, 202],
    );
    const fieldOf = (i: number) => items[i]?.error?.errors?.[0]?.field as string | undefined;
    assert.equal(fieldOf(1), 'request.url');
    assert.equal(fieldOf(2), 'request.url');
    assert.equal(items[3]?.id, first.body.id, 'the replayed item names the call made before');
    assert.equal(items[4]?.error?.status, 422);
    assert.match(String(items[4]?.error?.detail), /Idempotency-Key/);
    assert.equal(fieldOf(5), 'tags.0');
    assert.equal(fieldOf(6), 'request.headers.X-A');
    assert.equal(fieldOf(7), 'unknown');
    assert.equal(fieldOf(8), 'idempotencyKey');
    for (const i of [1, 2, 5, 6, 7, 8]) {
      assert.equal(items[i]?.error?.type, 'about:blank');
      assert.equal(items[i]?.error?.status, items[i]?.status);
    }
    // The single submit answers the same items alike.
    for (const i of [1, 2, 5, 6, 7]) {
      const alone = await call(env, 'POST', '/v1/service-calls', {
        body: (
          [
            undefined,
            { request: { method: 'GET', url: 'ftp://example.com/' } },
            { request: { method: 'GET', url: 'http://169.254.169.254/latest/meta-data/' } },
            undefined,
            undefined,
            { request: { method: 'GET', url: env.target.url(`/batch/${run}/5`) }, tags: ['a\u0000b'] },
            { request: { method: 'GET', url: env.target.url(`/batch/${run}/6`), headers: { 'X-A': 'ключ' } } },
            { request: { method: 'GET', url: env.target.url(`/batch/${run}/7`) }, unknown: true },
          ] as unknown[]
        )[i],
      });
      assert.equal(alone.status, items[i]?.status, `item ${i} alone`);
      assert.deepEqual(alone.body.errors, items[i]?.error?.errors, `item ${i} alone names the same field`);
    }

    const ran = [items[0]!.id!, items[9]!.id!];
    for (const id of ran) {
      await eventually(`call ${id} to succeed`, async () => {
        const d = await call(env, 'GET', `/v1/service-calls/${id}`);
        return d.body.status === 'Succeeded' ? true : undefined;
      });
    }
    const hits = env.target.hits.filter((h) => h.path.startsWith(`/batch/${run}/`));
    assert.deepEqual(hits.map((h) => h.path).sort(), [`/batch/${run}/0`, `/batch/${run}/9`, `/batch/${run}/replayed`]);
    assert.equal(hits.find((h) => h.path.endsWith('/0'))?.body, '{"n":0}');
    const detail = await call(env, 'GET', `/v1/service-calls/${items[0]!.id!}`);
    assert.deepEqual(detail.body.tags, ['batch']);
    assert.deepEqual(await eventsOf(env.tenants.a.id, items[9]!.id!), [
      'ServiceCallSubmitted',
      'DueTimeReached',
      'ServiceCallSucceeded',
    ]);
  });

  test('one key twice in a batch: the second item is a replay of the first, or 422 with another request', async () => {
    const run = randomUUID().slice(0, 8);
    const item = { request: { method: 'GET', url: env.target.url(`/batch-dup/${run}`) }, idempotencyKey: run };
    const r = await batch([item, item, { ...item, tags: ['other'] }]);
    const items = r.body.items as Item[];
    assert.deepEqual(
      items.map((i) => i.status),
      [202, 200, 422],
    );
    assert.equal(items[1]?.id, items[0]?.id);
    await eventually('the call to succeed', async () => {
      const d = await call(env, 'GET', `/v1/service-calls/${items[0]!.id!}`);
      return d.body.status === 'Succeeded' ? true : undefined;
    });
    assert.equal(env.target.hits.filter((h) => h.path === `/batch-dup/${run}`).length, 1);
  });

  test('20 concurrent batches sharing idempotency keys make one call per key', async () => {
    const run = randomUUID().slice(0, 8);
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const keys = Array.from({ length: 30 }, (_, i) => `${run}-${i}`);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, b) =>
        batch(
          // Each batch takes the keys in another order, and adds one call without a key.
          [...keys.map((_, i) => keys[(i + b) % keys.length]!), undefined].map((key) => ({
            request: { method: 'GET', url: env.target.url(`/batch-race/${run}/${key ?? 'unkeyed'}`) },
            dueAt: later,
            ...(key === undefined ? {} : { idempotencyKey: key }),
          })),
        ),
      ),
    );
    const byKey = new Map<string, Set<string>>();
    let created = 0;
    for (const [b, r] of answers.entries()) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const items = r.body.items as Item[];
      items.forEach((item, i) => {
        assert.ok(item.status === 202 || item.status === 200, `batch ${b} item ${i}: ${JSON.stringify(item)}`);
        if (item.status === 202) created++;
        if (i === keys.length) return assert.equal(item.status, 202);
        const key = keys[(i + b) % keys.length]!;
        byKey.set(key, (byKey.get(key) ?? new Set()).add(item.id!));
      });
    }
    for (const key of keys) assert.equal(byKey.get(key)?.size, 1, `key ${key}`);
    assert.equal(created, keys.length + 20, 'one new call per key, and each unkeyed item');
    const { rows } = await env.database.db.execute<{ n: number }>(
      sql`select count(*)::int as n from idempotency_keys where tenant_id = ${env.tenants.a.id} and key like ${`${run}-%`}`,
    );
    assert.equal(rows[0]?.n, keys.length);
  });

  test('the batch itself: 1 to 1,000 items, else 400 naming items; another tenant sees none of it', async () => {
    const ok = {
      request: { method: 'GET', url: env.target.url('/batch-limits') },
      dueAt: new Date(Date.now() + 3_600_000).toISOString(),
    };
    const none = await batch([]);
    assert.equal(none.status, 400);
    assert.equal(none.body.errors[0].field, 'items');
    const many = await batch(Array.from({ length: 1001 }, () => ok));
    assert.equal(many.status, 400);
    assert.equal(many.body.errors[0].field, 'items');
    const notObjects = await batch([ok, 'x']);
    assert.equal(notObjects.status, 400);
    assert.equal(notObjects.body.errors[0].field, 'items.1');
    const noItems = await call(env, 'POST', '/v1/service-calls/batch', { body: { calls: [ok] } });
    assert.equal(noItems.status, 400);

    const full = await batch(Array.from({ length: 1000 }, () => ok));
    assert.equal(full.status, 200);
    assert.ok((full.body.items as Item[]).every((i) => i.status === 202));
    const ids = (full.body.items as Item[]).map((i) => i.id);
    assert.equal(new Set(ids).size, 1000);
    const theirs = await call(env, 'GET', `/v1/service-calls/${ids[0]!}`, { tenant: env.tenants.b });
    assert.equal(theirs.status, 404);
    const mine = await call(env, 'GET', `/v1/service-calls/${ids[0]!}`);
    assert.equal(mine.status, 200);
  });

  test('a body over the batch limit → 413 problem+json', async () => {
    const big = 'x'.repeat(17_000);
    const items = Array.from({ length: 1000 }, () => ({
      request: { method: 'POST', url: env.target.url('/batch-413'), body: big },
      dueAt: '2030-01-01T00:00:00Z',
    }));
    const r = await batch(items);
    assert.equal(r.status, 413);
    assert.match(String(r.headers['content-type']), /problem\+json/);
    assert.match(String(r.body.detail), /16 MiB/);
  });
});
