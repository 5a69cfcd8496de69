// The dashboard in a real browser (Debian's chromium through playwright-core) against a real
// HQ: its push path, the part that runs stacks on the local engine (small mode), etcd, and
// the HTTP API serving the page built by esbuild. One HQ and one browser for the file; each
// test opens its own page, which must log no console error and ask nothing of another
// origin. A screenshot of each view goes to test-artifacts/ui/. The scale test feeds the
// page a fixture stack of 500 containers and 50 elements through a second API.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import Docker from 'dockerode';
import type { Browser } from 'playwright-core';
import { startApi, type Api } from '../../hq/api/server.js';
import { startControl, type ControlHandle } from '../../hq/index.js';
import { HomeLayout } from '../../home/index.js';
import { startRouter, type Router } from '../../router/index.js';
import { buildUi } from '../../ui/index.js';
import { commitAll, push, removeStacks, startTestHq, uniqueStack, type TestHq } from '../hq/harness.js';
import { repoRoot } from '../support/cli.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { BigControl } from './big-control.js';
import { logIn, lowContrast, openBrowser, screenshot, watchedPage } from './browser.js';

const TOKEN = 'dashboard-test-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'quarry-ui-'));
const uiDir = join(dir, 'ui');
const stack = uniqueStack('dash');
let browser: Browser;
let big: Api;
let etcd: TestEtcd;
let router: Router;
let control: ControlHandle;
let hq: TestHq;
let api: Api;

/**
 * test/fixtures/elastic with its source alternating between 20 and 80 logs a second every
 * 5 s (the rate shown must change; its worker handles up to 100), autoscale off (no release but the test's own), and no
 * `name:` (the stack takes the name it is pushed to).
 */
async function flowRepo(): Promise<string> {
  const repo = join(dir, 'flow');
  cpSync(join(repoRoot, 'test', 'fixtures', 'elastic'), repo, { recursive: true });
  writeFileSync(join(repo, 'quarry.yml'), 'version: 1\ntopology: ./topology.yml\nautoscale:\n  enabled: false\n');
  const schedule = JSON.stringify(Array.from({ length: 50 }, (_, i) => [5, i % 2 === 0 ? 20 : 80]));
  writeFileSync(join(repo, 'topology.yml'), `elements:
  feed:
    class: paced-source
    config: { schedule: ${schedule}, keys: 64 }
  work:
    class: slow-worker
    config: { perLogMs: 10 }
    shard: { min: 1, max: 2, by: "hash:key" }
  count:
    class: counter
connections:
  - feed.out -> work.in
  - work.out -> count.in
`);
  await commitAll(repo, 'flow', true);
  return repo;
}

test.before(async () => {
  await buildUi(uiDir);
  browser = await openBrowser();
  big = await startApi({ control: new BigControl(), home: new HomeLayout(join(dir, 'big-home')), token: TOKEN, host: '127.0.0.1', port: 0, log: () => undefined, uiDir });

  etcd = await startEtcd();
  router = await startRouter({ port: 0, host: '127.0.0.1', etcd: etcd.client, admin: { port: 0 } });
  let handle: ControlHandle | undefined;
  hq = await startTestHq({ onRelease: (...args) => handle!.onRelease(...args) });
  handle = await startControl({ home: hq.home, etcd: etcd.client, docker: new Docker(), log: () => {}, config: { routerPort: router.port }, drainMs: 300 });
  control = handle;
  api = await startApi({ control, home: hq.home, token: TOKEN, host: '127.0.0.1', port: 0, log: (line) => hq.log.push(line), uiDir });
  const pushed = await push(hq, await flowRepo(), stack);
  if (pushed.code !== 0) throw new Error(`the push failed: ${pushed.stderr}`);
});

