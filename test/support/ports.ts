// Tests take free ports the way quarry does.
export { freePort } from '../../home/index.js';
