import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { applyScheduleEvents, countSchedules } from '../projections/schedules';
import {
  canonicalJson,
  claimIdempotencyKey,
  IdempotencyKeyReusedError,
  recordAppended,
  requestFromSubmitted,
  submitServiceCall,
  type Deps,
} from './commands';
import type { DbOrTx } from './db';
import type { HttpRequestSpec, RequestSecrets } from './events';
import { appendToStream, ConcurrencyError, readStream } from './event-store';
import { serviceCallIdFor, streamIdFor, uuidV5 } from './ids';
import {
  decideSchedule,
  evolveSchedule,
  foldSchedule,
  SCHEDULE_AGGREGATE_TYPE,
  ScheduleDeletedError,
  ScheduleLimitError,
  ScheduleNotFoundError,
  type OverlapPolicy,
  type RunTemplate,
  type ScheduleCommand,
  type ScheduleEvent,
  type ScheduleSpec,
  type ScheduleState,
  type StoredScheduleEvent,
} from './schedule';
import { SCHEMA_VERSION, type NewEvent, type Unversioned } from './events';

/**
 * Schedule commands (ADR-0017): read the schedule's stream, decide, append with the version read,
 * and apply the events to the schedules read model in the same transaction. The relay's
 * schedule syncer derives the Temporal Schedule from the stream afterwards.
 */

export interface ScheduleDeps extends Deps {
  /** SCHEDULES_PER_TENANT. */
  schedulesPerTenant: number;
}

/** A run's template as the tenant gave it: the request with its secrets in clear. */
export interface RunInput extends Omit<RunTemplate, 'request' | 'secrets'> {
  request: HttpRequestSpec;
}

export interface CreateScheduleRequest {
  tenantId: string;
  idempotencyKey: string | undefined;
  spec: ScheduleSpec;
  run: RunInput;
  overlap: OverlapPolicy;
  paused: boolean;
  correlationId: string;
}

export interface CreateScheduleResult {
  state: ScheduleState;
  replayed: boolean;
}

/** Each run's idempotency key: the schedule and the instant it fired for (ADR-0017). */
export function runIdempotencyKey(scheduleId: string, scheduledAt: Date): string {
  return `schedule:${scheduleId}:${scheduledAt.toISOString()}`;
}

export function scheduleIdFor(tenantId: string, idempotencyKey: string | undefined): string {
  if (idempotencyKey === undefined) return randomUUID();
  return uuidV5(`schedule\u0000${tenantId}\u0000${idempotencyKey}`);
}

/** The template to record: the request split into what may be shown and what is sealed. */
function sealRun(deps: Deps, run: RunInput, streamId: string): RunTemplate {
  const { visible, secret } = deps.redactor.split(run.request.headers);
  const secrets: RequestSecrets = { headers: secret, body: run.request.body };
  const hasSecrets = Object.keys(secret).length > 0 || run.request.body !== null;
  return {
    ...run,
    request: { method: run.request.method, url: run.request.url, headers: visible },
    secrets: hasSecrets ? deps.keyring.seal(secrets, streamId) : null,
  };
}

function envelope(
  tenantId: string,
  id: string,
  history: readonly StoredScheduleEvent[],
  correlationId: string,
  now: Date,
): Omit<NewEvent, 'type' | 'data' | 'aggregateType'> & { aggregateType: typeof SCHEDULE_AGGREGATE_TYPE } {
  return {
    messageId: randomUUID(),
    tenantId,
    aggregateType: SCHEDULE_AGGREGATE_TYPE,
    aggregateId: id,
    timestamp: now.toISOString(),
    correlationId,
    causationId: history.at(-1)?.messageId ?? null,
    schemaVersion: SCHEMA_VERSION,
  };
}

async function appendAndProject(
  tx: DbOrTx,
  streamId: string,
  expectedVersion: number,
  events: readonly Unversioned<ScheduleEvent>[],
): Promise<StoredScheduleEvent[]> {
  const stored = await appendToStream<ScheduleEvent>(tx, streamId, expectedVersion, events);
  await applyScheduleEvents(tx, stored);
  return stored;
}

