import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../support/net';
import type { RoleProcess } from './harness';
import { faultRun, inParallel } from './scenario';

/**
 * Every worker killed with SIGKILL while reschedules are in flight: 150 calls due in 4–8 s, each
 * moved once (a third earlier, two thirds later, some racing their due time) while the workers
 * die and come back. The checker takes each call's last recorded dueAt (ServiceCallRescheduled):
 * nothing may run before it, and every call still runs exactly once (a repeat only for attempts
 * the kill cut short). Replays are not part of this run yet: the checker maps hits to calls by
 * the submit's key, and a replay is a call the client never submitted.
 */

const CALLS = 150;
const WORKERS = 3;

test(`worker kill -9 while ${CALLS} calls are rescheduled`, { timeout: 5 * 60_000 }, async () => {
  const report = await faultRun(
    {
      scenario: 'lifecycle',
      run: 1,
      timing: 'reschedules from 1 s after submit; all workers killed at 3 s, restarted after 2 s',
      quietMs: 3_000,
    },
    async (ctx) => {
      const { env, client } = ctx;
      env.target.routeDefault(() => ({ status: 200, body: 'ok', delayMs: 200 }));
      await env.start('api');
      await env.start('relay');
      const startWorkers = () => Promise.all(Array.from({ length: WORKERS }, () => env.start('worker')));
      let workers: RoleProcess[] = await startWorkers();

      const keys = Array.from({ length: CALLS }, (_, i) => `lc-${i}`);
      await inParallel(keys, 20, async (key, i) => {
        await client.submit({ key, dueInMs: 4_000 + (i % 5) * 1_000 });
      });
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
      await Promise.all(workers.map((w) => w.kill9()));
      ctx.fault(`all ${WORKERS} workers killed while reschedules were in flight`, { canRepeatAttempts: true });
      await sleep(2_000);
      workers = await startWorkers();
      await rescheduling;
      ctx.notes.push(`${moved} calls rescheduled, ${refused} refused (already due)`);
    },
  );
  assert.ok(report.counts.acked === CALLS, `acked ${report.counts.acked}`);
});
