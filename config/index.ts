/**
 * Daemon configuration: a JSON document at a URL (`file://`, `http://`, `https://`), checked
 * against a small schema. `quarry router`, `quarry hq` and `quarry agent` load theirs here.
 */
export { ConfigError, ConfigInvalidError, ConfigSyntaxError, ConfigUnreadableError } from './errors.js';
export { configUrl, loadConfig, validateConfig, type LoadOptions } from './load.js';
export {
  FieldProblem, boolean, integer, list, object, optional, port, string, url,
  type ConfigOf, type Field, type Schema,
} from './schema.js';
export { parseConfigFlag, stopSignal } from './daemon-args.js';
