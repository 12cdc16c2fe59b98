import { breakdown, lateTimers, type Breakdown, type LateTimer } from './breakdown';
import { log, sleep } from './log';
import { drain, LagSampler, type Accepted, type Ctx, type Driver, type Finished, type SystemName } from './drivers';
import { usageBetween, type ThreadedSampler, type WindowUsage } from './procstat';
import { nowMs, summarize, type Summary } from './stats';

/** What one phase measured on one system. Latencies in ms; rates per second. */
export interface PhaseResult {
  name: string;
  system: SystemName;
  n: number;
  concurrency?: number;
  rate?: number;
  seconds?: number;
  /** Closed loop: calls completed per second of wall time. */
  perSecond?: number;
  /** Backlog: calls whose HTTP request reached the target, per second. */
  executedPerSecond?: number;
  /** Backlog: calls terminal and visible to their client, per second. */
  completedPerSecond?: number;
  accept?: Summary;
  pickup?: Summary;
  e2e?: Summary;
  outcomeToVisible?: Summary;
  lateness?: Summary;
  projectionLag?: Summary;
  starterLag?: Summary;
  errors?: number;
  notSucceeded?: number;
  /** Punctual: GET requests per call until the terminal status was seen. */
  pollsPerCall?: number;
  missed?: number;
  early?: number;
  /** Burst: requests the target saw a second time for one call. */
  repeated?: number;
  /** Burst: the due instant → the last target hit. */
  lastHitAfterDueMs?: number;
  /** Burst: how long before the due instant the last submit was accepted (negative: after it). */
  submittedBeforeDueMs?: number;
  /** Burst: hits in each second after the due instant. */
  hitsPerSecond?: number[];
  maxSlipMs?: number;
  /** Time the system needed afterwards until every due call was done and consumers caught up. */
  drainMs?: number;
  drained?: boolean;
  /** Timers: the latest ones, and when each step happened relative to dueAt. */
  latest?: LateTimer[];
  /** Where the closed loop's time went, from a sample of Temporal histories. */
  breakdown?: Breakdown;
  /** Sub-runs merged into this one (ABBA order). */
  parts?: { n: number; wallMs: number }[];
  usage?: WindowUsage;
  /** Event-loop delay of the Punctual process over the phase (ms). */
  eventLoopDelay?: { p50: number; p99: number; max: number };
}

export interface PhaseEnv {
  ctx: Ctx;
  sampler: ThreadedSampler;
}

const nums = (items: Finished[], pick: (f: Finished) => number | undefined) =>
  items.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));

function finishedStats(calls: Finished[]) {
  return {
    accept: summarize(nums(calls, (c) => c.acceptMs)),
    pickup: summarize(nums(calls, (c) => c.pickupMs)),
    e2e: summarize(nums(calls, (c) => c.e2eMs)),
    ...(calls.some((c) => c.outcomeToVisibleMs !== undefined)
      ? { outcomeToVisible: summarize(nums(calls, (c) => c.outcomeToVisibleMs)) }
      : {}),
    notSucceeded: calls.filter((c) => c.status !== 'Succeeded').length,
    ...(calls.some((c) => c.polls !== undefined)
      ? { pollsPerCall: nums(calls, (c) => c.polls).reduce((a, b) => a + b, 0) / calls.length }
      : {}),
  };
}

/** Where the time of these calls went, from a sample of their Temporal histories. */
export function breakdownOf(env: PhaseEnv, driver: Driver, calls: Finished[]): Promise<Breakdown | undefined> {
  return breakdown(
    env.ctx.temporal,
    calls.map((c) => ({
      workflowId: driver.workflowId(c.id),
      t0: c.t0,
      hitAt: c.t0 + c.pickupMs,
      seenAt: c.t0 + c.e2eMs,
    })),
  );
}

/**
 * The Punctual process's event-loop delay since the last scrape, from its /metrics (prom-client
 * resets the histogram on every scrape): how long the api, worker and relay, sharing one loop,
 * made each other wait.
 */
async function eventLoopDelay(ctx: Ctx): Promise<{ p50: number; p99: number; max: number } | undefined> {
  try {
    const res = await ctx.api.request({ method: 'GET', path: '/metrics' });
    const text = await res.body.text();
    const read = (name: string) => {
      const m = new RegExp(
        `^punctual_process_nodejs_eventloop_lag_${name}_seconds(?:\\{[^}]*\\})? ([0-9.e+-]+)$`,
        'm',
      ).exec(text);
      return m?.[1] === undefined ? Number.NaN : Number(m[1]) * 1000;
    };
    return { p50: read('p50'), p99: read('p99'), max: read('max') };
  } catch {
    return undefined;
  }
}

