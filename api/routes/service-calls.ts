import type { FastifyInstance } from 'fastify';
import { cancelServiceCall, NotFoundError, submitServiceCall, type SubmitCommand } from '../../core/commands';
import { urlShapeProblem } from '../../core/egress-policy';
import { DEFAULT_RETRY } from '../../core/http-policy';
import type { AppDeps } from '../app';
import type { CallbackSpec, HttpRequestSpec, RequestBody, RetryPolicy } from '../../core/events';
import { readStream } from '../../core/event-store';
import { streamIdFor, workflowIdFor } from '../../core/ids';
import { fold } from '../../core/service-call';
import { findReplays } from '../../projections/service-calls';
import { toView } from '../../core/view';
import { waitingFor } from '../../core/flow-limits';
import { BadRequestError, UnprocessableError } from '../problem';
import {
  cancelRouteSchema,
  DEFAULT_CALLBACK_ON,
  getRouteSchema,
  submitRouteSchema,
  type SubmitBody,
  type TypeProvider,
} from '../schemas';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Control characters other than tab would let a value split or smuggle a header.
// eslint-disable-next-line no-control-regex
const HEADER_VALUE_FORBIDDEN = /[\u0000-\u0008\u000a-\u001f\u007f]/;
/** A header value goes on the wire as Latin-1 bytes: anything beyond cannot be sent at all. */
const HEADER_VALUE_NOT_LATIN1 = /[^\t\x20-\xff]/;
/** Headers the HTTP client owns (framing, connection) or that would change where a call goes. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'expect',
  'te',
  'trailer',
  'proxy-connection',
]);
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;
/** The furthest a call can be scheduled ahead. */
const MAX_DUE_AHEAD_MS = 366 * 24 * 3600 * 1000;
const OFFSET_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;

function validateUrl(raw: string, field = 'request.url'): string {
  const problem = urlShapeProblem(raw);
  if (problem !== undefined) throw new BadRequestError(field, problem);
  return raw;
}

/**
 * A callback as submitted: its URL judged as `request.url` is (shape → 400, egress guard → 422,
 * both naming `callback.url`); `on` defaults to the call's own outcomes.
 */
export function callbackOf(deps: AppDeps, input: SubmitBody['callback']): CallbackSpec | undefined {
  if (input === undefined) return undefined;
  const url = validateUrl(input.url, 'callback.url');
  const refused = deps.egress.refuseUrl(new URL(url));
  if (refused !== undefined) throw new UnprocessableError('callback.url', refused);
  return { url, on: [...(input.on ?? DEFAULT_CALLBACK_ON)] };
}

function validateHeaders(headers: Record<string, string>): Record<string, string> {
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    const field = `request.headers.${name}`;
    if (!HEADER_NAME.test(name)) throw new BadRequestError(field, 'is not a valid header name');
    const lower = name.toLowerCase();
    if (seen.has(lower)) throw new BadRequestError(field, 'is given twice (header names are case-insensitive)');
    seen.add(lower);
    if (RESERVED_HEADERS.has(lower)) throw new BadRequestError(field, 'is set by Punctual and cannot be given');
    if (HEADER_VALUE_FORBIDDEN.test(value)) throw new BadRequestError(field, 'must not contain control characters');
    if (HEADER_VALUE_NOT_LATIN1.test(value)) {
      throw new BadRequestError(field, 'must be Latin-1 text (HTTP cannot carry other characters in a header)');
    }
  }
  return headers;
}

export function validateDueAt(raw: string | undefined, now: number): string | undefined {
  if (raw === undefined) return undefined;
  const at = Date.parse(raw);
  if (!OFFSET_DATE_TIME.test(raw) || Number.isNaN(at)) {
    throw new BadRequestError('dueAt', 'must be an ISO-8601 date-time with an offset, e.g. 2030-01-01T12:00:00Z');
  }
  if (at - now > MAX_DUE_AHEAD_MS) throw new BadRequestError('dueAt', 'must be at most 366 days ahead');
  return new Date(at).toISOString();
}

/** An Idempotency-Key (the header, or a batch item's `idempotencyKey`), checked: once, 1–255 printable ASCII characters. */
export function idempotencyKeyOf(given: string | string[] | undefined, field = 'Idempotency-Key'): string | undefined {
  if (Array.isArray(given)) throw new BadRequestError(field, 'must be given once');
  if (given !== undefined && !IDEMPOTENCY_KEY.test(given)) {
    throw new BadRequestError(field, 'must be 1–255 printable ASCII characters');
  }
  return given;
}

