// `quarry run` follows each unit's restart policy: a unit that exits with code 3 after it was
// up is restarted at once and runs on; one allowed a single restart (`restart: { attempts: 1 }`)
// that dies again ends failed, said on its line and on the runner's, while the rest of the
// stack keeps running and serving. In processes mode the runner restarts processes itself; in
// containers mode the launcher's caretaker restarts containers and the runner prints its records.
// Real executable, real processes, real docker.
import test from 'ava';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LABELS, networkName } from '../../launcher/index.js';
import { docker } from '../support/docker.js';
import { httpGetWhenUp } from '../support/http.js';
import { until } from '../support/until.js';
import { processesUnder, quarryChild, untilUp, type QuarryChild } from './stack-copy.js';

const fixture = join(import.meta.dirname, 'fixtures', 'restarts');

function fixtureCopy(t: { teardown(fn: () => unknown): void }, name: string): { dir: string; home: string } {
  const root = mkdtempSync(join(tmpdir(), `quarry-run-${name}-`));
  const dir = join(root, 'restarts');
  cpSync(fixture, dir, { recursive: true });
  const yml = join(dir, 'quarry.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace(/^name: restarts$/m, `name: ${name}`));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return { dir, home: join(root, 'home') };
}

/** Waits until flaky ran again and doomed was given up; then checks the lines that said so. */
async function crashesSaid(t: import('ava').ExecutionContext, run: QuarryChild, name: string, lines: { flakyRestart: RegExp; doomedRestart: RegExp; doomedFailed: RegExp }): Promise<void> {
  const out = () => run.stdout();
  await until('flaky runs again, and doomed is given up', async () =>
    /^flaky\.0 +\| flaky start 2$/m.test(out()) && lines.doomedFailed.test(out()) ? true : undefined, 60_000);
  t.regex(out(), lines.flakyRestart, 'flaky: the first restart is at once, by the default policy');
  t.is(out().match(/^flaky\.0 +\| quarry: exited/gm)?.length, 1, 'flaky died once only');
  t.regex(out(), lines.doomedRestart);
  t.regex(out(), lines.doomedFailed);
  t.regex(run.stderr(), new RegExp(`^quarry: doomed\\.0 failed: it died 2 times within 5 min \\(restart: attempts 1\\); it stays stopped until the next run, the rest of ${name} keeps running$`, 'm'));
}

test('--processes: a crash after up is restarted; attempts: 1 ends failed and the others keep running', async (t) => {
  const name = `rsp${process.pid}`;
  const { dir, home } = fixtureCopy(t, name);
  const run = quarryChild(['run', dir, '--processes', '--port', '0', '--no-color'], { QUARRY_HOME: home });
  t.teardown(() => {
    run.child.kill('SIGKILL');
    for (const pid of processesUnder(dir)) process.kill(pid, 'SIGKILL');
  });
  const port = await untilUp(run);

  writeFileSync(join(dir, 'app', 'go'), ''); // each crash.mjs now exits with code 3 in the starts it is told to
  await crashesSaid(t, run, name, {
    flakyRestart: /^flaky\.0 +\| quarry: exited \(code 3\); restarting now \(restart 1 of 5 within 5 min\)$/m,
    doomedRestart: /^doomed\.0 +\| quarry: exited \(code 3\); restarting now \(restart 1 of 1 within 5 min\)$/m,
    doomedFailed: /^doomed\.0 +\| quarry: exited \(code 3\); failed: it died 2 times within 5 min \(restart: attempts 1\); it stays stopped, the rest of the stack keeps running$/m,
  });
  t.is(readFileSync(join(dir, 'app', 'starts-doomed'), 'utf8').length, 2, 'doomed was started twice: once, and its one restart');

  // The run goes on: web serves, flaky's restarted process runs.
  const res = await httpGetWhenUp(`http://127.0.0.1:${port}/`, 10_000, { host: 'restarts.localhost' });
  t.deepEqual([res.status, res.body], [200, 'still here\n']);
  t.true(processesUnder(dir).some((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('crash.mjs\x001\x00')), 'flaky\'s process runs');
  t.is(run.child.exitCode, null, 'the runner runs');

  run.child.kill('SIGINT');
  t.is(await run.exited, 0, run.stderr());
  t.deepEqual(processesUnder(dir), [], 'no process of the stack is left');
  t.is(readFileSync(join(dir, 'app', 'starts-doomed'), 'utf8').length, 2, 'a failed unit is not started again');
});

test('containers: the caretaker restarts a crashed container; attempts: 1 ends failed; the runner says both', async (t) => {
  const name = `rsd${process.pid}`;
  const { dir, home } = fixtureCopy(t, name);
  const ofStack = async () => docker.listContainers({ all: true, filters: { label: [`${LABELS.stack}=${name}`] } });
  t.teardown(async () => {
    for (const c of await ofStack()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    await docker.getNetwork(networkName(name)).remove().catch(() => undefined);
    // By tag, never by id: a class image of the example has the same id as other tests' (the
    // same build), and removing the id would take their tags with it.
    for (const image of await docker.listImages({ filters: { reference: [`quarry/${name}-*`] } })) {
      for (const tag of (image.RepoTags ?? []).filter((x) => x.startsWith(`quarry/${name}-`))) {
        await docker.getImage(tag).remove().catch(() => undefined);
      }
    }
  });
  const run = quarryChild(['run', dir, '--docker', '--port', '0', '--no-color'], { QUARRY_HOME: home });
  t.teardown(() => run.child.kill('SIGKILL'));
  const port = await untilUp(run);

  for (const unit of ['flaky', 'doomed']) {
    const exec = await docker.getContainer(`${name}.${unit}.0`).exec({ Cmd: ['touch', '/app/go'], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    await new Promise((resolve) => { stream.on('end', resolve).on('close', resolve).resume(); });
    stream.destroy();
  }
  await crashesSaid(t, run, name, {
    flakyRestart: /^flaky\.0 +\| quarry: exited \(code 3\); restarted \(restart 1\)$/m,
    doomedRestart: /^doomed\.0 +\| quarry: exited \(code 3\); restarted \(restart 1\)$/m,
    doomedFailed: /^doomed\.0 +\| quarry: exited \(code 3\); failed: it died 2 times within 5 min \(restart: attempts 1\); it stays stopped, the rest of the stack keeps running$/m,
  });
  // The restarted container's output is followed again (flaky start 2 came from it), and its
  // label carries the unit's policy.
  const states = Object.fromEntries((await ofStack()).map((c) => [c.Names[0]!.replace(`/${name}.`, ''), c.State]));
  t.deepEqual(states, { 'web.0': 'running', 'flaky.0': 'running', 'doomed.0': 'exited' });
  const doomed = await docker.getContainer(`${name}.doomed.0`).inspect();
  t.is(doomed.Config.Labels[LABELS.restart], '1/300000/1000/60000');
  const res = await httpGetWhenUp(`http://127.0.0.1:${port}/`, 10_000, { host: 'restarts.localhost' });
  t.deepEqual([res.status, res.body], [200, 'still here\n']);

  run.child.kill('SIGINT');
  t.is(await run.exited, 0, run.stderr());
  t.deepEqual(await ofStack(), [], 'no container of the stack is left');
});
