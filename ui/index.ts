// HQ's dashboard (issue 18): the page's code (page/, Preact and elkjs, bundled for the browser)
// and its build into dist/ui/, which HQ's API serves under /ui/ (hq/api/ui.ts).
export { buildUi } from './build.js';
