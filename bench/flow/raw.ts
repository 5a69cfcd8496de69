/**
 * The same three stages over bare ZeroMQ PUSH/PULL: the same logs in the same batches, JSON
 * encoded, the same map; no acknowledgements, no redelivery, no counters.
 *
 *   raw.ts sink N | raw.ts map SINK_ENDPOINT | raw.ts source MAP_ENDPOINT N BATCH
 */
import { Pull, Push } from 'zeromq';
import { makeBatch, mapLog, now, report, type FlowLog } from './logs.js';

const [role, a, b, c] = process.argv.slice(2);
const HWM = 32;

async function bound(): Promise<Pull> {
  const pull = new Pull({ receiveHighWaterMark: HWM, linger: 0 });
  await pull.bind('tcp://127.0.0.1:*');
  report({ event: 'ready', endpoint: pull.lastEndpoint });
  return pull;
}

if (role === 'sink') {
  const n = Number(a);
  const pull = await bound();
  let count = 0;
  let words = 0;
  for await (const [body] of pull) {
    const logs = JSON.parse((body as Buffer).toString('utf8')) as FlowLog[];
    for (const log of logs) words += log.words as number;
    count += logs.length;
    if (count === n) {
      report({ event: 'done', at: now(), count, words });
      break;
    }
  }
  pull.close();
} else if (role === 'map') {
  const pull = await bound();
  const push = new Push({ sendHighWaterMark: HWM, linger: 1000 });
  push.connect(a as string);
  for await (const [body] of pull) {
    const logs = JSON.parse((body as Buffer).toString('utf8')) as FlowLog[];
    await push.send(JSON.stringify(logs.map(mapLog)));
  }
} else if (role === 'source') {
  const [n, batch] = [Number(b), Number(c)];
  const push = new Push({ sendHighWaterMark: HWM, linger: 5000 });
  push.connect(a as string);
  report({ event: 'start', at: now() });
  for (let i = 0; i < n; i += batch) await push.send(JSON.stringify(makeBatch(i, Math.min(batch, n - i))));
  push.close();
} else {
  process.stderr.write('usage: raw.ts sink N | map SINK | source MAP N BATCH\n');
  process.exit(2);
}
