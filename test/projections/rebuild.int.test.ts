import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { serviceCalls } from '../../drizzle/schema';
import type { StoredEvent } from '../../core/events';
import { LOG_START, readLogAfter } from '../../core/event-store';
import { fold, TERMINAL_STATUSES, type Status } from '../../core/service-call';
import { readCheckpoint } from '../../projections/relay';
import { REBUILDABLE_PROJECTIONS, RebuildError, rebuildProjection } from '../../projections/rebuild';
import { findServiceCall, PROJECTION_NAME } from '../../projections/service-calls';
import { toView } from '../../core/view';
import { call, createTestEnv, PROJECT_ROOT, type TestEnv } from '../support/env';
import { eventually, sleep } from '../support/net';

/** `npm run projections:rebuild` rebuilds the read model while the service runs and serves reads. */

let env: TestEnv;
before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

const projection = REBUILDABLE_PROJECTIONS.find((p) => p.name === PROJECTION_NAME)!;

async function submit(i: number, opts: { future?: boolean } = {}): Promise<string> {
  const r = await call(env, 'POST', '/v1/service-calls', {
    body: {
      request: {
        method: 'POST',
        url: env.target.url(i % 4 === 0 ? '/status/503' : `/ok/${i}`),
        headers: { 'x-api-key': `k${i}` },
      },
      tags: [`n${i % 3}`],
      ...(opts.future === true ? { dueAt: new Date(Date.now() + 10 * 60_000).toISOString() } : {}),
    },
  });
  assert.equal(r.status, 202);
  return String(r.body.id);
}

async function settled(ids: string[], expect: (status: string) => boolean = (s) => TERMINAL_STATUSES.has(s as Status)) {
  await eventually(
    'the calls to reach their status in the read model',
    async () => {
      const states = await Promise.all(ids.map((id) => findServiceCall(env.database.db, env.tenants.a.id, id)));
      return states.every((s) => s !== undefined && expect(s.status)) ? true : undefined;
    },
    30_000,
  );
}

/** The live projection has handled every event in the log. */
async function caughtUp(): Promise<void> {
  await eventually('the projection to catch up', async () => {
    const at = await readCheckpoint(env.database.db, PROJECTION_NAME);
    return (await readLogAfter(env.database.db, at, 1)).length === 0 ? true : undefined;
  });
}

/** Every call folded straight from the event store: what the read model must equal. */
async function expectedViews(): Promise<Map<string, ReturnType<typeof toView>>> {
  const byCall = new Map<string, StoredEvent[]>();
  for (const e of await readLogAfter(env.database.db, LOG_START, 1_000_000)) {
    const key = `${e.tenantId}/${e.aggregateId}`;
    byCall.set(key, [...(byCall.get(key) ?? []), e]);
  }
  return new Map(
    [...byCall].map(([key, events]) => [key, toView(fold(events.sort((a, b) => a.version - b.version))!)]),
  );
}

async function assertEqualsRebuildFromEvents(): Promise<number> {
  const expected = await expectedViews();
  const rows = await env.database.db.select().from(serviceCalls);
  assert.equal(rows.length, expected.size);
  for (const row of rows) {
    const state = await findServiceCall(env.database.db, row.tenantId, row.id);
    assert.deepEqual(toView(state!), expected.get(`${row.tenantId}/${row.id}`));
  }
  return rows.length;
}

async function indexes(): Promise<{ indexname: string; indexdef: string }[]> {
  const { rows } = await env.database.db.execute<{ indexname: string; indexdef: string }>(
    sql`select indexname, indexdef from pg_indexes where tablename = 'service_calls' and schemaname = current_schema() order by indexname`,
  );
  return rows;
}

const rowKey = (r: { tenantId: string; id: string }) => `${r.tenantId}/${r.id}`;

