import test from 'ava';
import { parse } from 'yaml';
import { cloudInit, nextPage, PacificError, retryAfterMs, waitUntilReset } from '../../pacific/index.js';

const base = 'https://api.digitalocean.com';

test('the next page is links.pages.next, and none when it is absent', (t) => {
  t.is(nextPage({ links: { pages: { next: `${base}/v2/droplets?page=2&per_page=2`, last: `${base}/v2/droplets?page=3` } } }, base), `${base}/v2/droplets?page=2&per_page=2`);
  t.is(nextPage({ links: { pages: { first: `${base}/v2/droplets?page=1`, prev: `${base}/v2/droplets?page=2` } } }, base), null);
  t.is(nextPage({ links: {} }, base), null);
  t.is(nextPage({ droplets: [] }, base), null);
});

test('a next page on another origin is not followed (the token would go with it)', (t) => {
  t.throws(() => nextPage({ links: { pages: { next: 'https://evil.example/v2/droplets?page=2' } } }, base), { instanceOf: PacificError, message: /not following it with the token/ });
});

test('retry-after is seconds or an HTTP date; ratelimit-reset is epoch seconds', (t) => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  t.is(retryAfterMs('3', now), 3000);
  t.is(retryAfterMs('Thu, 01 Jan 2026 00:00:10 GMT', now), 10_000);
  t.is(retryAfterMs(null, now), null);
  t.is(retryAfterMs('soon', now), null);
  t.is(waitUntilReset(String(now / 1000 + 5), now), 5000);
  t.is(waitUntilReset(String(now / 1000 - 5), now), 0, 'a reset in the past: no wait');
  t.is(waitUntilReset(String(now / 1000 + 86400), now), 3600_000, 'never more than an hour');
  t.is(waitUntilReset(null, now), 1000);
});

test('cloud-init installs docker and the quarry key, and runs the agent as a unit that restarts', (t) => {
  const text = cloudInit({ publicKey: 'ssh-ed25519 AAAAC3Nza quarry', agentImage: 'quarry/agent:latest', agentConfig: "https://hq.example/agent.json?a='b'" });
  t.true(text.startsWith('#cloud-config\n'));
  const config = parse(text) as {
    packages: string[];
    write_files: Array<{ path: string; content: string; append?: boolean; permissions: string }>;
    runcmd: string[][];
  };
  t.deepEqual(config.packages, ['docker.io', 'iptables']);
  const keys = config.write_files.find((f) => f.path === '/root/.ssh/authorized_keys');
  t.like(keys, { content: 'ssh-ed25519 AAAAC3Nza quarry\n', append: true, permissions: '0600' });
  const unit = config.write_files.find((f) => f.path === '/etc/systemd/system/quarry-agent.service')?.content ?? '';
  t.regex(unit, /^Restart=always$/m);
  t.regex(unit, /^ExecStart=\/usr\/bin\/docker run --rm --name quarry-agent --network host -v \/var\/run\/docker.sock:\/var\/run\/docker.sock quarry\/agent:latest agent --config 'https:\/\/hq.example\/agent.json\?a='\\''b'\\'''$/m);
  t.deepEqual(config.runcmd.at(-1), ['systemctl', 'enable', '--now', 'quarry-agent']);
  t.throws(() => cloudInit({ publicKey: 'ssh-ed25519 A\nmalicious: true', agentImage: 'x' }));
  t.notRegex(cloudInit({ publicKey: 'ssh-ed25519 A q', agentImage: 'x' }), /--config/);
});
