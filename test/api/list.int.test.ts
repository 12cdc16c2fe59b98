import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { call, createTestEnv, type Tenant, type TestEnv } from '../support/env';
import { eventually, sleep } from '../support/net';

/**
 * GET /v1/service-calls against the real projection: every filter combination over a seeded set
 * whose expected answer is computed here from what was submitted (and the status the detail
 * endpoint reports), page walks while calls keep arriving, ties in createdAt, and bad filters.
 */

let env: TestEnv;
before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

interface Model {
  id: string;
  tags: string[];
  createdAt: string;
  dueAt: string;
  status: string;
}

type Filter = {
  status?: string[];
  tag?: string[];
  createdAfter?: string;
  createdBefore?: string;
  dueAfter?: string;
  dueBefore?: string;
};

const HOUR = 3_600_000;

async function submit(tenant: Tenant, body: Record<string, unknown>) {
  const r = await call(env, 'POST', '/v1/service-calls', { tenant, body });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body as { id: string; dueAt: string; createdAt: string };
}

function queryString(filter: Filter, limit: number, cursor: string | undefined, commaStatuses: boolean): string {
  const params = new URLSearchParams();
  if (filter.status !== undefined && filter.status.length > 0) {
    if (commaStatuses) params.append('status', filter.status.join(','));
    else for (const s of filter.status) params.append('status', s);
  }
  for (const t of filter.tag ?? []) params.append('tag', t);
  for (const key of ['createdAfter', 'createdBefore', 'dueAfter', 'dueBefore'] as const) {
    const v = filter[key];
    if (v !== undefined) params.append(key, v);
  }
  params.append('limit', String(limit));
  if (cursor !== undefined) params.append('cursor', cursor);
  return params.toString();
}

/** Every page of a list, in order. */
async function walk(
  tenant: Tenant,
  filter: Filter,
  limit: number,
  opts: { commaStatuses?: boolean; between?: () => Promise<void> } = {},
) {
  const pages: Record<string, any>[][] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const r = await call(
      env,
      'GET',
      `/v1/service-calls?${queryString(filter, limit, cursor, opts.commaStatuses ?? false)}`,
      { tenant },
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const items = r.body.items as Record<string, any>[];
    assert.ok(items.length <= limit, `a page of ${items.length} with limit ${limit}`);
    pages.push(items);
    if (r.body.nextCursor === null) return pages;
    assert.equal(typeof r.body.nextCursor, 'string');
    assert.ok(items.length === limit, 'only the last page may be short');
    cursor = r.body.nextCursor as string;
    await opts.between?.();
  }
  throw new Error('more than 1000 pages');
}