function toRequestSpec(input: SubmitBody['request']): HttpRequestSpec {
  let body: RequestBody | null = null;
  if (input.body !== undefined) {
    if (input.method === 'HEAD') throw new BadRequestError('request.body', 'a HEAD request cannot carry a body');
    body = typeof input.body === 'string' ? { kind: 'text', text: input.body } : { kind: 'json', json: input.body };
  }
  return {
    method: input.method,
    url: validateUrl(input.url),
    headers: validateHeaders(input.headers ?? {}),
    body,
  };
}

function retryPolicyOf(input: SubmitBody['retry']): RetryPolicy {
  const policy = { ...DEFAULT_RETRY, ...input };
  if (policy.maxIntervalMs < policy.initialIntervalMs) {
    throw new BadRequestError('retry.maxIntervalMs', 'must not be smaller than retry.initialIntervalMs');
  }
  return policy;
}

/**
 * A submit body judged as `POST /v1/service-calls` judges it, after its schema: the command to
 * record, or the 400 (BadRequestError) or 422 (UnprocessableError) it answers with. The batch
 * judges each of its items with it.
 */
export function submitCommandOf(
  deps: AppDeps,
  body: SubmitBody,
  ctx: { tenantId: string; idempotencyKey: string | undefined; correlationId: string },
): SubmitCommand {
  const spec = toRequestSpec(body.request);
  const refused = deps.egress.refuseUrl(new URL(spec.url));
  if (refused !== undefined) throw new UnprocessableError('request.url', refused);
  return {
    tenantId: ctx.tenantId,
    idempotencyKey: ctx.idempotencyKey,
    request: spec,
    dueAt: validateDueAt(body.dueAt, Date.now()),
    tags: body.tags ?? [],
    retry: retryPolicyOf(body.retry),
    timeoutMs: body.timeoutMs ?? deps.defaultTimeoutMs,
    callback: callbackOf(deps, body.callback),
    // None given and none at all are the same request, fingerprinted as before flow keys existed.
    flowKeys: body.flowKeys === undefined || body.flowKeys.length === 0 ? undefined : [...body.flowKeys],
    correlationId: ctx.correlationId,
  };
}

export async function serviceCallRoutes(instance: FastifyInstance, deps: AppDeps): Promise<void> {
  const fastify = instance.withTypeProvider<TypeProvider>();
  fastify.post(
    '/v1/service-calls',
    // The payload is sealed, never stored as text, and sent as submitted: it may hold any text.
    { schema: submitRouteSchema, config: { opaqueBody: ['request.body'] } },
    async (request, reply) => {
      const result = await submitServiceCall(
        deps,
        submitCommandOf(deps, request.body, {
          tenantId: request.tenantId,
          idempotencyKey: idempotencyKeyOf(request.headers['idempotency-key']),
          correlationId: request.correlationId,
        }),
      );
      request.log.info(
        { tenantId: request.tenantId, serviceCallId: result.id, replayed: result.replayed },
        'service call submitted',
      );
      const { replayed, ...body } = result;
      void reply.header('location', `/v1/service-calls/${result.id}`);
      if (replayed) return reply.code(200).header('idempotent-replayed', 'true').send(body);
      return reply.code(202).send(body);
    },
  );

  fastify.get('/v1/service-calls/:id', { schema: getRouteSchema }, async (request) => {
    const { tenantId } = request;
    const { id } = request.params;
    // From the stream, not the read model: the read model lags the event store by a moment, and
    // a detail read right after a submit, cancel or reschedule must show what was acknowledged.
    const state = fold(await readStream(deps.db, streamIdFor(tenantId, id)));
    if (state === undefined) throw new NotFoundError(`service call ${id} not found`);
    const view = {
      ...toView(state),
      replays: await findReplays(deps.db, tenantId, id),
      // Only a call not yet ended can be held back by a flow limit. One that reserved its slot
      // ahead (revision 6) stays Scheduled past its dueAt until the slot, and waits from dueAt on
      // (waitingFor counts nothing before).
      waitingFor:
        state.status === 'Running' || state.status === 'Scheduled' ? await waitingFor(deps.db, tenantId, id) : [],
    };
    if (deps.temporalUi === undefined) return view;
    const { url, namespace } = deps.temporalUi;
    const workflowId = encodeURIComponent(workflowIdFor(tenantId, id));
    return {
      ...view,
      links: { temporalUi: `${url}/namespaces/${encodeURIComponent(namespace)}/workflows/${workflowId}` },
    };
  });

  fastify.post('/v1/service-calls/:id/cancel', { schema: cancelRouteSchema }, async (request, reply) => {
    const state = await cancelServiceCall(deps, request.tenantId, request.params.id, request.correlationId);
    request.log.info({ tenantId: request.tenantId, serviceCallId: state.id }, 'service call cancelled');
    return reply.code(202).send(toView(state));
  });
}
