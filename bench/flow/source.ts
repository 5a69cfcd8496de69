import { element } from '../../runtime/index.js';
import { makeBatch, now, report } from './logs.js';

export default element<{ n: number; batch: number }>({
  async *generate(ctx) {
    const { n, batch } = ctx.config;
    report({ event: 'start', at: now() });
    for (let i = 0; i < n; i += batch) yield makeBatch(i, Math.min(batch, n - i));
  },
});
