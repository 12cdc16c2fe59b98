import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import { type TemporalDevServer } from '../../runtime/temporal-dev-server';
import { waitForPidExit } from '../../runtime/process-util';
import { sleep } from '../support/net';
import { ownTemporalServer } from './own-temporal';
import { faultRun, inParallel } from './scenario';

/**
 * The Temporal server stopped while about 100 timers are pending, and started again on the same
 * database file after the timers fell due. The scenario runs its own dev server (the suite's
 * shared one has no database file): timers survive in that file, submits go on meanwhile (a call
 * is durable in Postgres alone), and every call runs once, none before its dueAt.
 */

const TIMERS = 100;

const runs = [
  { run: 1, timing: `SIGTERM with ${TIMERS} timers pending, down 8 s`, signal: 'SIGTERM' as const, downMs: 8_000 },
  { run: 2, timing: `kill -9 with ${TIMERS} timers pending, down 12 s`, signal: 'SIGKILL' as const, downMs: 12_000 },
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

            // Timers falling due 10–15 s from now, so they fire while the server is down (8 or 12 s
            // from the stop, once submitting and starting them took their few seconds). 6–11 s and
            // 8–13 s left too little margin on a loaded machine: 86–89 of 100 were still pending at
            // the stop in CI runs, below a precondition of 90; it now asks for 80.
            const keys = Array.from({ length: TIMERS }, (_, i) => `tr${r.run}-${i}`);
            await inParallel(keys, 20, async (key, i) => {
              await client.submit({ key, dueInMs: 10_000 + i * 50 });
            });
            // Every workflow started (the starter's checkpoint is at the head of the log).
            await env.consumersCaughtUp();
            const { rows } = await env.database.db.execute<{ n: number }>(
              sql`select count(*)::int as n from service_calls where status = 'Scheduled'`,
            );
            ctx.notes.push(`${rows[0]?.n} calls Scheduled with their timer pending`);
            assert.ok((rows[0]?.n ?? 0) >= TIMERS * 0.8, 'the timers are pending when the server stops');

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
            await sleep(r.downMs);
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