test('a rebuild under live traffic equals the incrementally built model; reads never stop', async () => {
  // Phase 1: a realistic history built incrementally by the live relay.
  const first: string[] = [];
  const pending: string[] = [];
  for (let i = 0; i < 40; i++) {
    const future = i % 5 === 0;
    const id = await submit(i, { future });
    (future ? pending : first).push(id);
    if (future && i % 10 === 0) {
      assert.equal((await call(env, 'POST', `/v1/service-calls/${id}/cancel`)).status, 202);
    }
  }
  await settled(first);
  await caughtUp();
  const incremental = new Map((await env.database.db.select().from(serviceCalls)).map((r) => [rowKey(r), r]));
  assert.equal(incremental.size, 40);
  const indexesBefore = await indexes();
  assert.ok(indexesBefore.length >= 1, 'the table has its primary key and list indexes');

  // Readers run the whole time: straight at the read model, and through the API.
  let reading = true;
  const reads = { db: 0, api: 0, failures: [] as string[] };
  const known = [...first, ...pending];
  const readers = [
    (async () => {
      while (reading) {
        try {
          const [count] = await env.database.db.select({ n: sql<number>`count(*)::int` }).from(serviceCalls);
          if ((count?.n ?? 0) < 40) reads.failures.push(`read model had ${count?.n} rows`);
          const id = known[reads.db % known.length]!;
          if ((await findServiceCall(env.database.db, env.tenants.a.id, id)) === undefined) {
            reads.failures.push(`row ${id} missing`);
          }
          reads.db++;
        } catch (err) {
          reads.failures.push(`db read failed: ${String(err)}`);
        }
      }
    })(),
    (async () => {
      while (reading) {
        const id = known[reads.api % known.length]!;
        const r = await call(env, 'GET', `/v1/service-calls/${id}`);
        if (r.status !== 200 || r.body.id !== id) reads.failures.push(`GET ${id} answered ${r.status}`);
        reads.api++;
        await sleep(2);
      }
    })(),
  ];

  // Phase 2, while the shadow is being built: new calls, and cancels of calls the shadow has
  // already passed. The live consumer keeps the live table current; the swap must catch up.
  const second: string[] = [];
  let batches = 0;
  let cancelled: string[] = [];
  const result = await rebuildProjection(env.infra.databaseUrl, projection, {
    batchSize: 10,
    onProgress: async (p) => {
      assert.equal(p.phase, 'build');
      if (++batches !== 3) return;
      for (let i = 100; i < 110; i++) second.push(await submit(i));
      cancelled = pending.filter((_, i) => i % 2 === 1);
      for (const id of cancelled) assert.equal((await call(env, 'POST', `/v1/service-calls/${id}/cancel`)).status, 202);
      await settled(cancelled, (s) => s === 'Cancelled');
      await settled(second);
    },
  });
  reading = false;
  await Promise.all(readers);

  assert.ok(batches >= 3);
  assert.deepEqual(reads.failures, []);
  assert.ok(reads.db > 10 && reads.api > 10, `reads went on during the rebuild (${reads.db} db, ${reads.api} api)`);
  assert.equal(result.rows, 50);
  assert.ok(result.swapMs < 5_000, `swap took ${result.swapMs} ms`);

  await caughtUp();
  assert.equal(await assertEqualsRebuildFromEvents(), 50);
  // Untouched rows are exactly what the incremental projection had written, version included.
  const rebuilt = new Map((await env.database.db.select().from(serviceCalls)).map((r) => [rowKey(r), r]));
  for (const [key, row] of incremental) {
    if (cancelled.some((id) => key.endsWith(`/${id}`))) {
      assert.equal(rebuilt.get(key)?.status, 'Cancelled');
      continue;
    }
    assert.deepEqual(rebuilt.get(key), row);
  }
  // Same indexes, same names: later migrations can keep referring to them.
  assert.deepEqual(await indexes(), indexesBefore);
  const leftovers = await env.database.db.execute(
    sql`select tablename from pg_tables where schemaname = 'punctual_rebuild'`,
  );
  assert.equal(leftovers.rows.length, 0);

  // The live consumer carries on into the new table.
  const third = [await submit(200), await submit(201)];
  await settled(third);
  await caughtUp();
  assert.equal(await assertEqualsRebuildFromEvents(), 52);
});

test('npm run projections:rebuild: the command rebuilds and can run again', async () => {
  const before = await env.database.db.select().from(serviceCalls);
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist/bin/rebuild-projections.js')], {
    env: { ...process.env, DATABASE_URL: env.infra.databaseUrl, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, out);
  assert.match(out, /rebuilt service-calls: \d+ rows from \d+ events/);
  const after = await env.database.db.select().from(serviceCalls);
  assert.deepEqual(new Map(after.map((r) => [rowKey(r), r])), new Map(before.map((r) => [rowKey(r), r])));
  await assertEqualsRebuildFromEvents();
});

test('a second rebuild of the same projection is refused while one runs', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const first = rebuildProjection(env.infra.databaseUrl, projection, {
    batchSize: 5,
    onProgress: async () => {
      started();
      await held;
    },
  });
  await running;
  await assert.rejects(rebuildProjection(env.infra.databaseUrl, projection), (err: unknown) => {
    assert.ok(err instanceof RebuildError);
    assert.match(err.message, /another rebuild/);
    return true;
  });
  release();
  await first;
  await assertEqualsRebuildFromEvents();
});
