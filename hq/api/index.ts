// HQ's HTTP API; its wire types are shared with the command line's client (cli/client.ts).
export { startApi, type Api, type ApiOptions } from './server.js';
export * from './wire.js';