test.after.always(async () => {
  await browser?.close();
  await big?.close();
  await api?.close();
  await removeStacks([stack]);
  await control?.close();
  await hq?.close();
  await router?.close();
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test.serial('a wrong token is refused and says so; the right one, typed and sent with Enter, opens the stacks; a reload keeps the session', async (t) => {
  const w = await watchedPage(browser, api.url);
  const { page } = w;
  await page.goto(`${api.url}/ui/`);
  const field = page.locator('input[type="password"][name="token"]');
  await field.fill('not-the-token');
  await field.press('Enter');
  await page.getByRole('alert').filter({ hasText: 'HQ refused the token' }).waitFor();
  await screenshot(page, 'login-refused');
  // The refusal is the one error of this visit (the browser logs a 401 answer).
  t.true(w.problems.every((p) => /401/.test(p) && !/\/v1\//.test(p)), w.problems.join('\n'));
  w.problems.length = 0;

  await field.fill(TOKEN);
  await field.press('Enter');
  await page.getByRole('heading', { name: 'Stacks' }).waitFor();
  t.false(w.requests.some((u) => u.includes(TOKEN)), 'the token is never in a URL');
  const cookies = await page.context().cookies();
  t.like(cookies.find((c) => c.name === 'quarry_session'), { httpOnly: true, sameSite: 'Strict' });
  t.false(cookies.some((c) => c.value.includes(TOKEN)));
  await page.reload();
  await page.getByRole('link', { name: stack, exact: true }).waitFor();
  t.false(hq.log.some((l) => l.includes(TOKEN)), 'the token is never logged');
  t.deepEqual(w.problems, []);
  await w.close();
});

test.serial('after a real push: the stack is a link whose text is its name; its page lists its containers as quarry ps does, its release, its env names and a node\'s live logs', async (t) => {
  const w = await watchedPage(browser, api.url);
  const { page } = w;
  await logIn(page, api.url, TOKEN);
  await screenshot(page, 'stacks');
  await page.getByRole('link', { name: stack, exact: true }).click();
  const rows = page.locator('table[aria-label="containers"] tbody tr');
  await rows.filter({ hasText: `${stack}.count.1` }).waitFor();
  const ps = await control.ps(stack);
  t.deepEqual((await rows.locator('td:first-child').allTextContents()).sort(), ps.map((r) => r.container).sort());
  const feed = ps.find((r) => r.name === 'feed')!;
  t.deepEqual(await rows.filter({ hasText: `${stack}.feed.1` }).locator('td').allTextContents(), [
    feed.container, feed.kind, feed.state, feed.health, String(feed.restarts ?? '?'), feed.release, feed.server, feed.address ?? '-',
  ]);
  await page.locator('table[aria-label="releases"] tbody tr').filter({ hasText: 'push of' }).waitFor();

  await page.locator('select[name="logs-name"]').selectOption('feed');
  await page.getByRole('button', { name: 'Follow logs' }).click();
  await page.locator('pre.logs').filter({ hasText: `${stack}.feed.1 {"feed":` }).waitFor({ timeout: 15_000 });
  await screenshot(page, 'stack');
  await page.getByRole('button', { name: 'Stop' }).click();
  t.deepEqual(w.problems, []);
  await w.close();
});

test.serial('fixture: 500 containers, 50 elements and 10 servers render in time; the topology keeps updating; the keyboard reaches every view', async (t) => {
  const w = await watchedPage(browser, big.url);
  const { page } = w;
  await logIn(page, big.url, TOKEN);
  await screenshot(page, 'stacks-big');

  let started = Date.now();
  await page.getByRole('link', { name: 'big', exact: true }).click();
  await page.locator('table[aria-label="containers"] tbody tr').nth(499).waitFor();
  const containersMs = Date.now() - started;
  t.is(await page.locator('table[aria-label="containers"] tbody tr').count(), 500);
  t.is(await page.locator('.env-names li').allTextContents().then((l) => l.join(',')), 'API_KEY,LOG_LEVEL');
  t.false((await page.content()).includes('secret'), 'env values never reach the page');
  await screenshot(page, 'stack-big');

  started = Date.now();
  await page.getByRole('link', { name: 'Topology of big' }).click();
  await page.locator('svg g.element').nth(49).waitFor();
  const topologyMs = Date.now() - started;
  t.is(await page.locator('svg g.edge').count(), 49 + 9);
  t.is(await page.locator('svg g.edge.level-high').count(), 5);
  const rateOf = () => page.locator('tr[data-connection="e00.out->e01.in"] td.rate').textContent();
  const first = await rateOf();
  await page.locator('tr[data-connection="e00.out->e01.in"] td.rate').filter({ hasNotText: first! }).waitFor({ timeout: 5000 });
  t.not(await rateOf(), first, 'the figures change about each second');
  await screenshot(page, 'topology-big');

  // Keyboard: Tab reaches the Grid link and Enter follows it.
  await page.keyboard.press('Tab');
  let guard = 0;
  while ((await page.evaluate('document.activeElement?.textContent')) !== 'Grid' && guard++ < 10) await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.locator('article.server').nth(9).waitFor();
  t.is(await page.locator('.bin').count(), 500);
  t.is(await page.locator('article.server.unreachable .badge').textContent(), 'UNREACHABLE');
  await screenshot(page, 'grid-big');

  t.log(`500 containers shown in ${containersMs} ms; 50 elements laid out and drawn in ${topologyMs} ms`);
  t.deepEqual(w.problems, []);
  await w.close();
});

/** The figure of a `12/s` or `12.5/s` cell. */
const perSecond = (text: string | null) => Number(/([\d.]+)\/s/.exec(text ?? '')?.[1] ?? NaN);

test.serial('topology: the elements and connections as a graph; the source\'s connection\'s rate changes as the pipeline runs, live from the top events', async (t) => {
  const w = await watchedPage(browser, api.url);
  const { page } = w;
  await logIn(page, api.url, TOKEN);
  await page.goto(`${api.url}/ui/#/stacks/${stack}/topology`);
  await page.locator('svg g.element[data-element="count"]').waitFor();
  t.is(await page.locator('svg g.element').count(), 3);
  t.is(await page.locator('svg g.edge').count(), 2);
  t.regex(await page.locator('svg g.element[data-element="feed"]').textContent() ?? '', /paced-source · 1\/1 instances/);

  // The source alternates 20 and 80 logs a second: both must show, one after the other.
  const cell = page.locator('tr[data-connection="feed.out->work.in"] td.rate');
  const seen: number[] = [];
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !(seen.some((r) => r < 40) && seen.some((r) => r > 60))) {
    seen.push(perSecond(await cell.textContent()));
    await page.waitForTimeout(500);
  }
  t.true(seen.some((r) => r < 40) && seen.some((r) => r > 60), `rates shown: ${seen.join(' ')}`);
  t.log(`rates shown, every 0.5 s: ${seen.join(' ')}`);
  // The graph's label says the same as the table.
  t.regex(await page.locator('svg g.edge[data-connection="feed.out->work.in"] text.label').textContent() ?? '', /\/s/);
  t.regex(await page.locator('tr[data-connection="feed.out->work.in"]').textContent() ?? '', /(low|mid|high)/);
  await screenshot(page, 'topology');
  t.deepEqual(w.problems, []);
  await w.close();
});

test.serial('scale from the page: count to 2, the new container appears; roll back to v1 from the page: a release "rollback to v1" and one count again', async (t) => {
  const w = await watchedPage(browser, api.url);
  const { page } = w;
  await logIn(page, api.url, TOKEN);
  await page.getByRole('link', { name: stack, exact: true }).click();
  const rows = page.locator('table[aria-label="containers"] tbody tr');
  await rows.filter({ hasText: `${stack}.count.1` }).waitFor();
  t.is(await rows.filter({ hasText: `${stack}.count.2` }).count(), 0);

  const count = page.getByLabel('count', { exact: true });
  await count.fill('2');
  await count.press('Enter');
  await page.getByRole('status').filter({ hasText: 'scale count=2: done, v2 is live' }).waitFor({ timeout: 120_000 });
  await rows.filter({ hasText: `${stack}.count.2` }).waitFor();
  t.regex(await rows.filter({ hasText: `${stack}.count.2` }).textContent() ?? '', /v2/);
  t.is((await control.ps(stack)).filter((r) => r.name === 'count').length, 2);
  await screenshot(page, 'stack-scaled');

  await page.getByRole('button', { name: 'Roll back to v1' }).click();
  await page.getByRole('status').filter({ hasText: 'rollback to v1: done, v3 is live' }).waitFor({ timeout: 120_000 });
  await page.locator('table[aria-label="releases"] tbody tr').filter({ hasText: 'rollback to v1' }).waitFor();
  await rows.filter({ hasText: `${stack}.count.2` }).waitFor({ state: 'detached', timeout: 30_000 });
  const releases = await control.releases(stack);
  t.like(releases[0], { version: 3, reason: 'rollback' });
  t.is(releases[0]!.scale.count, 1);
  await screenshot(page, 'stack-rolled-back');
  t.deepEqual(w.problems, []);
  await w.close();
});

test.serial('grid: the server with its slices as bins, memory used and free, agent and firewall', async (t) => {
  const w = await watchedPage(browser, api.url);
  const { page } = w;
  await logIn(page, api.url, TOKEN);
  await page.getByRole('link', { name: 'Grid' }).click();
  const servers = await control.servers();
  await page.locator('article.server').first().waitFor();
  t.is(await page.locator('article.server').count(), servers.length);
  const first = servers[0]!;
  const card = page.locator(`article.server[data-server="${first.id}"]`);
  // Other test files' stacks come and go on the same engine meanwhile: the figures are checked
  // for their shape and sum, and the bins for this test's own stack.
  const memory = new RegExp(`(\\d+) MB used, (\\d+) MB free of ${first.memory} MB`).exec(await card.textContent() ?? '');
  t.truthy(memory, await card.textContent() ?? '');
  t.is(Number(memory![1]) + Number(memory![2]), first.memory);
  const ours = (await control.grid(stack)).servers.find((s) => s.id === first.id)?.slices.filter((x) => x.id.startsWith(`${stack}.`)) ?? [];
  t.true(ours.length > 0, 'the stack has slices on the server');
  t.is(await card.locator(`.bin[title^="${stack}."]`).count(), ours.length);
  await screenshot(page, 'grid');
  t.deepEqual(w.problems, []);
  await w.close();
});

test.serial('keyboard only: log in, reach a stack, its topology and the grid; every view\'s text meets WCAG AA contrast', async (t) => {
  const w = await watchedPage(browser, big.url);
  const { page } = w;
  const low: string[] = [];
  const check = async (view: string) => low.push(...(await lowContrast(page)).map((l) => `${view}: ${l}`));
  /** Tab until the focused element's text is `text` (at most 80 presses), then Enter. */
  const follow = async (text: string) => {
    for (let i = 0; i < 80 && (await page.evaluate('document.activeElement?.textContent?.trim()')) !== text; i++) await page.keyboard.press('Tab');
    t.is(await page.evaluate('document.activeElement?.textContent?.trim()'), text, `Tab reaches "${text}"`);
    await page.keyboard.press('Enter');
  };
  await page.goto(`${big.url}/ui/`);
  await page.locator('input[name="token"]').waitFor();
  // The checker finds low contrast where there is some: light grey on white (1.6:1).
  // (Styled through the CSSOM: the page's Content-Security-Policy refuses style attributes.)
  await page.evaluate(`(() => { const p = document.createElement('p'); p.id = 'probe'; p.textContent = 'probe';
    p.style.color = '#cccccc'; p.style.background = '#ffffff'; document.body.append(p); })()`);
  t.deepEqual((await lowContrast(page)).filter((l) => l.startsWith('"probe"')).length, 1, 'the contrast check sees a low one');
  await page.evaluate(`document.getElementById('probe').remove()`);
  await check('login');
  // The token field has the focus: type, Enter.
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Stacks' }).waitFor();
  await check('stacks');
  await follow('big');
  await page.locator('table[aria-label="containers"] tbody tr').nth(499).waitFor();
  await check('stack');
  await follow('Topology of big');
  await page.locator('svg g.element').nth(49).waitFor();
  await check('topology');
  await follow('Grid');
  await page.locator('article.server').nth(9).waitFor();
  await check('grid');
  t.deepEqual(low, [], 'text below WCAG AA contrast');
  t.deepEqual(w.problems, []);
  await w.close();
});
