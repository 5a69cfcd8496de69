// A plain-JavaScript element: appends every log it gets to config.path, one JSON line each,
// before its batch is acknowledged. (No import of the runtime needed: a plain object works.)
import { appendFileSync } from 'node:fs';

export default {
  async onPush(_port, logs, ctx) {
    if (ctx.config.delayMs) await new Promise((r) => setTimeout(r, ctx.config.delayMs));
    appendFileSync(ctx.config.path, logs.map((log) => JSON.stringify(log) + '\n').join(''));
  },
};
