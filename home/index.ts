export { quarryHome, HomeLayout } from './quarry-home.js';
export {
  atomicWrite, atomicWriteAsync, readIfExists, removeStaleTemporaries, syncFolder,
} from './durable-write.js';
export { makePrivate, makeHomePrivate, type MadePrivate } from './private-modes.js';
export { isProcessAlive } from './process.js';
export { freePort } from './free-port.js';
export { spawnOwned, endLeftover, type OwnedChild, type SpawnOwnedOptions } from './owned-process.js';
export { startTicker, type Ticker } from './ticker.js';
