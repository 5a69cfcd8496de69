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

/**
 * Text on the page now whose contrast with what is behind it is below WCAG 2's AA level (4.5:1;
 * 3:1 for large text: 24 px, or 18.66 px bold), each as `"text" fg on bg = ratio`. The colour
 * behind is the nearest ancestor's opaque background (for SVG text, the fill of a shape drawn
 * before it in its group, else the page's).
 */
export function lowContrast(page: Page): Promise<string[]> {
  return page.evaluate(CONTRAST_SCRIPT) as Promise<string[]>;
}

/** The check, as the page's own script (the tests' TypeScript knows no DOM). */
const CONTRAST_SCRIPT = String.raw`(() => {
    const parse = (c) => {
      const m = /rgba?\(([^)]+)\)/.exec(c ?? '');
      if (!m) return undefined;
      const [r = 0, g = 0, b = 0, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r, g, b, a };
    };
    const channel = (v) => {
      const x = v / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    };
    const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
    const ratio = (a, b) => {
      const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
      return (hi + 0.05) / (lo + 0.05);
    };
    const behind = (el) => {
      if (el instanceof SVGElement) {
        for (let g = el; g && g instanceof SVGElement; g = g.parentElement) {
          for (const shape of Array.from(g.children)) {
            if (shape === el || shape.contains(el)) break;
            if (shape instanceof SVGGeometryElement) {
              const fill = parse(getComputedStyle(shape).fill);
              if (fill && fill.a > 0.5) return fill;
            }
          }
        }
      }
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0.5) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const low = [];
    const seen = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      const el = node.parentElement;
      if (!el || seen.has(el) || !(node.textContent ?? '').trim()) continue;
      seen.add(el);
      const style = getComputedStyle(el);
      if (style.display === 'none' || style.visibility === 'hidden' || el.getClientRects().length === 0) continue;
      const fg = parse(el instanceof SVGElement ? style.fill : style.color);
      if (!fg) continue;
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      const bg = behind(el);
      const r = ratio(fg, bg);
      if (r < (large ? 3 : 4.5)) low.push(JSON.stringify((node.textContent ?? '').trim().slice(0, 40)) + ' ' + style.color + ' on rgb(' + bg.r + ', ' + bg.g + ', ' + bg.b + ') = ' + r.toFixed(2));
    }
    return low;
  })()`;
