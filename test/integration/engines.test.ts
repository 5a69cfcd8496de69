// Smoke tests: the real engines are there. A container answers on a port; etcd puts,
// watches and gets. Later issues grow these into full integration tests.
import test from 'ava';
import { docker, removeContainer, TEST_LABEL } from '../support/docker.js';
import { startEtcd } from '../support/etcd.js';
import { httpGetWhenUp } from '../support/http.js';

test('a container started from the local base image answers on a published port', async (t) => {
  const name = `quarry-smoke-${process.pid}`;
  const container = await docker.createContainer({
    name,
    Image: 'quarry/node:20',
    Cmd: ['node', '-e', "require('http').createServer((q, s) => s.end('hello from ' + process.version)).listen(8080)"],
    Labels: { [TEST_LABEL]: 'engines' },
    ExposedPorts: { '8080/tcp': {} },
    HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
  });
  t.teardown(() => removeContainer(container.id));
  await container.start();
  const info = await container.inspect();
  const hostPort = info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort;
  t.truthy(hostPort, 'the engine published the port');
  const { body } = await httpGetWhenUp(`http://127.0.0.1:${hostPort}/`);
  t.is(body, `hello from ${process.version}`);
});

test('etcd puts, watches and gets', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const watcher = await etcd.client.watch().prefix('/quarry/smoke/').create();
  const seen = new Promise<string>((resolve) => {
    watcher.on('put', (kv) => resolve(`${kv.key.toString()}=${kv.value.toString()}`));
  });
  await etcd.client.put('/quarry/smoke/a').value('1');
  t.is(await seen, '/quarry/smoke/a=1');
  t.is(await etcd.client.get('/quarry/smoke/a').string(), '1');
  await watcher.cancel();
});
