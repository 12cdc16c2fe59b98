import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Punctual } from '@punctual/client';
import type { BrowserContext, Page } from 'playwright';
import { CONSOLE_CSP } from '../../api/routes/console';
import { clientFor } from '../clients/support';
import type { TestEnv } from '../support/env';
import { eventually } from '../support/net';
import { noHorizontalScroll, startConsoleTest, WAIT, ZONE, type ConsoleTest } from './support';

/**
 * The console in a real Chromium against the real service (./support.ts sets both up).
 * Everything is done as a person would: by accessible names, with the keyboard where it matters,
 * in a browser whose zone is not UTC.
 */

let t: ConsoleTest;
let env: TestEnv;
let context: BrowserContext;
let page: Page;
let a: Punctual;
let base: string;

before(async () => {
  t = await startConsoleTest();
  ({ env, context, page, a, base } = t);
});

after(async () => {
  await t?.close();
});

function row(id: string) {
  return page.locator(`tr[data-call-id="${id}"]`);
}

async function submit(path: string, dueInMs = 0, tags: string[] = []) {
  return a.calls.submit({
    request: { method: 'GET', url: env.target.url(path) },
    dueAt: new Date(Date.now() + dueInMs).toISOString(),
    tags,
  });
}

describe('console', () => {
  test('served with a strict Content-Security-Policy, no external resource', async () => {
    const response = await page.goto(`${base}/console/`);
    assert.equal(response?.status(), 200);
    const csp = response.headers()['content-security-policy'];
    assert.equal(csp, CONSOLE_CSP);
    assert.match(csp ?? '', /default-src 'none'/);
    assert.doesNotMatch(csp ?? '', /unsafe-inline|unsafe-eval|\*/);
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    await page.reload();
    await page.getByLabel('API key').waitFor(WAIT);
    assert.ok(
      requested.every((url) => url.startsWith(base)),
      `requests outside the service: ${requested.filter((u) => !u.startsWith(base)).join(', ')}`,
    );
  });

  test('a wrong key is refused with a clear message and not kept', async () => {
    await page.getByLabel('API key').fill('not-a-key-of-anyone-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor(WAIT);
    assert.equal(await page.evaluate<number>('sessionStorage.length'), 0);
  });

  test('sign in with the keyboard; the key is in sessionStorage only, never in the URL or a cookie', async () => {
    await page.getByLabel('API key').fill('');
    await page.getByLabel('API key').focus();
    await page.keyboard.type(env.tenants.a.key);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Calls', level: 1 }).waitFor(WAIT);
    assert.equal(await page.getByText('Loading the console…').count(), 0, 'the placeholder is gone once the app runs');
    assert.equal(await page.evaluate<string | null>("sessionStorage.getItem('punctual.apiKey')"), env.tenants.a.key);
    assert.ok(!page.url().includes(env.tenants.a.key));
    assert.deepEqual(await context.cookies(), []);
  });

  test('a call goes Scheduled → Running → Succeeded in the list without a reload, and the chart counts it', async () => {
    env.target.route('/console/slow', () => ({ status: 200, body: 'hello', delayMs: 4_000 }));
    await page.evaluate('window.notReloaded = true');
    const call = await submit('/console/slow', 6_000, ['live']);
    await row(call.id).locator('.badge', { hasText: 'Scheduled' }).waitFor(WAIT);
    await row(call.id).locator('.badge', { hasText: 'Running' }).waitFor(WAIT);
    await row(call.id).locator('.badge', { hasText: 'Succeeded' }).waitFor(WAIT);
    assert.equal(await page.evaluate<boolean | undefined>('window.notReloaded'), true);
    await eventually(
      'the chart to count the call',
      async () => {
        const label = await page.getByRole('img', { name: /Calls in the last hour/ }).getAttribute('aria-label');
        return /Succeeded [1-9]/.test(label ?? '') ? label : undefined;
      },
      20_000,
      500,
    );

    await row(call.id).getByRole('link').click();
    await page.getByRole('heading', { name: `Call ${call.id}` }).waitFor(WAIT);
    const attempts = page.getByRole('list', { name: 'Attempts' });
    await attempts.getByText('Attempt 1').waitFor(WAIT);
    assert.match(await attempts.innerText(), /HTTP 200/);
    await page.getByText('Response snippet (utf8)').click();
    await page.getByText('hello', { exact: true }).waitFor(WAIT);
  });

  test('filters: status and tag narrow the list', async () => {
    const failed = await submit('/status/500', 0, ['filter-me']);
    await a.calls.waitFor(failed.id, { timeoutMs: 30_000, intervalMs: 100 });
    const scheduled = await submit('/console/later', 86_400_000, ['filter-me']);
    await page.goto(`${base}/console/#/calls`);
    await page.getByLabel('Tags (comma-separated, all must match)').fill('filter-me');
    await page.getByRole('checkbox', { name: 'Failed' }).check();
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await row(failed.id).waitFor(WAIT);
    await eventually('the list to show the failed call alone', async () =>
      (await page.locator('tbody tr[data-call-id]').count()) === 1 && (await row(failed.id).count()) === 1
        ? true
        : undefined,
    );
    assert.equal(await row(scheduled.id).count(), 0);
  });

  test('cancel a scheduled call', async () => {
    const call = await submit('/console/cancel-me', 86_400_000);
    await page.goto(`${base}/console/#/calls/${call.id}`);
    await page.getByRole('button', { name: 'Cancel call' }).click();
    await page.locator('.badge', { hasText: 'Cancelled' }).first().waitFor(WAIT);
    assert.equal((await a.calls.get(call.id)).status, 'Cancelled');
    assert.equal(await page.getByRole('button', { name: 'Cancel call' }).count(), 0);
  });

  test('reschedule with a picker in the browser’s zone, shown with its UTC instant', async () => {
    const call = await submit('/console/move-me', 86_400_000);
    await page.goto(`${base}/console/#/calls/${call.id}`);
    const picker = page.getByLabel(`New due time (${ZONE})`);
    await picker.waitFor(WAIT);
    // 09:30 on the wall clock of New York, 30 days ahead: the browser converts it, the page shows the UTC instant.
    const target = new Date(Date.now() + 30 * 86_400_000);
    const day = target.toISOString().slice(0, 10);
    await picker.fill(`${day}T09:30:00`);
    const expected = await page.evaluate<string>(`new Date('${day}T09:30:00').toISOString()`);
    assert.ok(['13:30', '14:30'].includes(expected.slice(11, 16)), `09:30 in New York is ${expected}`);
    await page.getByText(`= ${expected.replace('.000Z', 'Z')} UTC`).waitFor(WAIT);
    await page.getByRole('button', { name: 'Reschedule' }).click();
    await page.getByRole('status').filter({ hasText: 'Rescheduled.' }).waitFor(WAIT);
    // The detail reads the read model, which trails the reschedule by a moment.
    await eventually('the API to show the new due time', async () =>
      (await a.calls.get(call.id)).dueAt === expected ? true : undefined,
    );
    await page.locator(`time[data-testid="due-at"][datetime="${expected}"]`).waitFor(WAIT);
    assert.match(await page.locator('.utc').first().innerText(), new RegExp(expected.replace('.000Z', 'Z')));
  });

  test('replay a failed call: the console opens the new call, which records replayOf', async () => {
    const failed = await submit('/status/503');
    await a.calls.waitFor(failed.id, { timeoutMs: 30_000, intervalMs: 100 });
    await page.goto(`${base}/console/#/calls/${failed.id}`);
    await page.locator('.badge', { hasText: 'Failed' }).first().waitFor(WAIT);
    await page.getByRole('button', { name: 'Replay call' }).click();
    await page.waitForURL((url) => !url.hash.includes(failed.id), WAIT);
    const replayId = decodeURIComponent(new URL(page.url()).hash.replace('#/calls/', ''));
    await page.getByRole('heading', { name: `Call ${replayId}` }).waitFor(WAIT);
    assert.equal((await a.calls.get(replayId)).replayOf, failed.id);
    await page.getByRole('link', { name: failed.id }).waitFor(WAIT);
  });

  test('bulk: cancel selected, and cancel every call a filter matches, with the counts the API answers', async () => {
    const tag = 'bulk-console';
    const calls = await Promise.all([1, 2, 3].map(() => submit('/console/bulk', 86_400_000, [tag])));
    await page.goto(`${base}/console/#/calls`);
    await page.reload();
    await page.getByLabel('Tags (comma-separated, all must match)').fill(tag);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    for (const c of calls) await row(c.id).waitFor(WAIT);
    await page.getByRole('checkbox', { name: `Select call ${calls[0]!.id}` }).check();
    await page.getByRole('button', { name: 'Cancel selected (1)' }).click();
    await page.getByRole('status').filter({ hasText: 'Cancelled 1 of 1 selected' }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Cancel all matching' }).click();
    await page.getByRole('status').filter({ hasText: 'matched 3, affected 2' }).waitFor(WAIT);
    // The counts are the API's answer; the calls' read model catches up right after.
    for (const c of calls)
      await eventually(`${c.id} cancelled`, async () =>
        (await a.calls.get(c.id)).status === 'Cancelled' ? true : undefined,
      );
  });

  test('signing secrets: see and rotate', async () => {
    await page.getByRole('link', { name: 'Signing secrets' }).click();
    const rows = page.locator('td.secret');
    await rows.first().waitFor(WAIT);
    const before = await rows.count();
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByRole('status').filter({ hasText: 'Rotated' }).waitFor(WAIT);
    assert.equal(await rows.count(), before + 1);
    assert.equal((await a.secrets.list()).length, before + 1);
    assert.match(await rows.first().innerText(), /^whsec_/);
  });

  test('another tenant’s call id typed into the URL: not found, nothing of it shown', async () => {
    const theirs = await clientFor(env, env.tenants.b).calls.submit({
      request: { method: 'GET', url: env.target.url('/console/tenant-b-secret-path') },
    });
    await page.goto(`${base}/console/#/calls/${theirs.id}`);
    await page.getByRole('heading', { name: 'Call not found' }).waitFor(WAIT);
    assert.doesNotMatch(await page.content(), /tenant-b-secret-path/);
  });

  test('readable on a 390-px phone screen and at 1280×800: no sideways scrolling', async () => {
    const call = await submit('/console/phone');
    await a.calls.waitFor(call.id, { timeoutMs: 30_000, intervalMs: 100 });
    for (const viewport of [
      { width: 390, height: 844 },
      { width: 1280, height: 800 },
    ]) {
      await page.setViewportSize(viewport);
      await page.goto(`${base}/console/#/calls`);
      await row(call.id).waitFor(WAIT);
      await noHorizontalScroll(page);
      await page.goto(`${base}/console/#/calls/${call.id}`);
      await page.getByRole('list', { name: 'Attempts' }).waitFor(WAIT);
      await noHorizontalScroll(page);
    }
  });

  test('sign out forgets the key', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor(WAIT);
    assert.equal(await page.evaluate<string | null>("sessionStorage.getItem('punctual.apiKey')"), null);
    await page.reload();
    await page.getByLabel('API key').waitFor(WAIT);
    assert.deepEqual(t.cspViolations, [], 'no Content-Security-Policy violation on any page');
  });
});
