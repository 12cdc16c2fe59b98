import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PunctualError, type Punctual } from '@punctual/client';
import type { Page } from 'playwright';
import { clientFor } from '../clients/support';
import type { TestEnv } from '../support/env';
import { eventually } from '../support/net';
import { focusedLabel, noHorizontalScroll, signIn, startConsoleTest, WAIT, ZONE, type ConsoleTest } from './support';

/**
 * The console's Schedules pages in a real Chromium against the real service (./support.ts sets
 * both up), driven by accessible names as a person would.
 */

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

let t: ConsoleTest;
let env: TestEnv;
let page: Page;
let a: Punctual;
let base: string;
/** The schedule the form creates; the tests after the create act on it in turn. */
let scheduleId = '';
let runId = '';

before(async () => {
  t = await startConsoleTest();
  ({ env, page, a, base } = t);
});

after(async () => {
  await t?.close();
});

function row(id: string) {
  return page.locator(`tr[data-schedule-id="${id}"]`);
}

/** What the page shows for an instant in New York, formatted as the console formats it. */
async function newYork(iso: string): Promise<string> {
  return page.evaluate<string>(
    `new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium', timeZone: '${ZONE}' })` +
      `.format(new Date('${iso}'))`,
  );
}

const utc = (iso: string) => new Date(iso).toISOString().replace('.000Z', 'Z');

async function openForm(): Promise<void> {
  const toggle = page.getByRole('button', { name: 'New schedule' });
  await toggle.waitFor(WAIT);
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  await page.getByRole('form', { name: 'New schedule' }).waitFor(WAIT);
}

