export { startOwnRegistry, type OwnRegistry, type OwnRegistryOptions, type RegistryAuth } from './registry-server.js';
