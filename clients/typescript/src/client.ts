import createClient, { type Client } from 'openapi-fetch';
import { PunctualError, PunctualTimeoutError } from './errors';
import { retryingFetch, sleep } from './retry';
import type { components, paths } from './schema';

/**
 * The typed client: every request and answer type below is taken from the generated `paths`
 * and `components` (src/schema.ts), never written out again here, so a change of the API shows
 * up as a compile error after `npm run generate`.
 */

type Schemas = components['schemas'];
type JsonBody<Op> = Op extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type Query<Op> = Op extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;
type Answer<Op, Status extends number> = Op extends {
  responses: { [S in Status]: { content: { 'application/json': infer R } } };
}
  ? R
  : never;

type ServiceCallsPath = paths['/v1/service-calls'];

export type ServiceCall = Schemas['ServiceCall'];
export type ServiceCallSummary = Schemas['ServiceCallSummary'];
export type ServiceCallPage = Schemas['ServiceCallPage'];
export type ServiceCallStatus = ServiceCall['status'];
export type SubmitBody = JsonBody<ServiceCallsPath['post']>;
export type SubmitAnswer = Answer<ServiceCallsPath['post'], 202>;
export type ListQuery = Query<ServiceCallsPath['get']>;
/** The list's filters without paging: what `calls.list` walks. */
export type ListFilter = Omit<ListQuery, 'cursor'>;
export type ReplayBody = JsonBody<paths['/v1/service-calls/{id}/replay']['post']>;
export type ReplayAnswer = Answer<paths['/v1/service-calls/{id}/replay']['post'], 202>;
export type BulkBody = JsonBody<paths['/v1/service-calls/bulk/cancel']['post']>;
export type BulkAnswer = Answer<paths['/v1/service-calls/bulk/cancel']['post'], 200>;
export type BatchBody = JsonBody<paths['/v1/service-calls/batch']['post']>;
export type BatchItem = BatchBody['items'][number];
export type BatchAnswer = Answer<paths['/v1/service-calls/batch']['post'], 200>;
export type SigningSecret = Answer<paths['/v1/signing-secrets']['get'], 200>['secrets'][number];
export type RotateBody = NonNullable<JsonBody<paths['/v1/signing-secrets/rotate']['post']>>;

type SchedulesPath = paths['/v1/schedules'];
type SchedulePath = paths['/v1/schedules/{id}'];
export type Schedule = Answer<SchedulePath['get'], 200>;
export type ScheduleStatus = Schedule['status'];
export type SchedulePage = Answer<SchedulesPath['get'], 200>;
export type ScheduleSummary = SchedulePage['items'][number];
export type ScheduleCreateBody = JsonBody<SchedulesPath['post']>;
export type ScheduleUpdateBody = JsonBody<SchedulePath['patch']>;
export type ScheduleListQuery = Query<SchedulesPath['get']>;
export type ScheduleListFilter = Omit<ScheduleListQuery, 'cursor'>;
export type TriggerAnswer = Answer<paths['/v1/schedules/{id}/trigger']['post'], 202>;

type FlowLimitPath = paths['/v1/flow-limits/{key}'];
/** A flow limit with its attempts in flight and its waiting calls (`GET /v1/flow-limits/{key}`). */
export type FlowLimit = Answer<FlowLimitPath['get'], 200>;
export type FlowLimitPutBody = JsonBody<FlowLimitPath['put']>;
export type FlowLimitPutAnswer = Answer<FlowLimitPath['put'], 200>;
export type FlowLimitSummary = Answer<paths['/v1/flow-limits']['get'], 200>['items'][number];

/** The statuses a call never leaves. */
export const TERMINAL_STATUSES: readonly ServiceCallStatus[] = ['Succeeded', 'Failed', 'Cancelled'];

export interface PunctualOptions {
  /** Where the API is, e.g. `https://punctual.example.com` (no `/v1`). */
  baseUrl: string;
  apiKey: string;
  /** Defaults to `globalThis.fetch`. */
  fetch?: (input: Request, init?: RequestInit) => Promise<Response>;
  /** Retries of a 503 or a 429 before its error is thrown (default 3). */
  maxRetries?: number;
  /** The longest wait Retry-After may ask for between two attempts (default 30 s). */
  maxRetryDelayMs?: number;
}

