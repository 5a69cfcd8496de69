// Autoscale in `quarry run --processes`: the runner reads every element member's counters over
// its control socket each second, asks the controller, and resizes the load shard `work` of the
// elastic fixture (a paced source, a slow hash-sharded worker at ~100 logs/s per member, a
// counting sink) behind the runtime's re-shard barrier: it grows during a 300 logs/s phase,
// shrinks after the load drops, and the sink counts every log sent exactly once, no key handled
// by two members at once, each key's ids in order. A stack without load shards (or with
// autoscale off in quarry.yml) starts no controller. Real processes, real ZeroMQ; short
// controller settings through RunOptions.autoscale. One test at a time: the figures are real
// rates, and six stacks at once on a small machine would make them something else.
import test, { type ExecutionContext } from 'ava';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { LABELS, networkName } from '../../launcher/index.js';
import { compileLocal, runStack, type RunAutoscaleOptions, type RunMode, type RunningStack } from '../../runner/index.js';
import { repoRoot } from '../support/cli.js';
import { readStats } from '../../runtime/index.js';
import { docker } from '../support/docker.js';
import { until } from '../support/until.js';
import { processesUnder } from './stack-copy.js';
import type { Count, Feed } from '../../bench/elastic-lines.js';

const fixture = join(repoRoot, 'test', 'fixtures', 'elastic');

/** The controller's settings for a test: decisions within seconds instead of tens of seconds. */
const SHORT: RunAutoscaleOptions = {
  intervalMs: 1000,
  controller: { warmupMs: 4000, lullMs: 10_000, windowMs: 3000, minSamples: 2, rateWindowMs: 10_000 },
};

/** A copy of the elastic fixture under its own stack name, its topology and quarry.yml edited. */
function elasticCopy(t: ExecutionContext, name: string, edit: { topology?: (text: string) => string; quarry?: (text: string) => string }): string {
  const root = mkdtempSync(join(tmpdir(), `quarry-run-${name}-`));
  const dir = join(root, 'elastic');
  cpSync(fixture, dir, { recursive: true });
  // Its element code is ES modules, as the checkout's package.json says; out of it, its own says so.
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  const yml = join(dir, 'quarry.yml');
  writeFileSync(yml, (edit.quarry ?? ((x) => x))(readFileSync(yml, 'utf8').replace(/^name: elastic$/m, `name: ${name}`)));
  const topology = join(dir, 'topology.yml');
  writeFileSync(topology, (edit.topology ?? ((x) => x))(readFileSync(topology, 'utf8')));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return dir;
}

const schedule = (phases: [number, number][]) => (text: string) => {
  const out = text.replace(/schedule: \[\[.*?\]\]/, `schedule: ${JSON.stringify(phases)}`);
  if (out === text) throw new Error('the fixture has no schedule to shorten');
  return out;
};


/** A run of a stack folder in this process, its output and its lines collected. */
async function startRun(t: ExecutionContext, dir: string, autoscale: RunningStackOptions, mode: RunMode = 'processes'): Promise<{ run: RunningStack; said: string[]; out: () => string }> {
  const { stack } = compileLocal(dir);
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  const said: string[] = [];
  const run = await runStack({
    dir, stack, mode, port: 0, out: stream, color: false, env: process.env, ...(mode === 'docker' && { docker }),
    say: (line) => { said.push(line); if (process.env.QUARRY_TEST_VERBOSE) process.stderr.write(`quarry: ${line}\n`); },
    ...(autoscale !== undefined && { autoscale }),
  });
  t.teardown(async () => {
    await run.stop(0).catch(() => undefined);
    for (const pid of processesUnder(dir)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  });
  return { run, said, out: () => text };
}
type RunningStackOptions = RunAutoscaleOptions | false | undefined;

/** The last `{"<what>": …}` line a unit printed. */
function lastOf<T>(text: string, unit: string, what: string): T | undefined {
  let found: T | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+\| (\{.*\})$/.exec(line);
    if (m === null || m[1] !== unit) continue;
    try {
      const value = (JSON.parse(m[2]!) as Record<string, unknown>)[what];
      if (value !== undefined) found = value as T;
    } catch {
      // not one of its lines
    }
  }
  return found;
}