/** The answer computed without the database: filter, then newest first, ties by id descending. */
function expected(model: Model[], filter: Filter): string[] {
  const t = (iso: string) => Date.parse(iso);
  return model
    .filter((c) => (filter.status ?? []).length === 0 || filter.status!.includes(c.status))
    .filter((c) => (filter.tag ?? []).every((tag) => c.tags.includes(tag)))
    .filter((c) => filter.createdAfter === undefined || t(c.createdAt) >= t(filter.createdAfter))
    .filter((c) => filter.createdBefore === undefined || t(c.createdAt) < t(filter.createdBefore))
    .filter((c) => filter.dueAfter === undefined || t(c.dueAt) >= t(filter.dueAfter))
    .filter((c) => filter.dueBefore === undefined || t(c.dueAt) < t(filter.dueBefore))
    .sort((a, b) => t(b.createdAt) - t(a.createdAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .map((c) => c.id);
}

describe('filters', () => {
  const model: Model[] = [];
  const otherTenantIds = new Set<string>();
  let base = 0;

  before(async () => {
    base = Date.now();
    // Four kinds in turn: waiting (due later), cancelled, succeeded, failed (a 400 is not retried).
    for (let i = 0; i < 32; i++) {
      const kind = i % 4;
      const tags = [
        'all',
        i % 2 === 0 ? 'even' : 'odd',
        ...(i % 3 === 0 ? ['three'] : []),
        ...(i % 5 === 0 ? ['five'] : []),
        ...(i === 7 || i === 14 ? ['a,b'] : []),
      ];
      const due = kind <= 1 ? { dueAt: new Date(base + (i + 1) * HOUR).toISOString() } : {};
      const url = env.target.url(kind === 3 ? '/status/400' : '/ok');
      const r = await submit(env.tenants.a, { request: { method: 'POST', url }, tags, ...due });
      if (kind === 1) {
        const cancelled = await call(env, 'POST', `/v1/service-calls/${r.id}/cancel`);
        assert.equal(cancelled.status, 202);
      }
      model.push({ id: r.id, tags, createdAt: r.createdAt, dueAt: r.dueAt, status: '' });
      // Another tenant with the same tags, interleaved: none of these may ever show up for A.
      if (i % 4 === 0) {
        const other = await submit(env.tenants.b, {
          request: { method: 'GET', url: env.target.url('/ok') },
          tags,
          ...due,
        });
        otherTenantIds.add(other.id);
      }
    }
    // The final status of each call, from the detail endpoint (not from the list under test).
    for (const c of model) {
      c.status = await eventually(`${c.id} to settle`, async () => {
        const r = await call(env, 'GET', `/v1/service-calls/${c.id}`);
        const status = String(r.body.status);
        return status === 'Running' || (status === 'Scheduled' && Date.parse(c.dueAt) <= Date.now() + 1000)
          ? undefined
          : status;
      });
    }
    assert.deepEqual(
      [...new Set(model.map((c) => c.status))].sort(),
      ['Cancelled', 'Failed', 'Scheduled', 'Succeeded'],
      'the seeded set covers four statuses',
    );
    // The list reads the projection: wait until it shows every call with its final status.
    await eventually('the projection to catch up', async () => {
      const r = await call(env, 'GET', '/v1/service-calls?limit=200');
      const seen = new Map((r.body.items as { id: string; status: string }[]).map((i) => [i.id, i.status]));
      return model.every((c) => seen.get(c.id) === c.status) ? true : undefined;
    });
  });

  test('every combination of status, tag and time filters, walked in pages, equals the independent answer', async () => {
    const created = (i: number) => model[i]!.createdAt;
    const statusOptions: string[][] = [
      [],
      ['Scheduled'],
      ['Cancelled'],
      ['Succeeded', 'Failed'],
      ['Scheduled', 'Cancelled', 'Running'],
      ['Running'],
    ];
    const tagOptions: string[][] = [
      [],
      ['all'],
      ['even'],
      ['three'],
      ['even', 'three'],
      ['odd', 'five'],
      ['a,b'],
      ['a'],
      ['nope'],
    ];
    const windows: Filter[] = [
      {},
      // Boundaries are exact createdAt values: after is inclusive, before exclusive.
      { createdAfter: created(10) },
      { createdBefore: created(20) },
      { createdAfter: created(10), createdBefore: created(20) },
      { createdAfter: created(20), createdBefore: created(10) },
      { dueAfter: new Date(base + 6 * HOUR).toISOString() },
      { dueBefore: new Date(base + 12 * HOUR).toISOString() },
      { dueAfter: new Date(base + 3 * HOUR).toISOString(), dueBefore: new Date(base + 25 * HOUR).toISOString() },
      { createdAfter: created(4), dueBefore: new Date(base + 30 * HOUR).toISOString() },
    ];
    let combinations = 0;
    let nonEmpty = 0;
    for (const [si, status] of statusOptions.entries()) {
      for (const tag of tagOptions) {
        for (const window of windows) {
          const filter: Filter = { status, tag, ...window };
          const want = expected(model, filter);
          const limit = [2, 5, 11, 50][combinations % 4]!;
          const pages = await walk(env.tenants.a, filter, limit, { commaStatuses: si % 2 === 0 });
          const got = pages.flat().map((i) => String(i.id));
          assert.deepEqual(got, want, `filter ${JSON.stringify(filter)} limit ${limit}`);
          combinations++;
          if (want.length > 0) nonEmpty++;
        }
      }
    }
    assert.equal(combinations, statusOptions.length * tagOptions.length * windows.length);
    assert.ok(nonEmpty > combinations / 3, `only ${nonEmpty} of ${combinations} combinations match anything`);
  });

  test("a tenant's list never holds another tenant's calls, whatever the filters", async () => {
    const all = (await walk(env.tenants.a, {}, 200)).flat().map((i) => String(i.id));
    assert.deepEqual([...all].sort(), model.map((c) => c.id).sort());
    assert.ok(all.every((id) => !otherTenantIds.has(id)));
    const bAll = (await walk(env.tenants.b, { tag: ['all'] }, 200)).flat().map((i) => String(i.id));
    assert.deepEqual([...bAll].sort(), [...otherTenantIds].sort());
    const bFive = (await walk(env.tenants.b, { tag: ['a,b'] }, 50)).flat();
    assert.deepEqual(bFive, [], "B's calls never carried A's tag a,b");
  });

  test('items are the detail without attempts, replays and waitingFor', async () => {
    const [item] = (await walk(env.tenants.a, { status: ['Succeeded'] }, 1)).flat();
    assert.ok(item !== undefined);
    const detail = await call(env, 'GET', `/v1/service-calls/${String(item.id)}`);
    const { attempts, replays, waitingFor, ...rest } = detail.body;
    assert.ok(Array.isArray(attempts) && attempts.length === 1);
    assert.deepEqual(replays, []);
    assert.deepEqual(waitingFor, []);
    assert.deepEqual(item, rest);
    assert.equal(item.result.outcome, 'Succeeded');
  });
});

describe('pagination', () => {
  test('walking every page while calls keep arriving: no duplicates, no gaps, strict order', async () => {
    const tenant = env.tenants.b;
    const tag = `walk-${randomUUID()}`;
    const later = () => ({ dueAt: new Date(Date.now() + 48 * HOUR).toISOString() });
    const request = { method: 'GET', url: env.target.url('/never') };
    const seeded: string[] = [];
    for (let i = 0; i < 60; i++) seeded.push((await submit(tenant, { request, tags: [tag], ...later() })).id);
    await eventually('the seeded calls to be projected', async () => {
      const r = await call(env, 'GET', `/v1/service-calls?tag=${tag}&limit=200`, { tenant });
      return r.body.items.length === seeded.length ? true : undefined;
    });

    const arrived: string[] = [];
    let stop = false;
    const inserter = (async () => {
      while (!stop) {
        arrived.push((await submit(tenant, { request, tags: [tag], ...later() })).id);
        await sleep(15);
      }
    })();
    let projectedDuringWalk = 0;
    const pages = await walk(tenant, { tag: [tag] }, 7, {
      // Give the relay time to project the new calls between pages.
      between: async () => {
        await sleep(120);
        const r = await call(env, 'GET', `/v1/service-calls?tag=${tag}&limit=200`, { tenant });
        projectedDuringWalk = Math.max(projectedDuringWalk, r.body.items.length - seeded.length);
      },
    });
    stop = true;
    await inserter;

    const items = pages.flat();
    const ids = items.map((i) => String(i.id));
    assert.equal(new Set(ids).size, ids.length, 'no call is listed twice');
    for (const id of seeded) assert.ok(ids.includes(id), `seeded call ${id} was skipped`);
    for (const id of ids) assert.ok(seeded.includes(id) || arrived.includes(id), `unknown call ${id}`);
    for (let i = 1; i < items.length; i++) {
      const [prev, cur] = [items[i - 1]!, items[i]!];
      const order =
        Date.parse(String(prev.createdAt)) - Date.parse(String(cur.createdAt)) || (prev.id > cur.id ? 1 : -1);
      assert.ok(order > 0, `items ${i - 1} and ${i} are out of order`);
    }
    assert.ok(arrived.length >= 10, `only ${arrived.length} calls arrived during the walk`);
    assert.ok(projectedDuringWalk >= 5, `only ${projectedDuringWalk} new calls reached the list during the walk`);
  });

  test('rows sharing a createdAt, and createdAt with microseconds, page exactly once each', async () => {
    // Written straight into the read model: the API only makes millisecond timestamps, but the
    // cursor must not lose what Postgres keeps.
    const tenantId = env.tenants.a.id;
    const tag = `ties-${randomUUID()}`;
    const rows: { id: string; at: string }[] = [];
    for (let i = 0; i < 40; i++) {
      const micros = i < 20 ? '000000' : String(100000 + i * 7).padStart(6, '0');
      rows.push({ id: randomUUID(), at: `2001-02-03T04:05:06.${micros}Z` });
    }
    await env.database.pool.query(
      `insert into service_calls (tenant_id, id, state, status, due_at, tags, created_at, version)
       select $1, r.id::uuid,
              jsonb_build_object('tenantId', $1::text, 'id', r.id, 'status', 'Cancelled',
                'request', jsonb_build_object('method', 'GET', 'url', 'https://example.com/', 'headers', '{}'::jsonb),
                'dueAt', r.at, 'tags', jsonb_build_array($2::text), 'retry', '{}'::jsonb, 'timeoutMs', 10000,
                'nextAttemptAt', null, 'createdAt', r.at, 'updatedAt', r.at, 'attempts', '[]'::jsonb,
                'result', null, 'replayOf', null, 'version', 2),
              'Cancelled', r.at::timestamptz, array[$2], r.at::timestamptz, 2
       from jsonb_to_recordset($3::jsonb) as r(id text, at text)`,
      [tenantId, tag, JSON.stringify(rows)],
    );
    const want = [...rows].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : a.id < b.id ? 1 : -1)).map((r) => r.id);
    for (const limit of [1, 3, 4, 19, 20, 21]) {
      const got = (await walk(env.tenants.a, { tag: [tag] }, limit)).flat().map((i) => String(i.id));
      assert.deepEqual(got, want, `limit ${limit}`);
    }
  });
});