describe('console: schedules', () => {
  test('sign in; Schedules sits in the navigation beside Calls, Flow limits and Signing secrets', async () => {
    await signIn(t);
    const nav = page.getByRole('navigation', { name: 'Main' });
    assert.deepEqual(await nav.getByRole('link').allInnerTexts(), [
      'Calls',
      'Schedules',
      'Flow limits',
      'Signing secrets',
    ]);
    await nav.getByRole('link', { name: 'Schedules' }).click();
    await page.getByRole('heading', { name: 'Schedules', level: 1 }).waitFor(WAIT);
    assert.equal(await nav.getByRole('link', { name: 'Schedules' }).getAttribute('aria-current'), 'page');
    assert.equal(await nav.getByRole('link', { name: 'Calls' }).getAttribute('aria-current'), null);
    await page.getByText('No schedules match.').waitFor(WAIT);
  });

  test('create every 3600 s through the form: listed with its next run in New York time and UTC', async () => {
    await openForm();
    await page.getByRole('radio', { name: 'Every N seconds' }).check();
    await page.getByLabel('Interval (seconds)').fill('3600');
    assert.equal(await page.getByLabel('Time zone (IANA, for the cron fields)').inputValue(), ZONE);
    await page.getByLabel('Method', { exact: true }).selectOption('POST');
    await page.getByLabel('URL', { exact: true }).fill(env.target.url('/console/scheduled'));
    await page
      .getByLabel('Headers (optional, one "Name: value" a line)')
      .fill('Authorization: Bearer very-secret-token\nX-Trace: visible-value');
    await page.getByLabel('Body (optional, JSON)').fill('{"hello":"schedule"}');
    await page.getByLabel('Tags (comma-separated)').fill('console-sched, hourly');
    await page.getByRole('button', { name: 'Create schedule' }).click();

    const notice = page.getByRole('status').filter({ hasText: 'Created schedule' });
    await notice.waitFor(WAIT);
    scheduleId = UUID.exec(await notice.innerText())?.[0] ?? '';
    assert.match(scheduleId, UUID);
    const created = await a.schedules.get(scheduleId);
    assert.equal(created.status, 'Active');
    assert.equal(created.spec.intervalSeconds, 3600);
    assert.equal(created.spec.cron, null);
    assert.equal(created.request.method, 'POST');
    assert.equal(created.request.url, env.target.url('/console/scheduled'));
    assert.deepEqual(created.tags, ['console-sched', 'hourly']);

    await row(scheduleId).waitFor(WAIT);
    assert.equal(await row(scheduleId).locator('td.spec').innerText(), 'every 3600 s');
    await row(scheduleId).locator('.badge', { hasText: 'Active' }).waitFor(WAIT);
    assert.match(await row(scheduleId).innerText(), /console-sched, hourly/);
    // The next run: on the hour (interval counted from the epoch), within the hour, shown in both zones.
    const next = row(scheduleId).locator('td.next-run time');
    await next.waitFor(WAIT);
    const iso = (await next.getAttribute('datetime')) ?? '';
    const at = Date.parse(iso);
    assert.equal(at % 3_600_000, 0, `next run ${iso} is on the hour`);
    assert.ok(at > Date.now() - 60_000 && at <= Date.now() + 3_600_000, `next run ${iso} within the hour`);
    assert.equal(await next.innerText(), await newYork(iso));
    assert.equal(await row(scheduleId).locator('td.next-run .utc').innerText(), `(${utc(iso)} UTC)`);
  });

  test('its detail: spec, request with secret headers redacted, the next 5 runs, no run yet', async () => {
    await row(scheduleId)
      .getByRole('link', { name: `Schedule ${scheduleId}` })
      .click();
    await page.getByRole('heading', { name: `Schedule ${scheduleId}` }).waitFor(WAIT);
    assert.equal(await page.getByTestId('spec').innerText(), 'every 3600 s');
    const headers = page.getByRole('table', { name: 'Request headers' });
    await headers.waitFor(WAIT);
    assert.equal(
      await headers
        .getByRole('row', { name: /authorization/i })
        .getByRole('cell')
        .nth(1)
        .innerText(),
      '[REDACTED]',
    );
    assert.match(await headers.innerText(), /visible-value/);
    assert.doesNotMatch(await page.content(), /very-secret-token/);
    assert.match(await page.locator('p.url').innerText(), /^POST http:\/\/127\.0\.0\.1:\d+\/console\/scheduled$/);

    const nextRuns = page.getByRole('list', { name: 'Next runs' }).locator('time');
    await eventually('five next runs', async () => ((await nextRuns.count()) === 5 ? true : undefined), 20_000, 200);
    const times: number[] = [];
    for (const time of await nextRuns.all()) times.push(Date.parse((await time.getAttribute('datetime')) ?? ''));
    assert.deepEqual(
      times.slice(1).map((t, i) => t - times[i]!),
      [3_600_000, 3_600_000, 3_600_000, 3_600_000],
      'the next runs an hour apart',
    );
    await page.getByText('No run yet.').waitFor(WAIT);
  });

  test('Run now: the new call is linked, opens its call page, and is listed among the recent runs and the schedule’s calls', async () => {
    const other = await a.calls.submit({ request: { method: 'GET', url: env.target.url('/console/not-scheduled') } });
    await page.getByRole('button', { name: `Run now: schedule ${scheduleId}` }).click();
    const notice = page.getByRole('status').filter({ hasText: 'Run made now' });
    await notice.waitFor(WAIT);
    const link = notice.getByRole('link');
    runId = await link.innerText();
    assert.match(runId, UUID);
    assert.equal(
      (await eventually('the run in the calls read model', async () => a.calls.get(runId).catch(() => undefined)))
        .scheduleId,
      scheduleId,
    );
    // The page follows the schedule: the run shows among the recent runs by itself.
    await page.getByRole('list', { name: 'Recent runs' }).getByRole('link', { name: runId }).waitFor(WAIT);
    await eventually('the target hit by the run', async () =>
      env.target.hitsFor('/console/scheduled').length > 0 ? true : undefined,
    );

    await link.click();
    await page.getByRole('heading', { name: `Call ${runId}` }).waitFor(WAIT);
    await page.getByRole('link', { name: scheduleId }).click();
    await page.getByRole('heading', { name: `Schedule ${scheduleId}` }).waitFor(WAIT);

    await page.getByRole('link', { name: 'All calls of this schedule' }).click();
    await page.getByRole('heading', { name: 'Calls', level: 1 }).waitFor(WAIT);
    assert.equal(await page.getByLabel('Runs of schedule').inputValue(), scheduleId);
    await page.locator(`tr[data-call-id="${runId}"]`).waitFor(WAIT);
    await eventually('the list to hold the schedule’s run alone', async () =>
      (await page.locator('tbody tr[data-call-id]').count()) === 1 ? true : undefined,
    );
    assert.equal(await page.locator(`tr[data-call-id="${other.id}"]`).count(), 0);
  });

  test('Pause → Paused with no next run, Resume → Active again, by keyboard from the list', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Schedules' }).click();
    await row(scheduleId).waitFor(WAIT);
    await page.getByRole('button', { name: `Pause schedule ${scheduleId}` }).focus();
    await page.keyboard.press('Enter');
    await row(scheduleId).locator('.badge', { hasText: 'Paused' }).waitFor(WAIT);
    assert.equal((await a.schedules.get(scheduleId)).status, 'Paused');
    assert.equal(await row(scheduleId).locator('td.next-run').innerText(), 'none');
    // The same button, now Resume, keeps the focus: Enter again resumes.
    await eventually('the focus on Resume', async () =>
      (await focusedLabel(page)) === `Resume schedule ${scheduleId}` ? true : undefined,
    );
    await page.keyboard.press('Enter');
    await row(scheduleId).locator('.badge', { hasText: 'Active' }).waitFor(WAIT);
    assert.equal((await a.schedules.get(scheduleId)).status, 'Active');
    await row(scheduleId).locator('td.next-run time').waitFor(WAIT);
  });

  test('the status filter narrows the list', async () => {
    await page.getByLabel('Status', { exact: true }).selectOption('Paused');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No schedules match.').waitFor(WAIT);
    assert.equal(await row(scheduleId).count(), 0);
    await page.getByLabel('Status', { exact: true }).selectOption('Active');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await row(scheduleId).waitFor(WAIT);
  });

  test('Delete asks first (Escape keeps it), then deletes: gone from the list and the API, its call kept', async () => {
    await page.getByRole('button', { name: `Delete schedule ${scheduleId}` }).click();
    const confirm = page.getByRole('button', { name: `Confirm delete of schedule ${scheduleId}` });
    await confirm.waitFor(WAIT);
    await eventually('the focus on Confirm delete', async () =>
      (await focusedLabel(page)) === `Confirm delete of schedule ${scheduleId}` ? true : undefined,
    );
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: `Delete schedule ${scheduleId}` }).waitFor(WAIT);
    await eventually('the focus back on Delete', async () =>
      (await focusedLabel(page)) === `Delete schedule ${scheduleId}` ? true : undefined,
    );
    assert.equal((await a.schedules.get(scheduleId)).id, scheduleId, 'Escape deleted nothing');

    await page.getByRole('button', { name: `Delete schedule ${scheduleId}` }).click();
    await confirm.click();
    await page
      .getByRole('status')
      .filter({ hasText: `Deleted schedule ${scheduleId}.` })
      .waitFor(WAIT);
    await eventually('the row gone', async () => ((await row(scheduleId).count()) === 0 ? true : undefined));
    await assert.rejects(a.schedules.get(scheduleId), (err) => err instanceof PunctualError && err.status === 404);
    assert.equal((await a.calls.get(runId)).scheduleId, scheduleId, 'the call it made goes on');
  });

  test('a bad cron is refused: the error names cron, the input is marked, nothing is created', async () => {
    const before = (await a.schedules.page()).items.length;
    await openForm();
    await page.getByRole('radio', { name: 'On a cron expression' }).check();
    await page.getByLabel('Cron (minute hour day-of-month month day-of-week)').fill('61 * * * *');
    await page.getByLabel('URL', { exact: true }).fill(env.target.url('/console/bad-cron'));
    await page.getByRole('button', { name: 'Create schedule' }).click();
    const alert = page.getByRole('form', { name: 'New schedule' }).getByRole('alert');
    await alert.waitFor(WAIT);
    assert.match(await alert.innerText(), /\(400\).*\bcron\b/);
    assert.equal(await page.locator('#s-cron').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#s-url').getAttribute('aria-invalid'), null);
    assert.equal((await a.schedules.page()).items.length, before);
  });

  test('another tenant’s schedule id typed into the URL: not found, nothing of it shown', async () => {
    const theirs = await clientFor(env, env.tenants.b).schedules.create({
      intervalSeconds: 3600,
      paused: true,
      request: { method: 'GET', url: env.target.url('/console/tenant-b-schedule-secret') },
      tags: ['tenant-b-tag'],
    });
    await page.goto(`${base}/console/#/schedules/${theirs.id}`);
    await page.getByRole('heading', { name: 'Schedule not found' }).waitFor(WAIT);
    assert.doesNotMatch(await page.content(), /tenant-b-schedule-secret|tenant-b-tag/);
    await page.goto(`${base}/console/#/schedules/not-a-uuid`);
    await page.getByRole('heading', { name: 'Schedule not found' }).waitFor(WAIT);
    await page.goto(`${base}/console/#/schedules`);
    await page.getByRole('heading', { name: 'Schedules', level: 1 }).waitFor(WAIT);
    await page.locator('tbody tr').first().waitFor(WAIT);
    assert.equal(await row(theirs.id).count(), 0);
    assert.doesNotMatch(await page.content(), /tenant-b-schedule-secret/);
  });

  test('readable on a 390-px phone screen and at 1280×800, with no Content-Security-Policy violation', async () => {
    const schedule = await a.schedules.create({
      cron: '30 9 * * 1-5',
      timezone: 'Europe/Paris',
      request: { method: 'POST', url: env.target.url('/console/a-rather-long-path/for-a-narrow-screen?with=query') },
      tags: ['phone'],
    });
    for (const viewport of [
      { width: 390, height: 844 },
      { width: 1280, height: 800 },
    ]) {
      await page.setViewportSize(viewport);
      // The list reads the schedules when opened (this one was made through the API meanwhile).
      await page.goto(`${base}/console/#/schedules`);
      await page.reload();
      await row(schedule.id).waitFor(WAIT);
      assert.equal(await row(schedule.id).locator('td.spec').innerText(), 'cron 30 9 * * 1-5 (Europe/Paris)');
      await openForm();
      await noHorizontalScroll(page);
      await page.goto(`${base}/console/#/schedules/${schedule.id}`);
      await page.getByRole('list', { name: 'Next runs' }).waitFor(WAIT);
      await noHorizontalScroll(page);
    }
    assert.deepEqual(t.cspViolations, [], 'no Content-Security-Policy violation on any page');
  });
});
