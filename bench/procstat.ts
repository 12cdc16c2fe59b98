import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/**
 * CPU and memory of the processes under test, from /proc (Linux only). Processes are grouped:
 * the Punctual node process (all roles), PostgreSQL (postmaster and every backend), the Temporal
 * server, the baseline worker, and the benchmark driver itself.
 */

export type Group = 'punctual' | 'postgres' | 'temporal' | 'baseline' | 'bench';
const GROUPS: readonly Group[] = ['punctual', 'postgres', 'temporal', 'baseline', 'bench'];

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, seconds. */
  cpu: number;
  startTime: number;
}

function readStat(pid: number): ProcInfo | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    const comm = text.slice(open + 1, close);
    const fields = text.slice(close + 2).split(' ');
    // fields[0] is field 3 (state): field n is fields[n - 3].
    return {
      pid,
      ppid: Number(fields[1]),
      comm,
      cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK,
      startTime: Number(fields[19]),
    };
  } catch {
    return undefined;
  }
}

/** Resident memory in MB: VmRSS, and PSS (shared pages split between their users). */
function readMemory(pid: number): { rssMb: number; pssMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    let pssKb: number | undefined;
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const m = /^Pss:\s+(\d+) kB/m.exec(rollup);
      if (m) pssKb = Number(m[1]);
    } catch {
      // Older kernels: PSS unknown.
    }
    const rssKb = rss ? Number(rss[1]) : 0;
    return { rssMb: rssKb / 1024, pssMb: (pssKb ?? rssKb) / 1024 };
  } catch {
    return undefined;
  }
}

function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = readStat(Number(name));
    if (info !== undefined) out.push(info);
  }
  return out;
}

/** Busy and total CPU time of the whole machine so far, in seconds. */
function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

interface GroupSample {
  /** Cumulative CPU seconds of every process ever seen in the group. */
  cpu: number;
  rssMb: number;
  pssMb: number;
  processes: number;
}

export interface Sample {
  at: number;
  groups: Record<Group, GroupSample>;
  machineBusy: number;
  machineTotal: number;
  load1: number;
}

/** Root processes of each group; each one's descendants belong to it too. */
interface Roots {
  /** Punctual's processes (PostgreSQL and a dev server they start are classified apart). */
  punctual?: (number | undefined)[];
  baseline?: (number | undefined)[];
  /**
   * Temporal run outside the Punctual tree: a dev server the bench started, or the real server
   * and the PostgreSQL cluster that holds its data (counted as the engine's, as the dev server's
   * SQLite file is).
   */
  temporal?: (number | undefined)[];
}

/**
 * Samples the groups. CPU of a process that exits between samples is counted up to its last
 * sample (short-lived PostgreSQL backends lose at most one interval).
 */
class ProcessSampler {
  private readonly lastCpu = new Map<string, { group: Group; cpu: number }>();
  readonly samples: Sample[] = [];

  constructor(private readonly roots: () => Roots) {}

  sample(): Sample {
    const procs = allProcesses();
    const children = new Map<number, ProcInfo[]>();
    for (const p of procs) {
      const list = children.get(p.ppid);
      if (list === undefined) children.set(p.ppid, [p]);
      else list.push(p);
    }
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const membership = new Map<number, Group>();
    const walk = (pid: number, group: (p: ProcInfo) => Group) => {
      const stack = [pid];
      while (stack.length > 0) {
        const current = stack.pop()!;
        const info = byPid.get(current);
        if (info === undefined) continue;
        membership.set(current, group(info));
        for (const c of children.get(current) ?? []) stack.push(c.pid);
      }
    };
    const roots = this.roots();
    const classify = (p: ProcInfo): Group =>
      p.comm === 'postgres' || p.comm.startsWith('postgres')
        ? 'postgres'
        : p.comm.startsWith('temporal')
          ? 'temporal'
          : 'punctual';
    for (const pid of roots.punctual ?? []) if (pid !== undefined) walk(pid, classify);
    for (const pid of roots.temporal ?? []) if (pid !== undefined) walk(pid, () => 'temporal');
    for (const pid of roots.baseline ?? []) if (pid !== undefined) walk(pid, () => 'baseline');
    membership.set(process.pid, 'bench');

    const groups = Object.fromEntries(GROUPS.map((g) => [g, { cpu: 0, rssMb: 0, pssMb: 0, processes: 0 }])) as Record<
      Group,
      GroupSample
    >;
    for (const [pid, group] of membership) {
      const info = byPid.get(pid);
      if (info === undefined) continue;
      this.lastCpu.set(`${pid}/${info.startTime}`, { group, cpu: info.cpu });
      const mem = readMemory(pid);
      groups[group].processes++;
      groups[group].rssMb += mem?.rssMb ?? 0;
      groups[group].pssMb += mem?.pssMb ?? 0;
    }
    for (const { group, cpu } of this.lastCpu.values()) groups[group].cpu += cpu;
    const machine = machineCpu();
    const load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    const s: Sample = { at: Date.now(), groups, machineBusy: machine.busy, machineTotal: machine.total, load1 };
    this.samples.push(s);
    return s;
  }
}

