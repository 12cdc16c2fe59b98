import { serviceCallIdFor } from '../../core/ids';
import { sleep } from '../support/net';
import type { FaultEnv } from './harness';

/**
 * The suite's client: submits calls through the real API over HTTP and keeps a ledger of what
 * the API acknowledged. Like a well-behaved client it retries a submit that got no answer (the
 * api died, the connection broke) or a 503, with the same Idempotency-Key and the same body,
 * until it gets a 202 or a replayed 200. Every answer is logged with its latency, so a scenario
 * can assert "never a 500, never a hang".
 */

export interface Acked {
  key: string;
  id: string;
  /** The dueAt the API answered (absent or past requested → now). */
  dueAt: string;
  /** 202 first time; 200 when the first answer was lost and a retry replayed it. */
  status: 202 | 200;
  attempts: number;
  cancelled: boolean;
  /** A replay: the key of the call it replays (its target hits go to that call's path). */
  replayOf?: string;
}

export interface Answer {
  at: number;
  op: 'submit' | 'batch' | 'cancel' | 'reschedule' | 'replay';
  /** HTTP status; 0 = no answer (connection refused or reset); -1 = our client timeout fired. */
  status: number;
  ms: number;
}

export interface SubmitSpec {
  key: string;
  /** Milliseconds from now; absent = due now. */
  dueInMs?: number;
  /** The call's per-attempt timeout; absent = the default. */
  timeoutMs?: number;
  /** Ask for a callback to `/cb/<key>` on every outcome. */
  callback?: boolean;
  /** The call's flow-limit keys (ADR-0018). */
  flowKeys?: string[];
}

/** The key a target hit was meant for: calls are sent to `/c/<key>`. */
export function keyOfPath(path: string): string | undefined {
  const match = /^\/c\/([A-Za-z0-9_.-]+)$/.exec(path);
  return match?.[1];
}

/** The key of the call whose callback a hit delivers: callbacks are sent to `/cb/<key>`. */
export function callbackKeyOfPath(path: string): string | undefined {
  const match = /^\/cb\/([A-Za-z0-9_.-]+)$/.exec(path);
  return match?.[1];
}

export class LoadClient {
  readonly acked = new Map<string, Acked>();
  readonly answers: Answer[] = [];
  /** Keys the client gave up on: submitted, never acknowledged. */
  readonly abandoned = new Set<string>();

  constructor(
    private readonly env: FaultEnv,
    private readonly opts: { requestTimeoutMs?: number; retryDelayMs?: number; giveUpAfterMs?: number } = {},
  ) {}

  expectedId(key: string): string {
    return serviceCallIdFor(this.env.tenant.id, key);
  }

