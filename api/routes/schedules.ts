import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { NotFoundError } from '../../core/commands';
import { temporalScheduleIdFor, UUID_PATTERN } from '../../core/ids';
import { statusAt, type ScheduleSpec, type ScheduleState, type ScheduleStatus } from '../../core/schedule';
import {
  createSchedule,
  deleteSchedule,
  pauseSchedule,
  resumeSchedule,
  submitScheduleRun,
  updateSchedule,
  type RunInput,
} from '../../core/schedule-commands';
import { cronProblem, isTimeZone } from '../../core/schedule-spec';
import { syncTemporalSchedule, type ScheduleTarget } from '../../projections/schedule-syncer';
import { findSchedule, listSchedules } from '../../projections/schedules';
import { findScheduleRuns } from '../../projections/service-calls';
import { shownRequest } from '../../core/view';
import type { AppDeps } from '../app';
import { BadRequestError } from '../problem';
import {
  createScheduleRouteSchema,
  deleteScheduleRouteSchema,
  getScheduleRouteSchema,
  listSchedulesRouteSchema,
  patchScheduleRouteSchema,
  pauseScheduleRouteSchema,
  resumeScheduleRouteSchema,
  triggerScheduleRouteSchema,
  type ScheduleCreateBody,
  type SchedulePatchBody,
} from '../schedule-schemas';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, type TypeProvider } from '../schemas';
import { idempotencyKeyOf, submitCommandOf } from './service-calls';

/**
 * Schedules (ADR-0017): recurring calls, each run an ordinary service call. Handlers validate,
 * record through core/schedule-commands.ts, and then make the Temporal Schedule match right away
 * (a fast path: the relay's schedule syncer is what guarantees it), so `nextRunAts` is Temporal's
 * own answer as soon as the request returns.
 */

export interface ScheduleApiDeps extends AppDeps {
  schedulesPerTenant: number;
  /** Absent: no fast path and no nextRunAts (tests of the API alone). */
  scheduleTarget?: ScheduleTarget;
}

const OFFSET_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;
/** How long a request waits for Temporal (fast path, describe) before answering without it. */
const TEMPORAL_WAIT_MS = 3_000;

function instantOf(field: string, raw: string | null | undefined): string | null {
  if (raw === undefined || raw === null) return null;
  const at = Date.parse(raw);
  if (!OFFSET_DATE_TIME.test(raw) || Number.isNaN(at)) {
    throw new BadRequestError(field, 'must be an ISO-8601 date-time with an offset, e.g. 2030-01-01T12:00:00Z');
  }
  return new Date(at).toISOString();
}

/** The spec's own rules, beyond its schema: each problem names its field. */
function checkSpec(spec: ScheduleSpec): ScheduleSpec {
  if ((spec.cron === null) === (spec.intervalSeconds === null)) {
    throw new BadRequestError(
      spec.cron === null ? 'cron' : 'intervalSeconds',
      'give exactly one of cron and intervalSeconds',
    );
  }
  if (spec.cron !== null) {
    const problem = cronProblem(spec.cron);
    if (problem !== undefined) throw new BadRequestError('cron', problem);
  }
  if (!isTimeZone(spec.timezone)) throw new BadRequestError('timezone', `"${spec.timezone}" is not an IANA time zone`);
  if (spec.startAt !== null && spec.endAt !== null && spec.endAt <= spec.startAt) {
    throw new BadRequestError('endAt', 'must be after startAt');
  }
  return spec;
}

/** The run fields judged as a submit judges them (400s and 422s name the same fields). */
function runOf(
  deps: AppDeps,
  body: Pick<ScheduleCreateBody, 'request' | 'retry' | 'timeoutMs' | 'tags' | 'callback' | 'flowKeys'>,
  ctx: { tenantId: string; correlationId: string },
): RunInput {
  const cmd = submitCommandOf(deps, body, { ...ctx, idempotencyKey: undefined });
  return {
    request: cmd.request,
    tags: cmd.tags,
    retry: cmd.retry,
    timeoutMs: cmd.timeoutMs,
    callback: cmd.callback ?? null,
    // None given is no key at all: the template (and the create's fingerprint) as before flow keys.
    ...(cmd.flowKeys === undefined ? {} : { flowKeys: cmd.flowKeys }),
  };
}