/** Runs `body` between two resource samples and attaches the usage of that window. */
async function measured(env: PhaseEnv, body: () => Promise<PhaseResult>): Promise<PhaseResult> {
  await eventLoopDelay(env.ctx);
  const from = await env.sampler.sample();
  const result = await body();
  const to = await env.sampler.sample();
  result.usage = usageBetween(env.sampler, from, to);
  result.eventLoopDelay = await eventLoopDelay(env.ctx);
  return result;
}

/** Up to n tasks, at most `concurrency` at once, none started after `deadline`. */
async function closedLoop(
  n: number,
  concurrency: number,
  deadline: number,
  task: (i: number) => Promise<void>,
): Promise<{ started: number; wallMs: number }> {
  let next = 0;
  const began = nowMs();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      for (let i = next++; i < n && nowMs() < deadline; i = next++) await task(i);
    }),
  );
  return { started: Math.min(next, n), wallMs: nowMs() - began };
}

/** Runs `body`, sampling Punctual's consumer lag meanwhile; `lag` is ready to spread into a PhaseResult. */
async function withLag<T>(
  env: PhaseEnv,
  driver: Driver,
  body: () => Promise<T>,
): Promise<{ value: T; lag: Pick<PhaseResult, 'projectionLag' | 'starterLag'> }> {
  if (driver.name !== 'punctual') return { value: await body(), lag: {} };
  const sampler = new LagSampler(env.ctx.db);
  sampler.start();
  try {
    const value = await body();
    const { projection, starter } = await sampler.stop();
    return { value, lag: { projectionLag: projection, starterLag: starter } };
  } catch (err) {
    await sampler.stop();
    throw err;
  }
}

/** What every fixed-rate phase reports about its open loop. */
function openLoopFields(
  rate: number,
  seconds: number,
  loop: { results: unknown[]; errors: number; maxSlipMs: number },
) {
  return { n: loop.results.length, rate, seconds, errors: loop.errors, maxSlipMs: loop.maxSlipMs };
}

async function settle(env: PhaseEnv, driver: Driver, timeoutMs = 120_000) {
  if (driver.name !== 'punctual') return {};
  const { ms, drained } = await drain(env.ctx, timeoutMs);
  if (!drained) log(`warning: Punctual did not drain within ${timeoutMs / 1000} s`);
  return { drainMs: ms, drained };
}

/**
 * Closed loop: `concurrency` clients, each submitting a due-now call and waiting until it is
 * terminal before the next. Runs are given as parts so that two systems can alternate (ABBA).
 */
export async function closedPart(
  env: PhaseEnv,
  driver: Driver,
  tag: string,
  n: number,
  concurrency: number,
  capMs: number,
): Promise<{ calls: Finished[]; wallMs: number; result: PhaseResult }> {
  const calls: Finished[] = [];
  let wallMs = 0;
  const result = await measured(env, async () => {
    const { value, lag } = await withLag(env, driver, () =>
      closedLoop(n, concurrency, nowMs() + capMs, async () => {
        calls.push(await driver.finish(await driver.accept(tag)));
      }),
    );
    wallMs = value.wallMs;
    return {
      name: `${tag} c=${concurrency}`,
      system: driver.name,
      n: calls.length,
      concurrency,
      perSecond: calls.length / (value.wallMs / 1000),
      ...finishedStats(calls),
      ...lag,
    };
  });
  Object.assign(result, await settle(env, driver));
  return { calls, wallMs, result };
}

/** Merges the parts of one system's closed-loop runs into one result. */
export function mergeClosed(parts: { calls: Finished[]; wallMs: number; result: PhaseResult }[]): PhaseResult {
  const first = parts[0]!.result;
  const calls = parts.flatMap((p) => p.calls);
  const wallMs = parts.reduce((a, p) => a + p.wallMs, 0);
  const lags = parts.map((p) => p.result.projectionLag).filter((l): l is Summary => l !== undefined);
  const usage = parts.map((p) => p.result.usage).filter((u): u is WindowUsage => u !== undefined);
  return {
    ...first,
    n: calls.length,
    perSecond: calls.length / (wallMs / 1000),
    ...finishedStats(calls),
    ...(lags.length > 0
      ? {
          projectionLag: {
            ...lags[0]!,
            p50: Math.max(...lags.map((l) => l.p50)),
            p95: Math.max(...lags.map((l) => l.p95)),
            p99: Math.max(...lags.map((l) => l.p99)),
            max: Math.max(...lags.map((l) => l.max)),
          },
        }
      : {}),
    parts: parts.map((p) => ({ n: p.calls.length, wallMs: p.wallMs })),
    ...(usage.length > 0 ? { usage: mergeUsage(usage) } : {}),
  };
}

