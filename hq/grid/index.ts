// The grid: servers from pacific, placed by slicegrid, reached over SSH, each with its agent.
export { openGrid, quarryKey, type OpenGridContext } from './open-grid.js';
export { GridCluster, type GridClusterOptions, type GridSettings } from './grid-cluster.js';
export { gridAdvertise } from './advertise.js';
