import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Breakdown } from './breakdown';
import type { PhaseResult } from './phases';
import type { Group, Sample } from './procstat';
import { fmt, fmtRatio, ratio, type Summary } from './stats';

/** The run's JSON record and the markdown table made from it. */

export const PHASES = [
  'closed',
  'backlog',
  'e2e',
  'timers',
  'burst',
  'submit',
  'paced',
  'batch',
  'lifecycle',
  'flow',
] as const;

/** Calls per batch request in the batch phase: the API's maximum. */
export const BATCH_SIZE = 1000;

export interface BenchOptions {
  calls: number;
  concurrency: number;
  phaseCapSeconds: number;
  backlog: number;
  e2eRate: number | undefined;
  e2eSeconds: number;
  submitLevels: number[];
  submits: number;
  /** Batch phase: requests of BATCH_SIZE calls due tomorrow. */
  batches: number;
  /** Lifecycle phase: calls rescheduled (10 clients), and calls cancelled by one bulk cancel. */
  reschedules: number;
  bulkCancel: number;
  /** Flow phase: calls due at one instant under one key, and that key's rate limit (per second). */
  flowCalls: number;
  flowRate: number;
  rate: number;
  pacedSeconds: number;
  timers: number;
  timerMinS: number;
  timerMaxS: number;
  burst: number;
  /** Seconds from the burst's first submit to the instant all its calls are due. */
  burstLeadS: number | undefined;
  warmup: number;
  pollMs: number;
  bundleAtStart: boolean;
  keep: boolean;
  out: string;
  label: string;
  env: Record<string, string>;
  skipBaseline: boolean;
  phases: string[];
  punctualEntry: string | undefined;
  nodeArgs: string[];
  temporalArgs: string[];
  temporal: 'dev' | 'server';
  shards: number;
  workers: number;
  pgSettings: Record<string, string>;
  targetDelayMs: number;
}

export function machineInfo(projectRoot: string) {
  const cpus = os.cpus();
  let gitCommit = 'unknown';
  let gitDirty = false;
  try {
    gitCommit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: projectRoot, encoding: 'utf8' }).trim();
    gitDirty = execFileSync('git', ['status', '--porcelain'], { cwd: projectRoot, encoding: 'utf8' }).trim() !== '';
  } catch {
    // Not a git checkout.
  }
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryMb: Math.round(os.totalmem() / 1024 / 1024),
    loadAverageAtStart: os.loadavg().map((v) => Number(v.toFixed(2))),
    kernel: os.release(),
    node: process.version,
    git: { commit: gitCommit, dirty: gitDirty },
    cwd: path.basename(projectRoot),
  };
}

export interface Report {
  runId: string;
  startedAt: string;
  durationSeconds: number;
  label: string;
  machine: ReturnType<typeof machineInfo>;
  options: BenchOptions;
  mode: string;
  e2eRate: number;
  phases: PhaseResult[];
  warmUp: PhaseResult[];
  historyEvents: Partial<Record<'punctual' | 'baseline', { count: number; types: string[] }>>;
  resourcesAtEnd?: Sample;
  /** What the target saw over the whole run. */
  target?: { requests: number; repeated: number; maxInFlight: number };
  targets: Target[];
}

interface Target {
  name: string;
  value: number | undefined;
  limit: string;
  holds: boolean | undefined;
}

export const names = (o: BenchOptions, e2eRate: number) => ({
  closed: `closed c=${o.concurrency}`,
  backlog: `backlog ${o.backlog} c=${o.concurrency}`,
  e2e: `end to end at ${e2eRate}/s`,
  timers: `timers ${o.timers} × ${o.timerMinS}–${o.timerMaxS} s`,
  burst: `burst ${o.burst} due at once`,
  paced: `submit at ${o.rate}/s`,
  submit: (c: number) => `submit c=${c}`,
  batch: `batch ${o.batches} × ${BATCH_SIZE} due tomorrow`,
  batchNow: `batch ${BATCH_SIZE} due now`,
  reschedule: `reschedule ${o.reschedules} c=10`,
  bulkCancel: `bulk cancel ${o.bulkCancel}`,
  flowAlone: 'flow: unlimited calls alone',
  flowNone: `flow: ${o.flowCalls} due at once, no key`,
  flowLimited: `flow: ${o.flowCalls} due at once under ${o.flowRate}/s`,
});

