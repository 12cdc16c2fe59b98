import assert from 'node:assert/strict';
import { sql } from 'drizzle-orm';
import { callsInFlightAt, checkHistory, loadStoreAndReadModel, type CheckReport } from './checker';
import { FaultEnv, type FaultEnvOptions } from './harness';
import { callbackKeyOfPath, keyOfPath, LoadClient } from './load';
import { recordResult } from './report';
import { eventually, sleep } from '../support/net';

/**
 * The frame of one scenario run: make the environment, let the scenario drive load and inject
 * faults, then wait for the system to settle, run the checker over the whole history, record
 * the counts for the suite's table and fail on any violation.
 */

export interface RunContext {
  env: FaultEnv;
  client: LoadClient;
  /** Lines that explain the run (faults injected, what was measured), printed with the result. */
  notes: string[];
  /**
   * Records a fault, at the moment of the call. When it can interrupt an HTTP attempt (worker
   * killed, Temporal or PostgreSQL stopped), each call in flight at that moment may be hit once
   * more: they raise the duplicate bound (counted from the event store at the end).
   */
  fault(what: string, opts: { canRepeatAttempts: boolean }): void;
}

export interface RunOptions {
  scenario: string;
  run: number;
  timing: string;
  env?: Omit<FaultEnvOptions, 'name'>;
  /** How long the calls may take to finish once the scenario is done. */
  settleTimeoutMs?: number;
  /** No new hit for this long = no attempt still under way. */
  quietMs?: number;
  client?: ConstructorParameters<typeof LoadClient>[1];
  /** The scenario kills the api: "no answer" is expected then (the client retries). */
  apiMayDie?: boolean;
  /** A bug this run is known to show (the test is a todo): reported in the table, not failing the suite. */
  knownIssue?: string;
}

/** Every acknowledged call has a terminal event, nothing hits the target any more, the relay is done. */
async function settle(ctx: RunContext, opts: RunOptions): Promise<void> {
  const ids = [...ctx.client.acked.values()].map((a) => a.id);
  await eventually(
    `all ${ids.length} acknowledged calls to finish`,
    async () => {
      const { rows } = await ctx.env.database.db.execute<{ n: number }>(sql`
        select count(distinct aggregate_id)::int as n from events
        where aggregate_id = any(${`{${ids.join(',')}}`}::uuid[])
          and type in ('ServiceCallSucceeded', 'ServiceCallFailed', 'ServiceCallCancelled')`);
      return (rows[0]?.n ?? 0) === ids.length ? true : undefined;
    },
    opts.settleTimeoutMs ?? 120_000,
    250,
  ).catch(async (err: unknown) => {
    ctx.notes.push(`settle: ${err instanceof Error ? err.message : String(err)}`);
  });
  // Callbacks still to deliver (ADR-0016): the workflows end only once they are settled.
  await eventually(
    'every due callback to settle',
    async () => {
      const { rows } = await ctx.env.database.db.execute<{ n: number }>(sql`
        select count(*)::int as n from service_calls where callback_status = 'Pending'`);
      return (rows[0]?.n ?? 0) === 0 ? true : undefined;
    },
    opts.settleTimeoutMs ?? 120_000,
    250,
  ).catch(async (err: unknown) => {
    ctx.notes.push(`settle: ${err instanceof Error ? err.message : String(err)}`);
  });
  const quietMs = opts.quietMs ?? 3_000;
  let seen = -1;
  while (seen !== ctx.env.target.hits.length) {
    seen = ctx.env.target.hits.length;
    await sleep(quietMs);
  }
  await ctx.env.consumersCaughtUp();
}

