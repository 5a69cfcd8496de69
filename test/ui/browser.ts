import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoRoot } from '../support/cli.js';

/** Where the dashboard tests keep a screenshot of each view (gitignored; CI keeps it as an artifact). */
export const SCREENSHOTS = join(repoRoot, 'test-artifacts', 'ui');

/** Debian's chromium (scripts/setup.sh installs it), headless; no browser download. */
export function openBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], headless: true });
}

/** A page in its own context, watched for console errors, page errors, failed requests and any request to another origin. */
export interface WatchedPage {
  page: Page;
  problems: string[];
  /** Every URL the page asked for. */
  requests: string[];
  close(): Promise<void>;
}

export async function watchedPage(browser: Browser, origin: string): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (r) => {
    requests.push(r.url());
    if (new URL(r.url()).origin !== origin) problems.push(`request to another origin: ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    // A stream the page itself ends (followed logs, top events on leaving the view) is no fault.
    const failure = r.failure()?.errorText ?? '';
    if (!/ERR_ABORTED/.test(failure)) problems.push(`request failed: ${r.url()} ${failure}`);
  });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  return { page, problems, requests, close: () => context.close() };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Logs in through the page's form: the token typed, then Enter. */
export async function logIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/ui/`);
  const field = page.locator('input[type="password"][name="token"]');
  await field.fill(token);
  await field.press('Enter');
  await page.getByRole('heading', { name: 'Stacks' }).waitFor();
}
