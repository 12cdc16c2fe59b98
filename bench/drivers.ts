import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Pool } from 'undici';
import type { Database } from '../core/db';
import { workflowIdFor } from '../core/ids';
import { measureConsumerLag } from '../projections/lag';
import { CONSUMERS } from '../projections/consumers';
import { sleep } from './log';
import { nowMs, summarize, type Summary } from './stats';
import type { Running } from './system';
import type { BenchTarget } from './target';

/**
 * The two systems behind one interface, so every phase drives both the same way:
 * - Punctual: `POST /v1/service-calls`; done when `GET /v1/service-calls/{id}` shows a terminal
 *   status (polled every pollMs from the moment the target was hit: a client that waits for the
 *   outcome does the same);
 * - the baseline: `client.workflow.start`; done when `handle.result()` answers (a long poll).
 */

export type SystemName = 'punctual' | 'baseline';

export interface Ctx {
  sys: Running;
  api: Pool;
  target: BenchTarget;
  targetUrl: string;
  temporal: Client;
  db: Database;
  runId: string;
  pollMs: number;
}

export interface Accepted {
  id: string;
  /** When the submit / start was sent. */
  t0: number;
  /** Submit / start round trip. */
  acceptMs: number;
  dueAtMs: number;
}

export interface Finished extends Accepted {
  /** t0 → the target received the request. */
  pickupMs: number;
  /** t0 → the terminal status was seen by the client. */
  e2eMs: number;
  /** Punctual only: the terminal event's timestamp → the client saw it through the API. */
  outcomeToVisibleMs?: number;
  status: string;
  /** Punctual only: GET requests it took to see the terminal status. */
  polls?: number;
}

export interface Driver {
  name: SystemName;
  /** Submit / start one call (due now unless dueAt is given). */
  accept(tag: string, dueAt?: Date): Promise<Accepted>;
  /** Waits until an accepted due-now call is terminal, as its client would see it. */
  finish(call: Accepted): Promise<Finished>;
  /** The Temporal workflow id of a call. */
  workflowId(id: string): string;
  /** Punctual only: submits `n` calls in one batch request (`POST /v1/service-calls/batch`). */
  acceptBatch?: (
    tag: string,
    n: number,
    dueAt?: Date,
    extra?: { flowKeys?: string[] },
  ) => Promise<{ calls: Accepted[]; requestMs: number }>;
  /** Punctual only: one authenticated JSON request to the API (lifecycle commands). */
  api?: (method: 'GET' | 'POST' | 'PUT', pathName: string, body?: unknown) => Promise<{ status: number; json: any }>;
}

const TERMINAL = new Set(['Succeeded', 'Failed', 'Cancelled']);
const HIT_TIMEOUT_MS = 300_000;

async function apiJson(
  ctx: Ctx,
  method: 'GET' | 'POST' | 'PUT',
  pathName: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const res = await ctx.api.request({
    method,
    path: pathName,
    headers: {
      authorization: `Bearer ${ctx.sys.apiKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text === '' ? undefined : JSON.parse(text) };
}

export function punctualDriver(ctx: Ctx): Driver {
  return {
    name: 'punctual',
    workflowId: (id) => workflowIdFor(ctx.sys.tenantId, id),
    async accept(tag, dueAt) {
      const t0 = nowMs();
      const res = await apiJson(ctx, 'POST', '/v1/service-calls', {
        request: {
          method: 'POST',
          url: `${ctx.targetUrl}/p/${tag}`,
          headers: { 'content-type': 'application/json' },
          body: { bench: tag, at: Math.round(t0) },
        },
        ...(dueAt === undefined ? {} : { dueAt: dueAt.toISOString() }),
        tags: [`bench:${tag}`],
      });
      const acceptMs = nowMs() - t0;
      if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.json)}`);
      return { id: res.json.id as string, t0, acceptMs, dueAtMs: Date.parse(res.json.dueAt as string) };
    },
    api: (method, pathName, body) => apiJson(ctx, method, pathName, body),
    async acceptBatch(tag, n, dueAt, extra) {
      const t0 = nowMs();
      const items = Array.from({ length: n }, (_, i) => ({
        request: {
          method: 'POST',
          url: `${ctx.targetUrl}/p/${tag}`,
          headers: { 'content-type': 'application/json' },
          body: { bench: tag, i },
        },
        ...(dueAt === undefined ? {} : { dueAt: dueAt.toISOString() }),
        tags: [`bench:${tag}`],
        ...extra,
      }));
      const res = await apiJson(ctx, 'POST', '/v1/service-calls/batch', { items });
      const requestMs = nowMs() - t0;
      if (res.status !== 200) throw new Error(`batch answered ${res.status}: ${JSON.stringify(res.json)}`);
      const answers = res.json.items as { status: number; id?: string; dueAt?: string }[];
      const refused = answers.filter((a) => a.status !== 202);
      if (refused.length > 0) throw new Error(`batch items refused: ${JSON.stringify(refused.slice(0, 3))}`);
      const calls = answers.map((a) => ({ id: a.id!, t0, acceptMs: requestMs, dueAtMs: Date.parse(a.dueAt!) }));
      return { calls, requestMs };
    },
    async finish(call) {
      const hitAt = await ctx.target.waitFor(call.id, HIT_TIMEOUT_MS);
      await sleep(hitAt + ctx.pollMs - nowMs());
      for (let polls = 1; ; polls++) {
        const res = await apiJson(ctx, 'GET', `/v1/service-calls/${call.id}`);
        const seen = nowMs();
        if (res.status === 200 && TERMINAL.has(res.json.status as string)) {
          return {
            ...call,
            pickupMs: hitAt - call.t0,
            e2eMs: seen - call.t0,
            outcomeToVisibleMs: seen - Date.parse(res.json.updatedAt as string),
            status: res.json.status as string,
            polls,
          };
        }
        if (seen - hitAt > 60_000) throw new Error(`call ${call.id} not terminal 60 s after its hit`);
        // Every pollMs at first, then a tenth of the time waited so far: the measuring costs the
        // system under test little even when it is slow, and errs by at most about 10 %.
        await sleep(Math.max(ctx.pollMs, (seen - hitAt) / 10));
      }
    },
  };
}

