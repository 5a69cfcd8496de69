import test from 'ava';
import { addressOf } from '../../hq/push/login-gate.js';

// The address a connection waiting to log in is counted under (hq/push/login-gate.ts).

test('an IPv4 address is itself, also when mapped into IPv6; an IPv6 address counts as its /64', (t) => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:127.0.0.2', '127.0.0.2'],
    ['::FFFF:198.51.100.1', '198.51.100.1'],
    ['::1', '0:0:0:0::/64'],
    ['2001:db8:0:1::5', '2001:db8:0:1::/64'],
    ['2001:db8:0:1:aaaa:bbbb:cccc:dddd', '2001:db8:0:1::/64'],
    ['2001:0db8:0000:0001:ffff::1', '2001:db8:0:1::/64'],
    ['2001:db8::', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
  ];
  for (const [ip, expected] of cases) t.is(addressOf(ip), expected, ip);
});
