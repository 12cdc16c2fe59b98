import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { IdempotencyKeyReusedError, NotFoundError, StateConflictError } from '../core/commands';
import { isConnectionError } from '../core/db';
import { ScheduleDeletedError, ScheduleLimitError } from '../core/schedule';

/** RFC 9457 problem details: every error the API returns has this shape. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  /** For 400s: each offending field, as a dotted path into the request. */
  errors?: { field: string; message: string }[];
}

export class BadRequestError extends Error {
  override name = 'BadRequestError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Well-formed but refused input (e.g. a destination the egress policy forbids): 422. */
export class UnprocessableError extends Error {
  override name = 'UnprocessableError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
}

export class TooManyRequestsError extends Error {
  override name = 'TooManyRequestsError';
  constructor(readonly retryAfterSeconds: number) {
    super(`rate limit exceeded; retry in ${retryAfterSeconds} s`);
  }
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type('application/problem+json').send(problem);
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problem(status: number, detail?: string, extra: Partial<Problem> = {}): Problem {
  return {
    type: 'about:blank',
    title: TITLES[status] ?? 'Error',
    status,
    ...(detail === undefined ? {} : { detail }),
    ...extra,
  };
}

interface AjvIssue {
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

function fieldOf(context: string | undefined, issue: AjvIssue): string {
  const segments = issue.instancePath.split('/').filter((s) => s !== '');
  const extra = issue.params.missingProperty ?? issue.params.additionalProperty ?? issue.params.propertyName;
  if (typeof extra === 'string') segments.push(extra);
  const path = segments.join('.');
  if (context === 'body') return path === '' ? 'body' : path;
  return path === '' ? (context ?? 'request') : `${context === 'querystring' ? 'query' : (context ?? '')}.${path}`;
}

function messageOf(issue: AjvIssue): string {
  if (issue.params.additionalProperty !== undefined) return 'is not an allowed property';
  if (issue.params.missingProperty !== undefined) return 'is required';
  return issue.message ?? 'is invalid';
}

/** A 400 for schema validation issues (Ajv's), each naming its field within `context`. */
export function validationProblem(issues: readonly object[], context: string | undefined): Problem {
  const errors = issues.map((issue) => ({
    field: fieldOf(context, issue as AjvIssue),
    message: messageOf(issue as AjvIssue),
  }));
  return problem(400, errors.map((e) => `${e.field} ${e.message}`).join('; '), { errors });
}

/**
 * The problem of an error that judges the input (400 naming the field, 422), or undefined for
 * any other error. The batch answers its items with these; errorHandler the requests.
 */
export function inputProblem(error: unknown): Problem | undefined {
  if (error instanceof BadRequestError) {
    return problem(400, error.message, { errors: [{ field: error.field, message: error.message }] });
  }
  if (error instanceof UnprocessableError) {
    return problem(422, error.message, { errors: [{ field: error.field, message: error.message }] });
  }
  if (error instanceof IdempotencyKeyReusedError) return problem(422, error.message);
  return undefined;
}

/** Maps every error to problem+json; 5xx never carry internals. */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.validation) return sendProblem(reply, validationProblem(error.validation, error.validationContext));
  const judged = inputProblem(error);
  if (judged !== undefined) return sendProblem(reply, judged);
  if (error instanceof UnauthorizedError) {
    void reply.header('www-authenticate', 'Bearer');
    return sendProblem(reply, problem(401, error.message));
  }
  if (error instanceof TooManyRequestsError) {
    void reply.header('retry-after', String(error.retryAfterSeconds));
    return sendProblem(reply, problem(429, error.message));
  }
  if (error instanceof NotFoundError) return sendProblem(reply, problem(404, error.message));
  if (
    error instanceof StateConflictError ||
    error instanceof ScheduleLimitError ||
    error instanceof ScheduleDeletedError
  ) {
    return sendProblem(reply, problem(409, error.message));
  }
  if (isConnectionError(error)) {
    request.log.warn({ err: error }, 'database unavailable');
    void reply.header('retry-after', '1');
    return sendProblem(reply, problem(503, 'the database is unavailable; retry shortly'));
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const limit = request.routeOptions.bodyLimit ?? 1024 * 1024;
    return sendProblem(reply, problem(413, `the request body is larger than ${limit / (1024 * 1024)} MiB`));
  }
  const status = error.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return sendProblem(reply, problem(status, error.message));
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, problem(500, 'an internal error occurred'));
}
