import { element } from '../../runtime/index.js';
import { mapLog, type FlowLog } from './logs.js';

export default element({
  onPush(_port, logs, ctx) {
    return ctx.emitMany('out', (logs as FlowLog[]).map(mapLog));
  },
});
