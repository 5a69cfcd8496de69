// The git endpoint over SSH and the pre-receive step: checkout, compile, image builds, the published src.
export { GitSshServer, GIT_USER, type SshEndpointOptions } from './ssh-server.js';
export { HookServer } from './hook-server.js';
export { receivePush, printPlan, pushInfo, type PushBuildLimits } from './release.js';
export { installHookProgram } from './repo.js';