export interface KeyedOptions {
  /** Reused by the client's own retries; generated (a random UUID) when not given. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** What `submit` and `replay` answer, with the key they used and whether the API replayed an earlier answer. */
export type Keyed<T> = T & { idempotencyKey: string; replayed: boolean };

type Api = Client<paths>;

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

async function unwrap<T>(pending: Result<T> | Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await pending;
  if (!response.ok || error !== undefined) throw PunctualError.fromResponse(response, error);
  return data as T;
}

function newKey(): string {
  // globalThis.crypto: Node 20 and every browser have randomUUID there, without a node: import.
  return globalThis.crypto.randomUUID();
}

function keyed<T>(data: T, idempotencyKey: string, response: Response): Keyed<T> {
  return { ...data, idempotencyKey, replayed: response.headers.get('idempotent-replayed') === 'true' };
}

/**
 * A request made safe to retry by its Idempotency-Key: the caller's, or one generated here and
 * handed back with the answer, so a retry can send the same key.
 */
async function sendKeyed<T>(
  options: KeyedOptions,
  send: (key: string, init: { signal?: AbortSignal }) => Promise<Result<T>>,
): Promise<Keyed<T>> {
  const key = options.idempotencyKey ?? newKey();
  const result = await send(key, options.signal === undefined ? {} : { signal: options.signal });
  return keyed(await unwrap(result), key, result.response);
}

function instant(value: string | Date): string {
  return typeof value === 'string' ? value : value.toISOString();
}

/** Every item of a keyset-paged list, following `nextCursor` page after page. */
async function* walk<F extends object, T>(
  page: (query: F & { cursor?: string }) => Promise<{ items: T[]; nextCursor?: string | null }>,
  filter: F,
): AsyncGenerator<T, void, undefined> {
  let cursor: string | undefined;
  do {
    const answer = await page(cursor === undefined ? filter : { ...filter, cursor });
    yield* answer.items;
    cursor = answer.nextCursor ?? undefined;
  } while (cursor !== undefined);
}

export class ServiceCalls {
  constructor(private readonly api: Api) {}

  /** Submits a call; safe to retry with the same `idempotencyKey` (one is generated otherwise). */
  async submit(body: SubmitBody, options: KeyedOptions = {}): Promise<Keyed<SubmitAnswer>> {
    return sendKeyed<SubmitAnswer>(options, (key, init) =>
      this.api.POST('/v1/service-calls', { body, params: { header: { 'Idempotency-Key': key } }, ...init }),
    );
  }

  async get(id: string, options: { signal?: AbortSignal } = {}): Promise<ServiceCall> {
    return unwrap(this.api.GET('/v1/service-calls/{id}', { params: { path: { id } }, ...options }));
  }

  /** One page of the list; pass the previous page's `nextCursor` as `cursor` for the next. */
  async page(query: ListQuery = {}): Promise<ServiceCallPage> {
    return unwrap(this.api.GET('/v1/service-calls', { params: { query } }));
  }

  /** Every call the filter matches, newest first, following the cursor page after page. */
  list(filter: ListFilter = {}): AsyncGenerator<ServiceCallSummary, void, undefined> {
    return walk((query: ListQuery) => this.page(query), filter);
  }

  async cancel(id: string): Promise<ServiceCall> {
    return unwrap(this.api.POST('/v1/service-calls/{id}/cancel', { params: { path: { id } } }));
  }

  async reschedule(id: string, dueAt: string | Date): Promise<ServiceCall> {
    return unwrap(
      this.api.POST('/v1/service-calls/{id}/reschedule', {
        params: { path: { id } },
        body: { dueAt: instant(dueAt) },
      }),
    );
  }

  /** Runs a finished call again as a new one; keyed like `submit`. */
  async replay(id: string, body: ReplayBody = {}, options: KeyedOptions = {}): Promise<Keyed<ReplayAnswer>> {
    return sendKeyed<ReplayAnswer>(options, (key, init) =>
      this.api.POST('/v1/service-calls/{id}/replay', {
        params: { path: { id }, header: { 'Idempotency-Key': key } },
        body,
        ...init,
      }),
    );
  }

  async bulkCancel(body: BulkBody): Promise<BulkAnswer> {
    return unwrap(this.api.POST('/v1/service-calls/bulk/cancel', { body }));
  }

  /**
   * Without a key the API keys each replay by a digest of the body, so the same request again
   * replays nothing twice; no key is generated here, so that stays true.
   */
  async bulkReplay(body: BulkBody, options: { idempotencyKey?: string } = {}): Promise<BulkAnswer> {
    const header =
      options.idempotencyKey === undefined ? {} : { header: { 'Idempotency-Key': options.idempotencyKey } };
    return unwrap(this.api.POST('/v1/service-calls/bulk/replay', { body, params: header }));
  }

  /** Submits up to 1,000 calls; an item without `idempotencyKey` gets a generated one, so a retried batch is the same calls. */
  async batch(items: BatchItem[]): Promise<BatchAnswer> {
    const body = { items: items.map((item) => ({ ...item, idempotencyKey: item.idempotencyKey ?? newKey() })) };
    return unwrap(this.api.POST('/v1/service-calls/batch', { body }));
  }

  /** Polls until the call is Succeeded, Failed or Cancelled; PunctualTimeoutError after `timeoutMs`. */
  async waitFor(
    id: string,
    options: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
  ): Promise<ServiceCall> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const intervalMs = options.intervalMs ?? 500;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const call = await this.get(id, options.signal === undefined ? {} : { signal: options.signal });
      if (TERMINAL_STATUSES.includes(call.status)) return call;
      const left = deadline - Date.now();
      if (left <= 0) throw new PunctualTimeoutError(id, call.status, timeoutMs);
      await sleep(Math.min(intervalMs, left), options.signal);
    }
  }
}

