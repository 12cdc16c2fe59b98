import { randomBytes } from 'node:crypto';
import { freeLoopbackPort } from '../runtime/process-util';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PgDialect } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { buildServer } from '../api/app';
import { encodeCursor } from '../api/list-query';
import { registerApiKey } from '../core/api-keys';
import { loadConfig } from '../core/config';
import { Keyring } from '../core/crypto';
import { EgressPolicy } from '../core/egress-policy';
import { createLogger } from '../core/logger';
import { createDatabase, migrateDatabase, openDatabase } from '../core/db';
import { readFirstEvents } from '../core/event-store';
import { streamIdFor } from '../core/ids';
import type { Status } from '../core/service-call';
import { readLivePage, type LiveCallKey } from '../projections/reconciler';
import { listQuery, type ListFilter } from '../projections/service-calls';
import { startEmbeddedPostgres } from '../runtime/embedded-postgres';

/**
 * `npm run bench:list -- [--rows 1000000] [--runs 200] [--keep]`
 *
 * Seeds the service_calls read model with N rows (generate_series, in SQL) in a fresh database —
 * a new embedded PostgreSQL cluster in a temporary directory, or a new database on the server
 * DATABASE_URL names — then times GET /v1/service-calls through the real Fastify app (auth,
 * query parsing, SQL, serialization; no network) for each filter shape, and prints p50/p99 and
 * the plan each shape gets, flagging a shape whose plan misses its intended index. Then it seeds
 * one submit event per call and times the reconciler's Postgres side (ADR-0013): a full keyset
 * walk over the unfinished calls, page by page, with the submit events of each page.
 */

interface Options {
  rows: number;
  runs: number;
  warmup: number;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = {
    rows: Number(process.env.BENCH_ROWS ?? 1_000_000),
    runs: Number(process.env.BENCH_RUNS ?? 200),
    warmup: 20,
    keep: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => Number(argv[++i]);
    if (arg === '--rows') opts.rows = next();
    else if (arg === '--runs') opts.runs = next();
    else if (arg === '--warmup') opts.warmup = next();
    else if (arg === '--keep') opts.keep = true;
    else throw new Error(`unknown argument ${arg}; usage: bench:list -- [--rows N] [--runs N] [--warmup N] [--keep]`);
  }
  if (!Number.isInteger(opts.rows) || opts.rows < 1000) throw new Error('--rows must be an integer ≥ 1000');
  if (!Number.isInteger(opts.runs) || opts.runs < 10) throw new Error('--runs must be an integer ≥ 10');
  return opts;
}

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