describe('bad filters', () => {
  const cases: [string, string][] = [
    ['foo=1', 'foo'],
    ['Status=Failed', 'Status'],
    ['status=Done', 'status'],
    ['status=Failed,', 'status'],
    ['status=Failed&status=failed', 'status'],
    ['tag=', 'tag'],
    [`tag=${'x'.repeat(65)}`, 'tag'],
    ['createdAfter=yesterday', 'createdAfter'],
    ['createdBefore=2030-01-01', 'createdBefore'],
    ['dueAfter=2030-01-01T00:00:00', 'dueAfter'],
    ['dueBefore=2030-13-01T00:00:00Z', 'dueBefore'],
    ['dueBefore=2030-01-01T00:00:00Z&dueBefore=2030-01-02T00:00:00Z', 'dueBefore'],
    ['limit=0', 'limit'],
    ['limit=201', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1.5', 'limit'],
    ['limit=', 'limit'],
    ['cursor=abc', 'cursor'],
    ['cursor=%7B%7D', 'cursor'],
  ];
  for (const [query, field] of cases) {
    test(`?${query.slice(0, 60)} → 400 naming ${field}`, async () => {
      const r = await call(env, 'GET', `/v1/service-calls?${query}`);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
      assert.equal(r.body.status, 400);
      assert.deepEqual(
        (r.body.errors as { field: string }[]).map((e) => e.field),
        [field],
      );
      assert.match(String(r.body.detail), new RegExp(field));
    });
  }

  test("a cursor used with other filters, or one from another tenant's filters → 400 cursor", async () => {
    await submit(env.tenants.a, {
      request: { method: 'GET', url: env.target.url('/ok') },
      dueAt: new Date(Date.now() + HOUR).toISOString(),
    });
    const first = await eventually('two pages', async () => {
      const r = await call(env, 'GET', '/v1/service-calls?limit=1');
      return r.body.nextCursor === null ? undefined : r.body;
    });
    const cursor = encodeURIComponent(String(first.nextCursor));
    const other = await call(env, 'GET', `/v1/service-calls?limit=1&status=Failed&cursor=${cursor}`);
    assert.equal(other.status, 400);
    assert.equal(other.body.errors[0].field, 'cursor');
    const same = await call(env, 'GET', `/v1/service-calls?limit=1&cursor=${cursor}`);
    assert.equal(same.status, 200);
  });

  test('without a key the answer is 401, bad filters or not', async () => {
    const r = await env.api.inject({ method: 'GET', url: '/v1/service-calls?limit=0' });
    assert.equal(r.statusCode, 401);
  });
});
