import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import { type TemporalDevServer } from '../../runtime/temporal-dev-server';
import { waitForPidExit } from '../../runtime/process-util';
import { eventually, sleep } from '../support/net';
import { ownTemporalServer } from './own-temporal';
import { faultRun, inParallel } from './scenario';

/**
 * The Temporal server loses its data: stopped with 200 timers pending and 50 attempts in flight
 * (a slow target), its database file deleted, and a fresh server started on the same port. Every
 * workflow, every timer and the search attributes are gone; Postgres still says which calls are
 * unfinished. The relay's reconciler (ADR-0013) starts their workflows again: every call runs
 * once and is recorded, the pending ones no earlier than their dueAt; an attempt that was in
 * flight may be sent again (within the duplicate bound: once per fault that caught it in flight)
 * when its new workflow finds it not recorded.
 */

const PENDING = 200;
const RUNNING = 50;
/**
 * The slow target answers the running calls after this long: they are in flight at the fault.
 * With the attempt timeout at its maximum (60 s), this leaves a slow CI machine 45 s to get all
 * of them to the target before the first one is answered.
 */
const SLOW_MS = 50_000;
const REACH_TARGET_MS = 45_000;
const RECONCILE_INTERVAL_MS = 5_000;

const runs = [
  {
    run: 1,
    timing: `SIGTERM, ${PENDING} timers pending and ${RUNNING} attempts in flight`,
    signal: 'SIGTERM' as const,
  },
  {
    run: 2,
    timing: `kill -9, ${PENDING} timers pending and ${RUNNING} attempts in flight`,
    signal: 'SIGKILL' as const,
  },
];

for (const r of runs) {
  test(
    `Temporal server loses its database with ${PENDING} timers pending and ${RUNNING} attempts in flight, run ${r.run}`,
    { timeout: 6 * 60_000 },
    async () => {
      const { dir, start: startServer } = await ownTemporalServer('temporal-data-loss', r.run);
      let server: TemporalDevServer = await startServer();
      try {
        await faultRun(
          {
            scenario: 'temporal-data-loss',
            run: r.run,
            timing: r.timing,
            env: { temporalAddress: server.address, env: { RECONCILE_INTERVAL_MS: String(RECONCILE_INTERVAL_MS) } },
            settleTimeoutMs: 180_000,
          },
          async (ctx) => {
            const { env, client } = ctx;
            const slow = `/c/dl${r.run}-run-`;
            env.target.routeDefault((hit) =>
              hit.path.startsWith(slow) ? { status: 200, body: 'slow', delayMs: SLOW_MS } : undefined,
            );
            await env.start('api');
            await env.start('relay');
            await env.start('worker');

            // Due now, answered only after SLOW_MS: in flight when the server goes.
            const running = Array.from({ length: RUNNING }, (_, i) => `dl${r.run}-run-${i}`);
            await inParallel(running, 10, async (key) => {
              await client.submit({ key, timeoutMs: 60_000 });
            });
            const slowHits = () => env.target.hits.filter((h) => h.path.startsWith(slow)).length;
            await eventually(
              `the ${RUNNING} slow attempts to reach the target`,
              async () => (slowHits() >= RUNNING ? true : undefined),
              REACH_TARGET_MS,
              100,
            ).catch(async (err: unknown) => {
              const { rows } = await env.database.db.execute<{ status: string; n: number }>(
                sql`select status, count(*)::int as n from service_calls group by status order by status`,
              );
              const statuses = rows.map((row) => `${row.n} ${row.status}`).join(', ');
              throw new Error(`${String(err)}: ${slowHits()} reached it; the read model says ${statuses}`);
            });
            // Due 10–60 s after the submits began (fixed instants, so a slow machine only shortens
            // the wait): every timer is pending when the server goes, and lost with it.
            const base = Date.now() + 10_000;
            const pending = Array.from({ length: PENDING }, (_, i) => `dl${r.run}-due-${i}`);
            await inParallel(pending, 20, async (key, i) => {
              await client.submit({ key, dueInMs: base + Math.floor((i * 50_000) / PENDING) - Date.now() });
            });
            await env.consumersCaughtUp();
            const { rows } = await env.database.db.execute<{ status: string; n: number }>(
              sql`select status, count(*)::int as n from service_calls group by status order by status`,
            );
            ctx.notes.push(`before the loss: ${rows.map((row) => `${row.n} ${row.status}`).join(', ')}`);
            const count = (status: string) => rows.find((row) => row.status === status)?.n ?? 0;
            assert.ok(count('Scheduled') >= PENDING * 0.9, 'the timers are pending when the server stops');
            assert.ok(count('Running') >= RUNNING, 'the slow attempts are in flight when the server stops');

            ctx.fault(`temporal server stopping (${r.signal}), its database deleted`, { canRepeatAttempts: true });
            if (r.signal === 'SIGKILL') {
              process.kill(server.pid, 'SIGKILL');
              await waitForPidExit(server.pid, 10_000);
            }
            await server.stop();
            const files = readdirSync(dir).filter((f) => f.startsWith('temporal.db'));
            assert.ok(files.includes('temporal.db'), 'the server kept its data in the file we delete');
            for (const f of files) rmSync(path.join(dir, f));

            // Submits keep working meanwhile: the call is durable in Postgres.
            const during = Array.from({ length: 10 }, (_, i) => `dl${r.run}-down-${i}`);
            await inParallel(during, 5, async (key) => {
              const ack = await client.submit({ key });
              assert.equal(ack?.status, 202, 'a submit is acknowledged while Temporal is down');
            });
            server = await startServer();
            // This one can repeat attempts too: the worker still holds the lost runs and keeps
            // (or retries) their attempts in flight until the fresh server refuses their workflow
            // tasks, and the eviction that follows cuts the attempt short, unrecorded, once more.
            ctx.fault('a fresh temporal server started on the same port (no workflows, no search attributes)', {
              canRepeatAttempts: true,
            });
            await sleep(1_000);
          },
        );
      } finally {
        await server.stop();
      }
    },
  );
}
