import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PunctualError, type Punctual } from '@punctual/client';
import type { Page } from 'playwright';
import { clientFor } from '../clients/support';
import type { TestEnv } from '../support/env';
import { eventually } from '../support/net';
import {
  focusedLabel,
  noHorizontalScroll,
  screenshot,
  signIn,
  startConsoleTest,
  WAIT,
  type ConsoleTest,
} from './support';

/**
 * The console's Flow limits pages in a real Chromium against the real service (./support.ts sets
 * both up): define through the form (by keyboard), the API's refusals naming the field, a
 * limit's detail following its attempts in flight and its waiting calls, a waiting call's page,
 * edit, delete behind a confirm step, another tenant's key. Keys carry a `:`, as real ones do.
 */

const KEY = 'customer:42';

let t: ConsoleTest;
let env: TestEnv;
let page: Page;
let a: Punctual;
let base: string;
/** The calls made to wait for KEY; the tests after the busy one follow one of them. */
let waiter = '';

before(async () => {
  t = await startConsoleTest();
  ({ env, page, a, base } = t);
});

after(async () => {
  await t?.close();
});

function row(key: string) {
  return page.locator(`tr[data-flow-key="${key}"]`);
}

async function cell(key: string, column: string): Promise<string> {
  return row(key).locator(`td.${column}`).innerText();
}

async function openForm(): Promise<void> {
  const toggle = page.getByRole('button', { name: 'New flow limit' });
  await toggle.waitFor(WAIT);
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  await page.getByRole('form', { name: 'New flow limit' }).waitFor(WAIT);
}

const fact = (id: string) => page.getByTestId(id).innerText();

