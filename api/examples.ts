/**
 * Example values for the OpenAPI document, used by the route schemas (`examples` beside the
 * schema they illustrate) in api/schemas.ts and the route files. Every example is validated
 * against its schema by test/api/openapi.int.test.ts, and Schemathesis sends them.
 */

export const CALL_ID = '3f6c8b52-6a1e-4b8e-9d4f-2a7c1e5b9d10';
export const SCHEDULE_ID = '8d2f4a61-0c3b-4e7a-b5d9-6e1f2a3c4b50';
const CREATED_AT = '2029-12-31T18:00:00.000Z';
const DUE_AT = '2030-01-01T09:00:00.000Z';

/**
 * A submit body. Any `dueAt` in a request example is replaced by an instant a day ahead when the
 * document is made (api/openapi.ts): a call is due at most 366 days ahead.
 */
export const submitExample = {
  request: {
    method: 'POST',
    url: 'https://api.example.com/invoices/42/remind',
    headers: { 'content-type': 'application/json', authorization: 'Bearer s3cr3t' },
    body: { invoiceId: 42, channel: 'email' },
  },
  dueAt: '2030-01-01T10:00:00+01:00',
  tags: ['billing', 'reminders'],
  retry: { maxAttempts: 3 },
  timeoutMs: 5000,
  callback: { url: 'https://app.example.com/hooks/punctual', on: ['Succeeded', 'Failed'] },
} as const;

export const batchExample = {
  items: [
    { ...submitExample, idempotencyKey: 'invoice-42-reminder' },
    { request: { method: 'GET', url: 'http://localhost:8080/admin' } },
  ],
} as const;

export const acceptedExample = { id: CALL_ID, status: 'Scheduled', dueAt: DUE_AT, createdAt: CREATED_AT } as const;

export const batchAnswerExample = {
  items: [
    { status: 202, id: CALL_ID, dueAt: DUE_AT, createdAt: CREATED_AT },
    {
      status: 422,
      error: {
        type: 'about:blank',
        title: 'Unprocessable Content',
        status: 422,
        detail: 'request.url: localhost is a loopback name',
        errors: [{ field: 'request.url', message: 'request.url: localhost is a loopback name' }],
      },
    },
  ],
} as const;

export const replayAnswerExample = { ...acceptedExample, replayOf: CALL_ID } as const;

/** What the example call's one attempt got back: in its attempt record and as its result. */
const answerExample = {
  statusCode: 202,
  latencyMs: 171,
  error: null,
  responseSnippet: '{"queued":true}',
  snippetEncoding: 'utf8',
  truncated: false,
  responseHeaders: { 'content-type': 'application/json' },
} as const;

const summaryExample = {
  id: CALL_ID,
  status: 'Succeeded',
  request: {
    method: 'POST',
    url: 'https://api.example.com/invoices/42/remind',
    headers: { 'content-type': 'application/json', authorization: '[REDACTED]' },
  },
  dueAt: DUE_AT,
  tags: ['billing', 'reminders'],
  retry: { maxAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 },
  timeoutMs: 5000,
  nextAttemptAt: null,
  createdAt: CREATED_AT,
  updatedAt: '2030-01-01T09:00:00.182Z',
  result: { outcome: 'Succeeded', ...answerExample },
  callback: {
    url: 'https://app.example.com/hooks/punctual',
    on: ['Succeeded', 'Failed'],
    status: 'Delivered',
    attempts: [{ attempt: 1, at: '2030-01-01T09:00:00.201Z', statusCode: 204, latencyMs: 38, error: null }],
  },
} as const;

export const detailExample = {
  ...summaryExample,
  attempts: [
    { attempt: 1, startedAt: '2030-01-01T09:00:00.004Z', finishedAt: '2030-01-01T09:00:00.175Z', ...answerExample },
  ],
} as const;

export const cancelledExample = {
  ...detailExample,
  status: 'Cancelled',
  updatedAt: '2029-12-31T20:15:00.000Z',
  attempts: [],
  result: null,
  callback: {
    url: 'https://app.example.com/hooks/punctual',
    on: ['Succeeded', 'Failed'],
    status: 'NotRequired',
    attempts: [],
  },
} as const;

export const rescheduledExample = {
  ...cancelledExample,
  status: 'Scheduled',
  dueAt: '2030-01-01T08:00:00.000Z',
  callback: { ...cancelledExample.callback, status: 'Pending' },
} as const;