async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from Temporal within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function scheduleRoutes(instance: FastifyInstance, deps: ScheduleApiDeps): Promise<void> {
  const fastify = instance.withTypeProvider<TypeProvider>();
  const target = deps.scheduleTarget;

  /** The fast path: failures are logged only, the relay applies the change in any case. */
  async function syncNow(state: ScheduleState, log: FastifyBaseLogger): Promise<void> {
    if (target === undefined) return;
    try {
      await within(TEMPORAL_WAIT_MS, syncTemporalSchedule(target, state));
    } catch (err) {
      log.warn(
        { err, tenantId: state.tenantId, scheduleId: state.id },
        'temporal schedule not synced yet (the relay will)',
      );
    }
  }

  async function nextRunAts(state: ScheduleState, status: ScheduleStatus): Promise<string[]> {
    if (target === undefined || status !== 'Active') return [];
    try {
      const described = await within(
        TEMPORAL_WAIT_MS,
        target.client.schedule.getHandle(temporalScheduleIdFor(state.tenantId, state.id)).describe(),
      );
      return described.info.nextActionTimes.slice(0, 5).map((d) => d.toISOString());
    } catch {
      return [];
    }
  }

  async function view(state: ScheduleState) {
    const now = new Date();
    const status = statusAt(state, now);
    const [next, runs] = await Promise.all([
      nextRunAts(state, status),
      findScheduleRuns(deps.db, state.tenantId, state.id, 5),
    ]);
    return {
      id: state.id,
      status,
      spec: state.spec,
      overlap: state.overlap,
      request: shownRequest(state.run.request),
      tags: state.run.tags,
      retry: state.run.retry,
      timeoutMs: state.run.timeoutMs,
      callback: state.run.callback,
      flowKeys: state.run.flowKeys ?? [],
      nextRunAts: next,
      recentRuns: runs,
      createdAt: state.createdAt,
      updatedAt: state.updatedAt,
    };
  }

  fastify.post(
    '/v1/schedules',
    { schema: createScheduleRouteSchema, config: { opaqueBody: ['request.body'] } },
    async (request, reply) => {
      const body = request.body;
      const spec = checkSpec({
        cron: body.cron ?? null,
        intervalSeconds: body.intervalSeconds ?? null,
        timezone: body.timezone ?? 'UTC',
        startAt: instantOf('startAt', body.startAt),
        endAt: instantOf('endAt', body.endAt),
        jitterSeconds: body.jitterSeconds ?? 0,
      });
      const ctx = { tenantId: request.tenantId, correlationId: request.correlationId };
      const { state, replayed } = await createSchedule(deps, {
        ...ctx,
        idempotencyKey: idempotencyKeyOf(request.headers['idempotency-key']),
        spec,
        run: runOf(deps, body, ctx),
        overlap: body.overlap ?? 'AllowAll',
        paused: body.paused ?? false,
      });
      request.log.info({ tenantId: state.tenantId, scheduleId: state.id, replayed }, 'schedule created');
      await syncNow(state, request.log);
      void reply.header('location', `/v1/schedules/${state.id}`);
      const answer = await view(state);
      if (replayed) return reply.code(200).header('idempotent-replayed', 'true').send(answer);
      return reply.code(201).send(answer);
    },
  );

  fastify.get('/v1/schedules', { schema: listSchedulesRouteSchema }, async (request) => {
    const q = request.query;
    const limit = q.limit === undefined ? LIST_LIMIT_DEFAULT : Number(q.limit);
    if (!(limit >= 1 && limit <= LIST_LIMIT_MAX)) {
      throw new BadRequestError('limit', `must be an integer from 1 to ${LIST_LIMIT_MAX}`);
    }
    const statuses = q.status === undefined ? [] : [q.status];
    const tags = q.tag === undefined ? [] : Array.isArray(q.tag) ? q.tag : [q.tag];
    const after = q.cursor === undefined ? undefined : decodeScheduleCursor(q.cursor);
    const page = await listSchedules(
      deps.db,
      request.tenantId,
      { statuses, tags, limit, ...(after === undefined ? {} : { after }) },
      new Date(),
    );
    return {
      items: await Promise.all(page.items.map(view)),
      nextCursor:
        page.next === null
          ? null
          : Buffer.from(JSON.stringify({ t: page.next.createdAt, i: page.next.id })).toString('base64url'),
    };
  });

  fastify.get('/v1/schedules/:id', { schema: getScheduleRouteSchema }, async (request) => {
    const state = await findSchedule(deps.db, request.tenantId, request.params.id);
    if (state === undefined) throw new NotFoundError(`schedule ${request.params.id} not found`);
    return view(state);
  });

  fastify.patch(
    '/v1/schedules/:id',
    { schema: patchScheduleRouteSchema, config: { opaqueBody: ['request.body'] } },
    async (request) => {
      const body: SchedulePatchBody = request.body;
      if (body.cron !== undefined && body.intervalSeconds !== undefined) {
        throw new BadRequestError('intervalSeconds', 'give exactly one of cron and intervalSeconds');
      }
      const ctx = { tenantId: request.tenantId, correlationId: request.correlationId };
      const specGiven = ['cron', 'intervalSeconds', 'timezone', 'startAt', 'endAt', 'jitterSeconds'].some(
        (k) => k in body,
      );
      const startAt = body.startAt === undefined ? undefined : instantOf('startAt', body.startAt);
      const endAt = body.endAt === undefined ? undefined : instantOf('endAt', body.endAt);
      // Checked before anything is recorded: the run fields as a submit's, the spec once merged.
      const run: Partial<RunInput> = {};
      if (body.request !== undefined) {
        Object.assign(
          run,
          runOf(deps, { request: body.request, ...(body.callback === null ? {} : { callback: body.callback }) }, ctx),
        );
        delete run.tags;
        delete run.retry;
        delete run.timeoutMs;
        if (body.callback === undefined) delete run.callback;
      }
      if (
        body.retry !== undefined ||
        body.timeoutMs !== undefined ||
        body.tags !== undefined ||
        (body.callback !== undefined && body.request === undefined)
      ) {
        const probe = runOf(
          deps,
          {
            request: { method: 'GET', url: 'https://example.com/' },
            ...(body.retry === undefined ? {} : { retry: body.retry }),
            ...(body.timeoutMs === undefined ? {} : { timeoutMs: body.timeoutMs }),
            ...(body.tags === undefined ? {} : { tags: body.tags }),
            ...(body.callback == null ? {} : { callback: body.callback }),
          },
          ctx,
        );
        if (body.retry !== undefined) run.retry = probe.retry;
        if (body.timeoutMs !== undefined) run.timeoutMs = probe.timeoutMs;
        if (body.tags !== undefined) run.tags = probe.tags;
        if (body.callback !== undefined) run.callback = body.callback === null ? null : probe.callback;
      }
      // The schema judged them as a submit's; `[]` clears them.
      if (body.flowKeys !== undefined) run.flowKeys = [...body.flowKeys];
      const state = await updateSchedule(
        deps,
        request.tenantId,
        request.params.id,
        {
          ...(specGiven
            ? {
                spec: (current: ScheduleSpec) =>
                  checkSpec({
                    cron: body.intervalSeconds !== undefined ? null : (body.cron ?? current.cron),
                    intervalSeconds: body.cron !== undefined ? null : (body.intervalSeconds ?? current.intervalSeconds),
                    timezone: body.timezone ?? current.timezone,
                    startAt: startAt === undefined ? current.startAt : startAt,
                    endAt: endAt === undefined ? current.endAt : endAt,
                    jitterSeconds: body.jitterSeconds ?? current.jitterSeconds,
                  }),
              }
            : {}),
          run,
        },
        request.correlationId,
      );
      request.log.info({ tenantId: state.tenantId, scheduleId: state.id, version: state.version }, 'schedule updated');
      await syncNow(state, request.log);
      return view(state);
    },
  );

  fastify.post('/v1/schedules/:id/pause', { schema: pauseScheduleRouteSchema }, async (request) => {
    const state = await pauseSchedule(deps, request.tenantId, request.params.id, request.correlationId);
    request.log.info({ tenantId: state.tenantId, scheduleId: state.id }, 'schedule paused');
    await syncNow(state, request.log);
    return view(state);
  });

  fastify.post('/v1/schedules/:id/resume', { schema: resumeScheduleRouteSchema }, async (request) => {
    const state = await resumeSchedule(deps, request.tenantId, request.params.id, request.correlationId);
    request.log.info({ tenantId: state.tenantId, scheduleId: state.id }, 'schedule resumed');
    await syncNow(state, request.log);
    return view(state);
  });

  fastify.post('/v1/schedules/:id/trigger', { schema: triggerScheduleRouteSchema }, async (request, reply) => {
    const scheduledAt = new Date();
    const outcome = await submitScheduleRun(deps, {
      tenantId: request.tenantId,
      scheduleId: request.params.id,
      scheduledAt,
      manual: true,
    });
    if (!outcome.created) throw new NotFoundError(`schedule ${request.params.id} not found`);
    request.log.info(
      { tenantId: request.tenantId, scheduleId: request.params.id, serviceCallId: outcome.serviceCallId },
      'schedule triggered',
    );
    void reply.header('location', `/v1/service-calls/${outcome.serviceCallId}`);
    return reply.code(202).send({
      scheduleId: request.params.id,
      serviceCallId: outcome.serviceCallId,
      scheduledAt: scheduledAt.toISOString(),
    });
  });

  fastify.delete('/v1/schedules/:id', { schema: deleteScheduleRouteSchema }, async (request, reply) => {
    const state = await deleteSchedule(deps, request.tenantId, request.params.id, request.correlationId);
    request.log.info({ tenantId: state.tenantId, scheduleId: state.id }, 'schedule deleted');
    await syncNow(state, request.log);
    return reply.code(204).send(null);
  });
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function decodeScheduleCursor(raw: string): { createdAt: string; id: string } {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { t?: unknown; i?: unknown };
    if (typeof c.t === 'string' && CURSOR_TIME.test(c.t) && typeof c.i === 'string' && UUID_PATTERN.test(c.i)) {
      return { createdAt: c.t, id: c.i };
    }
  } catch {
    // Falls through to the 400.
  }
  throw new BadRequestError('cursor', 'is not a cursor this API returned (use nextCursor as given)');
}
