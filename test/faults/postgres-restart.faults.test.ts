import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../runtime/embedded-postgres';
import { waitForPidExit } from '../../runtime/process-util';
import { freePort, sleep } from '../support/net';
import { between, faultRun, inParallel } from './scenario';

/**
 * PostgreSQL stopped under submit load, and started again. While it is down the API answers 503
 * quickly (never a 500, never a hang); afterwards it recovers by itself, and so do the relay and
 * the worker. The client retries a 503 with the same Idempotency-Key, so a submit whose commit
 * raced the outage is answered by a replay. The scenario runs its own PostgreSQL.
 */

/**
 * Run 3 keeps the database away longer than an attempt's own retries would last: calls that fall
 * due meanwhile must wait for it (AttemptNotSent) and then be sent, not be recorded Failed unsent.
 */
const runs: { run: number; timing: string; kill: boolean; downMs: number; knownIssue?: string }[] = [
  { run: 1, timing: 'fast shutdown under load, down 5 s', kill: false, downMs: 5_000 },
  { run: 2, timing: 'postmaster kill -9 under load, down 8 s', kill: true, downMs: 8_000 },
  { run: 3, timing: 'postmaster kill -9 under load, down 20 s', kill: true, downMs: 20_000 },
];

/** How long an answer may take while the database is away: "quickly". */
const OUTAGE_ANSWER_MS = 3_500;

async function startPostgres(dataDir: string, port: number): Promise<EmbeddedPostgresHandle> {
  // After a kill -9 the old backends may hold the shared memory for a moment: try again.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await startEmbeddedPostgres({ dataDir, port });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1_000);
    }
  }
}

for (const r of runs) {
  const options = {
    timeout: 5 * 60_000,
    ...(r.knownIssue === undefined ? {} : { todo: `known issue: ${r.knownIssue}` }),
  };
  test(`PostgreSQL stopped and restarted under submit load, run ${r.run}`, options, async () => {
    const dataDir = path.join(process.env.PUNCTUAL_FAULTS_TMP ?? os.tmpdir(), `postgres-restart-${r.run}`);
    const port = await freePort();
    let postgres = await startPostgres(dataDir, port);
    try {
      await faultRun(
        {
          scenario: 'postgres-restart',
          run: r.run,
          timing: r.timing,
          ...(r.knownIssue === undefined ? {} : { knownIssue: r.knownIssue }),
          env: { pgAdminUrl: postgres.adminUrl },
          client: { retryDelayMs: 200 },
        },
        async (ctx) => {
          const { env, client } = ctx;
          await env.start('api');
          await env.start('relay');
          await env.start('worker');

          let loading = true;
          let n = 0;
          const load = inParallel(
            Array.from({ length: 6 }, (_, i) => i),
            6,
            async (lane) => {
              while (loading) {
                await client.submit({
                  key: `pg${r.run}-${lane}-${n++}`,
                  ...(n % 3 === 0 ? { dueInMs: between(1_000, 3_000) } : {}),
                });
                await sleep(between(10, 50));
              }
            },
          );
          await sleep(3_000);

          const down = Date.now();
          // Calls in flight now may see their attempt repeated: an outcome that cannot be
          // recorded while the database is away fails the attempt, and Temporal retries it.
          ctx.fault(`postgres stopping (${r.kill ? 'kill -9' : 'fast shutdown'})`, { canRepeatAttempts: true });
          if (r.kill) {
            const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
            process.kill(pid, 'SIGKILL');
            await waitForPidExit(pid, 10_000);
          }
          await postgres.stop();
          await sleep(r.downMs);
          // Answers until here are judged as "during the outage"; Postgres may accept
          // connections a little before startPostgres returns.
          const restarting = Date.now();
          postgres = await startPostgres(dataDir, port);
          const up = Date.now();
          ctx.fault(`postgres up again after ${((up - down) / 1000).toFixed(1)} s`, { canRepeatAttempts: false });
          await sleep(5_000);
          loading = false;
          await load;

          // While it was down: 503s, each one quick; nothing else.
          const during = client.answers.filter((a) => a.at >= down + 500 && a.at + a.ms <= restarting);
          const statuses = [...new Set(during.map((a) => a.status))];
          const slowest = Math.max(0, ...during.map((a) => a.ms));
          ctx.notes.push(`outage: ${during.length} answers, statuses ${statuses.join(',')}, slowest ${slowest} ms`);
          assert.ok(during.length >= 10, 'the load went on through the outage');
          assert.deepEqual(statuses, [503], 'every answer during the outage is a 503');
          assert.ok(slowest <= OUTAGE_ANSWER_MS, `a 503 took ${slowest} ms`);
          // Recovered without a restart of any process: submits are acknowledged again.
          const firstAck = client.answers.find((a) => a.at >= up && (a.status === 202 || a.status === 200));
          assert.ok(firstAck !== undefined, 'submits succeed again after the restart');
          ctx.notes.push(`first acknowledgement ${firstAck.at + firstAck.ms - up} ms after postgres was up`);
          for (const p of env.processes) assert.ok(p.alive, `${p.role} survived the outage`);
        },
      );
    } finally {
      await postgres.stop();
    }
  });
}
