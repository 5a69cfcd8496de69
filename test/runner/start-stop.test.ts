// `quarry start` runs a stack in the background and returns once it serves; a second start
// says it runs already; `quarry stop` stops it and returns once nothing of it is left.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive } from '../../home/index.js';
import { httpGetWhenUp } from '../support/http.js';
import { exampleCopy, processesUnder, quarryChild } from './stack-copy.js';

test('start returns once the stack serves; a second start refuses; stop leaves nothing', async (t) => {
  const name = `dss${process.pid}`;
  const { dir, home } = exampleCopy(t, name);
  const env = { QUARRY_HOME: home };
  const state = join(home, 'run', 'stacks', `${name}.json`);
  t.teardown(() => {
    if (existsSync(state)) {
      const { pid } = JSON.parse(readFileSync(state, 'utf8')) as { pid: number };
      try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
    }
    for (const pid of processesUnder(dir)) process.kill(pid, 'SIGKILL');
  });

  const start = quarryChild(['start', dir, '--processes', '--port', '0'], env);
  t.is(await start.exited, 0, start.stderr());
  const url = /http:\/\/docsearch\.localhost:(\d+)\//.exec(start.stdout());
  t.truthy(url, start.stdout());
  t.regex(start.stderr(), /starting index\.0 \(element\)/, 'the runner\'s progress is shown while it starts');
  const res = await httpGetWhenUp(`http://127.0.0.1:${url![1]}/healthz`, 10_000, { host: 'docsearch.localhost' });
  t.is(res.status, 200);

  const again = quarryChild(['start', dir, '--processes', '--port', '0'], env);
  t.is(await again.exited, 1);
  t.regex(again.stderr(), new RegExp(`${name} runs already .*quarry stop`));

  const { pid } = JSON.parse(readFileSync(state, 'utf8')) as { pid: number };
  const stop = quarryChild(['stop', dir], env);
  t.is(await stop.exited, 0, stop.stderr());
  t.regex(stop.stdout(), new RegExp(`${name} stopped`));
  // Gone: no process, or a zombie that runs nothing and waits only for init to reap it.
  t.false(isProcessAlive(pid), 'the runner is gone');
  t.deepEqual(processesUnder(dir), [], 'no process of the stack is left');
  t.false(existsSync(state));

  const stopAgain = quarryChild(['stop', dir], env);
  t.is(await stopAgain.exited, 1);
  t.regex(stopAgain.stderr(), /is not running/);
});
