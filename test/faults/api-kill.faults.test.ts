import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../support/net';
import type { RoleProcess } from './harness';
import { between, faultRun, inParallel } from './scenario';

/**
 * The api killed between the commit of a submit and its answer, and at random moments under
 * load. The client never saw the 202, so it retries with the same Idempotency-Key: it gets the
 * same id (a replayed 200), and the call runs once. Batch submits go beside them: a batch whose
 * answer was lost is sent again whole, and each of its items is acknowledged once and runs once.
 * PUNCTUAL_FAULT_API_CRASH_AFTER_COMMIT makes the api SIGKILL itself right after a commit (bin/fault-injection.ts; test-only).
 */

const runs = [
  {
    run: 1,
    timing: 'self-kill after 10% of commits, restarted at once',
    crashRate: '0.1',
    randomKills: false,
    restartDelayMs: 0,
  },
  {
    run: 2,
    timing: 'self-kill after 5% of commits + kill -9 every 2–4 s, restarted after 0.5 s',
    crashRate: '0.05',
    randomKills: true,
    restartDelayMs: 500,
  },
];

for (const r of runs) {
  test(`api kill -9 between commit and response, run ${r.run}`, { timeout: 5 * 60_000 }, async () => {
    await faultRun({ scenario: 'api-kill', run: r.run, timing: r.timing, apiMayDie: true }, async (ctx) => {
      const { env, client } = ctx;
      await env.start('worker');
      await env.start('relay');
      const apiEnv = { PUNCTUAL_FAULT_API_CRASH_AFTER_COMMIT: r.crashRate };
      let api: RoleProcess = await env.start('api', apiEnv);
      let stopping = false;
      let crashes = 0;
      // The supervisor: whatever kills the api, a new one comes up.
      const supervisor = (async () => {
        for (;;) {
          await api.exited;
          if (stopping) return;
          crashes++;
          ctx.fault(`api died (#${crashes})`, { canRepeatAttempts: false });
          await sleep(r.restartDelayMs);
          if (stopping) return;
          api = env.spawn('api', apiEnv);
          await api.ready.catch(() => undefined);
          if (stopping) {
            await api.stop();
            return;
          }
        }
      })();
      let loading = true;
      const killer = (async () => {
        while (r.randomKills && loading) {
          await sleep(between(2_000, 4_000));
          if (loading && api.alive) api.child.kill('SIGKILL');
        }
      })();

      // Rounds of 100 single submits beside 8 batches of 25 (a batch whose answer was lost is sent
      // again whole), until the api has died at least 3 times: the deaths are random, and one
      // round can end before they come (a CI run saw 2 in 3.4 s). At most 5 rounds.
      let rounds = 0;
      for (; rounds < 5 && (rounds === 0 || crashes < 3); rounds++) {
        const keys = Array.from({ length: 100 }, (_, i) => `ak${r.run}-${rounds}-${i}`);
        const batches = Array.from({ length: 8 }, (_, b) =>
          Array.from({ length: 25 }, (_, i) => ({
            key: `akb${r.run}-${rounds}-${b}-${i}`,
            ...(i % 3 === 0 ? { dueInMs: between(500, 3_000) } : {}),
          })),
        );
        await Promise.all([
          inParallel(keys, 5, async (key, i) => {
            await client.submit({ key, ...(i % 3 === 0 ? { dueInMs: between(500, 3_000) } : {}) });
          }),
          inParallel(batches, 1, async (batch) => {
            await client.submitBatch(batch);
          }),
        ]);
      }
      loading = false;
      await killer;
      stopping = true;
      await api.stop();
      await supervisor;

      const replayed = [...client.acked.values()].filter((a) => a.status === 200).length;
      const batched = [...client.acked.values()].filter((a) => a.key.startsWith('akb'));
      ctx.notes.push(
        `${crashes} api deaths; ${replayed} submits acknowledged by a replay after a lost answer; ` +
          `${batched.length} of ${rounds * 200} batch items acknowledged, ${batched.filter((a) => a.attempts > 1).length} after a batch was sent again (${rounds} rounds)`,
      );
      assert.equal(batched.length, rounds * 200, 'every batch item acknowledged');
      assert.ok(crashes >= 3, `the api died ${crashes} times`);
      assert.ok(replayed >= 1, 'at least one answer was lost after its commit and replayed');
    });
  });
}