function mergeUsage(list: WindowUsage[]): WindowUsage {
  const seconds = list.reduce((a, u) => a + u.seconds, 0);
  const first = list[0]!;
  const groups = Object.fromEntries(
    Object.keys(first.groups).map((g) => {
      const k = g as keyof WindowUsage['groups'];
      const cpuSeconds = list.reduce((a, u) => a + u.groups[k].cpuSeconds, 0);
      return [
        k,
        {
          cpuSeconds,
          cpuPercent: (cpuSeconds / seconds) * 100,
          rssMaxMb: Math.max(...list.map((u) => u.groups[k].rssMaxMb)),
          pssMaxMb: Math.max(...list.map((u) => u.groups[k].pssMaxMb)),
        },
      ];
    }),
  ) as WindowUsage['groups'];
  const weighted = (pick: (u: WindowUsage) => number) => list.reduce((a, u) => a + pick(u) * u.seconds, 0) / seconds;
  return {
    seconds,
    groups,
    machineCpuPercent: weighted((u) => u.machineCpuPercent),
    othersCpuPercent: weighted((u) => u.othersCpuPercent),
    load1Mean: weighted((u) => u.load1Mean),
  };
}

/**
 * Backlog: n due-now calls submitted as fast as `concurrency` clients can, then the time until
 * the last one reached the target (executed) and until every one was terminal and visible.
 */
export async function backlog(env: PhaseEnv, driver: Driver, n: number, concurrency: number): Promise<PhaseResult> {
  const result = await measured(env, async () => {
    const { value, lag } = await withLag(env, driver, async () => {
      const t0 = nowMs();
      const accepted: Accepted[] = [];
      await closedLoop(n, concurrency, Number.POSITIVE_INFINITY, async () => {
        accepted.push(await driver.accept('backlog'));
      });
      const acceptedAt = nowMs();
      // Every call is followed to its end by its own client, as the closed loop does.
      const finished = await Promise.all(accepted.map((a) => driver.finish(a)));
      const lastHit = Math.max(...finished.map((f) => f.t0 + f.pickupMs));
      const lastVisible = Math.max(...finished.map((f) => f.t0 + f.e2eMs));
      return { t0, acceptedAt, lastHit, lastVisible, finished };
    });
    const { t0, acceptedAt, lastHit, lastVisible, finished } = value;
    return {
      name: `backlog ${n} c=${concurrency}`,
      system: driver.name,
      n,
      concurrency,
      executedPerSecond: n / ((lastHit - t0) / 1000),
      completedPerSecond: n / ((lastVisible - t0) / 1000),
      seconds: (acceptedAt - t0) / 1000,
      ...finishedStats(finished),
      ...lag,
    };
  });
  Object.assign(result, await settle(env, driver));
  return result;
}

/** Sends on a fixed schedule whatever the answers do (open loop), so queueing shows as latency. */
async function openLoop<T>(
  rate: number,
  seconds: number,
  task: () => Promise<T>,
): Promise<{ results: T[]; errors: number; maxSlipMs: number }> {
  const n = Math.round(rate * seconds);
  const start = nowMs() + 50;
  const pending: Promise<void>[] = [];
  const results: T[] = [];
  let errors = 0;
  let maxSlipMs = 0;
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - nowMs();
    if (wait > 1) await sleep(wait);
    maxSlipMs = Math.max(maxSlipMs, nowMs() - due);
    pending.push(
      task().then(
        (r) => void results.push(r),
        (err: unknown) => {
          errors++;
          if (errors <= 3) log(`a paced call failed: ${String(err)}`);
        },
      ),
    );
  }
  await Promise.all(pending);
  return { results, errors, maxSlipMs };
}

