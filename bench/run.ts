import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Pool } from 'undici';
import { openDatabase, type Database } from '../core/db';
import { workflowIdFor } from '../core/ids';
import { baselineDriver, drain, punctualDriver, type Ctx, type Driver } from './drivers';
import { log } from './log';
import {
  backlog,
  breakdownOf,
  closedPart,
  mergeClosed,
  pacedEndToEnd,
  pacedSubmit,
  submitLevel,
  timers,
  burst,
  batchPhases,
  lifecyclePhases,
  flowPhases,
  type PhaseEnv,
  type PhaseResult,
} from './phases';
import { ThreadedSampler } from './procstat';
import { BATCH_SIZE, evaluateTargets, machineInfo, markdown, PHASES, type BenchOptions, type Report } from './report';
import { fmt } from './stats';
import { startSystem, stopChild, type Running } from './system';
import { BenchTarget } from './target';

/**
 * `npm run bench -- [options]`: Punctual end to end against a bare Temporal baseline on the same
 * server, in one run. bench/README.md says what each phase measures and how to read the table.
 */

const PROJECT_ROOT = path.resolve(__dirname, '../..');

const USAGE = `usage: npm run bench -- [options]
  --calls N            calls per system in the closed loop (default 300)
  --concurrency N      clients in the closed loop and the backlog (default 50)
  --phase-cap S        stop a closed-loop half after S/2 seconds and a submit level after S/4 (default 60)
  --backlog N          calls per system in the backlog phase (default 300)
  --e2e-rate R         due-now calls per second in the end-to-end phase
                       (default: half the baseline's closed-loop throughput, at most 100)
  --e2e-seconds S      length of the end-to-end phase (default 30)
  --timers N           calls due later (default 200), submitted at the end-to-end rate,
                       --timer-window MIN-MAX seconds after each submit (default 5-20)
  --burst N            calls per system all due at one instant (default 2000), submitted by --concurrency
                       clients, due --burst-lead S seconds after the first submit (default 15 + N/50)
  --submit-levels L    client counts for the submit phases (default 1,10,50), --submits N calls each (default 200)
  --batches N          batch requests of 1,000 calls due tomorrow in the batch phase (default 5); the
                       phase then sends one batch of 1,000 due now (Punctual only: the baseline has no batch)
  --reschedules N      calls rescheduled by 10 clients in the lifecycle phase (default 500)
  --bulk-cancel N      calls cancelled by one bulk cancel in the lifecycle phase (default and most 10,000)
  --flow-calls N       calls due at one instant in the flow phase, once without a key and once under a
                       key limited to --flow-rate R per second with burst 1 (defaults 1000 and 100; Punctual only)
  --rate R             submits per second in the paced submit phase (default 100), --paced-seconds S (default 10)
  --warmup N           warm-up calls per system (default 60)
  --target-delay-ms N  the target answers after N ms (default 0)
  --poll-ms N          how often a waiting client polls GET /v1/service-calls/{id} (default 10)
  --bundle-at-start    let the worker bundle the workflows at start (npm start) instead of a prebuilt bundle
  --punctual PATH      run another build's dist/bin/punctual.js (A/B comparisons)
  --node-arg FLAG      a flag for node running Punctual, e.g. --cpu-prof (repeatable)
  --temporal KIND      dev: temporal server start-dev, as npm start runs it (default);
                       server: the real Temporal server, built once from its Go module into .cache,
                       on an embedded PostgreSQL of its own (Punctual and the baseline both on it)
  --shards N           history shards of --temporal server (default 4)
  --workers N          processes polling each task queue (default 1): Punctual's all plus N-1 of
                       the worker role; N baseline workers
  --temporal-arg FLAG  an extra flag for temporal server start-dev, which the bench then starts itself
                       (an experiment, e.g. --temporal-arg=--sqlite-pragma --temporal-arg=journal_mode=wal)
  --pg-setting N=V     EXPERIMENT: ALTER SYSTEM SET N = V on the embedded PostgreSQL (e.g. synchronous_commit=off,
                       never a default; the run is labelled as such)
  --env NAME=VALUE     extra environment for the Punctual process (repeatable; tuning experiments)
  --label TEXT         added to the result file names and the table title
  --out DIR            where results go (default bench/results)
  --keep               keep the temporary DATA_DIR
  --skip-baseline      Punctual only
  --phases LIST        run only these of closed,backlog,e2e,timers,burst,submit,paced,batch,lifecycle,flow (default all)`;

function parseArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    calls: 300,
    concurrency: 50,
    phaseCapSeconds: 60,
    backlog: 300,
    e2eRate: undefined,
    e2eSeconds: 30,
    submitLevels: [1, 10, 50],
    submits: 200,
    batches: 5,
    reschedules: 500,
    bulkCancel: 10_000,
    flowCalls: 1000,
    flowRate: 100,
    rate: 100,
    pacedSeconds: 10,
    timers: 200,
    timerMinS: 5,
    timerMaxS: 20,
    burst: 2000,
    burstLeadS: undefined,
    warmup: 60,
    pollMs: 10,
    bundleAtStart: false,
    keep: false,
    out: path.join(PROJECT_ROOT, 'bench/results'),
    label: '',
    env: {},
    skipBaseline: false,
    phases: [...PHASES],
    punctualEntry: undefined,
    nodeArgs: [],
    temporalArgs: [],
    temporal: 'dev',
    shards: 4,
    workers: 1,
    pgSettings: {},
    targetDelayMs: 0,
  };
  const int = (v: string | undefined, name: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = () => argv[++i];
    if (arg === '--calls') o.calls = int(next(), arg, 2);
    else if (arg === '--concurrency') o.concurrency = int(next(), arg, 1);
    else if (arg === '--phase-cap') o.phaseCapSeconds = int(next(), arg, 5);
    else if (arg === '--backlog') o.backlog = int(next(), arg, 1);
    else if (arg === '--e2e-rate') o.e2eRate = int(next(), arg, 1);
    else if (arg === '--e2e-seconds') o.e2eSeconds = int(next(), arg, 1);
    else if (arg === '--submit-levels') o.submitLevels = (next() ?? '').split(',').map((v) => int(v, arg, 1));
    else if (arg === '--submits') o.submits = int(next(), arg, 1);
    else if (arg === '--batches') o.batches = int(next(), arg, 1);
    else if (arg === '--reschedules') o.reschedules = int(next(), arg, 1);
    else if (arg === '--bulk-cancel') {
      o.bulkCancel = int(next(), arg, 1);
      // One bulk request acts on at most 10,000 calls (the API's limit).
      if (o.bulkCancel > 10_000) throw new Error(`--bulk-cancel takes at most 10000\n${USAGE}`);
    } else if (arg === '--flow-calls') o.flowCalls = int(next(), arg, 2);
    else if (arg === '--flow-rate') o.flowRate = int(next(), arg, 1);
    else if (arg === '--rate') o.rate = int(next(), arg, 1);
    else if (arg === '--paced-seconds') o.pacedSeconds = int(next(), arg, 1);
    else if (arg === '--timers') o.timers = int(next(), arg, 0);
    else if (arg === '--timer-window') {
      const [a, b] = (next() ?? '').split('-').map((v) => int(v, arg, 1));
      if (a === undefined || b === undefined || b < a)
        throw new Error(`--timer-window takes MIN-MAX seconds\n${USAGE}`);
      o.timerMinS = a;
      o.timerMaxS = b;
    } else if (arg === '--burst') o.burst = int(next(), arg, 1);
    else if (arg === '--burst-lead') o.burstLeadS = int(next(), arg, 1);
    else if (arg === '--warmup') o.warmup = int(next(), arg, 0);
    else if (arg === '--target-delay-ms') o.targetDelayMs = int(next(), arg, 0);
    else if (arg === '--poll-ms') o.pollMs = int(next(), arg, 1);
    else if (arg === '--bundle-at-start') o.bundleAtStart = true;
    else if (arg === '--keep') o.keep = true;
    else if (arg === '--skip-baseline') o.skipBaseline = true;
    else if (arg === '--phases') {
      o.phases = (next() ?? '').split(',');
      const unknown = o.phases.filter((p) => !(PHASES as readonly string[]).includes(p));
      if (unknown.length > 0) throw new Error(`unknown phase ${unknown.join(', ')}\n${USAGE}`);
    } else if (arg === '--out') o.out = path.resolve(next() ?? '');
    else if (arg === '--label') o.label = next() ?? '';
    else if (arg === '--node-arg') o.nodeArgs.push(next() ?? '');
    else if (arg.startsWith('--temporal-arg=')) o.temporalArgs.push(arg.slice('--temporal-arg='.length));
    else if (arg === '--temporal-arg') o.temporalArgs.push(next() ?? '');
    else if (arg === '--temporal') {
      const kind = next();
      if (kind !== 'dev' && kind !== 'server') throw new Error(`--temporal takes dev or server\n${USAGE}`);
      o.temporal = kind;
    } else if (arg === '--shards') o.shards = int(next(), arg, 1);
    else if (arg === '--workers') o.workers = int(next(), arg, 1);
    else if (arg === '--punctual') o.punctualEntry = path.resolve(next() ?? '');
    else if (arg === '--pg-setting') {
      const kv = next() ?? '';
      const eq = kv.indexOf('=');
      if (eq < 1) throw new Error(`--pg-setting takes NAME=VALUE\n${USAGE}`);
      o.pgSettings[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (arg === '--env') {
      const kv = next() ?? '';
      const eq = kv.indexOf('=');
      if (eq < 1) throw new Error(`--env takes NAME=VALUE\n${USAGE}`);
      o.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  return o;
}

function modeOf(opts: BenchOptions, sys: Running): string {
  const workers = opts.workers > 1 ? `; ${opts.workers} worker processes per system` : '';
  if (!sys.embedded) return `configured DATABASE_URL + TEMPORAL_ADDRESS${workers}`;
  if (sys.engine !== undefined) return `embedded PostgreSQL + ${sys.engine.description}${workers}`;
  if (opts.temporalArgs.length === 0)
    return `embedded PostgreSQL + temporal server start-dev (--db-filename)${workers}`;
  return `embedded PostgreSQL + EXPERIMENT: temporal server start-dev --db-filename ${opts.temporalArgs.join(' ')}${workers}`;
}

function brief(p: PhaseResult): string {
  const parts: string[] = [];
  for (const k of ['perSecond', 'executedPerSecond', 'completedPerSecond'] as const) {
    if (p[k] !== undefined) parts.push(`${k} ${fmt(p[k])}`);
  }
  for (const k of ['accept', 'e2e', 'lateness', 'projectionLag'] as const) {
    const s = p[k];
    if (s !== undefined) parts.push(`${k} p50 ${fmt(s.p50)} p99 ${fmt(s.p99)}`);
  }
  if (p.lastHitAfterDueMs !== undefined) parts.push(`last hit ${fmt(p.lastHitAfterDueMs)} ms after the due instant`);
  if (p.drainMs !== undefined) parts.push(`drained in ${fmt(p.drainMs)} ms`);
  return parts.join(', ');
}

/** Number of events in one workflow's history, and their types. */
async function historyOf(client: Client, workflowId: string): Promise<{ count: number; types: string[] }> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  return { count: events.length, types: events.map((e) => String(e.eventType ?? '?').replace(/^EVENT_TYPE_/, '')) };
}

/** Distinct identities (pid@host) that polled the queue for workflow tasks lately. */
async function workflowPollers(client: Client, namespace: string, queue: string): Promise<string[]> {
  const answer = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: queue },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return [...new Set((answer.pollers ?? []).map((p) => p.identity ?? '?'))].sort();
}

async function runPhases(opts: BenchOptions, env: PhaseEnv, report: Report): Promise<void> {
  const { ctx } = env;
  const punctual = punctualDriver(ctx);
  const baseline = opts.skipBaseline ? undefined : baselineDriver(ctx);
  const systems: Driver[] = baseline === undefined ? [punctual] : [punctual, baseline];
  const record = (p: PhaseResult, list = report.phases) => {
    list.push(p);
    log(`${p.system} ${p.name}: ${brief(p)}`);
    return p;
  };
  const capMs = opts.phaseCapSeconds * 1000;

  if (opts.warmup > 0) {
    log(`warm-up: ${opts.warmup} calls per system`);
    for (const d of systems)
      record((await closedPart(env, d, 'warm-up', opts.warmup, 10, capMs)).result, report.warmUp);
  }

  if (opts.workers > 1) {
    for (const [name, queue] of [
      ['punctual', ctx.sys.punctualQueue],
      ['baseline', baseline === undefined ? undefined : ctx.sys.baselineQueue],
    ] as const) {
      if (queue === undefined) continue;
      const pollers = await workflowPollers(ctx.temporal, ctx.sys.namespace, queue);
      log(`${name}: ${pollers.length} processes poll task queue ${queue} (${pollers.join(', ')})`);
      if (pollers.length < opts.workers) log(`  note: fewer than the ${opts.workers} worker processes started`);
    }
  }

  const wanted = (phase: (typeof PHASES)[number]) => opts.phases.includes(phase);
  // ABBA: each system runs two halves, Punctual first and last, so a drift in the machine's
  // background load over the phase weighs on both alike.
  const half = Math.ceil(opts.calls / 2);
  const order = !wanted('closed')
    ? []
    : baseline === undefined
      ? [punctual, punctual]
      : [punctual, baseline, baseline, punctual];
  if (order.length > 0) log(`closed loop: ${opts.calls} calls per system, ${opts.concurrency} clients, ABBA`);
  const parts = new Map<string, Awaited<ReturnType<typeof closedPart>>[]>();
  for (const d of order) {
    const part = await closedPart(env, d, 'closed', half, opts.concurrency, capMs / 2);
    log(`  ${d.name} half: ${fmt(part.result.perSecond)} calls/s`);
    parts.set(d.name, [...(parts.get(d.name) ?? []), part]);
  }
  const closed = new Map([...parts].map(([name, list]) => [name, record(mergeClosed(list))]));
  for (const d of systems) {
    const result = closed.get(d.name);
    const calls = parts.get(d.name)?.flatMap((p) => p.calls) ?? [];
    if (result !== undefined) result.breakdown = await breakdownOf(env, d, calls);
  }
  const lastCall = (name: string) => parts.get(name)?.[0]?.calls[0]?.id;
  const punctualId = lastCall('punctual');
  if (punctualId !== undefined) {
    report.historyEvents.punctual = await historyOf(ctx.temporal, workflowIdFor(ctx.sys.tenantId, punctualId));
  }
  const baselineId = lastCall('baseline');
  if (baselineId !== undefined) report.historyEvents.baseline = await historyOf(ctx.temporal, baselineId);

  const engine = closed.get('baseline')?.perSecond ?? closed.get('punctual')?.perSecond ?? 10;
  report.e2eRate = opts.e2eRate ?? Math.max(1, Math.min(100, Math.round(engine / 2)));

  if (wanted('backlog')) {
    log(`backlog: ${opts.backlog} calls per system, submitted by ${opts.concurrency} clients`);
    for (const d of systems) record(await backlog(env, d, opts.backlog, opts.concurrency));
  }
  if (wanted('e2e')) {
    log(`end to end: ${report.e2eRate} due-now calls/s for ${opts.e2eSeconds} s per system`);
    for (const d of systems) record(await pacedEndToEnd(env, d, report.e2eRate, opts.e2eSeconds));
  }
  if (opts.timers > 0 && wanted('timers')) {
    log(
      `timers: ${opts.timers} calls per system, ${report.e2eRate} submitted per second, each due ${opts.timerMinS}–${opts.timerMaxS} s after its submit`,
    );
    for (const d of systems) record(await timers(env, d, opts.timers, opts.timerMinS, opts.timerMaxS, report.e2eRate));
  }

  if (wanted('burst')) {
    const lead = opts.burstLeadS ?? Math.round(15 + opts.burst / 50);
    log(`burst: ${opts.burst} calls per system, all due ${lead} s after the first submit`);
    for (const d of systems) record(await burst(env, d, opts.burst, opts.concurrency, lead));
  }

  // Last: these leave workflows for tomorrow behind, and Punctual's relay still starting them.
  // The baseline goes first each time, so that it does not share the server with that backlog.
  const accepting = baseline === undefined ? [punctual] : [baseline, punctual];
  for (const c of wanted('submit') ? opts.submitLevels : []) {
    log(`submit: ${opts.submits} calls due tomorrow per system, ${c} client${c === 1 ? '' : 's'}`);
    for (const d of accepting) {
      const p = record(await submitLevel(env, d, opts.submits, c, capMs / 4));
      if (d === punctual) {
        const { ms: drainMs, drained } = await drain(ctx, 90_000);
        Object.assign(p, { drainMs, drained });
        log(
          `  relay started the ${opts.submits} workflows within ${fmt(drainMs / 1000)} s${drained ? '' : ' (not all)'}`,
        );
      }
    }
  }
  if (wanted('batch')) {
    log(
      `batch: ${opts.batches} batches of ${BATCH_SIZE} calls due tomorrow, then one of ${BATCH_SIZE} due now (Punctual only)`,
    );
    for (const p of await batchPhases(env, punctual, BATCH_SIZE, opts.batches)) record(p);
  }
  if (wanted('flow')) {
    log(
      `flow: ${opts.flowCalls} calls due at once without a key, then under a key limited to ${opts.flowRate}/s, with unlimited calls beside (Punctual only)`,
    );
    for (const p of await flowPhases(env, punctual, {
      n: opts.flowCalls,
      rate: opts.flowRate,
      besideRate: 5,
      leadS: Math.round(15 + opts.flowCalls / 50),
    }))
      record(p);
  }
  if (wanted('paced')) {
    log(`submit at ${opts.rate}/s for ${opts.pacedSeconds} s per system, calls due tomorrow`);
    for (const d of accepting) record(await pacedSubmit(env, d, opts.rate, opts.pacedSeconds));
  }
  // Last: its bulk cancel leaves thousands of cancelled workflows for the engine to close, minutes
  // after the phase; any phase after it measured that backlog (a flow run's unlimited calls waited
  // up to 214 s behind it).
  if (wanted('lifecycle')) {
    log(
      `lifecycle: ${opts.reschedules} reschedules by 10 clients, then a bulk cancel of ${opts.bulkCancel} calls (Punctual only)`,
    );
    const lifecycle = await lifecyclePhases(env, punctual, {
      rescheduleN: opts.reschedules,
      bulkN: opts.bulkCancel,
      concurrency: 10,
      batchSize: BATCH_SIZE,
    });
    for (const p of lifecycle) record(p);
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const runId = randomBytes(3).toString('hex');
  const machine = machineInfo(PROJECT_ROOT);
  const stamp = new Date(started).toISOString().replace(/[:.]/g, '-').slice(0, 19);
  mkdirSync(opts.out, { recursive: true });
  const prefix = path.join(opts.out, `${stamp}${opts.label ? `-${opts.label.replace(/[^\w.-]+/g, '_')}` : ''}`);
  log(
    `run ${runId}: ${machine.cores} cores, load average ${machine.loadAverageAtStart.join(' ')}; results → ${prefix}.{json,md}`,
  );

  const workDir = mkdtempSync(path.join(os.tmpdir(), 'punctual-bench-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to enter this folder.
  chmodSync(workDir, 0o755);
  const target = new BenchTarget(opts.targetDelayMs);
  const targetUrl = await target.start();
  const children: ChildProcess[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let sys: Running | undefined;
  let connection: Connection | undefined;
  let db: Database | undefined;
  let api: Pool | undefined;
  const sampler = new ThreadedSampler(() => ({
    punctual: [sys?.punctual.pid, ...(sys?.extraWorkers ?? []).map((c) => c.pid)],
    baseline: [sys?.baseline?.pid, ...(sys?.extraBaselines ?? []).map((c) => c.pid)],
    temporal: [sys?.temporalServer?.pid, ...(sys?.engine?.pids ?? [])],
  }));
  const interrupted = new Promise<never>((_, reject) => {
    process.once('SIGINT', () => reject(new Error('interrupted')));
    process.once('SIGTERM', () => reject(new Error('terminated')));
  });
  interrupted.catch(() => undefined);
  try {
    sys = await Promise.race([startSystem(opts, runId, workDir, prefix, children, cleanups), interrupted]);
    connection = await Connection.connect({ address: sys.temporalAddress });
    db = openDatabase(sys.databaseUrl, { max: 4, applicationName: 'punctual-bench' });
    for (const [name, value] of Object.entries(opts.pgSettings)) {
      if (!sys.embedded) throw new Error('--pg-setting changes only the embedded PostgreSQL the bench started');
      if (!/^[a-z_]+$/.test(name)) throw new Error(`--pg-setting: bad name ${name}`);
      log(`EXPERIMENT: PostgreSQL ${name} = ${value}`);
      await db.pool.query(`alter system set ${name} = '${value.replace(/'/g, "''")}'`);
    }
    if (Object.keys(opts.pgSettings).length > 0) await db.pool.query('select pg_reload_conf()');
    api = new Pool(sys.apiUrl, { connections: 512, keepAliveTimeout: 30_000 });
    const ctx: Ctx = {
      sys,
      api,
      target,
      targetUrl,
      temporal: new Client({ connection, namespace: sys.namespace }),
      db,
      runId,
      pollMs: opts.pollMs,
    };
    sampler.start();
    const report: Report = {
      runId,
      startedAt: new Date(started).toISOString(),
      durationSeconds: 0,
      label: opts.label,
      machine,
      options: opts,
      mode: `${modeOf(opts, sys)}${
        Object.keys(opts.pgSettings).length > 0
          ? `; EXPERIMENT: PostgreSQL ${Object.entries(opts.pgSettings)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`
          : ''
      }`,
      e2eRate: 0,
      phases: [],
      warmUp: [],
      historyEvents: {},
      targets: [],
    };
    await Promise.race([runPhases(opts, { ctx, sampler }, report), interrupted]);
    report.durationSeconds = (Date.now() - started) / 1000;
    report.resourcesAtEnd = await sampler.sample();
    report.targets = evaluateTargets(report);
    report.target = { requests: target.total, repeated: target.duplicates, maxInFlight: target.maxInFlight };
    if (target.duplicates > 0)
      log(`note: the target saw ${target.duplicates} repeated requests (at-least-once repeats)`);
    const md = markdown(report);
    writeFileSync(`${prefix}.json`, `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(`${prefix}.md`, md);
    process.stdout.write(`\n${md}\n`);
    log(`wrote ${prefix}.json and ${prefix}.md`);
  } finally {
    await sampler.stop();
    await api?.close().catch(() => undefined);
    await db?.close().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    // The baseline workers first, then Punctual's extra workers, then Punctual, which stops its
    // servers, then a dev server the bench started itself (children holds them all, also when
    // the start failed half-way), then the real server and its PostgreSQL (cleanups).
    const baselines = new Set([sys?.baseline, ...(sys?.extraBaselines ?? [])]);
    const extra = new Set(sys?.extraWorkers);
    const order = (c: ChildProcess) => (baselines.has(c) ? 0 : extra.has(c) ? 1 : c === sys?.temporalServer ? 3 : 2);
    for (const child of [...children].sort((a, b) => order(a) - order(b))) {
      await stopChild(child, baselines.has(child) ? 15_000 : 60_000);
    }
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => log(`cleanup: ${String(err)}`));
    await target.stop();
    if (opts.keep) log(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
