import { createHash } from 'node:crypto';
import { CALLBACK_STATUSES, STATUSES, type CallbackStatus, type Status } from '../core/service-call';
import type { ListFilter, ListPosition } from '../projections/service-calls';
import { BadRequestError } from './problem';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, MAX_TAGS } from './schemas';

/**
 * The list endpoint's query string, parsed by hand: the app's Ajv neither coerces types nor
 * removes anything (requests run exactly as given), so "limit=20" stays a string and a repeated
 * parameter arrives as an array. Every problem names the parameter it is about.
 */

const PARAMETERS = [
  'status',
  'tag',
  'createdAfter',
  'createdBefore',
  'dueAfter',
  'dueBefore',
  'replayOf',
  'callbackStatus',
  'scheduleId',
  'limit',
  'cursor',
] as const;
type Parameter = (typeof PARAMETERS)[number];

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/i;
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CURSOR_VERSION = 1;

function values(name: Parameter, raw: unknown): string[] {
  const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  return list.map((v) => {
    if (typeof v !== 'string') throw new BadRequestError(name, 'must be a string');
    return v;
  });
}

function single(name: Parameter, raw: unknown): string {
  const list = values(name, raw);
  if (list.length !== 1) throw new BadRequestError(name, 'must be given once');
  const [value] = list as [string];
  if (value === '') throw new BadRequestError(name, 'must not be empty');
  return value;
}

/**
 * Date.parse rolls 2030-02-31 over into March; a filter bound that is not a real instant is a
 * mistake. PostgreSQL has no year 0000 (it refuses it), so neither do we.
 */
function isRealInstant(value: string): boolean {
  const m = INSTANT.exec(value);
  if (m === null) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = m.slice(1).map((v) => Number(v ?? 0));
  const daysInMonth = new Date(Date.UTC(year ?? 0, month ?? 0, 0)).getUTCDate();
  return (
    year! >= 1 &&
    month! >= 1 &&
    month! <= 12 &&
    day! >= 1 &&
    day! <= daysInMonth &&
    hour! <= 23 &&
    minute! <= 59 &&
    second! <= 59 &&
    offsetHours! <= 23 &&
    offsetMinutes! <= 59
  );
}

function instant(name: Parameter, raw: unknown): Date {
  const value = single(name, raw);
  const at = Date.parse(value);
  if (!isRealInstant(value) || Number.isNaN(at)) {
    throw new BadRequestError(name, 'must be an ISO-8601 date-time with an offset, e.g. 2030-01-01T12:00:00Z');
  }
  return new Date(at);
}

function uuidParameter(name: Parameter, raw: unknown): string {
  const value = single(name, raw);
  if (!UUID.test(value)) {
    throw new BadRequestError(name, `must be a ${name === 'scheduleId' ? 'schedule' : 'service call'} id (a UUID)`);
  }
  return value.toLowerCase();
}

function statuses(raw: unknown): Status[] {
  const out = new Set<Status>();
  for (const item of values('status', raw).flatMap((v) => v.split(','))) {
    const status = item.trim();
    if (!(STATUSES as readonly string[]).includes(status)) {
      throw new BadRequestError('status', `must be one or more of ${STATUSES.join(', ')}; got "${status}"`);
    }
    out.add(status as Status);
  }
  return [...out];
}

function callbackStatus(raw: unknown): CallbackStatus {
  const value = single('callbackStatus', raw);
  if (!(CALLBACK_STATUSES as readonly string[]).includes(value)) {
    throw new BadRequestError('callbackStatus', `must be one of ${CALLBACK_STATUSES.join(', ')}; got "${value}"`);
  }
  return value as CallbackStatus;
}

function tags(raw: unknown): string[] {
  const out = new Set(values('tag', raw));
  for (const tag of out) {
    if (tag.length < 1 || tag.length > 64) throw new BadRequestError('tag', 'each tag must be 1–64 characters');
  }
  if (out.size > MAX_TAGS) throw new BadRequestError('tag', `at most ${MAX_TAGS} tags`);
  return [...out];
}