/** Due-now calls at a fixed rate, each followed to its end: end-to-end latency under steady load. */
export async function pacedEndToEnd(
  env: PhaseEnv,
  driver: Driver,
  rate: number,
  seconds: number,
): Promise<PhaseResult> {
  let calls: Finished[] = [];
  const result = await measured(env, async () => {
    const { value, lag } = await withLag(env, driver, () =>
      openLoop(rate, seconds, async () => driver.finish(await driver.accept('e2e'))),
    );
    calls = value.results;
    return {
      name: `end to end at ${rate}/s`,
      system: driver.name,
      ...openLoopFields(rate, seconds, value),
      ...finishedStats(value.results),
      ...lag,
    };
  });
  Object.assign(result, await settle(env, driver));
  result.breakdown = await breakdownOf(env, driver, calls);
  return result;
}

const tomorrow = () => new Date(Date.now() + 24 * 3600_000);

/**
 * Accepting calls: submits (Punctual) or starts (baseline) of calls due tomorrow, so that only
 * taking the call is timed — although Punctual's relay and worker do start their workflows
 * meanwhile, as they would in production.
 */
export async function submitLevel(
  env: PhaseEnv,
  driver: Driver,
  n: number,
  concurrency: number,
  capMs: number,
): Promise<PhaseResult> {
  return measured(env, async () => {
    const accepted: Accepted[] = [];
    const { value, lag } = await withLag(env, driver, () =>
      closedLoop(n, concurrency, nowMs() + capMs, async () => {
        accepted.push(await driver.accept(`submit-c${concurrency}`, tomorrow()));
      }),
    );
    return {
      name: `submit c=${concurrency}`,
      system: driver.name,
      n: accepted.length,
      concurrency,
      perSecond: accepted.length / (value.wallMs / 1000),
      accept: summarize(accepted.map((a) => a.acceptMs)),
      ...lag,
    };
  });
}

/** Submits (starts) at a fixed rate, calls due tomorrow: the accepting side at a given request rate. */
export async function pacedSubmit(env: PhaseEnv, driver: Driver, rate: number, seconds: number): Promise<PhaseResult> {
  return measured(env, async () => {
    const { value, lag } = await withLag(env, driver, () =>
      openLoop(rate, seconds, () => driver.accept('paced', tomorrow())),
    );
    return {
      name: `submit at ${rate}/s`,
      system: driver.name,
      ...openLoopFields(rate, seconds, value),
      accept: summarize(value.results.map((a) => a.acceptMs)),
      ...lag,
    };
  });
}

/**
 * Calls due minS–maxS seconds after each one is submitted, submitted at `rate` per second (a
 * pace the system can take, so that this measures timers and not a backlog of starts): how late
 * does each request reach the target?
 */
export async function timers(
  env: PhaseEnv,
  driver: Driver,
  n: number,
  minS: number,
  maxS: number,
  rate: number,
): Promise<PhaseResult> {
  let lateItems: { workflowId: string; dueAtMs: number; lateMs: number }[] = [];
  const result = await measured(env, async () => {
    const due = () => new Date(Date.now() + (minS + Math.random() * (maxS - minS)) * 1000);
    const { results: accepted, errors } = await openLoop(rate, n / rate, () => driver.accept('timer', due()));
    await Promise.all(accepted.map((a) => env.ctx.target.waitFor(a.id, maxS * 1000 + 60_000).catch(() => undefined)));
    const late = accepted.map((a) => (env.ctx.target.hitAt(a.id) ?? Number.NaN) - a.dueAtMs);
    lateItems = accepted.map((a, i) => ({ workflowId: driver.workflowId(a.id), dueAtMs: a.dueAtMs, lateMs: late[i]! }));
    return {
      name: `timers ${n} × ${minS}–${maxS} s`,
      system: driver.name,
      n,
      rate,
      errors,
      missed: late.filter((v) => Number.isNaN(v)).length,
      early: late.filter((v) => v < 0).length,
      lateness: summarize(late.filter((v) => !Number.isNaN(v))),
    };
  });
  Object.assign(result, await settle(env, driver));
  result.latest = await lateTimers(
    env.ctx.temporal,
    lateItems.filter((i) => !Number.isNaN(i.lateMs)),
  );
  return result;
}

/** How many of the lateness values fall in each whole second after the due instant. */
function perSecond(lateMs: number[]): number[] {
  const counts: number[] = [];
  for (const v of lateMs) {
    const s = Math.max(0, Math.floor(v / 1000));
    while (counts.length <= s) counts.push(0);
    counts[s]!++;
  }
  return counts;
}

