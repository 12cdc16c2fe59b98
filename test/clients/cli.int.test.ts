import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createTestEnv, PROJECT_ROOT, type TestEnv } from '../support/env';
import { eventually } from '../support/net';
import { apiUrl, CLIENT_ROOT } from './support';

/** The `punctual` command line as a child process against the real service. */

const run = promisify(execFile);
const BIN = path.join(CLIENT_ROOT, 'bin/punctual.js');

let env: TestEnv;
before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

async function punctual(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, PUNCTUAL_URL: apiUrl(env), PUNCTUAL_API_KEY: env.tenants.a.key },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function json(...args: string[]): Promise<any> {
  const r = await punctual(...args, '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('punctual CLI', () => {
  test('submit, watch until Succeeded, show, list --json, replay', async () => {
    const submitted = await json(
      'calls',
      'submit',
      '--url',
      env.target.url('/cli'),
      '--method',
      'POST',
      '--header',
      'X-From:cli',
      '--body',
      '{"a":1}',
      '--tag',
      'cli',
      '--retry',
      '2',
    );
    assert.equal(submitted.status, 'Scheduled');
    const watched = await punctual('calls', 'watch', submitted.id, '--interval', '100');
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(watched.stdout, /Succeeded/);
    const [hit] = env.target.hitsFor('/cli');
    assert.equal(hit?.headers['x-from'], 'cli');
    assert.deepEqual(JSON.parse(hit.body), { a: 1 });

    const shown = await punctual('calls', 'show', submitted.id);
    assert.equal(shown.code, 0);
    assert.match(shown.stdout, new RegExp(`id\\s+${submitted.id}`));
    assert.match(shown.stdout, /status\s+Succeeded/);
    assert.match(shown.stdout, /ATTEMPT\s+STARTEDAT\s+STATUSCODE/);
    assert.equal((await json('calls', 'show', submitted.id)).retry.maxAttempts, 2);

    const items = await eventually('the call in the list', async () => {
      const list = (await json('calls', 'list', '--tag', 'cli', '--status', 'Succeeded')) as { id: string }[];
      return list.length === 1 ? list : undefined;
    });
    assert.equal(items[0]?.id, submitted.id);
    const table = await punctual('calls', 'list', '--tag', 'cli');
    assert.match(table.stdout, /^ID\s+STATUS\s+DUEAT\s+TAGS\n/);

    const replay = await json('calls', 'replay', submitted.id);
    assert.equal(replay.replayOf, submitted.id);
  });

  test('submit --due +10m, reschedule, cancel', async () => {
    const submitted = await json('calls', 'submit', '--url', env.target.url('/cli-later'), '--due', '+10m');
    const due = Date.parse(submitted.dueAt) - Date.now();
    assert.ok(due > 9 * 60_000 && due <= 10 * 60_000, `due in ${due} ms`);
    const later = new Date(Math.floor(Date.now() / 1000) * 1000 + 30 * 86_400_000).toISOString();
    const moved = await json('calls', 'reschedule', submitted.id, '--due', later);
    assert.equal(Date.parse(moved.dueAt), Date.parse(later));
    const cancelled = await punctual('calls', 'cancel', submitted.id);
    assert.equal(cancelled.code, 0);
    assert.match(cancelled.stdout, /status\s+Cancelled/);
  });

  test('secrets list and rotate', async () => {
    const before = await json('secrets', 'list');
    const rotated = await json('secrets', 'rotate', '--grace', '60');
    assert.equal(rotated.length, before.length + 1);
    const table = await punctual('secrets', 'list');
    assert.match(table.stdout, /^ID\s+SECRET\s+CREATEDAT\s+EXPIRESAT\n/);
    assert.match(table.stdout, /whsec_/);
  });

  test('schedules create, show, list, pause, resume, trigger, delete', async () => {
    const created = await json(
      'schedules',
      'create',
      '--cron',
      '0 9 * * 1-5',
      '--timezone',
      'America/New_York',
      '--url',
      env.target.url('/cli-schedule'),
      '--tag',
      'cli-schedule',
    );
    assert.equal(created.status, 'Active');
    assert.equal(created.spec.cron, '0 9 * * 1-5');
    const shown = await eventually('the schedule’s next runs', async () => {
      const r = await punctual('schedules', 'show', created.id);
      return /nextRunAts\s+\d{4}-/.test(r.stdout) ? r : undefined;
    });
    assert.match(shown.stdout, /spec\s+0 9 \* \* 1-5 \(America\/New_York\)/);
    const table = await punctual('schedules', 'list', '--tag', 'cli-schedule');
    assert.match(table.stdout, /^ID\s+STATUS\s+SPEC\s+NEXTRUNAT\s+TAGS\n/);
    assert.match(table.stdout, new RegExp(`${created.id}\\s+Active`));
    assert.equal((await json('schedules', 'pause', created.id)).status, 'Paused');
    assert.deepEqual(
      ((await json('schedules', 'list', '--status', 'Paused', '--tag', 'cli-schedule')) as { id: string }[]).map(
        (s) => s.id,
      ),
      [created.id],
    );
    assert.equal((await json('schedules', 'resume', created.id)).status, 'Active');
    const run = await json('schedules', 'trigger', created.id);
    const watched = await punctual('calls', 'watch', run.serviceCallId, '--interval', '100');
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(env.target.hitsFor('/cli-schedule').length, 1);
    const deleted = await punctual('schedules', 'delete', created.id);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, `deleted ${created.id}\n`);
    const gone = await punctual('schedules', 'show', created.id);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /\(404\)/);
    const both = await punctual(
      'schedules',
      'create',
      '--cron',
      '* * * * *',
      '--every',
      '60',
      '--url',
      'https://x.test',
    );
    assert.equal(both.code, 2);
    assert.match(both.stderr, /exactly one of --cron and --every/);
    const badCron = await punctual('schedules', 'create', '--cron', '61 * * * *', '--url', env.target.url('/x'));
    assert.equal(badCron.code, 1);
    assert.match(badCron.stderr, /^error: Bad Request \(400\)/);
    assert.match(badCron.stderr, /\n {2}cron: /);
  });

  test('flow-limits put, show, list, delete; calls submit --flow-key; schedules create --flow-key', async () => {
    const key = `cli-flow-${Date.now()}`;
    const put = await json('flow-limits', 'put', key, '--rate', '2.5', '--burst', '3', '--concurrency', '1');
    assert.deepEqual([put.key, put.ratePerSecond, put.burst, put.concurrency], [key, 2.5, 3, 1]);
    const submitted = await json('calls', 'submit', '--url', env.target.url('/cli-flow'), '--flow-key', key);
    const watched = await punctual('calls', 'watch', submitted.id, '--interval', '100');
    assert.equal(watched.code, 0, watched.stderr);
    const call = await json('calls', 'show', submitted.id);
    assert.deepEqual(call.flowKeys, [key]);
    assert.equal(env.target.hitsFor('/cli-flow').length, 1);
    const schedule = await json(
      'schedules',
      'create',
      '--every',
      '3600',
      '--paused',
      '--url',
      env.target.url('/cli-flow-schedule'),
      '--flow-key',
      key,
      '--flow-key',
      'cli-other',
    );
    assert.deepEqual(schedule.flowKeys, [key, 'cli-other']);
    const scheduleShown = await punctual('schedules', 'show', schedule.id);
    assert.match(scheduleShown.stdout, new RegExp(`\\nflowKeys\\s+${key},cli-other\\n`));
    const run = await json('schedules', 'trigger', schedule.id);
    // Finished before the limit is shown below with nothing in flight.
    assert.equal((await punctual('calls', 'watch', run.serviceCallId, '--interval', '100')).code, 0);
    assert.deepEqual((await json('calls', 'show', run.serviceCallId)).flowKeys, [key, 'cli-other']);
    assert.equal((await punctual('schedules', 'delete', schedule.id)).code, 0);
    const shown = await punctual('flow-limits', 'show', key);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^key\\s+${key}\n`));
    assert.match(shown.stdout, /\nconcurrency\s+1\n/);
    assert.match(shown.stdout, /\ninFlight\s+0\n/);
    const table = await punctual('flow-limits', 'list');
    assert.match(table.stdout, /^KEY\s+RATEPERSECOND\s+BURST\s+CONCURRENCY\s+UPDATEDAT\s+INFLIGHT\s+WAITING\n/);
    assert.match(table.stdout, new RegExp(`${key}\\s+2\\.5\\s+3\\s+1\\s+\\S+\\s+0\\s+0(\\n|$)`));
    const deleted = await punctual('flow-limits', 'delete', key);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, `deleted ${key}\n`);
    const gone = await punctual('flow-limits', 'show', key);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /\(404\)/);
    const neither = await punctual('flow-limits', 'put', key, '--burst', '2');
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /at least one of --rate and --concurrency/);
    const badRate = await punctual('flow-limits', 'put', key, '--rate', '0');
    assert.equal(badRate.code, 2);
  });

  test('an API error exits 1 with the problem’s title and detail; a usage error exits 2', async () => {
    const bad = await punctual('calls', 'show', 'not-a-uuid');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: Bad Request \(400\)\n/);
    assert.match(bad.stderr, /must match format "uuid"/);
    const conflict = await punctual(
      'calls',
      'cancel',
      (await json('calls', 'submit', '--url', env.target.url('/x'))).id,
    );
    assert.ok(conflict.code === 0 || /Conflict \(409\)/.test(conflict.stderr), conflict.stderr);
    const usage = await punctual('calls', 'submit');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--url is required/);
    const unknown = await punctual('calls', 'submit', '--url', 'https://example.com', '--nope');
    assert.equal(unknown.code, 2);
    const noKey = await run(process.execPath, [BIN, 'calls', 'list'], { env: { PATH: process.env.PATH } }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal((noKey as { code: number }).code, 2);
  });

  test('--help on every command; npx punctual works from the repository root', async () => {
    for (const args of [[], ['calls'], ['schedules'], ['flow-limits'], ['secrets']]) {
      const r = await punctual(...args, '--help');
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^Usage: punctual/);
    }
    for (const command of ['submit', 'list', 'show', 'cancel', 'watch', 'replay', 'reschedule']) {
      const r = await punctual('calls', command, '--help');
      assert.equal(r.code, 0, command);
      assert.match(r.stdout, new RegExp(`^Usage: punctual calls ${command}`));
      assert.match(r.stdout, /--api-url URL/);
    }
    for (const command of ['create', 'list', 'show', 'pause', 'resume', 'trigger', 'delete']) {
      assert.match(
        (await punctual('schedules', command, '--help')).stdout,
        new RegExp(`^Usage: punctual schedules ${command}`),
      );
    }
    for (const command of ['put', 'list', 'show', 'delete']) {
      assert.match(
        (await punctual('flow-limits', command, '--help')).stdout,
        new RegExp(`^Usage: punctual flow-limits ${command}`),
      );
    }
    for (const command of ['list', 'rotate']) {
      assert.match(
        (await punctual('secrets', command, '--help')).stdout,
        new RegExp(`^Usage: punctual secrets ${command}`),
      );
    }
    const npx = await run('npx', ['--no-install', 'punctual', '--help'], { cwd: PROJECT_ROOT });
    assert.match(npx.stdout, /calls submit/);
  });
});
