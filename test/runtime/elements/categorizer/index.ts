import { extname } from 'node:path';
import { element } from '../../../../runtime/index.js';

const KINDS: Record<string, string> = { '.md': 'text', '.txt': 'text', '.ts': 'code', '.js': 'code', '.png': 'image' };

/** Adds a category to each file by its extension. Stateless, so safe to shard and to redeliver. */
export default element({
  async onPush(_port, logs, ctx) {
    for (const log of logs) {
      const category = KINDS[extname(String(log.path))] ?? 'other';
      await ctx.emit('out', { ...log, category });
    }
  },
});