/**
 * Burst: n calls submitted ahead (by `concurrency` clients), all due at one instant `leadS`
 * seconds after the first submit; then the time from that instant until the last target hit,
 * the lateness of every call, early runs and repeats. The 2,000 reminders due at 09:00.
 */
export async function burst(
  env: PhaseEnv,
  driver: Driver,
  n: number,
  concurrency: number,
  leadS: number,
): Promise<PhaseResult> {
  let lateItems: { workflowId: string; dueAtMs: number; lateMs: number }[] = [];
  const result = await measured(env, async () => {
    const repeatedBefore = env.ctx.target.duplicates;
    const dueAtMs = Math.ceil((Date.now() + leadS * 1000) / 1000) * 1000;
    const dueAt = new Date(dueAtMs);
    const accepted: Accepted[] = [];
    let errors = 0;
    await closedLoop(n, concurrency, Number.POSITIVE_INFINITY, async () => {
      try {
        accepted.push(await driver.accept('burst', dueAt));
      } catch (err) {
        if (++errors <= 3) log(`a burst submit failed: ${String(err)}`);
      }
    });
    const submittedAt = nowMs();
    if (submittedAt > dueAtMs) log(`warning: burst submits took past the due instant (${submittedAt - dueAtMs} ms)`);
    const waitMs = dueAtMs - nowMs() + 120_000;
    await Promise.all(accepted.map((a) => env.ctx.target.waitFor(a.id, waitMs).catch(() => undefined)));
    const late = accepted.map((a) => (env.ctx.target.hitAt(a.id) ?? Number.NaN) - dueAtMs);
    const ran = late.filter((v) => !Number.isNaN(v));
    lateItems = accepted
      .map((a, i) => ({ workflowId: driver.workflowId(a.id), dueAtMs, lateMs: late[i]! }))
      .filter((i) => !Number.isNaN(i.lateMs));
    return {
      name: `burst ${n} due at once`,
      system: driver.name,
      n,
      concurrency,
      errors,
      missed: late.length - ran.length,
      early: ran.filter((v) => v < 0).length,
      repeated: env.ctx.target.duplicates - repeatedBefore,
      lateness: summarize(ran),
      lastHitAfterDueMs: ran.length > 0 ? Math.max(...ran) : undefined,
      submittedBeforeDueMs: dueAtMs - submittedAt,
      hitsPerSecond: perSecond(ran),
    };
  });
  Object.assign(result, await settle(env, driver));
  result.latest = await lateTimers(env.ctx.temporal, lateItems, 5);
  return result;
}

/**
 * Batch (Punctual only): `batches` requests of `size` calls due tomorrow, one after another
 * (items accepted per second, to set beside the single submits' requests per second), then one
 * batch of `size` calls due now: the time from sending it until the target has seen every call.
 */
export async function batchPhases(
  env: PhaseEnv,
  driver: Driver,
  size: number,
  batches: number,
): Promise<PhaseResult[]> {
  const acceptBatch = driver.acceptBatch;
  if (acceptBatch === undefined) return [];
  const accepting = await measured(env, async () => {
    const requests: number[] = [];
    const started = nowMs();
    for (let b = 0; b < batches; b++) requests.push((await acceptBatch('batch', size, tomorrow())).requestMs);
    const wallMs = nowMs() - started;
    return {
      name: `batch ${batches} × ${size} due tomorrow`,
      system: driver.name,
      n: batches * size,
      perSecond: (batches * size) / (wallMs / 1000),
      accept: summarize(requests),
    };
  });
  await drain(env.ctx, 120_000);
  const dueNow = await measured(env, async () => {
    const repeatedBefore = env.ctx.target.duplicates;
    const t0 = nowMs();
    const { calls, requestMs } = await acceptBatch('batch-now', size);
    await Promise.all(calls.map((c) => env.ctx.target.waitFor(c.id, 300_000).catch(() => undefined)));
    const hits = calls.map((c) => env.ctx.target.hitAt(c.id));
    const ran = hits.filter((h): h is number => h !== undefined);
    return {
      name: `batch ${size} due now`,
      system: driver.name,
      n: size,
      accept: summarize([requestMs]),
      missed: calls.length - ran.length,
      repeated: env.ctx.target.duplicates - repeatedBefore,
      pickup: summarize(ran.map((h) => h - t0)),
      lastHitAfterDueMs: ran.length > 0 ? Math.max(...ran) - t0 : undefined,
    };
  });
  Object.assign(dueNow, await settle(env, driver));
  return [accepting, dueNow];
}

