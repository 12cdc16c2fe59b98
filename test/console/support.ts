import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Punctual } from '@punctual/client';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright';
import { apiUrl, clientFor } from '../clients/support';
import { createTestEnv, PROJECT_ROOT, type TestEnv } from '../support/env';

/**
 * What every console test file sets up: the real service (api, worker and relay on the real
 * PostgreSQL and Temporal) and a real Chromium (Debian's package; Playwright's own download
 * cannot reach its host here) in a zone that is not UTC, at 1280×800, recording any
 * Content-Security-Policy violation the page reports.
 */

export const CHROMIUM = process.env.PUNCTUAL_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const ZONE = 'America/New_York';
export const WAIT = { timeout: 30_000 };
/** Screenshots go beside the other tests' leftovers, in the ignored .data folder. */
export const SCREENSHOTS = path.join(PROJECT_ROOT, '.data', 'test', 'console');

export interface ConsoleTest {
  env: TestEnv;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** The API as tenant a, whose key the tests sign in with. */
  a: Punctual;
  /** The service's origin: the console is `${base}/console/`. */
  base: string;
  cspViolations: string[];
  close(): Promise<void>;
}

export async function startConsoleTest(): Promise<ConsoleTest> {
  assert.ok(
    existsSync(CHROMIUM),
    `no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set PUNCTUAL_TEST_CHROMIUM`,
  );
  const env = await createTestEnv();
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ timezoneId: ZONE, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const cspViolations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    const opened = browser;
    return {
      env,
      browser: opened,
      context,
      page,
      a: clientFor(env),
      base: apiUrl(env),
      cspViolations,
      async close() {
        await opened.close();
        await env.close();
      },
    };
  } catch (err) {
    await browser?.close();
    await env.close();
    throw err;
  }
}

/** Opens the console and signs in with the key, as a person would: typed, then Enter. */
export async function signIn(t: ConsoleTest, key: string = t.env.tenants.a.key): Promise<void> {
  await t.page.goto(`${t.base}/console/`);
  await t.page.getByLabel('API key').fill(key);
  await t.page.keyboard.press('Enter');
  await t.page.getByRole('heading', { name: 'Calls', level: 1 }).waitFor(WAIT);
}

export async function noHorizontalScroll(page: Page): Promise<void> {
  const [scroll, width] = await page.evaluate<[number, number]>(
    '[document.documentElement.scrollWidth, window.innerWidth]',
  );
  assert.ok(scroll <= width, `page is ${scroll} px wide in a ${width} px window`);
}

/** The accessible name (aria-label) of the focused element. */
export async function focusedLabel(page: Page): Promise<string | null> {
  return page.evaluate<string | null>("document.activeElement?.getAttribute('aria-label') ?? null");
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
