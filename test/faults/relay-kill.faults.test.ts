import { test } from 'node:test';
import { sleep } from '../support/net';
import type { RoleProcess } from './harness';
import { between, faultRun, inParallel } from './scenario';

/**
 * The relay (workflow starter + projection) killed with SIGKILL again and again while calls are
 * submitted and cancelled: every batch it was in the middle of is handled again from the
 * checkpoint, and repeating it changes nothing (idempotent starts, version-guarded upserts).
 */

const runs = [
  {
    run: 1,
    timing: '8 kills every 0.3–1.5 s, restarted at once',
    kills: 8,
    gapMs: [300, 1_500] as const,
    downMs: [0, 0] as const,
  },
  {
    run: 2,
    timing: '5 kills every 1–2.5 s, down 0.2–2 s each',
    kills: 5,
    gapMs: [1_000, 2_500] as const,
    downMs: [200, 2_000] as const,
  },
];

for (const r of runs) {
  test(`relay kill -9 mid-batch, many times, run ${r.run}`, { timeout: 5 * 60_000 }, async () => {
    await faultRun({ scenario: 'relay-kill', run: r.run, timing: r.timing }, async (ctx) => {
      const { env, client } = ctx;
      await env.start('api');
      await env.start('worker');
      let relay: RoleProcess = await env.start('relay');

      let loading = true;
      let n = 0;
      // About 20 submits a second: what this 2-core box's Temporal dev server runs comfortably.
      const load = inParallel(
        Array.from({ length: 4 }, (_, i) => i),
        4,
        async (lane) => {
          while (loading) {
            const key = `rk${r.run}-${lane}-${n++}`;
            const kind = n % 4;
            // Due now, due in 1–4 s, or due in 3 s and cancelled at once (the cancel may lose the race).
            const ack = await client.submit({
              key,
              ...(kind === 1 ? { dueInMs: between(1_000, 4_000) } : kind === 2 ? { dueInMs: 3_000 } : {}),
            });
            if (ack !== undefined && kind === 2) await client.cancel(key);
            await sleep(between(100, 250));
          }
        },
      );

      await sleep(1_000);
      for (let k = 1; k <= r.kills; k++) {
        await sleep(between(r.gapMs[0], r.gapMs[1]));
        const backlog = await env.unconsumedEvents();
        await relay.kill9();
        ctx.fault(`relay killed (#${k}) with ${backlog} events not yet consumed`, { canRepeatAttempts: false });
        await sleep(between(r.downMs[0], r.downMs[1]));
        relay = await env.start('relay');
      }
      loading = false;
      await load;
      const starts = env.processes.filter((p) => p.role === 'relay' && p.readyMs !== undefined).map((p) => p.readyMs!);
      ctx.notes.push(`a relay took ${Math.min(...starts)}–${Math.max(...starts)} ms from spawn to running`);
      ctx.notes.push(
        `${client.acked.size} calls submitted, ${[...client.acked.values()].filter((a) => a.cancelled).length} cancelled`,
      );
    });
  });
}