let baselineSeq = 0;

export function baselineDriver(ctx: Ctx): Driver {
  const handles = new Map<string, WorkflowHandle>();
  return {
    name: 'baseline',
    workflowId: (id) => id,
    async accept(tag, dueAt) {
      const id = `bench-${ctx.runId}-${tag}-${baselineSeq++}`;
      const t0 = nowMs();
      const handle = await ctx.temporal.workflow.start('baselineCall', {
        taskQueue: ctx.sys.baselineQueue,
        workflowId: id,
        args: [{ url: `${ctx.targetUrl}/b/${id}`, ...(dueAt === undefined ? {} : { dueAt: dueAt.toISOString() }) }],
      });
      const acceptMs = nowMs() - t0;
      // Only due-now calls are waited for; keeping the others' handles would only use memory.
      if (dueAt === undefined) handles.set(id, handle);
      return { id, t0, acceptMs, dueAtMs: dueAt?.getTime() ?? t0 };
    },
    async finish(call) {
      const handle = handles.get(call.id);
      if (handle === undefined) throw new Error(`no handle for ${call.id}`);
      handles.delete(call.id);
      const status: unknown = await handle.result();
      const seen = nowMs();
      const hitAt = ctx.target.hitAt(call.id) ?? Number.NaN;
      return {
        ...call,
        pickupMs: hitAt - call.t0,
        e2eMs: seen - call.t0,
        status: status === 200 ? 'Succeeded' : 'Failed',
      };
    },
  };
}

/**
 * Projection lag sampled straight from the database every intervalMs: the age of the oldest
 * committed event a consumer has not handled yet (0 when caught up) — the same measure as the
 * `punctual_consumer_lag_seconds` gauge, which the relay refreshes only every 2 s.
 */
export class LagSampler {
  readonly samples: { at: number; projection: number; starter: number }[] = [];
  private stopped = true;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.stopped = false;
    this.loop = (async () => {
      while (!this.stopped) {
        const began = nowMs();
        try {
          const lags = await measureConsumerLag(
            this.db.db,
            CONSUMERS.map((c) => c.name),
          );
          this.samples.push({
            at: began,
            projection: (lags[0]?.seconds ?? 0) * 1000,
            starter: (lags[1]?.seconds ?? 0) * 1000,
          });
        } catch {
          // A sample lost; the next one counts.
        }
        await sleep(this.intervalMs - (nowMs() - began));
      }
    })();
  }

  async stop(): Promise<{ projection: Summary; starter: Summary }> {
    this.stopped = true;
    await this.loop;
    return {
      projection: summarize(this.samples.map((s) => s.projection)),
      starter: summarize(this.samples.map((s) => s.starter)),
    };
  }
}

/**
 * Waits until every due call of this run is terminal and both consumers caught up (or the
 * timeout passes: returns false then). Returns how long it took.
 */
export async function drain(ctx: Ctx, timeoutMs: number): Promise<{ ms: number; drained: boolean }> {
  const began = nowMs();
  for (;;) {
    const { rows } = await ctx.db.pool.query<{ n: number }>(
      `select count(*)::int as n from service_calls where tenant_id = $1 and status in ('Scheduled', 'Running') and due_at <= now()`,
      [ctx.sys.tenantId],
    );
    const lags = await measureConsumerLag(
      ctx.db.db,
      CONSUMERS.map((c) => c.name),
    );
    if ((rows[0]?.n ?? 0) === 0 && lags.every((l) => l.events === 0)) return { ms: nowMs() - began, drained: true };
    if (nowMs() - began > timeoutMs) return { ms: nowMs() - began, drained: false };
    await sleep(200);
  }
}