/** Serialises the creates of one tenant, so the count the limit reads is the count it leaves. */
async function lockTenantSchedules(tx: DbOrTx, tenantId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`punctual-schedules:${tenantId}`}))`);
}

/**
 * Records a new schedule. With an Idempotency-Key the same request again answers the schedule
 * made the first time (another request with that key → IdempotencyKeyReusedError), as a submit
 * does; the key space is the tenant's, shared with submits and replays.
 */
export async function createSchedule(deps: ScheduleDeps, cmd: CreateScheduleRequest): Promise<CreateScheduleResult> {
  const now = (deps.now ?? (() => new Date()))();
  const id = scheduleIdFor(cmd.tenantId, cmd.idempotencyKey);
  const streamId = streamIdFor(cmd.tenantId, id);
  const [body] = decideSchedule(
    {
      type: 'CreateSchedule',
      data: {
        spec: cmd.spec,
        run: sealRun(deps, cmd.run, streamId),
        overlap: cmd.overlap,
        paused: cmd.paused,
        idempotencyKey: cmd.idempotencyKey ?? null,
      },
    },
    undefined,
  );
  if (body?.type !== 'ScheduleCreated') throw new Error('a create decides ScheduleCreated');
  const event = { ...envelope(cmd.tenantId, id, [], cmd.correlationId, now), ...body };
  const key = cmd.idempotencyKey;
  const fingerprint = deps.keyring.mac(
    canonicalJson({ kind: 'schedule', spec: cmd.spec, run: cmd.run, overlap: cmd.overlap, paused: cmd.paused }),
  );
  const result = await deps.db.transaction(async (tx): Promise<CreateScheduleResult> => {
    if (key !== undefined) {
      const existing = await claimIdempotencyKey(tx, { tenantId: cmd.tenantId, key, id, fingerprint });
      if (existing !== undefined) {
        const state = foldSchedule(await readStream<ScheduleEvent>(tx, streamIdFor(cmd.tenantId, existing)));
        if (state === undefined) throw new IdempotencyKeyReusedError(key);
        if (state.status === 'Deleted') throw new ScheduleDeletedError(state.id);
        return { state, replayed: true };
      }
    }
    await lockTenantSchedules(tx, cmd.tenantId);
    if ((await countSchedules(tx, cmd.tenantId)) >= deps.schedulesPerTenant) {
      throw new ScheduleLimitError(deps.schedulesPerTenant);
    }
    const stored = await appendAndProject(tx, streamId, 0, [event]);
    return { state: foldSchedule(stored)!, replayed: false };
  });
  if (!result.replayed) {
    deps.notifier.poke();
    recordAppended(deps, [event as unknown as NewEvent]);
  }
  return result;
}

/**
 * A schedule's stream and its state; undefined when there is none (a service call's id shares
 * the stream key space, and is no schedule either).
 */
export async function readSchedule(
  db: DbOrTx,
  tenantId: string,
  id: string,
): Promise<{ history: StoredScheduleEvent[]; state: ScheduleState | undefined }> {
  const history = await readStream<ScheduleEvent>(db, streamIdFor(tenantId, id));
  if (history[0]?.aggregateType !== SCHEDULE_AGGREGATE_TYPE) return { history: [], state: undefined };
  return { history, state: foldSchedule(history) };
}

/** Reads, decides and appends one command; a lost race with another writer is decided again. */
export async function handleScheduleCommand(
  deps: Deps,
  tenantId: string,
  id: string,
  command: ScheduleCommand | ((state: ScheduleState) => ScheduleCommand),
  correlationId: string,
): Promise<ScheduleState> {
  const streamId = streamIdFor(tenantId, id);
  const now = (deps.now ?? (() => new Date()))();
  for (let round = 1; ; round++) {
    const { history, state } = await readSchedule(deps.db, tenantId, id);
    if (state === undefined) throw new ScheduleNotFoundError(`schedule ${id} not found`);
    const decided = typeof command === 'function' ? command(state) : command;
    const bodies = decideSchedule(decided, state);
    if (bodies.length === 0) return state;
    const events = bodies.map((b) => ({ ...envelope(tenantId, id, history, correlationId, now), ...b }));
    try {
      const stored = await deps.db.transaction((tx) => appendAndProject(tx, streamId, state.version, events));
      deps.notifier.poke();
      recordAppended(deps, events as unknown as NewEvent[]);
      return stored.reduce(evolveSchedule, state);
    } catch (err) {
      if (!(err instanceof ConcurrencyError) || round >= 10) throw err;
    }
  }
}

export const pauseSchedule = (deps: Deps, tenantId: string, id: string, correlationId: string) =>
  handleScheduleCommand(deps, tenantId, id, { type: 'PauseSchedule' }, correlationId);

export const resumeSchedule = (deps: Deps, tenantId: string, id: string, correlationId: string) =>
  handleScheduleCommand(deps, tenantId, id, { type: 'ResumeSchedule' }, correlationId);

export const deleteSchedule = (deps: Deps, tenantId: string, id: string, correlationId: string) =>
  handleScheduleCommand(deps, tenantId, id, { type: 'DeleteSchedule' }, correlationId);

/** What a PATCH changes: the spec as a whole (merged by the caller), and the run's fields given. */
export interface SchedulePatch {
  spec?: (current: ScheduleSpec) => ScheduleSpec;
  run?: Partial<RunInput>;
}

/**
 * A PATCH: the new spec and run template, decided on the current state (a request given anew is
 * sealed again; one left out keeps its sealed secrets). Takes effect from the next run.
 */
export async function updateSchedule(
  deps: Deps,
  tenantId: string,
  id: string,
  patch: SchedulePatch,
  correlationId: string,
): Promise<ScheduleState> {
  const streamId = streamIdFor(tenantId, id);
  return handleScheduleCommand(
    deps,
    tenantId,
    id,
    (state) => {
      const given = patch.run;
      let run: RunTemplate | undefined;
      if (given !== undefined && Object.keys(given).length > 0) {
        const { request, ...rest } = given;
        const sealed = request === undefined ? undefined : sealRun(deps, { ...state.run, ...rest, request }, streamId);
        run = {
          ...state.run,
          ...rest,
          ...(sealed === undefined ? {} : { request: sealed.request, secrets: sealed.secrets }),
        };
      }
      return {
        type: 'UpdateSchedule',
        data: {
          ...(patch.spec === undefined ? {} : { spec: patch.spec(state.spec) }),
          ...(run === undefined ? {} : { run }),
        },
      };
    },
    correlationId,
  );
}

export interface RunRequest {
  tenantId: string;
  scheduleId: string;
  /** The instant the run is for: the Temporal Schedule's action time, or now for a trigger. */
  scheduledAt: Date;
  /** A trigger runs a paused schedule too; a fired action of a paused schedule is dropped. */
  manual: boolean;
}

export type RunOutcome =
  | { created: true; serviceCallId: string; replayed: boolean }
  | { created: false; reason: 'NotFound' | 'Deleted' | 'Paused' };

/**
 * Submits one run of a schedule as an ordinary service call, through the submit command the API
 * uses, with the idempotency key `schedule:<id>:<instant>`: an action retried by Temporal (a
 * worker died mid-activity) answers the call made the first time. The stream is the truth: a
 * schedule deleted or paused before its Temporal Schedule heard of it runs no more.
 */
export async function submitScheduleRun(deps: Deps, req: RunRequest): Promise<RunOutcome> {
  const { history, state } = await readSchedule(deps.db, req.tenantId, req.scheduleId);
  if (state === undefined) return { created: false, reason: 'NotFound' };
  if (state.status === 'Deleted') return { created: false, reason: 'Deleted' };
  if (state.status === 'Paused' && !req.manual) return { created: false, reason: 'Paused' };
  const streamId = streamIdFor(req.tenantId, req.scheduleId);
  const run = state.run;
  const request = requestFromSubmitted(run, streamId, deps.keyring);
  const idempotencyKey = runIdempotencyKey(req.scheduleId, req.scheduledAt);
  const scheduledAt = req.scheduledAt.toISOString();
  try {
    const result = await submitServiceCall(deps, {
      tenantId: req.tenantId,
      idempotencyKey,
      request,
      dueAt: scheduledAt,
      tags: run.tags,
      retry: run.retry,
      timeoutMs: run.timeoutMs,
      ...(run.callback === null ? {} : { callback: run.callback }),
      ...(run.flowKeys === undefined || run.flowKeys.length === 0 ? {} : { flowKeys: run.flowKeys }),
      schedule: { id: req.scheduleId, scheduledAt },
      correlationId: history[0]?.correlationId ?? randomUUID(),
    });
    return { created: true, serviceCallId: result.id, replayed: result.replayed };
  } catch (err) {
    // The run was made already, before a PATCH changed what a run submits: that one stands.
    if (err instanceof IdempotencyKeyReusedError) {
      return { created: true, serviceCallId: serviceCallIdFor(req.tenantId, idempotencyKey), replayed: true };
    }
    throw err;
  }
}
