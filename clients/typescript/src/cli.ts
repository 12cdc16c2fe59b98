import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  Punctual,
  PunctualError,
  PunctualTimeoutError,
  TERMINAL_STATUSES,
  type ListFilter,
  type Schedule,
  type ScheduleCreateBody,
  type ScheduleListFilter,
  type ScheduleStatus,
  type Schedules,
  type ServiceCall,
  type ServiceCallStatus,
  type SubmitBody,
} from './index';

/**
 * `punctual`: the API from a terminal. node:util's parseArgs reads the flags: the commands are a
 * dozen with a handful of flags each, and a framework (commander, yargs, oclif) would be a
 * dependency to install, audit and keep up with for help texts we write anyway.
 *
 * `--url` is the target of the call being submitted, so the API's address is `--api-url`
 * (or PUNCTUAL_URL) and its key `--key` (or PUNCTUAL_API_KEY).
 */

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

class UsageError extends Error {}

interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

interface Command {
  summary: string;
  usage: string;
  options: Options;
  /** Lines of help after the usage line. */
  help: string[];
  run(ctx: Context): Promise<number>;
}

interface Context extends Output {
  values: Values;
  positionals: string[];
  client: () => Punctual;
  json: boolean;
}

const COMMON: Options = {
  'api-url': { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const COMMON_HELP = [
  'Common options:',
  '  --api-url URL   the Punctual API (default $PUNCTUAL_URL)',
  '  --key KEY       the API key (default $PUNCTUAL_API_KEY)',
  '  --json          print JSON instead of a table',
  '  -h, --help      this help',
];

const TIME_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `+10m`, `+90s`, `+2h`, `+1d` from now, or an ISO-8601 instant as given. */
export function parseDue(value: string, now = Date.now()): string {
  const relative = /^\+(\d+)([smhd])$/.exec(value);
  if (relative !== null) return new Date(now + Number(relative[1]) * TIME_UNITS[relative[2]!]!).toISOString();
  if (Number.isNaN(Date.parse(value)))
    throw new UsageError(`--due: expected +N(s|m|h|d) or an ISO-8601 instant, got ${value}`);
  return value;
}

function parseHeaders(values: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const raw of values) {
    const at = raw.indexOf(':');
    if (at <= 0) throw new UsageError(`--header: expected Name:Value, got ${raw}`);
    headers[raw.slice(0, at).trim()] = raw.slice(at + 1).trim();
  }
  return headers;
}

/** `@file` reads the file; JSON is sent as JSON, anything else as a string. */
function parseBody(value: string): unknown {
  const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function strings(value: Values[string]): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

function single(ctx: Context, name: string): string | undefined {
  const value = ctx.values[name];
  return typeof value === 'string' ? value : undefined;
}

function idArgument(ctx: Context): string {
  const [id, ...rest] = ctx.positionals;
  if (id === undefined || rest.length > 0) throw new UsageError('expected one ID');
  return id;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'string') return value;
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
}

/** Columns padded to their widest cell, for people; scripts use --json. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = [columns.map((c) => c.toUpperCase()), ...rows.map((row) => columns.map((c) => cell(row[c])))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return (
    cells
      .map((line) =>
        line
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function fields(record: Record<string, unknown>, names: string[]): string {
  const width = Math.max(...names.map((n) => n.length));
  return names.map((n) => `${n.padEnd(width)}  ${cell(record[n])}`).join('\n') + '\n';
}

function printJson(ctx: Context, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}

function printCall(ctx: Context, call: ServiceCall): void {
  if (ctx.json) return printJson(ctx, call);
  const view = { ...call, method: call.request.method, url: call.request.url, outcome: call.result?.outcome };
  ctx.out(fields(view, ['id', 'status', 'method', 'url', 'dueAt', 'tags', 'createdAt', 'updatedAt', 'replayOf']));
  if (call.attempts.length > 0) {
    ctx.out(`\n${table(call.attempts, ['attempt', 'startedAt', 'statusCode', 'latencyMs', 'error'])}`);
  }
}

const SUMMARY_COLUMNS = ['id', 'status', 'dueAt', 'tags'];

/** The flags a call and a schedule's runs share: the request, tags and retries. */
const RUN_OPTIONS: Options = {
  url: { type: 'string' },
  method: { type: 'string' },
  header: { type: 'string', multiple: true },
  body: { type: 'string' },
  tag: { type: 'string', multiple: true },
  retry: { type: 'string' },
  'flow-key': { type: 'string', multiple: true },
  'idempotency-key': { type: 'string' },
};

const RUN_HELP = [
  "  --url URL            the call's target (http or https)",
  '  --method M           GET by default, POST when --body is given',
  '  --header K:V         a header sent to the target; repeat for more',
  '  --body @file|json    the body: JSON is sent as JSON, other text as is; @file reads a file',
  '  --tag T              a tag; repeat for more',
  '  --retry N            at most N attempts',
  '  --flow-key K         every attempt obeys the flow limit of K (see `flow-limits put`); repeat, up to 3',
];

function runFields(ctx: Context): Pick<SubmitBody, 'request' | 'tags' | 'retry' | 'flowKeys'> {
  const url = single(ctx, 'url');
  if (url === undefined) throw new UsageError('--url is required');
  const bodyFlag = single(ctx, 'body');
  const method = (single(ctx, 'method') ?? (bodyFlag === undefined ? 'GET' : 'POST')).toUpperCase();
  const retry = single(ctx, 'retry');
  if (retry !== undefined && !/^\d+$/.test(retry)) throw new UsageError(`--retry: expected a number, got ${retry}`);
  const tags = strings(ctx.values.tag);
  const flowKeys = strings(ctx.values['flow-key']);
  const headers = parseHeaders(strings(ctx.values.header));
  return {
    request: {
      method,
      url,
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      ...(bodyFlag === undefined ? {} : { body: parseBody(bodyFlag) }),
    } as SubmitBody['request'],
    ...(tags.length > 0 ? { tags } : {}),
    ...(retry === undefined ? {} : { retry: { maxAttempts: Number(retry) } }),
    ...(flowKeys.length > 0 ? { flowKeys } : {}),
  };
}

const calls: Record<string, Command> = {
  submit: {
    summary: 'submit a call',
    usage:
      'punctual calls submit --url URL [--method M] [--header K:V]… [--body @file|json] [--due +10m|ISO] [--tag T]… [--retry N] [--flow-key K]… [--idempotency-key K]',
    options: { ...RUN_OPTIONS, due: { type: 'string' } },
    help: [
      ...RUN_HELP,
      '  --due +10m|ISO       when: +N seconds/minutes/hours/days (s|m|h|d) or an instant; default now',
      '  --idempotency-key K  the same key again gives the same call (default: a random one)',
    ],
    async run(ctx) {
      const due = single(ctx, 'due');
      const body = {
        ...runFields(ctx),
        ...(due === undefined ? {} : { dueAt: parseDue(due) }),
      } as SubmitBody;
      const key = single(ctx, 'idempotency-key');
      const answer = await ctx.client().calls.submit(body, key === undefined ? {} : { idempotencyKey: key });
      if (ctx.json) printJson(ctx, answer);
      else ctx.out(table([answer], ['id', 'status', 'dueAt', 'replayed']));
      return 0;
    },
  },
  list: {
    summary: 'list calls, newest first',
    usage: 'punctual calls list [--status S]… [--tag T]… [--limit N]',
    options: {
      status: { type: 'string', multiple: true },
      tag: { type: 'string', multiple: true },
      limit: { type: 'string' },
    },
    help: [
      '  --status S   only calls in this status (repeat, or separate with commas)',
      '  --tag T      only calls with every one of these tags (repeat)',
      '  --limit N    at most N calls (default 50; 0 = all, page after page)',
    ],
    async run(ctx) {
      const status = strings(ctx.values.status).flatMap((s) => s.split(',')) as ServiceCallStatus[];
      const tag = strings(ctx.values.tag);
      const limitFlag = single(ctx, 'limit') ?? '50';
      if (!/^\d+$/.test(limitFlag)) throw new UsageError(`--limit: expected a number, got ${limitFlag}`);
      const limit = Number(limitFlag);
      const filter: ListFilter = {
        ...(status.length > 0 ? { status } : {}),
        ...(tag.length > 0 ? { tag } : {}),
        ...(limit > 0 && limit <= 200 ? { limit } : {}),
      };
      const items = [];
      for await (const item of ctx.client().calls.list(filter)) {
        items.push(item);
        if (limit > 0 && items.length >= limit) break;
      }
      if (ctx.json) printJson(ctx, items);
      else ctx.out(table(items, SUMMARY_COLUMNS));
      return 0;
    },
  },
  show: {
    summary: 'show one call with its attempts',
    usage: 'punctual calls show ID',
    options: {},
    help: [],
    async run(ctx) {
      printCall(ctx, await ctx.client().calls.get(idArgument(ctx)));
      return 0;
    },
  },
  cancel: {
    summary: 'cancel a scheduled call',
    usage: 'punctual calls cancel ID',
    options: {},
    help: [],
    async run(ctx) {
      printCall(ctx, await ctx.client().calls.cancel(idArgument(ctx)));
      return 0;
    },
  },
  reschedule: {
    summary: 'move a scheduled call to another time',
    usage: 'punctual calls reschedule ID --due +10m|ISO',
    options: { due: { type: 'string' } },
    help: ['  --due +10m|ISO   the new time (required)'],
    async run(ctx) {
      const id = idArgument(ctx);
      const due = single(ctx, 'due');
      if (due === undefined) throw new UsageError('--due is required');
      printCall(ctx, await ctx.client().calls.reschedule(id, parseDue(due)));
      return 0;
    },
  },
  replay: {
    summary: 'run a finished call again, as a new call',
    usage: 'punctual calls replay ID [--due +10m|ISO]',
    options: { due: { type: 'string' } },
    help: ['  --due +10m|ISO   when the new call runs (default now)'],
    async run(ctx) {
      const id = idArgument(ctx);
      const due = single(ctx, 'due');
      const answer = await ctx.client().calls.replay(id, due === undefined ? {} : { dueAt: parseDue(due) });
      if (ctx.json) printJson(ctx, answer);
      else ctx.out(table([answer], ['id', 'status', 'dueAt', 'replayOf']));
      return 0;
    },
  },
  watch: {
    summary: 'follow a call until it ends (exit 0 if Succeeded, 1 otherwise)',
    usage: 'punctual calls watch ID [--interval MS] [--timeout MS]',
    options: { interval: { type: 'string' }, timeout: { type: 'string' } },
    help: [
      '  --interval MS   how often to look (default 500)',
      '  --timeout MS    give up after this long (default: never)',
      'Prints a line on each change of status or new attempt; with --json, the final call.',
    ],
    async run(ctx) {
      const id = idArgument(ctx);
      const interval = Number(single(ctx, 'interval') ?? 500);
      const timeout = single(ctx, 'timeout');
      const deadline = timeout === undefined ? Infinity : Date.now() + Number(timeout);
      const client = ctx.client();
      let seen = '';
      for (;;) {
        const call = await client.calls.get(id);
        const line = `${call.status}${call.attempts.length > 0 ? `  attempt ${call.attempts.length}: ${cell(call.attempts.at(-1)?.statusCode ?? call.attempts.at(-1)?.error)}` : ''}`;
        if (line !== seen && !ctx.json) ctx.out(`${new Date().toISOString()}  ${line}\n`);
        seen = line;
        if (TERMINAL_STATUSES.includes(call.status)) {
          if (ctx.json) printJson(ctx, call);
          return call.status === 'Succeeded' ? 0 : 1;
        }
        if (Date.now() > deadline) throw new PunctualTimeoutError(id, call.status, Number(timeout));
        await new Promise((resolve) => setTimeout(resolve, interval));
      }
    },
  },
};

function specText(schedule: Pick<Schedule, 'spec'>): string {
  const { cron, intervalSeconds, timezone } = schedule.spec;
  return cron !== null && cron !== undefined ? `${cron} (${timezone})` : `every ${String(intervalSeconds)} s`;
}

function scheduleRow(schedule: Schedule): Record<string, unknown> {
  return { ...schedule, spec: specText(schedule), nextRunAt: schedule.nextRunAts[0] };
}

function printSchedule(ctx: Context, schedule: Schedule): void {
  if (ctx.json) return printJson(ctx, schedule);
  const view = {
    ...scheduleRow(schedule),
    method: schedule.request.method,
    url: schedule.request.url,
    nextRunAts: schedule.nextRunAts,
  };
  ctx.out(
    fields(view, ['id', 'status', 'spec', 'overlap', 'method', 'url', 'tags', 'flowKeys', 'nextRunAts', 'createdAt']),
  );
  if (schedule.recentRuns.length > 0) ctx.out(`\n${table(schedule.recentRuns, ['scheduledAt', 'serviceCallId'])}`);
}

const SCHEDULE_COLUMNS = ['id', 'status', 'spec', 'nextRunAt', 'tags'];
const OVERLAPS = ['Skip', 'BufferOne', 'AllowAll'];

/** A command that takes one schedule id, does one thing to it and prints the schedule it answers. */
function scheduleCommand(
  name: string,
  summary: string,
  act: (schedules: Schedules, id: string) => Promise<Schedule>,
): Command {
  return {
    summary,
    usage: `punctual schedules ${name} ID`,
    options: {},
    help: [],
    async run(ctx) {
      printSchedule(ctx, await act(ctx.client().schedules, idArgument(ctx)));
      return 0;
    },
  };
}

const schedules: Record<string, Command> = {
  create: {
    summary: 'create a recurring call',
    usage:
      'punctual schedules create (--cron EXPR [--timezone TZ] | --every SECONDS) --url URL [--method M] [--header K:V]… [--body @file|json] [--tag T]… [--retry N] [--flow-key K]… [--overlap O] [--paused] [--idempotency-key K]',
    options: {
      ...RUN_OPTIONS,
      cron: { type: 'string' },
      every: { type: 'string' },
      timezone: { type: 'string' },
      overlap: { type: 'string' },
      paused: { type: 'boolean' },
    },
    help: [
      '  --cron EXPR          five cron fields, e.g. "0 9 * * 1-5", on the wall clock of --timezone',
      '  --timezone TZ        an IANA zone for --cron (default UTC)',
      '  --every SECONDS      a run every this many seconds instead of --cron',
      ...RUN_HELP,
      '  --overlap O          Skip, BufferOne or AllowAll (default): what a run does while the last one runs',
      '  --paused             create it paused',
      '  --idempotency-key K  the same key again gives the same schedule (default: a random one)',
    ],
    async run(ctx) {
      const cron = single(ctx, 'cron');
      const every = single(ctx, 'every');
      if ((cron === undefined) === (every === undefined))
        throw new UsageError('give exactly one of --cron and --every');
      if (every !== undefined && !/^\d+$/.test(every)) throw new UsageError(`--every: expected seconds, got ${every}`);
      const timezone = single(ctx, 'timezone');
      const overlap = single(ctx, 'overlap');
      if (overlap !== undefined && !OVERLAPS.includes(overlap))
        throw new UsageError(`--overlap: expected one of ${OVERLAPS.join(', ')}, got ${overlap}`);
      const body = {
        ...runFields(ctx),
        ...(cron === undefined ? { intervalSeconds: Number(every) } : { cron }),
        ...(timezone === undefined ? {} : { timezone }),
        ...(overlap === undefined ? {} : { overlap }),
        ...(ctx.values.paused === true ? { paused: true } : {}),
      } as ScheduleCreateBody;
      const key = single(ctx, 'idempotency-key');
      const schedule = await ctx.client().schedules.create(body, key === undefined ? {} : { idempotencyKey: key });
      printSchedule(ctx, schedule);
      return 0;
    },
  },
  list: {
    summary: 'list schedules',
    usage: 'punctual schedules list [--status S] [--tag T]… [--limit N]',
    options: { status: { type: 'string' }, tag: { type: 'string', multiple: true }, limit: { type: 'string' } },
    help: [
      '  --status S   only schedules in this status: Active, Paused or Ended',
      '  --tag T      only schedules with every one of these tags (repeat)',
      '  --limit N    at most N schedules (default 50; 0 = all, page after page)',
    ],
    async run(ctx) {
      const status = single(ctx, 'status') as ScheduleStatus | undefined;
      const tag = strings(ctx.values.tag);
      const limitFlag = single(ctx, 'limit') ?? '50';
      if (!/^\d+$/.test(limitFlag)) throw new UsageError(`--limit: expected a number, got ${limitFlag}`);
      const limit = Number(limitFlag);
      const filter = {
        ...(status === undefined ? {} : { status }),
        ...(tag.length > 0 ? { tag } : {}),
        ...(limit > 0 && limit <= 200 ? { limit: String(limit) } : {}),
      } as ScheduleListFilter;
      const items: Schedule[] = [];
      for await (const item of ctx.client().schedules.list(filter)) {
        items.push(item);
        if (limit > 0 && items.length >= limit) break;
      }
      if (ctx.json) printJson(ctx, items);
      else ctx.out(table(items.map(scheduleRow), SCHEDULE_COLUMNS));
      return 0;
    },
  },
  show: scheduleCommand('show', 'show one schedule with its next and recent runs', (c, id) => c.get(id)),
  pause: scheduleCommand('pause', 'stop making runs until resumed', (c, id) => c.pause(id)),
  resume: scheduleCommand('resume', 'make runs again', (c, id) => c.resume(id)),
  trigger: {
    summary: 'one run now, beside the schedule’s own',
    usage: 'punctual schedules trigger ID',
    options: {},
    help: [],
    async run(ctx) {
      const answer = await ctx.client().schedules.trigger(idArgument(ctx));
      if (ctx.json) printJson(ctx, answer);
      else ctx.out(table([answer], ['serviceCallId', 'scheduledAt']));
      return 0;
    },
  },
  delete: {
    summary: 'delete a schedule (the calls it made go on)',
    usage: 'punctual schedules delete ID',
    options: {},
    help: [],
    async run(ctx) {
      const id = idArgument(ctx);
      await ctx.client().schedules.delete(id);
      if (ctx.json) printJson(ctx, { id, deleted: true });
      else ctx.out(`deleted ${id}\n`);
      return 0;
    },
  },
};

const FLOW_LIMIT_COLUMNS = ['key', 'ratePerSecond', 'burst', 'concurrency', 'updatedAt'];

/** A flag's value as a number > 0 (`--rate`, a whole one for the others), or undefined when absent. */
function positiveFlag(ctx: Context, name: string, whole: boolean): number | undefined {
  const value = single(ctx, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || (whole && !Number.isInteger(n)))
    throw new UsageError(`--${name}: expected a ${whole ? 'whole ' : ''}number > 0, got ${value}`);
  return n;
}

function keyArgument(ctx: Context): string {
  const [key, ...rest] = ctx.positionals;
  if (key === undefined || rest.length > 0) throw new UsageError('expected one KEY');
  return key;
}

const flowLimits: Record<string, Command> = {
  put: {
    summary: 'define or replace the limit of a key',
    usage: 'punctual flow-limits put KEY [--rate N] [--burst N] [--concurrency N]',
    options: { rate: { type: 'string' }, burst: { type: 'string' }, concurrency: { type: 'string' } },
    help: [
      '  KEY             1–128 characters of A-Z a-z 0-9 . _ : -; host:<hostname> limits every call to that host',
      '  --rate N        attempts per second on average (a token bucket; N may be a fraction)',
      '  --burst N       attempts at once after a quiet spell (default: N of --rate rounded up); only with --rate',
      '  --concurrency N attempts in flight at once across all workers',
      'At least one of --rate and --concurrency. The calls already waiting obey the new limit.',
    ],
    async run(ctx) {
      const key = keyArgument(ctx);
      const rate = positiveFlag(ctx, 'rate', false);
      const burst = positiveFlag(ctx, 'burst', true);
      const concurrency = positiveFlag(ctx, 'concurrency', true);
      if (rate === undefined && concurrency === undefined)
        throw new UsageError('give at least one of --rate and --concurrency');
      const limit = await ctx.client().flowLimits.put(key, {
        ...(rate === undefined ? {} : { ratePerSecond: rate }),
        ...(burst === undefined ? {} : { burst }),
        ...(concurrency === undefined ? {} : { concurrency }),
      });
      if (ctx.json) printJson(ctx, limit);
      else ctx.out(fields(limit, [...FLOW_LIMIT_COLUMNS, 'createdAt']));
      return 0;
    },
  },
  list: {
    summary: 'list the flow limits with their attempts in flight and calls waiting',
    usage: 'punctual flow-limits list',
    options: {},
    help: [],
    async run(ctx) {
      const items = await ctx.client().flowLimits.list();
      if (ctx.json) printJson(ctx, items);
      else ctx.out(table(items, [...FLOW_LIMIT_COLUMNS, 'inFlight', 'waiting']));
      return 0;
    },
  },
  show: {
    summary: 'show a limit with its attempts in flight and its waiting calls',
    usage: 'punctual flow-limits show KEY',
    options: {},
    help: [],
    async run(ctx) {
      const limit = await ctx.client().flowLimits.get(keyArgument(ctx));
      if (ctx.json) {
        printJson(ctx, limit);
        return 0;
      }
      ctx.out(fields(limit, [...FLOW_LIMIT_COLUMNS, 'createdAt', 'inFlight', 'waiting']));
      if (limit.waitingCalls.length > 0) ctx.out(`\n${table(limit.waitingCalls, ['id', 'dueAt', 'since'])}`);
      return 0;
    },
  },
  delete: {
    summary: 'delete a limit (the calls waiting for it go ahead)',
    usage: 'punctual flow-limits delete KEY',
    options: {},
    help: [],
    async run(ctx) {
      const key = keyArgument(ctx);
      await ctx.client().flowLimits.delete(key);
      if (ctx.json) printJson(ctx, { key, deleted: true });
      else ctx.out(`deleted ${key}\n`);
      return 0;
    },
  },
};

const secretColumns = ['id', 'secret', 'createdAt', 'expiresAt'];

const secrets: Record<string, Command> = {
  list: {
    summary: 'show the secrets that sign requests now',
    usage: 'punctual secrets list',
    options: {},
    help: [],
    async run(ctx) {
      const list = await ctx.client().secrets.list();
      if (ctx.json) printJson(ctx, list);
      else ctx.out(table(list, secretColumns));
      return 0;
    },
  },
  rotate: {
    summary: 'make a new signing secret',
    usage: 'punctual secrets rotate [--grace SECONDS]',
    options: { grace: { type: 'string' } },
    help: ['  --grace SECONDS   how long the current secrets keep signing (default one day; 0: stop now)'],
    async run(ctx) {
      const grace = single(ctx, 'grace');
      if (grace !== undefined && !/^\d+$/.test(grace)) throw new UsageError(`--grace: expected seconds, got ${grace}`);
      const list = await ctx.client().secrets.rotate(grace === undefined ? {} : { graceSeconds: Number(grace) });
      if (ctx.json) printJson(ctx, list);
      else ctx.out(table(list, secretColumns));
      return 0;
    },
  },
};

const GROUPS: Record<string, { summary: string; commands: Record<string, Command> }> = {
  calls: { summary: 'service calls', commands: calls },
  schedules: { summary: 'recurring calls', commands: schedules },
  'flow-limits': { summary: 'rate and concurrency limits per key', commands: flowLimits },
  secrets: { summary: 'request-signing secrets', commands: secrets },
};

function mainHelp(): string {
  const lines = ['Usage: punctual <group> <command> [options]', ''];
  for (const [group, { commands }] of Object.entries(GROUPS)) {
    for (const [name, command] of Object.entries(commands)) {
      lines.push(`  ${`${group} ${name}`.padEnd(20)}${command.summary}`);
    }
  }
  lines.push('', '`punctual <group> <command> --help` for its options.', ...COMMON_HELP);
  return lines.join('\n') + '\n';
}

function groupHelp(group: string): string {
  const { summary, commands } = GROUPS[group]!;
  const lines = [`Usage: punctual ${group} <command> [options]    (${summary})`, ''];
  for (const [name, command] of Object.entries(commands)) lines.push(`  ${name.padEnd(12)}${command.summary}`);
  return lines.join('\n') + '\n';
}

function commandHelp(command: Command): string {
  return (
    [
      `Usage: ${command.usage}`,
      '',
      command.summary,
      ...(command.help.length > 0 ? ['', ...command.help] : []),
      '',
      ...COMMON_HELP,
    ].join('\n') + '\n'
  );
}

function clientFrom(values: Values, env: NodeJS.ProcessEnv): Punctual {
  const baseUrl = (typeof values['api-url'] === 'string' ? values['api-url'] : undefined) ?? env.PUNCTUAL_URL;
  const apiKey = (typeof values.key === 'string' ? values.key : undefined) ?? env.PUNCTUAL_API_KEY;
  if (baseUrl === undefined || baseUrl === '') throw new UsageError('no API: set PUNCTUAL_URL or pass --api-url');
  if (apiKey === undefined || apiKey === '') throw new UsageError('no key: set PUNCTUAL_API_KEY or pass --key');
  return new Punctual({ baseUrl, apiKey });
}

function describeError(err: PunctualError): string {
  const lines = [`error: ${err.title} (${err.status})`];
  if (err.detail !== undefined) lines.push(err.detail);
  for (const e of err.errors) lines.push(`  ${e.field}: ${e.message}`);
  return lines.join('\n') + '\n';
}

/** Runs one command line; the exit code is returned, never `process.exit`ed, so tests can call it too. */
export async function run(argv: string[], env: NodeJS.ProcessEnv, output: Output): Promise<number> {
  const [group, name, ...rest] = argv;
  if (group === undefined || group === '--help' || group === '-h' || group === 'help') {
    output.out(mainHelp());
    return group === undefined ? 2 : 0;
  }
  const commands = GROUPS[group]?.commands;
  if (commands === undefined) {
    output.err(`punctual: unknown group ${group}\n\n${mainHelp()}`);
    return 2;
  }
  if (name === undefined || name === '--help' || name === '-h') {
    output.out(groupHelp(group));
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    output.err(`punctual: unknown command ${group} ${name}\n\n${groupHelp(group)}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...COMMON, ...command.options },
      allowPositionals: true,
      strict: true,
    });
    if (values.help === true) {
      output.out(commandHelp(command));
      return 0;
    }
    let client: Punctual | undefined;
    return await command.run({
      ...output,
      values,
      positionals,
      json: values.json === true,
      client: () => (client ??= clientFrom(values, env)),
    });
  } catch (err) {
    if (err instanceof PunctualError) {
      output.err(describeError(err));
      return 1;
    }
    if (
      err instanceof UsageError ||
      (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      output.err(`punctual ${group} ${name}: ${err.message}\n${commandHelp(command)}`);
      return 2;
    }
    output.err(`punctual ${group} ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** The `punctual` executable (bin/punctual.js calls this). */
export function main(): void {
  run(process.argv.slice(2), process.env, {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`punctual: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