/** Waits until the source is done and the sink has counted everything it sent. */
async function allCounted(out: () => string, timeoutMs: number): Promise<{ feed: Feed; count: Count }> {
  return until('the source is done and the sink counted every log it sent', async () => {
    const feed = lastOf<Feed>(out(), 'feed.0', 'feed');
    const count = lastOf<Count>(out(), 'count.0', 'count');
    return feed?.state === 'done' && count !== undefined && count.distinct >= feed.sent ? { feed, count } : undefined;
  }, timeoutMs);
}

/**
 * The elastic stack through a step up and a step down: work grows during the 300 logs/s phase
 * (a line `autoscale: work 1 → N`), shrinks after the drop, and the sink counts every log sent
 * once, no key handled by two members at once, each key's ids in order.
 */
async function growAndShrink(t: ExecutionContext, name: string, mode: RunMode): Promise<void> {
  const began = Date.now();
  const dir = elasticCopy(t, name, { topology: schedule([[8, 50], [30, 300], [40, 30]]) });
  const { run, said, out } = await startRun(t, dir, SHORT, mode);
  t.log(`up in ${((Date.now() - began) / 1000).toFixed(1)} s`);
  t.regex(said.join('\n'), /^autoscale: sizing work \(1\.\.6, hash:key\) by load; figures every 1 s$/m);

  const grown = await until('work grows', async () => {
    const m = said.map((l) => /^autoscale: work 1 → (\d+): /.exec(l)).find((x) => x !== null);
    return m ? Number(m[1]) : undefined;
  }, 120_000);
  t.log(`grew 1 → ${grown} after ${((Date.now() - began) / 1000).toFixed(1)} s`);
  t.true(grown > 1);
  await until('the growth is carried out', async () => (said.some((l) => /^autoscale: work runs \d+ \(started work\.1/.test(l)) ? true : undefined), 120_000);
  t.true(run.sizes().work! > 1, 'work runs more than one member');

  const shrunk = await until('work shrinks after the drop', async () => {
    for (const l of said) {
      const m = /^autoscale: work (\d+) → (\d+): /.exec(l);
      if (m && Number(m[2]) < Number(m[1])) return [Number(m[1]), Number(m[2])] as const;
    }
    return undefined;
  }, 150_000);
  t.log(`shrank ${shrunk[0]} → ${shrunk[1]} after ${((Date.now() - began) / 1000).toFixed(1)} s`);
  await until('the shrink is carried out', async () => (said.some((l) => /^autoscale: work runs \d+ \(stopped work\./.test(l)) ? true : undefined), 60_000);

  const { feed, count } = await allCounted(out, 150_000);
  t.log(`all ${feed.sent} logs counted after ${((Date.now() - began) / 1000).toFixed(1)} s; work runs ${run.sizes().work}`);
  t.log(said.filter((l) => l.startsWith('autoscale:')).join('\n'));
  t.is(count.distinct, feed.sent, 'every log sent was counted');
  t.is(count.maxId, feed.sent - 1);
  t.is(count.duplicates, 0, 'none twice (the barrier sheds unstarted batches back; nothing is handled twice)');
  t.is(count.overlaps, 0, 'no key was handled by two members at once');
  t.is(count.outOfOrder, 0, 'each key\'s ids came in order');
  t.false(said.some((l) => /failed|could not tell|does not answer/.test(l)), said.join('\n'));
  await run.stop();
}

test.serial('--processes: work grows under 300 logs/s, shrinks after the drop; every log counted once, no key on two members at once', async (t) => {
  t.timeout(300_000);
  const name = `ela${process.pid}`;
  await growAndShrink(t, name, 'processes');
  t.deepEqual(processesUnder(join(tmpdir(), `quarry-run-${name}-`)), [], 'no process of the stack is left, members started by autoscale included');
});

test.serial('containers: the same resizes, members as containers', async (t) => {
  t.timeout(400_000);
  const name = `eld${process.pid}`;
  const ofStack = async () => docker.listContainers({ all: true, filters: { label: [`${LABELS.stack}=${name}`] } });
  t.teardown(async () => {
    for (const c of await ofStack()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    await docker.getNetwork(networkName(name)).remove().catch(() => undefined);
    // By tag, never by id: the class images have the same id as other tests' (the same build).
    for (const image of await docker.listImages({ filters: { reference: [`quarry/${name}-*`] } })) {
      for (const tag of (image.RepoTags ?? []).filter((x) => x.startsWith(`quarry/${name}-`))) await docker.getImage(tag).remove().catch(() => undefined);
    }
  });
  await growAndShrink(t, name, 'docker');
  t.deepEqual(await ofStack(), [], 'no container of the stack is left, members started by autoscale included');
});

test.serial('--processes: a stack without load shards starts no controller', async (t) => {
  t.timeout(120_000);
  const dir = elasticCopy(t, `elf${process.pid}`, {
    topology: (text) => schedule([[3, 100]])(text.replace(/shard: \{[^}]*\}/, 'scale: 2')),
  });
  const { run, said, out } = await startRun(t, dir, SHORT);
  const { feed, count } = await allCounted(out, 60_000);
  t.is(count.distinct, feed.sent);
  t.deepEqual(said.filter((l) => l.startsWith('autoscale')), [], 'no autoscale line');
  t.is(run.sizes().work, 2);
});

test.serial('--processes: autoscale: {enabled: false} in quarry.yml leaves a load shard at its min', async (t) => {
  t.timeout(120_000);
  const dir = elasticCopy(t, `eln${process.pid}`, {
    topology: schedule([[8, 300]]),
    quarry: (text) => text.replace(/max_instances: 12/, 'enabled: false'),
  });
  const { run, said, out } = await startRun(t, dir, SHORT);
  const { feed, count } = await allCounted(out, 90_000);
  t.is(count.distinct, feed.sent);
  t.deepEqual(said.filter((l) => l.startsWith('autoscale')), [], 'no autoscale line, though work was saturated');
  t.is(run.sizes().work, 1);
});

/** The pid of a member's process, by the identity in its env; undefined while none runs. */
function memberPid(dir: string, name: string, member: number): number | undefined {
  for (const pid of processesUnder(dir)) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (env.includes(`QUARRY_NAME=${name}`) && env.includes(`QUARRY_MEMBER=${member}`)) return pid;
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The wiring a member's process started with (its QUARRY_WIRING). */
function wiringOf(pid: number): { members: number; ports: Record<string, { targets?: { element: string; members: unknown[] }[] }> } {
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return JSON.parse(env.find((e) => e.startsWith('QUARRY_WIRING='))!.slice('QUARRY_WIRING='.length));
}

test.serial('--processes: the stack\'s cap holds the growth, said once; members restart wired as the run is now', async (t) => {
  t.timeout(180_000);
  const dir = elasticCopy(t, `elc${process.pid}`, {
    topology: schedule([[6, 50], [120, 300]]),
    quarry: (text) => text.replace(/max_instances: 12/, 'max_instances: 4'),
  });
  const { run, said, out } = await startRun(t, dir, SHORT);
  await until('work grows to what the cap leaves', async () => (said.some((l) => /^autoscale: work runs 2 \(started work\.1;/.test(l)) ? true : undefined), 90_000);
  // Growing to 2 may be the cap's doing (300 logs/s want more) or not (a busy machine reads a
  // higher offered rate early); at 2 under 300 logs/s it wants more than the cap leaves.
  const capKeeps = () => said.filter((l) => /^autoscale: work keeps 2: .*the stack's cap of 4 element instances binds$/.test(l)).length;
  await until('the cap is said to bind', async () => (capKeeps() > 0 ? true : undefined), 30_000);
  await new Promise((r) => setTimeout(r, 5000));
  t.is(capKeeps(), 1, 'said once, not every second');

  // A member autoscale started is restarted by its unit's policy, wired as one of 2.
  const before = memberPid(dir, 'work', 1)!;
  process.kill(before, 'SIGKILL');
  await until('work.1 is restarted', async () => (/^work\.1 +\| quarry: exited \(SIGKILL\); restarting now/m.test(out()) ? true : undefined), 30_000);
  const after = await until('work.1 runs again', async () => { const pid = memberPid(dir, 'work', 1); return pid !== undefined && pid !== before ? pid : undefined; }, 30_000);
  t.is(wiringOf(after).members, 2);

  // A producer that restarts after the resize is wired to the members there are now.
  const feed = memberPid(dir, 'feed', 0)!;
  t.is(wiringOf(feed).ports.out!.targets![0]!.members.length, 1, 'feed started when work had one member');
  process.kill(feed, 'SIGKILL');
  const feedAgain = await until('feed.0 runs again', async () => { const pid = memberPid(dir, 'feed', 0); return pid !== undefined && pid !== feed ? pid : undefined; }, 30_000);
  t.is(wiringOf(feedAgain).ports.out!.targets![0]!.members.length, 2, 'its new process is wired to both members of work');
  // Both work members get logs from the restarted feed again: the counter's total keeps growing.
  const total = lastOf<Count>(out(), 'count.0', 'count')?.total ?? 0;
  await until('logs flow after the restarts', async () => ((lastOf<Count>(out(), 'count.0', 'count')?.total ?? 0) > total + 200 ? true : undefined), 30_000);
  t.is(run.sizes().work, 2);
});

test.serial('containers: a producer the caretaker restarts in place is told the members there are now', async (t) => {
  t.timeout(240_000);
  const name = `elr${process.pid}`;
  const ofStack = async () => docker.listContainers({ all: true, filters: { label: [`${LABELS.stack}=${name}`] } });
  t.teardown(async () => {
    for (const c of await ofStack()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    await docker.getNetwork(networkName(name)).remove().catch(() => undefined);
    for (const image of await docker.listImages({ filters: { reference: [`quarry/${name}-*`] } })) {
      for (const tag of (image.RepoTags ?? []).filter((x) => x.startsWith(`quarry/${name}-`))) await docker.getImage(tag).remove().catch(() => undefined);
    }
  });
  const dir = elasticCopy(t, name, {
    topology: schedule([[6, 50], [120, 300]]),
    quarry: (text) => text.replace(/max_instances: 12/, 'max_instances: 4'),
  });
  const { run, said, out } = await startRun(t, dir, SHORT, 'docker');
  await until('work grows to 2', async () => (said.some((l) => /^autoscale: work runs 2 \(started work\.1;/.test(l)) ? true : undefined), 120_000);
  const peersOfFeed = async () => {
    const control = (await run.controls())['feed.0']!;
    return (await readStats(control, { key: run.controlKey, timeoutMs: 1000 })).ports.out!.peers.length;
  };
  t.is(await peersOfFeed(), 2, 'feed was told both members');

  // Its process dies on its own (no docker stop or kill): the caretaker restarts the same
  // container, whose env still has the wiring it started with, one member of work.
  const feed = (await ofStack()).find((c) => c.Names[0] === `/${name}.feed.0`)!;
  process.kill((await docker.getContainer(feed.Id).inspect()).State.Pid, 'SIGKILL');
  await until('feed.0 is restarted', async () => (/^feed\.0 +\| quarry: exited \(code \d+\); restarted \(restart 1\)$/m.test(out()) ? true : undefined), 60_000);
  const peers = await until('feed.0 is told both members again', async () => ((await peersOfFeed()) === 2 ? 2 : undefined), 60_000);
  t.is(peers, 2);
  t.true(said.includes('autoscale: told feed.0 (restarted with the wiring it first had) the members of work now'), said.join('\n'));
  t.is(run.sizes().work, 2);
});
