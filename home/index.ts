export { quarryHome, HomeLayout } from './quarry-home.js';
export {
  atomicWrite, atomicWriteAsync, readIfExists, removeStaleTemporaries, syncFolder,
} from './durable-write.js';
export { isProcessAlive } from './process.js';
export { freePort } from './free-port.js';