/**
 * Lifecycle commands (Punctual only): `rescheduleN` calls due tomorrow, each moved an hour later
 * by `concurrency` clients (the reschedule request's latency); then `bulkN` calls due tomorrow
 * with one tag, and, once the read model holds them all, one bulk cancel by that tag (the
 * request's duration; the workflows' cancellations follow, and the phase waits for them).
 */
export async function lifecyclePhases(
  env: PhaseEnv,
  driver: Driver,
  opts: { rescheduleN: number; bulkN: number; concurrency: number; batchSize: number },
): Promise<PhaseResult[]> {
  const { api, acceptBatch } = driver;
  if (api === undefined || acceptBatch === undefined) return [];
  const submitTagged = async (tag: string, n: number): Promise<Accepted[]> => {
    const calls: Accepted[] = [];
    for (let i = 0; i < n; i += opts.batchSize) {
      calls.push(...(await acceptBatch(tag, Math.min(opts.batchSize, n - i), tomorrow())).calls);
    }
    return calls;
  };
  const moving = await submitTagged('reschedule', opts.rescheduleN);
  const rescheduling = await measured(env, async () => {
    const latencies: number[] = [];
    let errors = 0;
    const later = new Date(Date.now() + 25 * 3600_000).toISOString();
    const loop = await closedLoop(moving.length, opts.concurrency, Number.POSITIVE_INFINITY, async (i) => {
      const t0 = nowMs();
      const res = await api('POST', `/v1/service-calls/${moving[i]!.id}/reschedule`, { dueAt: later });
      latencies.push(nowMs() - t0);
      if (res.status !== 200 && ++errors <= 3) log(`a reschedule answered ${res.status}: ${JSON.stringify(res.json)}`);
    });
    return {
      name: `reschedule ${opts.rescheduleN} c=${opts.concurrency}`,
      system: driver.name,
      n: latencies.length,
      concurrency: opts.concurrency,
      perSecond: latencies.length / (loop.wallMs / 1000),
      accept: summarize(latencies),
      errors,
    };
  });
  await settle(env, driver, 300_000);

  await submitTagged('bulk', opts.bulkN);
  const visible = async () => {
    const { rows } = await env.ctx.db.pool.query<{ n: number }>(
      "select count(*)::int as n from service_calls where 'bench:bulk' = any(tags) and status = 'Scheduled'",
    );
    return rows[0]?.n ?? 0;
  };
  for (const until = nowMs() + 300_000; (await visible()) < opts.bulkN && nowMs() < until;) await sleep(200);
  const cancelling = await measured(env, async () => {
    const t0 = nowMs();
    const res = await api('POST', '/v1/service-calls/bulk/cancel', {
      filter: { tag: 'bench:bulk', status: 'Scheduled' },
      limit: opts.bulkN,
    });
    const ms = nowMs() - t0;
    if (res.status !== 200) throw new Error(`bulk cancel answered ${res.status}: ${JSON.stringify(res.json)}`);
    return {
      name: `bulk cancel ${opts.bulkN}`,
      system: driver.name,
      n: Number(res.json.affected),
      accept: summarize([ms]),
      missed: opts.bulkN - Number(res.json.affected),
    };
  });
  Object.assign(cancelling, await settle(env, driver, 600_000));
  return [rescheduling, cancelling];
}

/**
 * Flow limits (Punctual only, issue 16): `n` calls due at one instant under no key (the engine's
 * own pace for that shape, E), then `n` due at one instant under a key limited to `rate`/s with
 * burst 1. Due-now calls without a key are submitted beside each (and alone first, as the
 * control) at `besideRate`/s: their submit → hit time shows what a saturated key costs the
 * calls it does not limit. The limited calls' achieved rate is (n − 1) ÷ first → last hit.
 */
