// Element class images against the real engine: a class folder with no Dockerfile becomes an
// image on the runtime image, whose bare `quarry/runtime` import resolves, TypeScript included;
// the same tag again is cached, and the class folder is left as it was.
import test from 'ava';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildElementImage, ensureRuntimeImage, ImageBuildError, RUNTIME_IMAGE } from '../../launcher/index.js';
import { docker, TEST_LABEL } from '../support/docker.js';

const tag = `quarry/eit${process.pid}-class-echo:test`;
const folder = mkdtempSync(join(tmpdir(), 'quarry-echo-class-'));
const containers: string[] = [];

test.after.always(async () => {
  for (const id of containers) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
  rmSync(folder, { recursive: true, force: true });
});

/** Runs an image to its end and gives what it printed. */
async function runToEnd(image: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  const container = await docker.createContainer({
    Image: image, Env: Object.entries(env).map(([k, v]) => `${k}=${v}`), Labels: { [TEST_LABEL]: '1' }
  });
  containers.push(container.id);
  await container.start();
  const { StatusCode } = (await container.wait()) as { StatusCode: number };
  const raw = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
  return { code: StatusCode, output: raw.toString('utf8') };
}

test.serial('the runtime image has a content tag, and :latest names it', async (t) => {
  const runtime = await ensureRuntimeImage(docker);
  t.regex(runtime, new RegExp(`^${RUNTIME_IMAGE}:[0-9a-f]{12}$`));
  const [a, b] = await Promise.all([docker.getImage(runtime).inspect(), docker.getImage(`${RUNTIME_IMAGE}:latest`).inspect()]);
  t.is(a.Id, b.Id);
  t.is(await ensureRuntimeImage(docker), runtime, 'asked again: the same tag, nothing rebuilt');
});

test.serial('a TypeScript class with no Dockerfile runs on the runtime image; the same tag again is cached', async (t) => {
  writeFileSync(join(folder, 'index.ts'), `import { element } from 'quarry/runtime';
const greeting: string = 'hello from a typescript element';
console.log(greeting);
export default element({ async onPush() {} });
`);
  writeFileSync(join(folder, 'element.yml'), 'ports:\n  in: { kind: push, dir: in, fields: [x] }\n');
  const before = readdirSync(folder).sort();
  const lines: string[] = [];
  t.is(await buildElementImage(docker, { folder, tag, onLine: (l) => lines.push(l) }), 'built');
  t.true(lines.some((l) => /FROM quarry\/runtime:[0-9a-f]{12}/.test(l)), lines.join('\n'));
  t.deepEqual(readdirSync(folder).sort(), before, 'the class folder is not written to');
  t.is(await buildElementImage(docker, { folder, tag }), 'cached');

  // Wired with one in port, it starts, says it is ready, and stops cleanly on SIGTERM.
  const wiring = JSON.stringify({ element: 'echo', ports: { in: { kind: 'push', dir: 'in', bind: 'tcp://0.0.0.0:7001' } } });
  const container = await docker.createContainer({ Image: tag, Env: [`QUARRY_WIRING=${wiring}`], Labels: { [TEST_LABEL]: '1' } });
  containers.push(container.id);
  await container.start();
  let output = '';
  for (let i = 0; i < 150 && !output.includes('"quarry":"ready"'); i++) {
    await new Promise((r) => setTimeout(r, 100));
    output = ((await container.logs({ stdout: true, stderr: true })) as unknown as Buffer).toString('utf8');
  }
  t.true(output.includes('hello from a typescript element'), output);
  t.true(output.includes('"quarry":"ready"'), output);
  await container.stop({ t: 10 });
  t.is(((await container.inspect()).State.ExitCode), 0, 'SIGTERM stops it cleanly');
});

test.serial('element code that fails to load says so and exits 1', async (t) => {
  const broken = mkdtempSync(join(tmpdir(), 'quarry-broken-class-'));
  const brokenTag = `quarry/eit${process.pid}-class-broken:test`;
  t.teardown(async () => {
    rmSync(broken, { recursive: true, force: true });
    await docker.getImage(brokenTag).remove({ force: true }).catch(() => undefined);
  });
  writeFileSync(join(broken, 'index.js'), 'export default 42;\n');
  await buildElementImage(docker, { folder: broken, tag: brokenTag });
  const { code, output } = await runToEnd(brokenTag, { QUARRY_WIRING: '{"element":"b","ports":{}}' });
  t.is(code, 1);
  t.regex(output, /the default export is not an element/);
});

test('a class folder that does not exist is an ImageBuildError naming it', async (t) => {
  await t.throwsAsync(buildElementImage(docker, { folder: '/nonexistent/class', tag: `quarry/eit${process.pid}-none:test` }), {
    instanceOf: ImageBuildError, message: /\/nonexistent\/class.*does not exist/,
  });
});
