import { test } from 'node:test';
import { sleep } from '../support/net';
import type { RoleProcess } from './harness';
import { faultRun, inParallel } from './scenario';

/**
 * Every worker killed with SIGKILL while about 200 calls are in flight against a slow target,
 * and restarted after a pause. A killed attempt is repeated by the new workers (at-least-once),
 * with the same idempotency-key; everything else happens exactly once.
 */

const CALLS = 200;
/** Slow enough for ~200 requests to be open at once on a loaded 2-core machine. */
const TARGET_DELAY_MS = 10_000;
/** The calls' own attempt timeout, well above the target's delay. */
const CALL_TIMEOUT_MS = 30_000;
/**
 * Five workers: each holds at most 64 connections to one origin (and runs at most
 * WORKER_ATTEMPT_SLOTS attempts), so together they keep ~200 requests open.
 */
const WORKERS = 5;

const runs: {
  run: number;
  timing: string;
  /** Kill once this many requests (sent since the last restart) are open at the target. */
  kills: number[];
  pausesMs: number[];
}[] = [
  {
    run: 1,
    timing: 'all workers killed with ~170 requests open at the target, restarted after 3 s',
    kills: [170],
    pausesMs: [3_000],
  },
  {
    run: 2,
    timing:
      'killed with ~40 requests open, restarted after 3 s, killed again once ~30 repeats are open, restarted after 2 s',
    kills: [40, 30],
    pausesMs: [3_000, 2_000],
  },
];

for (const r of runs) {
  test(`worker kill -9 with ~${CALLS} calls in flight, run ${r.run}`, { timeout: 5 * 60_000 }, async () => {
    await faultRun(
      { scenario: 'worker-kill', run: r.run, timing: r.timing, quietMs: TARGET_DELAY_MS + 3_000 },
      async (ctx) => {
        const { env, client } = ctx;
        env.target.routeDefault(() => ({ status: 200, body: 'slow ok', delayMs: TARGET_DELAY_MS }));
        // Requests the target is still working on, among those that arrived since `since`.
        const openRequests = (since: number) => {
          const now = Date.now();
          return env.target.hits.filter((h) => h.at >= since && now - h.at < TARGET_DELAY_MS).length;
        };
        await env.start('api');
        await env.start('relay');
        const startWorkers = () => Promise.all(Array.from({ length: WORKERS }, () => env.start('worker')));
        let workers: RoleProcess[] = await startWorkers();

        const keys = Array.from({ length: CALLS }, (_, i) => `wk${r.run}-${i}`);
        const submitting = inParallel(keys, 20, async (key) => {
          await client.submit({ key, timeoutMs: CALL_TIMEOUT_MS });
        });
        let since = 0;
        for (const [round, target] of r.kills.entries()) {
          // Kill once `target` requests are open; the ramp-up depends on the machine, so kill at
          // the peak (or after 45 s) when the target is not reached.
          const deadline = Date.now() + 45_000;
          for (let peak = 0; ; await sleep(20)) {
            const now = openRequests(since);
            if (now >= target || (now < peak && peak > 0) || Date.now() > deadline) break;
            peak = Math.max(peak, now);
          }
          const open = openRequests(since);
          await Promise.all(workers.map((w) => w.kill9()));
          ctx.fault(`all ${WORKERS} workers killed (#${round + 1}) with ${open} requests open at the target`, {
            canRepeatAttempts: true,
          });
          await sleep(r.pausesMs[round] ?? 0);
          workers = await startWorkers();
          since = Date.now();
          ctx.notes.push(`workers restarted; ${env.target.hits.length} hits so far`);
        }
        await submitting;
      },
    );
  });
}
