/**
 * slicegrid: which server (block) each container (slice) runs on, and when the grid must
 * grow or shrink. The only public surface of this folder; see docs/slicegrid.md.
 */
export { SliceGrid } from './grid.js';
export { planChange } from './plan.js';
export type { DrawOptions } from './draw.js';
export { groupOf, stackOf } from './slice-id.js';
export {
  DuplicateIdError,
  InvalidSliceGridArgumentError,
  SliceGridError,
  SliceGridFileError,
  SliceGridFullError,
  SliceGridHandlerError,
  SliceGridLimitError,
  SliceTooLargeError,
  UnknownBlockError,
  UnknownSliceError,
} from './errors.js';
export type {
  BlockInfo,
  BlockRequest,
  BlockSource,
  BlockSpec,
  CallOptions,
  CompactionPlan,
  CreateRequest,
  GridPlan,
  Move,
  Placement,
  PlannedBlock,
  PlanPolicy,
  PlanRequest,
  PlanResult,
  PlanState,
  Removal,
  SliceGridEventName,
  SliceGridEvents,
  SliceGridJSON,
  SliceGridOptions,
  SliceInfo,
  SliceRequest,
} from './types.js';
