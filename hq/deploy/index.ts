// Pushes, scale, env and rollback as tasks that make releases; recovery after a crash; ps.
export { startControl, type ControlContext, type ControlHandle } from './control.js';
