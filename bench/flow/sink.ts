import { element } from '../../runtime/index.js';
import { now, report } from './logs.js';

let count = 0;
let words = 0;

export default element<{ n: number }>({
  onPush(_port, logs, ctx) {
    for (const log of logs) words += log.words as number;
    count += logs.length;
    if (count === ctx.config.n) report({ event: 'done', at: now(), count, words });
  },
});