/** A database nobody else uses, and how to get rid of it. */
async function freshDatabase(keep: boolean): Promise<{ url: string; cleanup(): Promise<void> }> {
  const given = process.env.DATABASE_URL;
  if (given !== undefined && given !== '') {
    const name = `punctual_bench_${randomBytes(4).toString('hex')}`;
    const url = await createDatabase(given, name);
    log(`database ${name} on the DATABASE_URL server`);
    return {
      url,
      async cleanup() {
        if (keep) {
          log(`kept database ${name}`);
          return;
        }
        const c = new pg.Client({ connectionString: given });
        await c.connect();
        await c.query(`drop database ${name} with (force)`);
        await c.end();
      },
    };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'punctual-bench-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to enter this folder.
  chmodSync(dir, 0o755);
  const started = await startEmbeddedPostgres({ dataDir: path.join(dir, 'postgres'), port: await freeLoopbackPort() });
  log(`embedded PostgreSQL in ${dir}`);
  return {
    url: started.url,
    async cleanup() {
      await started.stop();
      if (keep) {
        log(`kept ${dir}`);
        return;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const BIG = 'bench-t00';
const SMALL = 'bench-t07';
const TENANTS = Array.from({ length: 20 }, (_, i) => `bench-t${String(i).padStart(2, '0')}`);

/**
 * Half the rows belong to one big tenant, the rest to 19 small ones. Over 30 days of createdAt;
 * statuses 85 % Succeeded, 10 % Failed, 2.5 % Cancelled, 2 % Scheduled (due in the next week),
 * 0.5 % Running; tags: env:prod on 60 %, one of 10 teams, one of 1,000 customers, and "rare" on
 * 0.02 %. random() is seeded, so every run seeds the same data.
 */
async function seed(pool: pg.Pool, rows: number): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('select setseed(0.42)');
    const chunk = 100_000;
    for (let start = 1; start <= rows; start += chunk) {
      const end = Math.min(rows, start + chunk - 1);
      const began = Date.now();
      await client.query(
        `insert into service_calls (tenant_id, id, state, status, due_at, tags, created_at, version)
         select tenant_id, id,
                jsonb_build_object('tenantId', tenant_id, 'id', id, 'status', status,
                  'request', jsonb_build_object('method', method, 'url', url, 'headers', headers),
                  'dueAt', to_char(due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'tags', to_jsonb(tags),
                  'retry', '{"maxAttempts":1,"initialIntervalMs":1000,"backoffCoefficient":2,"maxIntervalMs":60000}'::jsonb,
                  'timeoutMs', 10000, 'nextAttemptAt', null,
                  'createdAt', to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                  'updatedAt', to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                  'attempts', attempts, 'result', result, 'replayOf', null, 'version', version),
                status, due_at, tags, created_at, version
         from (
         select tenant_id, gen_random_uuid() as id, status, 'POST' as method,
                'https://target.example/hooks/' || (i % 1000) as url,
                '{"content-type":"application/json","authorization":"[REDACTED]"}'::jsonb as headers,
                case when status = 'Scheduled' then now() + r7 * interval '7 days'
                     else created_at + r7 * interval '1 hour' end as due_at,
                array_remove(array[case when r2 < 0.6 then 'env:prod' end,
                                   'team:' || floor(r3 * 10)::int,
                                   'customer:' || floor(r4 * 1000)::int,
                                   case when r5 < 0.0002 then 'rare' end], null) as tags,
                created_at, created_at + interval '1 minute' as updated_at,
                case when status in ('Succeeded', 'Failed') then jsonb_build_array(jsonb_build_object(
                  'attempt', 1, 'startedAt', created_at, 'finishedAt', created_at, 'statusCode',
                  case when status = 'Succeeded' then 200 else 500 end, 'latencyMs', 40, 'error', null))
                  else '[]'::jsonb end as attempts,
                case when status in ('Succeeded', 'Failed') then jsonb_build_object(
                  'outcome', status, 'statusCode', case when status = 'Succeeded' then 200 else 500 end,
                  'latencyMs', 40, 'responseSnippet', 'ok', 'truncated', false, 'error', null) end as result,
                case when status in ('Succeeded', 'Failed') then 3 when status in ('Running', 'Cancelled') then 2 else 1 end
                  as version
         from (
           select i, r2, r3, r4, r5, r7,
                  case when i % 2 = 0 then '${BIG}' else 'bench-t' || lpad(((i / 2) % 19 + 1)::text, 2, '0') end as tenant_id,
                  case when r1 < 0.005 then 'Running' when r1 < 0.025 then 'Scheduled' when r1 < 0.05 then 'Cancelled'
                       when r1 < 0.15 then 'Failed' else 'Succeeded' end as status,
                  date_trunc('milliseconds', now() - interval '30 days' * (1 - i::float8 / $3)) as created_at
           from (select i, random() r1, random() r2, random() r3, random() r4, random() r5, random() r7
                 from generate_series($1::int, $2::int) as i) as g
         ) as s
         ) as c`,
        [start, end, rows],
      );
      log(`seeded ${end.toLocaleString('en')} / ${rows.toLocaleString('en')} rows (${Date.now() - began} ms)`);
    }
    const began = Date.now();
    await client.query('vacuum (analyze) service_calls');
    // Write the bulk load out now, not while requests are being timed.
    await client.query('checkpoint');
    log(`vacuum analyze + checkpoint: ${Date.now() - began} ms`);
  } finally {
    client.release();
  }
}

interface Shape {
  name: string;
  tenant: string;
  query: string;
  filter: ListFilter;
  /** Indexes the plan may use; the first is the one meant for this shape. */
  intended: string[];
}

const iso = (d: Date) => d.toISOString();
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000);

function filterOf(partial: Partial<ListFilter>): ListFilter {
  return { statuses: [], tags: [], limit: 50, ...partial };
}

function qs(filter: ListFilter, extra: string[] = []): string {
  const parts: string[] = [];
  for (const s of filter.statuses) parts.push(`status=${s}`);
  for (const t of filter.tags) parts.push(`tag=${encodeURIComponent(t)}`);
  for (const key of ['createdAfter', 'createdBefore', 'dueAfter', 'dueBefore'] as const) {
    const v = filter[key];
    if (v !== undefined) parts.push(`${key}=${encodeURIComponent(iso(v))}`);
  }
  if (filter.limit !== 50) parts.push(`limit=${filter.limit}`);
  return [...parts, ...extra].join('&');
}

async function shapes(pool: pg.Pool): Promise<Shape[]> {
  const CREATED = 'service_calls_tenant_created_idx';
  const STATUS = 'service_calls_tenant_status_created_idx';
  const TAGS = 'service_calls_tags_idx';
  const DUE = 'service_calls_tenant_due_idx';
  const { rows } = await pool.query<{ position: string; id: string }>(
    `select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as position, id
     from service_calls where tenant_id = $1 order by created_at desc, id desc offset (select count(*) / 2 from service_calls where tenant_id = $1) limit 1`,
    [BIG],
  );
  const middle = rows[0];
  if (middle === undefined) throw new Error('no rows seeded');
  const make = (name: string, filter: ListFilter, intended: string[], tenant = BIG, extra: string[] = []): Shape => ({
    name,
    tenant,
    filter,
    intended,
    query: qs(filter, extra),
  });
  const deep = filterOf({ after: { createdAt: middle.position, id: middle.id } });
  const status = (...statuses: Status[]) => filterOf({ statuses });
  const tag = (...tags: string[]) => filterOf({ tags });
  return [
    make('no filter, first page', filterOf({}), [CREATED]),
    make('no filter, limit=200', filterOf({ limit: 200 }), [CREATED]),
    make('no filter, page in the middle (cursor)', deep, [CREATED], BIG, [`cursor=${encodeCursor(deep.after!, deep)}`]),
    make('small tenant, no filter', filterOf({}), [CREATED], SMALL),
    make('status=Failed (10 %)', status('Failed'), [STATUS, CREATED]),
    make('status=Running (0.5 %)', status('Running'), [STATUS]),
    make('status=Scheduled,Running (2.5 %)', status('Scheduled', 'Running'), [STATUS]),
    make('status=Succeeded,Failed (95 %)', status('Succeeded', 'Failed'), [STATUS, CREATED]),
    make('tag=env:prod (60 %)', tag('env:prod'), [CREATED]),
    make('tag=team:3 (10 %)', tag('team:3'), [CREATED, TAGS]),
    make('tag=customer:42 (0.1 %)', tag('customer:42'), [TAGS, CREATED]),
    make('tag=rare (0.02 %)', tag('rare'), [TAGS]),
    make('tag=team:3 & tag=customer:42 (0.01 %)', tag('team:3', 'customer:42'), [TAGS]),
    make('created in one day, 10 days ago', filterOf({ createdAfter: daysAgo(11), createdBefore: daysAgo(10) }), [
      CREATED,
    ]),
    make(
      'due in one hour, 20 days ago',
      filterOf({ dueAfter: daysAgo(20), dueBefore: new Date(daysAgo(20).getTime() + 3_600_000) }),
      [DUE, CREATED],
    ),
    make(
      'status=Scheduled & due in the next hour',
      filterOf({ statuses: ['Scheduled'], dueBefore: new Date(Date.now() + 3_600_000) }),
      [STATUS, DUE],
    ),
    make(
      'status=Failed & tag=team:3 & created in last 7 days',
      filterOf({ statuses: ['Failed'], tags: ['team:3'], createdAfter: daysAgo(7) }),
      [STATUS, CREATED, TAGS],
    ),
  ];
}

/**
 * The event store behind the read model, as far as the reconciler reads it: a version-1 event
 * per call (the real log holds 3–4 per finished call; the reconciler only ever looks up version 1
 * by (stream_id, version), a unique-index probe whatever the log's length).
 */
async function seedSubmitEvents(pool: pg.Pool): Promise<void> {
  const began = Date.now();
  await pool.query(`
    insert into events (stream_id, version, message_id, tenant_id, aggregate_type, aggregate_id, type,
                        schema_version, data, correlation_id, causation_id, timestamp)
    select tenant_id || '/' || id, 1, gen_random_uuid(), tenant_id, 'ServiceCall', id, 'ServiceCallSubmitted', 1,
           jsonb_build_object('dueAt', due_at, 'timeoutMs', 10000, 'tags', to_jsonb(tags),
                              'request', state->'request'),
           'bench', null, created_at
    from service_calls`);
  await pool.query('vacuum (analyze) events');
  await pool.query('checkpoint');
  log(`seeded one submit event per call: ${Date.now() - began} ms`);
}

interface ReconcilerFigures {
  live: number;
  pageSize: number;
  pages: number;
  passMs: number;
  pageP50: number;
  pageP99: number;
  passes: number;
  plan: string;
  indexOk: boolean;
}

/** Times the reconciler's database work: every page of unfinished calls and their submit events. */
async function measureReconcilerQuery(
  db: ReturnType<typeof openDatabase>,
  pageSize: number,
  passes: number,
): Promise<ReconcilerFigures> {
  const pageTimes: number[] = [];
  const passTimes: number[] = [];
  let live = 0;
  let pages = 0;
  const pageEnds: LiveCallKey[] = [];
  for (let pass = 0; pass < passes + 1; pass++) {
    const began = process.hrtime.bigint();
    let after: LiveCallKey | undefined;
    let seen = 0;
    let count = 0;
    for (;;) {
      const t0 = process.hrtime.bigint();
      const calls = await readLivePage(db.db, after, pageSize);
      const submits = await readFirstEvents(
        db.db,
        calls.map((c) => streamIdFor(c.tenantId, c.id)),
      );
      if (submits.length !== calls.length)
        throw new Error(`page of ${calls.length} calls found ${submits.length} submits`);
      // The first pass warms the cache and is not counted.
      if (pass > 0) pageTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
      count++;
      seen += calls.length;
      if (pass === 0 && calls.length > 0) pageEnds.push(calls[calls.length - 1]!);
      if (calls.length < pageSize) break;
      after = calls[calls.length - 1];
    }
    if (pass > 0) passTimes.push(Number(process.hrtime.bigint() - began) / 1e6);
    live = seen;
    pages = count;
  }
  // A page from the middle of the walk.
  const at = pageEnds[Math.floor(pageEnds.length / 2)]!;
  const explained = await db.pool.query<{ 'QUERY PLAN': string }>(
    `explain (analyze, buffers, costs off, summary off, timing off)
     select tenant_id, id from service_calls
     where status in ('Scheduled', 'Running') and (tenant_id, id) > ($1, $2::uuid)
     order by tenant_id, id limit ${pageSize}`,
    [at.tenantId, at.id],
  );
  const plan = explained.rows.map((r) => r['QUERY PLAN']).join('\n');
  pageTimes.sort((a, b) => a - b);
  passTimes.sort((a, b) => a - b);
  return {
    live,
    pageSize,
    pages,
    passMs: percentile(passTimes, 50),
    pageP50: percentile(pageTimes, 50),
    pageP99: percentile(pageTimes, 99),
    passes,
    plan,
    indexOk: /service_calls_live_idx/.test(plan) && !/Seq Scan|Sort/.test(plan),
  };
}

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const database = await freshDatabase(opts.keep);
  const db = openDatabase(database.url, { max: 4, applicationName: 'punctual-bench' });
  try {
    await migrateDatabase(database.url);
    let began = Date.now();
    await seed(db.pool, opts.rows);
    log(`seeded ${opts.rows.toLocaleString('en')} rows in ${((Date.now() - began) / 1000).toFixed(1)} s`);
    const key = `bench-key-${randomBytes(16).toString('hex')}`;
    await registerApiKey(db.db, BIG, key);
    const smallKey = `bench-key-${randomBytes(16).toString('hex')}`;
    await registerApiKey(db.db, SMALL, smallKey);
    for (const t of TENANTS) await registerApiKey(db.db, t, `bench-key-${t}-${randomBytes(8).toString('hex')}`);

    // The same app the api role serves; the list route needs only the database, the rest is
    // what any app instance is built with.
    const config = loadConfig({ ...process.env, DATABASE_URL: database.url });
    const app = buildServer(
      {
        config: { ...config, rateLimit: { perSecond: 0, burst: 1 } },
        databaseUrl: database.url,
        // Reached by /readyz alone, which the benchmark never asks: the connection stays unmade.
        temporalAddress: '127.0.0.1:7233',
        keyring: new Keyring(randomBytes(32)),
        egress: new EgressPolicy(config.egressAllowlist),
        log: createLogger('silent'),
      },
      { logger: false },
    );
    await app.ready();
    const dialect = new PgDialect();
    const list = await shapes(db.pool);
    const loadBefore = os.loadavg()[0] ?? 0;
    const results: {
      shape: Shape;
      p50: number;
      p99: number;
      items: number;
      indexes: string[];
      ok: boolean;
      plan: string;
      sqlMs: number;
      pages: number;
    }[] = [];
    began = Date.now();
    for (const shape of list) {
      const authorization = `Bearer ${shape.tenant === BIG ? key : smallKey}`;
      const url = `/v1/service-calls${shape.query === '' ? '' : `?${shape.query}`}`;
      let items = 0;
      const times: number[] = [];
      for (let run = 0; run < opts.warmup + opts.runs; run++) {
        const t0 = process.hrtime.bigint();
        const response = await app.inject({ method: 'GET', url, headers: { authorization } });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (response.statusCode !== 200) throw new Error(`${shape.name}: ${response.statusCode} ${response.body}`);
        if (run === 0) items = response.json<{ items: unknown[] }>().items.length;
        if (run >= opts.warmup) times.push(ms);
      }
      times.sort((a, b) => a - b);
      const query = dialect.sqlToQuery(listQuery(shape.tenant, shape.filter));
      const explained = await db.pool.query<{ 'QUERY PLAN': string }>(
        `explain (analyze, buffers, costs off, summary on, timing off) ${query.sql}`,
        query.params,
      );
      const plan = explained.rows
        .map((r) => r['QUERY PLAN'])
        .filter((line) => !/^(Planning Time|Execution Time)/.test(line))
        .join('\n');
      const sqlMs = Number(
        /Execution Time: ([\d.]+) ms/.exec(explained.rows.map((r) => r['QUERY PLAN']).join('\n'))?.[1] ?? NaN,
      );
      const buffers = /Buffers: shared hit=(\d+)(?: read=(\d+))?/.exec(plan);
      const pages = Number(buffers?.[1] ?? 0) + Number(buffers?.[2] ?? 0);
      const indexes = [
        ...new Set(
          [
            ...plan.matchAll(/(?:Index Only Scan|Index Scan)(?: Backward)? using (\w+)|Bitmap Index Scan on (\w+)/g),
          ].map((m) => (m[1] ?? m[2])!),
        ),
      ];
      const ok = indexes.length > 0 && indexes.every((i) => shape.intended.includes(i)) && !/Seq Scan/.test(plan);
      results.push({
        shape,
        p50: percentile(times, 50),
        p99: percentile(times, 99),
        items,
        indexes,
        ok,
        plan,
        sqlMs,
        pages,
      });
      log(`${shape.name}: p50 ${percentile(times, 50).toFixed(2)} ms`);
    }
    log(`measured ${list.length} shapes × ${opts.runs} requests in ${((Date.now() - began) / 1000).toFixed(1)} s`);
    await app.close();

    await seedSubmitEvents(db.pool);
    const reconciler = await measureReconcilerQuery(db, 200, 5);
    log(`reconciler walk: ${reconciler.live} unfinished calls in ${reconciler.passMs.toFixed(1)} ms`);

    const { rows: size } = await db.pool.query<{ table: string; indexes: string }>(
      `select pg_size_pretty(pg_relation_size('service_calls')) as table,
              pg_size_pretty(pg_indexes_size('service_calls')) as indexes`,
    );
    const { rows: version } = await db.pool.query<{ server_version: string }>('show server_version');
    const out = (line = '') => process.stdout.write(`${line}\n`);
    out(
      `GET /v1/service-calls — ${opts.rows.toLocaleString('en')} rows (big tenant ${BIG}: half of them), ` +
        `${opts.runs} requests per shape after ${opts.warmup} warm-up, one client, in-process (app.inject)`,
    );
    out(
      `PostgreSQL ${version[0]?.server_version ?? '?'}, ${os.cpus().length} cores, Node ${process.version}; ` +
        `table ${size[0]?.table ?? '?'}, its indexes ${size[0]?.indexes ?? '?'}; ` +
        `1-min load average ${loadBefore.toFixed(1)} before timing, ${(os.loadavg()[0] ?? 0).toFixed(1)} after (other work on the machine)`,
    );
    out();
    out('| shape | p50 ms | p99 ms | SQL ms | 8 KB pages | items | index used |');
    out('|---|---:|---:|---:|---:|---:|---|');
    for (const r of results) {
      out(
        `| ${r.shape.name} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.sqlMs.toFixed(2)} | ${r.pages} | ${r.items} | ` +
          `${r.indexes.join(' + ')}${r.ok ? '' : ' ⚠ not the intended index'} |`,
      );
    }
    out();
    out(
      'p50/p99: whole request through the app (auth, parsing, SQL, JSON). SQL ms and pages: one EXPLAIN ANALYZE of the same statement.',
    );
    out();
    for (const r of results) {
      out(
        `### ${r.shape.name}  (GET /v1/service-calls${r.shape.query === '' ? '' : `?${r.shape.query.replace(/cursor=[^&]+/, 'cursor=…')}`})`,
      );
      out('```');
      out(r.plan);
      out('```');
    }
    out();
    out(
      `Reconciler query (ADR-0013): ${reconciler.live.toLocaleString('en')} unfinished calls (Scheduled or Running) ` +
        `among ${opts.rows.toLocaleString('en')}, pages of ${reconciler.pageSize}, each page = the keyset read on ` +
        `service_calls_live_idx + the submit events by (stream_id, version); median of ${reconciler.passes} passes after one warm-up`,
    );
    out();
    out('| unfinished calls | pages | full pass ms | page p50 ms | page p99 ms | index |');
    out('|---:|---:|---:|---:|---:|---|');
    out(
      `| ${reconciler.live} | ${reconciler.pages} | ${reconciler.passMs.toFixed(1)} | ${reconciler.pageP50.toFixed(2)} | ` +
        `${reconciler.pageP99.toFixed(2)} | ${reconciler.indexOk ? 'service_calls_live_idx' : '⚠ not the partial index'} |`,
    );
    out('```');
    out(reconciler.plan);
    out('```');
    if (results.some((r) => !r.ok) || !reconciler.indexOk) process.exitCode = 3;
  } finally {
    await db.close();
    await database.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