function find(r: Report, name: string, system: 'punctual' | 'baseline'): PhaseResult | undefined {
  return r.phases.find((p) => p.name === name && p.system === system);
}

const pct = (s: Summary | undefined) => (s === undefined ? '–' : `${fmt(s.p50)} / ${fmt(s.p95)} / ${fmt(s.p99)}`);
const pmx = (s: Summary | undefined) => (s === undefined ? '–' : `${fmt(s.p50)} / ${fmt(s.p99)} / ${fmt(s.max)}`);

export function evaluateTargets(r: Report): Target[] {
  const n = names(r.options, r.e2eRate);
  const closed = find(r, n.closed, 'punctual');
  const closedBase = find(r, n.closed, 'baseline');
  const paced = find(r, n.paced, 'punctual');
  const e2e = find(r, n.e2e, 'punctual');
  const timers = find(r, n.timers, 'punctual');
  const burst = find(r, n.burst, 'punctual');
  const flow = find(r, n.flowLimited, 'punctual');
  const punctualPhases = r.phases.filter((p) => p.system === 'punctual');
  const maxRss = Math.max(0, ...punctualPhases.map((p) => p.usage?.groups.punctual.rssMaxMb ?? 0));
  const t = (name: string, value: number | undefined, limit: string, ok: (v: number) => boolean): Target => ({
    name,
    value,
    limit,
    holds: value === undefined || Number.isNaN(value) ? undefined : ok(value),
  });
  return [
    t(
      `throughput, closed loop c=${r.options.concurrency}: Punctual ÷ baseline`,
      ratio(closed?.perSecond, closedBase?.perSecond),
      '≥ 1.0',
      (v) => v >= 1.0,
    ),
    t(`submit p99 at ${r.options.rate} requests/s (ms)`, paced?.accept?.p99, '≤ 20', (v) => v <= 20),
    t(`due-now end to end p99 at ${r.e2eRate} calls/s (ms)`, e2e?.e2e?.p99, '≤ 500', (v) => v <= 500),
    t('timer lateness p99 (ms)', timers?.lateness?.p99, '≤ 50', (v) => v <= 50),
    t(
      `burst of ${r.options.burst} due at once: due instant → last hit (ms), every call once, none early`,
      burst === undefined
        ? undefined
        : burst.missed === 0 && burst.early === 0 && burst.repeated === 0
          ? burst.lastHitAfterDueMs
          : Number.POSITIVE_INFINITY,
      '≤ 25000',
      (v) => v <= 25_000,
    ),
    t(
      `flow limit ${r.options.flowRate}/s over ${r.options.flowCalls} calls due at once: achieved rate ÷ limit`,
      ratio(flow?.executedPerSecond, flow === undefined ? undefined : r.options.flowRate),
      '0.95–1.0',
      (v) => v >= 0.95 && v <= 1.0,
    ),
    t(`projection lag p99 at ${r.options.rate} submits/s (ms)`, paced?.projectionLag?.p99, '≤ 100', (v) => v <= 100),
    t(`projection lag p99 at ${r.e2eRate} calls/s end to end (ms)`, e2e?.projectionLag?.p99, '≤ 100', (v) => v <= 100),
    t(
      'Punctual process (api + worker + relay) RSS, max (MB)',
      maxRss > 0 ? maxRss : undefined,
      '≤ 400',
      (v) => v <= 400,
    ),
  ];
}

const burstCounts = (p: PhaseResult | undefined) =>
  p === undefined
    ? '–'
    : `${p.missed ?? '–'} · ${p.early ?? '–'} · ${p.repeated ?? '–'} · ${fmt((p.submittedBeforeDueMs ?? Number.NaN) / 1000)}`;

const cpuMsPerCall = (p: PhaseResult | undefined, groups: Group[]) =>
  p?.usage === undefined || p.n === 0
    ? undefined
    : (groups.reduce((a, g) => a + (p.usage?.groups[g].cpuSeconds ?? 0), 0) * 1000) / p.n;