  private async request(
    op: Answer['op'],
    method: 'POST',
    url: string,
    headers: Record<string, string>,
    body: unknown,
  ): Promise<{ status: number; body: unknown }> {
    const started = Date.now();
    const timeoutMs = this.opts.requestTimeoutMs ?? 10_000;
    let status = 0;
    let parsed: unknown;
    try {
      const response = await fetch(`${this.env.apiUrl}${url}`, {
        method,
        headers: {
          authorization: `Bearer ${this.env.tenant.key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = response.status;
      const text = await response.text();
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    } catch (err) {
      status = err instanceof Error && err.name === 'TimeoutError' ? -1 : 0;
    }
    this.answers.push({ at: started, op, status, ms: Date.now() - started });
    return { status, body: parsed };
  }

  /**
   * Submits until acknowledged; resolves with the ack, or undefined after `giveUpAfterMs`.
   * Only "no answer" and 503 are retried: anything else is a bug the scenario reports.
   */
  private bodyOf(spec: SubmitSpec) {
    return {
      request: { method: 'POST', url: this.env.target.url(`/c/${spec.key}`), body: { key: spec.key } },
      ...(spec.dueInMs === undefined ? {} : { dueAt: new Date(Date.now() + spec.dueInMs).toISOString() }),
      ...(spec.timeoutMs === undefined ? {} : { timeoutMs: spec.timeoutMs }),
      ...(spec.callback === true
        ? { callback: { url: this.env.target.url(`/cb/${spec.key}`), on: ['Succeeded', 'Failed', 'Cancelled'] } }
        : {}),
      ...(spec.flowKeys === undefined ? {} : { flowKeys: spec.flowKeys }),
      tags: ['faults'],
    };
  }

  async submit(spec: SubmitSpec): Promise<Acked | undefined> {
    const body = this.bodyOf(spec);
    const deadline = Date.now() + (this.opts.giveUpAfterMs ?? 120_000);
    for (let attempt = 1; ; attempt++) {
      const r = await this.request('submit', 'POST', '/v1/service-calls', { 'idempotency-key': spec.key }, body);
      if (r.status === 202 || r.status === 200) {
        const answer = r.body as { id: string; dueAt: string };
        const ack: Acked = {
          key: spec.key,
          id: answer.id,
          dueAt: answer.dueAt,
          status: r.status,
          attempts: attempt,
          cancelled: false,
        };
        this.acked.set(spec.key, ack);
        return ack;
      }
      if ((r.status !== 0 && r.status !== 503) || Date.now() > deadline) {
        this.abandoned.add(spec.key);
        return undefined;
      }
      await sleep(this.opts.retryDelayMs ?? 100);
    }
  }

  /**
   * Submits `specs` as one batch, each item with its key as `idempotencyKey`, until the batch is
   * answered; the whole batch is sent again, unchanged, after no answer or a 503 (its items'
   * keys make that safe). Every item answered 202 or 200 is acknowledged; an item answered
   * otherwise, or a batch given up on, leaves its keys abandoned.
   */
  async submitBatch(specs: readonly SubmitSpec[]): Promise<Acked[]> {
    const items = specs.map((spec) => ({ ...this.bodyOf(spec), idempotencyKey: spec.key }));
    const deadline = Date.now() + (this.opts.giveUpAfterMs ?? 120_000);
    for (let attempt = 1; ; attempt++) {
      const r = await this.request('batch', 'POST', '/v1/service-calls/batch', {}, { items });
      if (r.status === 200) {
        const answers = (r.body as { items: { status: number; id?: string; dueAt?: string }[] }).items;
        const acked: Acked[] = [];
        specs.forEach((spec, i) => {
          const a = answers[i];
          if (
            a === undefined ||
            (a.status !== 202 && a.status !== 200) ||
            a.id === undefined ||
            a.dueAt === undefined
          ) {
            this.abandoned.add(spec.key);
            return;
          }
          const ack: Acked = {
            key: spec.key,
            id: a.id,
            dueAt: a.dueAt,
            status: a.status,
            attempts: attempt,
            cancelled: false,
          };
          this.acked.set(spec.key, ack);
          acked.push(ack);
        });
        return acked;
      }
      if ((r.status !== 0 && r.status !== 503) || Date.now() > deadline) {
        for (const spec of specs) this.abandoned.add(spec.key);
        return [];
      }
      await sleep(this.opts.retryDelayMs ?? 100);
    }
  }

  /** Cancels once (retrying only while there is no answer); true if the API answered 202. */
  async cancel(key: string): Promise<boolean> {
    const ack = this.acked.get(key);
    if (ack === undefined) return false;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await this.request('cancel', 'POST', `/v1/service-calls/${ack.id}/cancel`, {}, undefined);
      if (r.status === 202) {
        ack.cancelled = true;
        return true;
      }
      if ((r.status !== 0 && r.status !== 503) || Date.now() > deadline) return false;
      await sleep(this.opts.retryDelayMs ?? 100);
    }
  }

  /**
   * Moves a call to `dueInMs` from now, once (retrying only while there is no answer). true: 200,
   * and the call's dueAt is now the one answered; false: 409 (it became due first) or no answer.
   */
  async reschedule(key: string, dueInMs: number): Promise<boolean> {
    const ack = this.acked.get(key);
    if (ack === undefined) return false;
    const deadline = Date.now() + 30_000;
    const body = { dueAt: new Date(Date.now() + dueInMs).toISOString() };
    for (;;) {
      const r = await this.request('reschedule', 'POST', `/v1/service-calls/${ack.id}/reschedule`, {}, body);
      if (r.status === 200) {
        ack.dueAt = (r.body as { dueAt: string }).dueAt;
        return true;
      }
      if ((r.status !== 0 && r.status !== 503) || Date.now() > deadline) return false;
      await sleep(this.opts.retryDelayMs ?? 100);
    }
  }

  /**
   * Replays the call submitted as `key` as a new call keyed `replayKey`, due `dueInMs` from now.
   * Retries with the same key while there is no answer, a 503, or a 409 (the original has not
   * finished yet), so a lost answer gives the same new call; true once the API answered 202/200.
   */
  async replay(key: string, replayKey: string, dueInMs: number): Promise<boolean> {
    const original = this.acked.get(key);
    if (original === undefined) return false;
    const deadline = Date.now() + 60_000;
    const body = { dueAt: new Date(Date.now() + dueInMs).toISOString() };
    for (let attempt = 1; ; attempt++) {
      const r = await this.request(
        'replay',
        'POST',
        `/v1/service-calls/${original.id}/replay`,
        { 'idempotency-key': replayKey },
        body,
      );
      if (r.status === 202 || r.status === 200) {
        const answer = r.body as { id: string; dueAt: string };
        this.acked.set(replayKey, {
          key: replayKey,
          id: answer.id,
          dueAt: answer.dueAt,
          status: r.status,
          attempts: attempt,
          cancelled: false,
          replayOf: key,
        });
        return true;
      }
      if ((r.status !== 0 && r.status !== 503 && r.status !== 409) || Date.now() > deadline) {
        this.abandoned.add(replayKey);
        return false;
      }
      await sleep(r.status === 409 ? 250 : (this.opts.retryDelayMs ?? 100));
    }
  }

  /** Answers that a client must never see: a 5xx other than 503, or no answer within the timeout. */
  badAnswers(): Answer[] {
    return this.answers.filter(
      (a) =>
        a.status === -1 ||
        (a.status >= 500 && a.status !== 503) ||
        (a.status >= 400 &&
          a.status < 500 &&
          !((a.op === 'cancel' || a.op === 'reschedule' || a.op === 'replay') && a.status === 409)),
    );
  }
}