describe('console: flow limits', () => {
  test('sign in; Flow limits sits in the navigation; none yet', async () => {
    await signIn(t);
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Flow limits' }).click();
    await page.getByRole('heading', { name: 'Flow limits', level: 1 }).waitFor(WAIT);
    assert.equal(await nav.getByRole('link', { name: 'Flow limits' }).getAttribute('aria-current'), 'page');
    await page.getByText('No flow limits yet.').waitFor(WAIT);
  });

  test('define a limit with the keyboard alone: listed with its default burst, nothing in flight', async () => {
    await page.getByRole('button', { name: 'New flow limit' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('form', { name: 'New flow limit' }).waitFor(WAIT);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate<string | undefined>('document.activeElement?.id'), 'fl-key');
    await page.keyboard.type(KEY);
    await page.keyboard.press('Tab');
    await page.keyboard.type('5');
    await page.keyboard.press('Tab'); // burst: left empty, one second's worth
    await page.keyboard.press('Tab');
    await page.keyboard.type('1');
    await page.keyboard.press('Enter');
    await page
      .getByRole('status')
      .filter({ hasText: `Defined flow limit ${KEY}.` })
      .waitFor(WAIT);

    const limit = await a.flowLimits.get(KEY);
    assert.deepEqual([limit.ratePerSecond, limit.burst, limit.concurrency], [5, 5, 1]);
    await row(KEY).waitFor(WAIT);
    assert.deepEqual(
      [
        await cell(KEY, 'rate'),
        await cell(KEY, 'burst'),
        await cell(KEY, 'concurrency'),
        await cell(KEY, 'in-flight'),
        await cell(KEY, 'waiting'),
      ],
      ['5', '5', '1', '0', '0'],
    );
    // The key's ':' is encoded in the console's own route as in the API's path.
    assert.equal(await row(KEY).getByRole('link', { name: KEY }).getAttribute('href'), '#/flow-limits/customer%3A42');
    assert.equal(await page.locator('#fl-key').inputValue(), '', 'the form is empty for the next one');
  });

  test('the API’s refusals name the field: rate 0, then neither rate nor concurrency; nothing defined', async () => {
    await openForm();
    await page.getByLabel('Key', { exact: true }).fill('refused:1');
    await page.getByLabel('Rate (per second)').fill('0');
    await page.getByRole('button', { name: 'Define flow limit' }).click();
    const alert = page.getByRole('form', { name: 'New flow limit' }).getByRole('alert');
    await alert.waitFor(WAIT);
    assert.match(await alert.innerText(), /\(400\).*\bratePerSecond\b/);
    assert.equal(await page.locator('#fl-rate').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#fl-rate').getAttribute('aria-describedby'), 'new-limit-error');
    assert.equal(await page.locator('#fl-concurrency').getAttribute('aria-invalid'), null);

    await page.getByLabel('Rate (per second)').fill('');
    await page.getByRole('button', { name: 'Define flow limit' }).click();
    await eventually('the second refusal', async () =>
      /or concurrency must be given/.test(await alert.innerText()) ? true : undefined,
    );
    assert.match(await alert.innerText(), /\(400\).*ratePerSecond/);
    await assert.rejects(a.flowLimits.get('refused:1'), (err) => err instanceof PunctualError && err.status === 404);
    assert.equal(await row('refused:1').count(), 0);
  });

  test('calls under concurrency 1 to a slow target: in flight and waiting counted in the list and the detail, the waiting calls linked', async () => {
    env.target.route('/console/flow-slow', () => ({ status: 200, body: 'slow', delayMs: 8_000 }));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const submitted = await a.calls.submit({
        request: { method: 'GET', url: env.target.url('/console/flow-slow') },
        flowKeys: [KEY],
      });
      ids.push(submitted.id);
    }

    await eventually(
      'the list to count one in flight and the others waiting',
      async () =>
        (await cell(KEY, 'in-flight')) === '1' && Number(await cell(KEY, 'waiting')) >= 1 ? true : undefined,
      20_000,
      200,
    );
    await row(KEY).getByRole('link', { name: KEY }).click();
    await page.getByRole('heading', { name: `Flow limit ${KEY}` }).waitFor(WAIT);
    assert.equal(new URL(page.url()).hash, '#/flow-limits/customer%3A42');
    assert.equal(await fact('concurrency'), '1');
    await eventually('the detail to show one in flight and a waiting call', async () =>
      (await fact('in-flight')) === '1' && Number(await fact('waiting')) >= 1 ? true : undefined,
    );
    const waiting = page.getByRole('table', { name: 'Waiting calls, the next admitted first' });
    await waiting.locator('tr[data-call-id]').first().waitFor(WAIT);
    const listed: (string | null)[] = [];
    for (const r of await waiting.locator('tr[data-call-id]').all()) listed.push(await r.getAttribute('data-call-id'));
    assert.ok(
      listed.every((id) => id !== null && ids.includes(id)),
      `waiting ${listed.join(', ')} among ${ids.join(', ')}`,
    );
    assert.match(await waiting.locator('tr[data-call-id] .utc').first().innerText(), /UTC\)$/);
    await screenshot(page, 'flow-limit-busy');

    // The one listed last is admitted last (whichever call asked first took the place, not the
    // first submitted): its page says what it waits for.
    waiter = listed[listed.length - 1]!;
    await waiting.getByRole('link', { name: `Call ${waiter}` }).click();
    await page.getByRole('heading', { name: `Call ${waiter}` }).waitFor(WAIT);
    await page.getByRole('list', { name: 'Waiting for' }).getByRole('link', { name: KEY }).waitFor(WAIT);
    assert.equal(
      await page.getByRole('list', { name: 'Flow keys' }).getByRole('link', { name: KEY }).getAttribute('href'),
      '#/flow-limits/customer%3A42',
    );
  });

  test('once admitted, the call’s attempt shows how long the limit held it back; Waiting for is gone', async () => {
    const attempts = page.getByRole('list', { name: 'Attempts' });
    await attempts.getByText('Attempt 1').waitFor({ timeout: 40_000 });
    await page.locator('.badge', { hasText: 'Succeeded' }).first().waitFor(WAIT);
    const done = await a.calls.get(waiter);
    const held = done.attempts[0]?.throttledMs;
    assert.ok(held !== undefined && held > 0, `throttledMs ${held}`);
    assert.match(await attempts.innerText(), new RegExp(`held back ${Math.round(held)} ms by flow limits`));
    assert.equal(await page.getByRole('list', { name: 'Waiting for' }).count(), 0);
  });

  test('edit the limit from its page: the form starts from its values, the page shows the new ones', async () => {
    await page.getByRole('list', { name: 'Flow keys' }).getByRole('link', { name: KEY }).click();
    await page.getByRole('heading', { name: `Flow limit ${KEY}` }).waitFor(WAIT);
    await eventually('nothing in flight any more', async () =>
      (await fact('in-flight')) === '0' && (await fact('waiting')) === '0' ? true : undefined,
    );
    await page.getByText('No call is waiting for this limit.').waitFor(WAIT);
    await page.getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('form', { name: `Edit flow limit ${KEY}` });
    await form.waitFor(WAIT);
    assert.equal(await form.getByLabel('Rate (per second)').inputValue(), '5');
    assert.equal(await form.getByLabel('Burst (optional, with a rate)').inputValue(), '5');
    assert.equal(await form.getByLabel('Concurrency (attempts at once)').inputValue(), '1');
    await form.getByLabel('Rate (per second)').fill('2.5');
    await form.getByLabel('Burst (optional, with a rate)').fill('');
    await form.getByLabel('Concurrency (attempts at once)').fill('3');
    await form.getByRole('button', { name: 'Save flow limit' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Replaced flow limit ${KEY}.` })
      .waitFor(WAIT);
    await eventually('the page to show the new values', async () =>
      (await fact('concurrency')) === '3' ? true : undefined,
    );
    assert.equal(await fact('rate'), '2.5');
    assert.equal(await fact('burst'), '3', 'burst back to its default, ceil(2.5)');
    const limit = await a.flowLimits.get(KEY);
    assert.deepEqual([limit.ratePerSecond, limit.burst, limit.concurrency], [2.5, 3, 3]);
  });

  test('delete asks first (Escape keeps it), then deletes: back on the list, gone from it and the API', async () => {
    const name = `Delete flow limit ${KEY}`;
    await page.getByRole('button', { name }).click();
    await page.getByRole('button', { name: `Confirm delete of flow limit ${KEY}` }).waitFor(WAIT);
    await eventually('the focus on Confirm delete', async () =>
      (await focusedLabel(page)) === `Confirm delete of flow limit ${KEY}` ? true : undefined,
    );
    await page.keyboard.press('Escape');
    await eventually('the focus back on Delete', async () => ((await focusedLabel(page)) === name ? true : undefined));
    assert.equal((await a.flowLimits.get(KEY)).key, KEY, 'Escape deleted nothing');

    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: `Confirm delete of flow limit ${KEY}` }).click();
    await page.getByRole('heading', { name: 'Flow limits', level: 1 }).waitFor(WAIT);
    await page.getByText('No flow limits yet.').waitFor(WAIT);
    await assert.rejects(a.flowLimits.get(KEY), (err) => err instanceof PunctualError && err.status === 404);
  });

  test('another tenant’s key typed into the URL: not found, and not in the list; a malformed key too', async () => {
    await clientFor(env, env.tenants.b).flowLimits.put('tenant-b:only', { concurrency: 9 });
    // As typed, and the key the page says it looked for (a segment that is not percent-encoding stays as it is).
    for (const [typed, shown] of [
      ['tenant-b%3Aonly', 'tenant-b:only'],
      ['not%20a%20key!', 'not a key!'],
      ['%E0%A4%A', '%E0%A4%A'],
    ] as const) {
      await page.goto(`${base}/console/#/flow-limits/${typed}`);
      await page.getByRole('heading', { name: 'Flow limit not found' }).waitFor(WAIT);
      await page
        .getByRole('alert')
        .filter({ hasText: `No flow limit with key ${shown} for this API key.` })
        .waitFor(WAIT);
    }
    await page.getByRole('link', { name: 'Back to the flow limits' }).click();
    await page.getByText('No flow limits yet.').waitFor(WAIT);
    assert.doesNotMatch(await page.content(), /tenant-b:only/);
  });

  test('readable on a 390-px phone screen and at 1280×800, with no Content-Security-Policy violation', async () => {
    const key = 'host:api.a-rather-long-hostname-for-a-narrow-screen.example.com';
    await a.flowLimits.put(key, { ratePerSecond: 12.5, burst: 40, concurrency: 8 });
    for (const viewport of [
      { width: 390, height: 844 },
      { width: 1280, height: 800 },
    ]) {
      await page.setViewportSize(viewport);
      await page.goto(`${base}/console/#/flow-limits`);
      await page.reload();
      await row(key).waitFor(WAIT);
      await openForm();
      await noHorizontalScroll(page);
      // Every number on the screen, not behind a sideways scroll of the table.
      const waiting = await row(key).locator('td.waiting').boundingBox();
      assert.ok(
        waiting !== null && waiting.x + waiting.width <= viewport.width,
        `waiting at ${JSON.stringify(waiting)}`,
      );
      await screenshot(page, `flow-limits-${viewport.width}`);
      await row(key).getByRole('link', { name: key }).click();
      await page.getByRole('heading', { name: `Flow limit ${key}` }).waitFor(WAIT);
      await page.getByRole('button', { name: 'Edit' }).click();
      await page.getByRole('form', { name: `Edit flow limit ${key}` }).waitFor(WAIT);
      await noHorizontalScroll(page);
      await screenshot(page, `flow-limit-${viewport.width}`);
    }
    assert.deepEqual(t.cspViolations, [], 'no Content-Security-Policy violation on any page');
  });
});