export async function flowPhases(
  env: PhaseEnv,
  driver: Driver,
  opts: { n: number; rate: number; besideRate: number; leadS: number },
): Promise<PhaseResult[]> {
  const { api, acceptBatch } = driver;
  if (api === undefined || acceptBatch === undefined) return [];
  const pickups = async (accepted: Accepted[]) => {
    await Promise.all(accepted.map((a) => env.ctx.target.waitFor(a.id, 300_000).catch(() => undefined)));
    return accepted.flatMap((a) => {
      const hit = env.ctx.target.hitAt(a.id);
      return hit === undefined ? [] : [hit - a.t0];
    });
  };
  const beside = async (seconds: number) => {
    const { results, errors } = await openLoop(opts.besideRate, seconds, () => driver.accept('flow-free'));
    const pickup = summarize(await pickups(results));
    // Where their time went (no terminal status is awaited here: seen = hit).
    const timed = results.flatMap((a) => {
      const hitAt = env.ctx.target.hitAt(a.id);
      return hitAt === undefined ? [] : [{ workflowId: driver.workflowId(a.id), t0: a.t0, hitAt, seenAt: hitAt }];
    });
    return { pickup, errors, n: results.length, breakdown: await breakdown(env.ctx.temporal, timed) };
  };
  const alone = await measured(env, async () => {
    const b = await beside(10);
    return { name: 'flow: unlimited calls alone', system: driver.name, rate: opts.besideRate, ...b };
  });
  await settle(env, driver);

  const dueAtOnce = async (tag: string, flowKeys?: string[]) => {
    const dueAtMs = Math.ceil((Date.now() + opts.leadS * 1000) / 1000) * 1000;
    const calls: Accepted[] = [];
    for (let i = 0; i < opts.n; i += BATCH) {
      const size = Math.min(BATCH, opts.n - i);
      calls.push(
        ...(await acceptBatch(tag, size, new Date(dueAtMs), flowKeys === undefined ? {} : { flowKeys })).calls,
      );
    }
    await sleep(dueAtMs - Date.now());
    return { calls, dueAtMs };
  };
  const spanOf = async (calls: Accepted[], dueAtMs: number) => {
    await pickups(calls);
    const hits = calls.flatMap((c) => {
      const h = env.ctx.target.hitAt(c.id);
      return h === undefined ? [] : [h];
    });
    const first = Math.min(...hits);
    const last = Math.max(...hits);
    return {
      missed: calls.length - hits.length,
      early: hits.filter((h) => h < dueAtMs).length,
      executedPerSecond: hits.length > 1 ? ((hits.length - 1) * 1000) / (last - first) : undefined,
      lastHitAfterDueMs: hits.length > 0 ? last - dueAtMs : undefined,
    };
  };
  // The engine's pace for n calls due at once, no key: the most a limit could let through here.
  let engineSeconds = opts.n / opts.rate;
  const unlimited = await measured(env, async () => {
    const repeatedBefore = env.ctx.target.duplicates;
    const { calls, dueAtMs } = await dueAtOnce('flow-none');
    const span = spanOf(calls, dueAtMs);
    const b = await beside(Math.max(5, Math.round(opts.n / opts.rate)));
    const s = await span;
    engineSeconds = (s.lastHitAfterDueMs ?? 0) / 1000;
    return {
      name: `flow: ${opts.n} due at once, no key`,
      system: driver.name,
      n: opts.n,
      ...s,
      repeated: env.ctx.target.duplicates - repeatedBefore,
      pickup: b.pickup,
      errors: b.errors,
      breakdown: b.breakdown,
    };
  });
  await settle(env, driver);

  const key = `bench-flow-${env.ctx.runId}`;
  const put = await api('PUT', `/v1/flow-limits/${key}`, { ratePerSecond: opts.rate, burst: 1 });
  if (put.status !== 200) throw new Error(`flow limit answered ${put.status}: ${JSON.stringify(put.json)}`);
  const limited = await measured(env, async () => {
    const repeatedBefore = env.ctx.target.duplicates;
    const { calls, dueAtMs } = await dueAtOnce('flow-limited', [key]);
    const span = spanOf(calls, dueAtMs);
    // Beside it for as long as the limited calls take: the longer of the limit's and the engine's pace.
    const b = await beside(Math.max(5, Math.round(Math.max(opts.n / opts.rate, engineSeconds))));
    const s = await span;
    return {
      name: `flow: ${opts.n} due at once under ${opts.rate}/s`,
      system: driver.name,
      n: opts.n,
      rate: opts.rate,
      ...s,
      repeated: env.ctx.target.duplicates - repeatedBefore,
      pickup: b.pickup,
      errors: b.errors,
      breakdown: b.breakdown,
    };
  });
  Object.assign(limited, await settle(env, driver));
  return [alone, unlimited, limited];
}

/** Calls per batch request in the flow phase. */
const BATCH = 1000;