export async function faultRun(opts: RunOptions, body: (ctx: RunContext) => Promise<void>): Promise<CheckReport> {
  const started = Date.now();
  const name = `${opts.scenario}-${opts.run}`;
  let env: FaultEnv | undefined;
  const notes: string[] = [];
  const repeatableFaults: { at: number; note: number }[] = [];
  let recorded = false;
  try {
    env = await FaultEnv.create({ ...opts.env, name });
    const client = new LoadClient(env, opts.client);
    const ctx: RunContext = {
      env,
      client,
      notes,
      fault(what, { canRepeatAttempts }) {
        const at = Date.now();
        notes.push(`${((at - started) / 1000).toFixed(1)} s: ${what}`);
        if (canRepeatAttempts) repeatableFaults.push({ at, note: notes.length - 1 });
      },
    };
    await body(ctx);
    await settle(ctx, opts);

    const { events, views } = await loadStoreAndReadModel(env.database.db, env.tenant.id);
    const byKey = new Map([...client.acked.values()].map((a) => [a.key, a]));
    // A replay copies its original's request, so its hits go to the original's path; they carry
    // the replay's own id as idempotency-key (the checker compares every hit's key with that).
    const replays = new Map(
      [...client.acked.values()].filter((a) => a.replayOf !== undefined).map((a) => [a.id, a.replayOf]),
    );
    const report = checkHistory({
      tenantId: env.tenant.id,
      acked: new Map([...client.acked.values()].map((a) => [a.id, { dueAt: a.dueAt }])),
      hits: env.target.hits,
      callOfHit: (hit) => {
        const key = keyOfPath(hit.path);
        if (key === undefined) return undefined;
        const sentAs = String(hit.headers['idempotency-key'] ?? '');
        if (replays.get(sentAs) === key) return sentAs;
        return byKey.get(key)?.id ?? client.expectedId(key);
      },
      callbackOfHit: (hit) => {
        const key = callbackKeyOfPath(hit.path);
        return key === undefined ? undefined : (byKey.get(key)?.id ?? client.expectedId(key));
      },
      events,
      views,
      repeatableFaultsAt: repeatableFaults.map((f) => f.at),
    });
    for (const f of repeatableFaults) notes[f.note] += ` (${callsInFlightAt(events, f.at)} calls in flight)`;
    const bad = [
      ...client.badAnswers(),
      ...(opts.apiMayDie === true ? [] : client.answers.filter((a) => a.status === 0)),
    ];
    const wrongIds = [...client.acked.values()].filter((a) => a.id !== client.expectedId(a.key));
    const replayed = [...client.acked.values()].filter((a) => a.status === 200).length;
    notes.push(
      `client: ${client.acked.size} acknowledged (${replayed} by a replayed 200), ${client.abandoned.size} abandoned, ` +
        `${client.answers.length} answers, ${bad.length} bad (a 5xx other than 503, a 4xx, a timeout${opts.apiMayDie === true ? '' : ', no answer'})`,
    );
    for (const a of bad.slice(0, 5)) notes.push(`bad answer: ${a.op} → ${a.status} after ${a.ms} ms`);
    if (report.duplicateExamples.length > 0) notes.push(`repeated hits, e.g. ${report.duplicateExamples.join('; ')}`);
    const ok = report.ok && bad.length === 0 && wrongIds.length === 0 && client.abandoned.size === 0;
    recorded = true;
    recordResult({
      scenario: opts.scenario,
      run: opts.run,
      timing: opts.timing,
      ok,
      ...(opts.knownIssue === undefined ? {} : { knownIssue: opts.knownIssue }),
      seconds: (Date.now() - started) / 1000,
      counts: report.counts,
      notes: [...notes, ...report.problems],
    });
    process.stdout.write(
      `\n[faults] ${name} (${opts.timing}): ${ok ? 'ok' : 'FAILED'}\n` +
        `${[...notes, ...report.problems].map((n) => `  ${n}`).join('\n')}\n` +
        `  counts: ${JSON.stringify(report.counts)}\n`,
    );
    assert.deepEqual(report.problems, [], `${name}: the checker found problems`);
    assert.ok(report.ok, `${name}: the checker's counts are not all within bounds`);
    assert.deepEqual(bad, [], `${name}: the API gave answers a client must never see`);
    assert.deepEqual(wrongIds, [], `${name}: an acknowledged id differs from the one its key names`);
    assert.equal(client.abandoned.size, 0, `${name}: the client had to give up on some submits`);
    return report;
  } catch (err) {
    if (!recorded) {
      recordResult({
        scenario: opts.scenario,
        run: opts.run,
        timing: opts.timing,
        ok: false,
        ...(opts.knownIssue === undefined ? {} : { knownIssue: opts.knownIssue }),
        seconds: (Date.now() - started) / 1000,
        counts: null,
        notes,
        error: err instanceof Error ? err.message : String(err),
      });
      process.stdout.write(
        `\n[faults] ${name}: ERROR ${err instanceof Error ? err.stack : String(err)}\n${notes.map((n) => `  ${n}`).join('\n')}\n`,
      );
    }
    throw err;
  } finally {
    await env?.close();
  }
}

/** The scenarios' load runs through the one in core. */
export { inParallel } from '../../core/in-parallel';

/** A random whole number in [min, max]. */
export function between(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}