function limit(raw: unknown): number {
  const value = single('limit', raw);
  const n = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= LIST_LIMIT_MAX)) {
    throw new BadRequestError('limit', `must be an integer from 1 to ${LIST_LIMIT_MAX}`);
  }
  return n;
}

type FilterPart = Omit<ListFilter, 'limit' | 'after'>;

/** Ties a cursor to the filters it was made for: the same position under other filters is a mistake. */
function filterDigest(filter: FilterPart): string {
  const canonical = JSON.stringify([
    [...filter.statuses].sort(),
    [...filter.tags].sort(),
    filter.createdAfter?.toISOString() ?? null,
    filter.createdBefore?.toISOString() ?? null,
    filter.dueAfter?.toISOString() ?? null,
    filter.dueBefore?.toISOString() ?? null,
    // Only when given: cursors made before this filter existed stay valid.
    ...(filter.replayOf === undefined ? [] : [filter.replayOf]),
    ...(filter.callbackStatus === undefined ? [] : [`callback:${filter.callbackStatus}`]),
    ...(filter.scheduleId === undefined ? [] : [`schedule:${filter.scheduleId}`]),
  ]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 12);
}

export function encodeCursor(position: ListPosition, filter: FilterPart): string {
  return Buffer.from(
    JSON.stringify({ v: CURSOR_VERSION, t: position.createdAt, i: position.id, f: filterDigest(filter) }),
  ).toString('base64url');
}

function decodeCursor(raw: unknown, filter: FilterPart): ListPosition {
  const value = single('cursor', raw);
  let decoded: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,512}$/.test(value)) throw new Error('not base64url');
    decoded = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    throw new BadRequestError('cursor', 'is not a cursor this API returned (use nextCursor as given)');
  }
  const c = decoded as { v?: unknown; t?: unknown; i?: unknown; f?: unknown } | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    c.v !== CURSOR_VERSION ||
    typeof c.t !== 'string' ||
    !CURSOR_TIME.test(c.t) ||
    !isRealInstant(c.t) ||
    Number.isNaN(Date.parse(c.t)) ||
    typeof c.i !== 'string' ||
    !UUID.test(c.i)
  ) {
    throw new BadRequestError('cursor', 'is not a cursor this API returned (use nextCursor as given)');
  }
  if (c.f !== filterDigest(filter)) {
    throw new BadRequestError('cursor', 'was made for other filters; repeat the filters of the first page with it');
  }
  return { createdAt: c.t, id: c.i };
}

/** Turns the raw query object into a list filter, or throws a BadRequestError naming the parameter. */
export function parseListQuery(query: unknown): ListFilter {
  const raw: Record<string, unknown> = typeof query === 'object' && query !== null ? { ...query } : {};
  for (const name of Object.keys(raw)) {
    if (!(PARAMETERS as readonly string[]).includes(name)) {
      throw new BadRequestError(name, `is not a known parameter (known: ${PARAMETERS.join(', ')})`);
    }
  }
  const filter: FilterPart = {
    statuses: raw.status === undefined ? [] : statuses(raw.status),
    tags: raw.tag === undefined ? [] : tags(raw.tag),
    ...(raw.createdAfter === undefined ? {} : { createdAfter: instant('createdAfter', raw.createdAfter) }),
    ...(raw.createdBefore === undefined ? {} : { createdBefore: instant('createdBefore', raw.createdBefore) }),
    ...(raw.dueAfter === undefined ? {} : { dueAfter: instant('dueAfter', raw.dueAfter) }),
    ...(raw.dueBefore === undefined ? {} : { dueBefore: instant('dueBefore', raw.dueBefore) }),
    ...(raw.replayOf === undefined ? {} : { replayOf: uuidParameter('replayOf', raw.replayOf) }),
    ...(raw.callbackStatus === undefined ? {} : { callbackStatus: callbackStatus(raw.callbackStatus) }),
    ...(raw.scheduleId === undefined ? {} : { scheduleId: uuidParameter('scheduleId', raw.scheduleId) }),
  };
  return {
    ...filter,
    limit: raw.limit === undefined ? LIST_LIMIT_DEFAULT : limit(raw.limit),
    ...(raw.cursor === undefined ? {} : { after: decodeCursor(raw.cursor, filter) }),
  };
}
