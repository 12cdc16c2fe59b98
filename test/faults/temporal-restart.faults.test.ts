import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import { type TemporalDevServer } from '../../runtime/temporal-dev-server';
import { waitForPidExit } from '../../runtime/process-util';
import { eventually, sleep } from '../support/net';
import { ownTemporalServer } from './own-temporal';
import { faultRun, inParallel } from './scenario';

/**
 * The Temporal server stopped while about 100 timers are pending, and started again on the same
 * database file after every timer fell due. The scenario runs its own dev server (the suite's
 * shared one has no database file): timers survive in that file, submits go on meanwhile (a call
 * is durable in Postgres alone), and every call runs once, none before its dueAt.
 */

const TIMERS = 100;

const runs = [
  {
    run: 1,
    timing: `SIGTERM with ${TIMERS} timers pending, down ≥ 8 s and until every timer is due`,
    signal: 'SIGTERM' as const,
    downMs: 8_000,
  },
  {
    run: 2,
    timing: `kill -9 with ${TIMERS} timers pending, down ≥ 12 s and until every timer is due`,
    signal: 'SIGKILL' as const,
    downMs: 12_000,
  },
];

for (const r of runs) {
  test(
    `Temporal server stopped and restarted with ~${TIMERS} timers pending, run ${r.run}`,
    { timeout: 5 * 60_000 },
    async () => {
      const { start: startServer } = await ownTemporalServer('temporal-restart', r.run);
      let server: TemporalDevServer = await startServer();
      try {
        await faultRun(
          { scenario: 'temporal-restart', run: r.run, timing: r.timing, env: { temporalAddress: server.address } },
          async (ctx) => {
            const { env, client } = ctx;
            await env.start('api');
            await env.start('relay');
            await env.start('worker');

            // One call run through first, so the timers are submitted once this fresh server starts
            // workflows: in a CI run the first starts on it took over 30 s (the server was still
            // getting ready), and the timers fell due before they were pending.
            await client.submit({ key: `tr${r.run}-warm` });
            await eventually(
              'the warm-up call to succeed',
              async () => {
                const { rows } = await env.database.db.execute<{ n: number }>(
                  sql`select count(*)::int as n from service_calls where status = 'Succeeded'`,
                );
                return (rows[0]?.n ?? 0) > 0 ? true : undefined;
              },
              120_000,
              200,
            );

            // Timers falling due at fixed instants 15–20 s from the first submit, and the server
            // kept down until the last of them is due (below): every timer fires while the server is
            // away, however long submitting and starting them took. Fixed margins of 6–13 s were
            // too little on a loaded CI machine (84–89 of 100 still pending at the stop).
            const t0 = Date.now();
            const dueAt = (i: number) => t0 + 15_000 + i * 50;
            const lastDue = dueAt(TIMERS - 1);
            const keys = Array.from({ length: TIMERS }, (_, i) => `tr${r.run}-${i}`);
            await inParallel(keys, 20, async (key, i) => {
              await client.submit({ key, dueInMs: dueAt(i) - Date.now() });
            });
            // Every workflow started (the starter's checkpoint is at the head of the log).
            await env.consumersCaughtUp();
            const { rows } = await env.database.db.execute<{ status: string; n: number; due: number }>(
              sql`select status, count(*)::int as n, min(extract(epoch from due_at) * 1000 - ${Date.now()})::int as due
                  from service_calls group by status`,
            );
            const scheduled = rows.find((row) => row.status === 'Scheduled')?.n ?? 0;
            ctx.notes.push(
              `${scheduled} calls Scheduled with their timer pending (${rows.map((row) => `${row.status} ${row.n}, first due in ${row.due} ms`).join('; ')})`,
            );
            assert.ok(scheduled >= TIMERS * 0.9, 'the timers are pending when the server stops');

            ctx.fault(`temporal server stopping (${r.signal})`, { canRepeatAttempts: true });
            if (r.signal === 'SIGKILL') {
              process.kill(server.pid, 'SIGKILL');
              await waitForPidExit(server.pid, 10_000);
            }
            await server.stop();

            // Submits keep working while Temporal is away: the call is durable in Postgres.
            const during = Array.from({ length: 20 }, (_, i) => `tr${r.run}-down-${i}`);
            await inParallel(during, 5, async (key) => {
              const ack = await client.submit({ key });
              assert.equal(ack?.status, 202, 'a submit is acknowledged while Temporal is down');
            });
            // Down for downMs at least, and until the last timer fell due.
            await sleep(Math.max(r.downMs, lastDue + 1_000 - Date.now()));
            server = await startServer();
            ctx.fault('temporal server restarted on the same database file', { canRepeatAttempts: false });
          },
        );
      } finally {
        await server.stop();
      }
    },
  );
}
