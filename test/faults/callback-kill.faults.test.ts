import { test } from 'node:test';
import { sleep } from '../support/net';
import type { RoleProcess } from './harness';
import { callbackKeyOfPath } from './load';
import { faultRun, inParallel } from './scenario';

/**
 * Every worker killed with SIGKILL while 50 callbacks are being delivered to a slow receiver
 * (ADR-0016), and restarted after a pause. The checker requires every due callback to be
 * settled and to have arrived at least once, under one webhook-id per call.
 */

const CALLS = 50;
/** Slow enough for the 50 deliveries to be open at once when the workers die. */
const RECEIVER_DELAY_MS = 6_000;
const WORKERS = 2;

test(`worker kill -9 with ${CALLS} callbacks in delivery`, { timeout: 5 * 60_000 }, async () => {
  await faultRun(
    {
      scenario: 'callback-kill',
      run: 1,
      timing: `all workers killed with the callbacks open at a receiver that answers after ${RECEIVER_DELAY_MS / 1000} s, restarted after 3 s`,
      quietMs: RECEIVER_DELAY_MS + 3_000,
      // Quick retries: a killed delivery is noticed by heartbeat (5 s), then runs again after 1 s.
      env: { env: { CALLBACK_RETRY_INITIAL_MS: '1000', CALLBACK_RETRY_MAX_MS: '5000' } },
    },
    async (ctx) => {
      const { env, client } = ctx;
      env.target.routeDefault((hit) =>
        callbackKeyOfPath(hit.path) === undefined
          ? undefined
          : { status: 200, body: 'received', delayMs: RECEIVER_DELAY_MS },
      );
      const openCallbacks = () => {
        const now = Date.now();
        return env.target.hits.filter((h) => callbackKeyOfPath(h.path) !== undefined && now - h.at < RECEIVER_DELAY_MS)
          .length;
      };
      await env.start('api');
      await env.start('relay');
      const startWorkers = () => Promise.all(Array.from({ length: WORKERS }, () => env.start('worker')));
      let workers: RoleProcess[] = await startWorkers();
      const keys = Array.from({ length: CALLS }, (_, i) => `cbk-${i}`);
      await inParallel(keys, 10, async (key) => {
        await client.submit({ key, callback: true });
      });
      // Kill at the peak of open deliveries (all 50, or whatever the machine reached in 45 s).
      const deadline = Date.now() + 45_000;
      for (let peak = 0; ; await sleep(20)) {
        const now = openCallbacks();
        if (now >= CALLS || (now < peak && peak > 0) || Date.now() > deadline) break;
        peak = Math.max(peak, now);
      }
      const open = openCallbacks();
      await Promise.all(workers.map((w) => w.kill9()));
      ctx.fault(`all ${WORKERS} workers killed with ${open} callback deliveries open at the receiver`, {
        canRepeatAttempts: true,
      });
      await sleep(3_000);
      workers = await startWorkers();
      ctx.notes.push(`workers restarted; ${env.target.hits.length} hits so far`);
    },
  );
});