export function markdown(r: Report): string {
  const o = r.options;
  const n = names(o, r.e2eRate);
  const m = r.machine;
  const L: string[] = [];
  L.push(`### Punctual benchmark, ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC${r.label ? ` — ${r.label}` : ''}`);
  L.push('');
  L.push(
    `${m.cores} cores (${m.cpuModel}), ${Math.round(m.memoryMb / 1024)} GB RAM, load average at start ` +
      `${m.loadAverageAtStart.join(' / ')}; Node ${m.node}; ${r.mode}; git ${m.git.commit}` +
      `${m.git.dirty ? ' + uncommitted changes' : ''}; ${Math.round(r.durationSeconds)} s.` +
      (Object.keys(o.env).length > 0
        ? ` Extra environment: ${Object.entries(o.env)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}.`
        : ''),
  );
  L.push('');
  L.push('| measure | Punctual | baseline | Punctual ÷ baseline |');
  L.push('| --- | ---: | ---: | ---: |');
  const row = (label: string, p: number | undefined, b: number | undefined) =>
    L.push(`| ${label} | ${fmt(p)} | ${fmt(b)} | ${fmtRatio(ratio(p, b))} |`);
  const rowPct = (label: string, p: Summary | undefined, b: Summary | undefined) =>
    L.push(
      `| ${label} | ${pct(p)} | ${pct(b)} | ${fmtRatio(ratio(p?.p50, b?.p50))} / ${fmtRatio(ratio(p?.p99, b?.p99))} |`,
    );
  const rowPmx = (label: string, p: Summary | undefined, b: Summary | undefined) =>
    L.push(
      `| ${label} | ${pmx(p)} | ${pmx(b)} | ${fmtRatio(ratio(p?.p50, b?.p50))} / ${fmtRatio(ratio(p?.p99, b?.p99))} |`,
    );
  const P = (name: string) => find(r, name, 'punctual');
  const B = (name: string) => find(r, name, 'baseline');

  const cp = P(n.closed);
  const cb = B(n.closed);
  row(
    `**throughput**: closed loop, ${o.concurrency} clients, ${cp?.n ?? '–'} / ${cb?.n ?? '–'} calls, ABBA (calls/s)`,
    cp?.perSecond,
    cb?.perSecond,
  );
  rowPct('closed loop: end to end p50 / p95 / p99 (ms)', cp?.e2e, cb?.e2e);
  rowPct('closed loop: submit → target hit p50 / p95 / p99 (ms)', cp?.pickup, cb?.pickup);
  row(
    'closed loop: CPU per call, all processes but the driver (ms)',
    cpuMsPerCall(cp, ['punctual', 'postgres', 'temporal']),
    cpuMsPerCall(cb, ['baseline', 'temporal']),
  );
  row('closed loop: Temporal server CPU per call (ms)', cpuMsPerCall(cp, ['temporal']), cpuMsPerCall(cb, ['temporal']));
  const bp = P(n.backlog);
  const bb = B(n.backlog);
  row(
    `backlog of ${o.backlog}: executed calls/s (first submit → last target hit)`,
    bp?.executedPerSecond,
    bb?.executedPerSecond,
  );
  row(
    `backlog of ${o.backlog}: completed calls/s (→ last terminal status seen)`,
    bp?.completedPerSecond,
    bb?.completedPerSecond,
  );
  const ep = P(n.e2e);
  const eb = B(n.e2e);
  rowPct(
    `**due now, end to end** at ${r.e2eRate} calls/s for ${o.e2eSeconds} s, p50 / p95 / p99 (ms)`,
    ep?.e2e,
    eb?.e2e,
  );
  rowPct(`at ${r.e2eRate} calls/s: submit → target hit (ms)`, ep?.pickup, eb?.pickup);
  rowPct(`at ${r.e2eRate} calls/s: submit / start round trip (ms)`, ep?.accept, eb?.accept);
  for (const [where, p, b] of [
    [`at ${r.e2eRate} calls/s`, ep, eb],
    ['closed loop', cp, cb],
  ] as const) {
    const seg = (label: string, pick: (x: Breakdown) => Summary) =>
      rowPct(
        `${where}, where the time goes (${p?.breakdown?.sampled ?? 0} / ${b?.breakdown?.sampled ?? 0} histories): ${label} (ms)`,
        p?.breakdown === undefined ? undefined : pick(p.breakdown),
        b?.breakdown === undefined ? undefined : pick(b.breakdown),
      );
    seg('accepted → workflow started', (x) => x.acceptedToStarted);
    seg('workflow started → first workflow task', (x) => x.startedToFirstTask);
    seg('first workflow task → target hit', (x) => x.firstTaskToHit);
    seg('target hit → terminal status seen', (x) => x.hitToSeen);
  }
  const tp = P(n.timers);
  const tb = B(n.timers);
  rowPmx(
    `**timer lateness**, ${o.timers} calls due ${o.timerMinS}–${o.timerMaxS} s ahead, p50 / p99 / max (ms)`,
    tp?.lateness,
    tb?.lateness,
  );
  const up = P(n.burst);
  const ub = B(n.burst);
  row(
    `**burst**: ${o.burst} calls due at one instant: instant → last target hit (ms)`,
    up?.lastHitAfterDueMs,
    ub?.lastHitAfterDueMs,
  );
  rowPmx(`burst: lateness p50 / p99 / max (ms)`, up?.lateness, ub?.lateness);
  L.push(
    `| burst: missed · early · repeated · last submit before the instant (s) | ${burstCounts(up)} | ${burstCounts(ub)} | |`,
  );
  for (const c of o.submitLevels) {
    const sp = P(n.submit(c));
    const sb = B(n.submit(c));
    row(
      `submit, ${c} client${c === 1 ? '' : 's'}, ${o.submits} calls due tomorrow (requests/s)`,
      sp?.perSecond,
      sb?.perSecond,
    );
    rowPct(`submit, ${c} client${c === 1 ? '' : 's'}: latency p50 / p95 / p99 (ms)`, sp?.accept, sb?.accept);
  }
  const ap = P(n.batch);
  if (ap !== undefined) {
    const single = Math.max(0, ...o.submitLevels.map((c) => P(n.submit(c))?.perSecond ?? 0));
    L.push(
      `| **batch submit**, ${o.batches} requests of ${BATCH_SIZE} calls due tomorrow, one client (calls/s) · ÷ the best single-submit level above | ${fmt(ap.perSecond)} · ${single > 0 ? fmtRatio(ratio(ap.perSecond, single)) : '–'} | | |`,
    );
    rowPct(`batch submit: request latency p50 / p95 / p99 (ms)`, ap.accept, undefined);
  }
  const an = P(n.batchNow);
  if (an !== undefined) {
    L.push(
      `| batch of ${BATCH_SIZE} due now: request sent → last target hit (ms) · missed · repeated | ${fmt(an.lastHitAfterDueMs)} · ${an.missed ?? '–'} · ${an.repeated ?? '–'} | | |`,
    );
  }
  const fa = P(n.flowAlone);
  const fn = P(n.flowNone);
  const fl = P(n.flowLimited);
  if (fl !== undefined) {
    L.push(
      `| **flow limit** ${o.flowRate}/s burst 1, ${o.flowCalls} calls due at once: achieved calls/s · ÷ limit · the same calls without a key (the engine's pace) · achieved ÷ the lower of limit and pace · missed / early / repeated | ${fmt(fl.executedPerSecond)} · ${fmtRatio(ratio(fl.executedPerSecond, o.flowRate))} · ${fmt(fn?.executedPerSecond)} · ${fmtRatio(ratio(fl.executedPerSecond, Math.min(o.flowRate, fn?.executedPerSecond ?? Number.POSITIVE_INFINITY)))} · ${fl.missed ?? '–'} / ${fl.early ?? '–'} / ${fl.repeated ?? '–'} | | |`,
    );
    L.push(
      `| calls without a key submitted due now at ${fa?.rate ?? '–'}/s, submit → hit p50 / p99 (ms): alone · beside the ${o.flowCalls} without a key · beside the limited ones; extra p99 beside the limited ones | ${[fa, fn, fl].map((x) => `${fmt(x?.pickup?.p50)} / ${fmt(x?.pickup?.p99)}`).join(' · ')}; ${fmt((fl.pickup?.p99 ?? Number.NaN) - (fa?.pickup?.p99 ?? Number.NaN))} | | |`,
    );
  }
  const rp = P(n.reschedule);
  if (rp !== undefined) {
    rowPct(
      `**reschedule**, ${rp.n} calls due tomorrow, 10 clients: request latency p50 / p95 / p99 (ms)`,
      rp.accept,
      undefined,
    );
  }
  const kp = P(n.bulkCancel);
  if (kp !== undefined) {
    L.push(
      `| **bulk cancel** of ${o.bulkCancel} calls by tag: request (s) · cancelled · then the log consumed, every workflow told (s) | ${fmt((kp.accept?.max ?? Number.NaN) / 1000)} · ${kp.n} · ${fmt((kp.drainMs ?? Number.NaN) / 1000)}${kp.drained === false ? ' (not all)' : ''} | | |`,
    );
  }
  const pp = P(n.paced);
  const pb = B(n.paced);
  rowPct(`**submit at ${o.rate} requests/s** for ${o.pacedSeconds} s, p50 / p95 / p99 (ms)`, pp?.accept, pb?.accept);
  L.push(
    `| **projection lag** p50 / p99 / max, sampled every 100 ms (ms): submit at ${o.rate}/s · end to end at ${r.e2eRate}/s · closed loop · backlog | ${[pp, ep, cp, bp].map((x) => pmx(x?.projectionLag)).join(' · ')} | | |`,
  );
  L.push(
    `| workflow-starter lag p50 / p99 / max (ms): submit at ${o.rate}/s · end to end at ${r.e2eRate}/s | ${[pp, ep].map((x) => pmx(x?.starterLag)).join(' · ')} | | |`,
  );
  L.push(
    `| terminal event → status seen through the API p50 / p99 (ms, incl. ≤ ${o.pollMs} ms polling): end to end · closed loop | ${[ep, cp].map((x) => `${fmt(x?.outcomeToVisible?.p50)} / ${fmt(x?.outcomeToVisible?.p99)}`).join(' · ')} | | |`,
  );
  row('Temporal history events per call', r.historyEvents.punctual?.count, r.historyEvents.baseline?.count);
  L.push('');
  // The real server's group holds its PostgreSQL too, whose processes share memory.
  const realServer = o.temporal === 'server';
  L.push(
    'Resources per phase: CPU in % of one core (200 % = the whole 2-core machine) and the largest resident set seen ' +
      `(RSS; for PostgreSQL${realServer ? ' and for the Temporal server with the PostgreSQL that holds its data' : ''} ` +
      'PSS summed over its processes, as they share memory). "Others" is every other process on the machine.',
  );
  L.push('');
  L.push(
    '| phase | system | s | Punctual node | its event-loop delay p99 / max (ms) | PostgreSQL | Temporal server | baseline worker | bench driver | others | load1 |',
  );
  L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const p of [...r.phases, ...r.warmUp]) {
    const u = p.usage;
    if (u === undefined) continue;
    const g = u.groups;
    L.push(
      `| ${p.name} | ${p.system} | ${fmt(u.seconds)} | ${fmt(g.punctual.cpuPercent)} % · ${fmt(g.punctual.rssMaxMb)} MB | ` +
        `${fmt(p.eventLoopDelay?.p99)} / ${fmt(p.eventLoopDelay?.max)} | ` +
        `${fmt(g.postgres.cpuPercent)} % · ${fmt(g.postgres.pssMaxMb)} MB | ${fmt(g.temporal.cpuPercent)} % · ${fmt(realServer ? g.temporal.pssMaxMb : g.temporal.rssMaxMb)} MB | ` +
        `${fmt(g.baseline.cpuPercent)} % · ${fmt(g.baseline.rssMaxMb)} MB | ${fmt(g.bench.cpuPercent)} % | ${fmt(u.othersCpuPercent)} % | ${fmt(u.load1Mean)} |`,
    );
  }
  L.push('');
  L.push('| target | value | limit | holds |');
  L.push('| --- | ---: | ---: | :---: |');
  for (const t of r.targets) {
    L.push(
      `| ${t.name} | ${fmt(t.value)} | ${t.limit} | ${t.holds === undefined ? '–' : t.holds ? 'yes' : '**no**'} |`,
    );
  }
  return `${L.join('\n')}\n`;
}
