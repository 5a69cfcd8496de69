import test from 'ava';
import { domainOfHost, parseBackendUrl, parseRouteKey } from '../../router/index.js';

const hosts: Array<[string | undefined, string | undefined]> = [
  ['example.com', 'example.com'],
  ['Example.COM:8080', 'example.com'],
  ['example.com.', 'example.com'],
  ['[::1]:80', '[::1]'],
  ['127.0.0.1:8080', '127.0.0.1'],
  ['', undefined],
  [':80', undefined],
  [undefined, undefined],
];
for (const [host, domain] of hosts) {
  test(`Host ${JSON.stringify(host)} is domain ${JSON.stringify(domain)}`, (t) => {
    t.is(domainOfHost(host), domain);
  });
}

test('route keys name a domain (case folded) and a backend', (t) => {
  t.deepEqual(parseRouteKey('/quarry/routes/Shop.Example.com/web.1'), { domain: 'shop.example.com', backend: 'web.1' });
  t.deepEqual(parseRouteKey('/quarry/routes/*.example.com/a/b'), { domain: '*.example.com', backend: 'a/b' });
  t.is(parseRouteKey('/quarry/routes/example.com'), undefined);
  t.is(parseRouteKey('/quarry/routes/example.com/'), undefined);
  t.is(parseRouteKey('/quarry/other/example.com/x'), undefined);
});

test('backend values must be http URLs', (t) => {
  t.is(parseBackendUrl('http://10.0.0.5:8080'), 'http://10.0.0.5:8080');
  t.is(parseBackendUrl(' http://10.0.0.5:8080/ '), 'http://10.0.0.5:8080');
  t.is(parseBackendUrl('10.0.0.5:8080'), undefined);
  t.is(parseBackendUrl('https://10.0.0.5'), undefined);
  t.is(parseBackendUrl(''), undefined);
});