/**
 * The sampler on a thread of its own: reading /proc for every process takes a few milliseconds,
 * and done on the driver's event loop it would delay the very responses being timed.
 */
export class ThreadedSampler {
  readonly samples: Sample[] = [];
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (s: Sample) => void>();
  private seq = 0;

  constructor(
    private readonly roots: () => Roots,
    intervalMs = 1000,
  ) {
    this.worker = new Worker(__filename, { workerData: { procstatSampler: true, intervalMs } });
    this.worker.on('message', (m: { id?: number; sample: Sample }) => {
      this.samples.push(m.sample);
      if (m.id !== undefined) {
        this.waiting.get(m.id)?.(m.sample);
        this.waiting.delete(m.id);
      }
    });
  }

  /** Takes a sample now (and tells the thread which processes to watch from now on). */
  sample(): Promise<Sample> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.worker.postMessage({ id, roots: this.roots() });
    });
  }

  /** Samples every interval from now on, besides the samples asked for. */
  start(): void {
    this.worker.postMessage({ roots: this.roots(), periodic: true });
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}

if (!isMainThread && (workerData as { procstatSampler?: boolean } | null)?.procstatSampler === true) {
  let roots: Roots = {};
  const sampler = new ProcessSampler(() => roots);
  const intervalMs = (workerData as { intervalMs: number }).intervalMs;
  let timer: NodeJS.Timeout | undefined;
  parentPort?.on('message', (m: { id?: number; roots: Roots; periodic?: boolean }) => {
    roots = m.roots;
    if (m.periodic === true && timer === undefined) {
      timer = setInterval(() => parentPort?.postMessage({ sample: sampler.sample() }), intervalMs);
    }
    if (m.id !== undefined) parentPort?.postMessage({ id: m.id, sample: sampler.sample() });
  });
}

interface GroupUsage {
  /** Share of one core over the window, in percent (200 % = both cores of a 2-core machine). */
  cpuPercent: number;
  cpuSeconds: number;
  rssMaxMb: number;
  pssMaxMb: number;
}

export interface WindowUsage {
  seconds: number;
  groups: Record<Group, GroupUsage>;
  /** CPU of every process on the machine, in percent of one core, and what was not ours. */
  machineCpuPercent: number;
  othersCpuPercent: number;
  load1Mean: number;
}

/** Usage between two samples (inclusive of the samples taken in between, for memory maxima). */
export function usageBetween(sampler: { samples: Sample[] }, from: Sample, to: Sample): WindowUsage {
  const seconds = (to.at - from.at) / 1000;
  const inside = sampler.samples.filter((s) => s.at >= from.at && s.at <= to.at);
  const groups = Object.fromEntries(
    GROUPS.map((g) => {
      const cpuSeconds = Math.max(0, to.groups[g].cpu - from.groups[g].cpu);
      return [
        g,
        {
          cpuSeconds,
          cpuPercent: seconds > 0 ? (cpuSeconds / seconds) * 100 : 0,
          rssMaxMb: Math.max(...inside.map((s) => s.groups[g].rssMb)),
          pssMaxMb: Math.max(...inside.map((s) => s.groups[g].pssMb)),
        },
      ];
    }),
  ) as Record<Group, GroupUsage>;
  const machineCpuPercent = seconds > 0 ? ((to.machineBusy - from.machineBusy) / seconds) * 100 : 0;
  const ours = GROUPS.reduce((a, g) => a + groups[g].cpuPercent, 0);
  return {
    seconds,
    groups,
    machineCpuPercent,
    othersCpuPercent: Math.max(0, machineCpuPercent - ours),
    load1Mean: inside.reduce((a, s) => a + s.load1, 0) / Math.max(1, inside.length),
  };
}