export class SigningSecrets {
  constructor(private readonly api: Api) {}

  /** Every secret that signs now, oldest first (the first is made on first use). */
  async list(): Promise<SigningSecret[]> {
    return (await unwrap(this.api.GET('/v1/signing-secrets'))).secrets;
  }

  /** A new secret signs from now on; the others keep signing for `graceSeconds` (default one day). */
  async rotate(body: RotateBody = {}): Promise<SigningSecret[]> {
    return (await unwrap(this.api.POST('/v1/signing-secrets/rotate', { body }))).secrets;
  }
}

export class Schedules {
  constructor(private readonly api: Api) {}

  /** Creates a schedule; safe to retry with the same `idempotencyKey` (one is generated otherwise). */
  async create(body: ScheduleCreateBody, options: KeyedOptions = {}): Promise<Keyed<Schedule>> {
    return sendKeyed<Schedule>(options, (key, init) =>
      this.api.POST('/v1/schedules', { body, params: { header: { 'Idempotency-Key': key } }, ...init }),
    );
  }

  async get(id: string, options: { signal?: AbortSignal } = {}): Promise<Schedule> {
    return unwrap(this.api.GET('/v1/schedules/{id}', { params: { path: { id } }, ...options }));
  }

  /** One page of the list; pass the previous page's `nextCursor` as `cursor` for the next. */
  async page(query: ScheduleListQuery = {}): Promise<SchedulePage> {
    return unwrap(this.api.GET('/v1/schedules', { params: { query } }));
  }

  /** Every schedule the filter matches, following the cursor page after page. */
  list(filter: ScheduleListFilter = {}): AsyncGenerator<ScheduleSummary, void, undefined> {
    return walk((query: ScheduleListQuery) => this.page(query), filter);
  }

  /** Changes the spec, request, retry, tags or timezone; applies from the next run. */
  async update(id: string, body: ScheduleUpdateBody): Promise<Schedule> {
    return unwrap(this.api.PATCH('/v1/schedules/{id}', { params: { path: { id } }, body }));
  }

  async pause(id: string): Promise<Schedule> {
    return unwrap(this.api.POST('/v1/schedules/{id}/pause', { params: { path: { id } } }));
  }

  async resume(id: string): Promise<Schedule> {
    return unwrap(this.api.POST('/v1/schedules/{id}/resume', { params: { path: { id } } }));
  }

  /** One run now, beside the spec's own; answers the new call's id. */
  async trigger(id: string): Promise<TriggerAnswer> {
    return unwrap(this.api.POST('/v1/schedules/{id}/trigger', { params: { path: { id } } }));
  }

  /** Deletes the schedule; the calls it already made go on. */
  async delete(id: string): Promise<void> {
    const { error, response } = await this.api.DELETE('/v1/schedules/{id}', { params: { path: { id } } });
    if (!response.ok || error !== undefined) throw PunctualError.fromResponse(response, error);
  }
}

export class FlowLimits {
  constructor(private readonly api: Api) {}

  /** Defines or replaces the limit of `key`; the calls already waiting for it obey the new one. */
  async put(key: string, body: FlowLimitPutBody): Promise<FlowLimitPutAnswer> {
    return unwrap(this.api.PUT('/v1/flow-limits/{key}', { params: { path: { key } }, body }));
  }

  /** The limit with its attempts in flight (`inFlight`) and its waiting calls (`waiting`, `waitingCalls`). */
  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<FlowLimit> {
    return unwrap(this.api.GET('/v1/flow-limits/{key}', { params: { path: { key } }, ...options }));
  }

  /** Every flow limit of the tenant. */
  async list(): Promise<FlowLimitSummary[]> {
    return (await unwrap(this.api.GET('/v1/flow-limits'))).items;
  }

  /** Deletes the limit; the calls waiting for it go ahead. */
  async delete(key: string): Promise<void> {
    const { error, response } = await this.api.DELETE('/v1/flow-limits/{key}', { params: { path: { key } } });
    if (!response.ok || error !== undefined) throw PunctualError.fromResponse(response, error);
  }
}

export class Punctual {
  readonly calls: ServiceCalls;
  readonly schedules: Schedules;
  readonly flowLimits: FlowLimits;
  readonly secrets: SigningSecrets;

  constructor(options: PunctualOptions) {
    const baseFetch = options.fetch ?? ((input: Request, init?: RequestInit) => globalThis.fetch(input, init));
    const api = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      headers: { authorization: `Bearer ${options.apiKey}` },
      fetch: retryingFetch(baseFetch, {
        maxRetries: options.maxRetries ?? 3,
        maxDelayMs: options.maxRetryDelayMs ?? 30_000,
      }),
    });
    this.calls = new ServiceCalls(api);
    this.schedules = new Schedules(api);
    this.flowLimits = new FlowLimits(api);
    this.secrets = new SigningSecrets(api);
  }
}
