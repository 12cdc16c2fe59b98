import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../support/net';
import type { RoleProcess } from './harness';
import { faultRun, inParallel } from './scenario';

/**
 * Every worker killed with SIGKILL while reschedules and replays are in flight: 150 calls due in
 * 4–8 s, each moved once (a third earlier, two thirds later, some racing their due time), and 50
 * calls due now, each replayed as soon as it has finished (the replays due 2–6 s later), while
 * the workers die and come back. The checker takes each call's last recorded dueAt
 * (ServiceCallRescheduled): nothing may run before it, and every call, each replay included,
 * runs exactly once (a repeat only for attempts the kill cut short). A replay's hits go to its
 * original's path with the replay's own id as idempotency-key; that is how they are told apart.
 */

const CALLS = 150;
const REPLAYED = 50;
const WORKERS = 3;

test(
  `worker kill -9 while ${CALLS} calls are rescheduled and ${REPLAYED} replayed`,
  { timeout: 5 * 60_000 },
  async () => {
    const report = await faultRun(
      {
        scenario: 'lifecycle',
        run: 1,
        timing:
          'reschedules from 1 s after submit, replays as the originals finish; all workers killed at 3 s, restarted after 2 s',
        quietMs: 3_000,
      },
      async (ctx) => {
        const { env, client } = ctx;
        env.target.routeDefault(() => ({ status: 200, body: 'ok', delayMs: 200 }));
        await env.start('api');
        await env.start('relay');
        const startWorkers = () => Promise.all(Array.from({ length: WORKERS }, () => env.start('worker')));
        let workers: RoleProcess[] = await startWorkers();

        const done = Array.from({ length: REPLAYED }, (_, i) => `lc-done-${i}`);
        await inParallel(done, 20, async (key) => {
          await client.submit({ key });
        });
        const keys = Array.from({ length: CALLS }, (_, i) => `lc-${i}`);
        await inParallel(keys, 20, async (key, i) => {
          await client.submit({ key, dueInMs: 4_000 + (i % 5) * 1_000 });
        });
        let replayed = 0;
        const replaying = (async () => {
          // Each waits (409) until its original has finished, then asks for a run 2–6 s later: around the kill.
          await inParallel(done, 10, async (key, i) => {
            if (await client.replay(key, `${key}-replay`, 2_000 + (i % 5) * 1_000)) replayed++;
          });
        })();
        let moved = 0;
        let refused = 0;
        const rescheduling = (async () => {
          await sleep(1_000);
          await inParallel(keys, 10, async (key, i) => {
            // Earlier (2–3 s ahead) or later (8–12 s ahead); the earlier ones race their timers.
            const dueInMs = i % 3 === 0 ? 2_000 + (i % 2) * 1_000 : 8_000 + (i % 5) * 1_000;
            if (await client.reschedule(key, dueInMs)) moved++;
            else refused++;
          });
        })();
        await sleep(3_000);
        const replaysPending = [...client.acked.values()].filter(
          (a) => a.replayOf !== undefined && Date.parse(a.dueAt) > Date.now(),
        ).length;
        await Promise.all(workers.map((w) => w.kill9()));
        ctx.notes.push(`${replaysPending} replays acknowledged and not yet due when the workers died`);
        ctx.fault(`all ${WORKERS} workers killed while reschedules were in flight`, { canRepeatAttempts: true });
        await sleep(2_000);
        workers = await startWorkers();
        await rescheduling;
        await replaying;
        ctx.notes.push(`${moved} calls rescheduled, ${refused} refused (already due); ${replayed} replayed`);
      },
    );
    assert.ok(report.counts.acked === CALLS + 2 * REPLAYED, `acked ${report.counts.acked}`);
  },
);