export const pageExample = {
  items: [summaryExample],
  nextCursor:
    'eyJ2IjoxLCJ0IjoiMjAyOS0xMi0zMVQxODowMDowMC4wMDAwMDBaIiwiaSI6IjNmNmM4YjUyLTZhMWUtNGI4ZS05ZDRmLTJhN2MxZTViOWQxMCIsImYiOiJRbVZ5aXlfR2g2Q2cifQ',
} as const;

export const bulkAnswerExample = { matched: 1, affected: 1, ids: [CALL_ID] } as const;

/** A 400 naming its field, as the API answers it. */
export function badRequestExample(field: string, message: string) {
  const detail = `${field}: ${message}`;
  return { type: 'about:blank', title: 'Bad Request', status: 400, detail, errors: [{ field, message: detail }] };
}

/** The problem example of each status, for operations that give none of their own. */
export const PROBLEM_EXAMPLES: Record<string, Record<string, unknown>> = {
  '400': badRequestExample('request.url', 'must use http or https'),
  '401': { type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'unknown or revoked API key' },
  '404': { type: 'about:blank', title: 'Not Found', status: 404, detail: `service call ${CALL_ID} not found` },
  '409': {
    type: 'about:blank',
    title: 'Conflict',
    status: 409,
    detail: 'the call is Running and can no longer be cancelled',
  },
  '413': {
    type: 'about:blank',
    title: 'Payload Too Large',
    status: 413,
    detail: 'the request body is larger than 1 MiB',
  },
  '415': { type: 'about:blank', title: 'Unsupported Media Type', status: 415, detail: 'send application/json' },
  '422': {
    type: 'about:blank',
    title: 'Unprocessable Content',
    status: 422,
    detail: 'this Idempotency-Key was already used with a different request',
  },
  '429': { type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'rate limit exceeded; retry in 1 s' },
  '503': {
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: 'the database is unavailable; retry shortly',
  },
};

const SCHEDULE_CREATED_AT = '2029-12-01T08:00:00.000Z';

/** A schedule body: a reminder every weekday at 09:00 in New York. */
export const scheduleCreateExample = {
  cron: '0 9 * * 1-5',
  timezone: 'America/New_York',
  request: {
    method: 'POST',
    url: 'https://api.example.com/reports/daily',
    headers: { 'content-type': 'application/json', authorization: 'Bearer s3cr3t' },
    body: { report: 'daily' },
  },
  tags: ['reports'],
  retry: { maxAttempts: 3 },
  flowKeys: ['customer:42'],
  overlap: 'AllowAll',
} as const;

export const scheduleExample = {
  id: SCHEDULE_ID,
  status: 'Active',
  spec: {
    cron: '0 9 * * 1-5',
    intervalSeconds: null,
    timezone: 'America/New_York',
    startAt: null,
    endAt: null,
    jitterSeconds: 0,
  },
  overlap: 'AllowAll',
  request: {
    method: 'POST',
    url: 'https://api.example.com/reports/daily',
    headers: { 'content-type': 'application/json', authorization: '[REDACTED]' },
  },
  tags: ['reports'],
  retry: { maxAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 },
  timeoutMs: 10000,
  callback: null,
  flowKeys: ['customer:42'],
  nextRunAts: [
    '2029-12-03T14:00:00.000Z',
    '2029-12-04T14:00:00.000Z',
    '2029-12-05T14:00:00.000Z',
    '2029-12-06T14:00:00.000Z',
    '2029-12-07T14:00:00.000Z',
  ],
  recentRuns: [{ scheduledAt: '2029-11-30T14:00:00.000Z', serviceCallId: CALL_ID }],
  createdAt: SCHEDULE_CREATED_AT,
  updatedAt: SCHEDULE_CREATED_AT,
} as const;

export const schedulePageExample = { items: [scheduleExample], nextCursor: null } as const;

export const triggerAnswerExample = {
  scheduleId: SCHEDULE_ID,
  serviceCallId: CALL_ID,
  scheduledAt: '2029-12-02T10:15:00.000Z',
} as const;

export const FLOW_KEY_EXAMPLE = 'customer:42';

export const flowLimitExample = {
  key: FLOW_KEY_EXAMPLE,
  ratePerSecond: 10,
  burst: 10,
  concurrency: 2,
  createdAt: '2030-01-01T09:00:00.000Z',
  updatedAt: '2030-01-01T09:00:00.000Z',
} as const;

export const flowLimitDetailExample = {
  ...flowLimitExample,
  inFlight: 2,
  waiting: 1,
  waitingCalls: [
    {
      id: '3f6c8b52-6a1e-4b8e-9d4f-2a7c1e5b9d10',
      dueAt: '2030-01-01T09:00:00.000Z',
      since: '2030-01-01T09:00:00.012Z',
    },
  ],
} as const;
