/** The etcd keys HQ writes (DESIGN.md, etcd keys). Only this module spells them out. */
export const keys = {
  env: (stack: string) => `/quarry/stacks/${stack}/env/`,
  endpoints: (stack: string) => `/quarry/stacks/${stack}/endpoints/`,
  endpoint: (stack: string, name: string, member: number) => `/quarry/stacks/${stack}/endpoints/${name}/${member}`,
  unitEndpoints: (stack: string, name: string) => `/quarry/stacks/${stack}/endpoints/${name}/`,
  routes: '/quarry/routes/',
  route: (domain: string, container: string) => `/quarry/routes/${domain}/${container}`,
  /** The hosts locknet lets in: `{"id", "ip"}` each. */
  networkHosts: '/quarry/network/hosts/',
  networkHost: (id: string) => `/quarry/network/hosts/${id}`,
  /** Files every server keeps in sync; `/etc/hosts`'s quarry block among them. */
  configFiles: '/quarry/config/files/',
  hostsFile: '/quarry/config/files/etc/hosts',
  /** A server's record (its agent's, under the agent's lease), and its firewall's state. */
  server: (id: string) => `/quarry/servers/${id}`,
  serverLocknet: (id: string) => `/quarry/servers/${id}/locknet`,
  /** What a server's caretaker knows of each container it looks after (a `CareRecord`), under its lease. */
  care: (stack: string) => `/quarry/stacks/${stack}/care/`,
  containerCare: (stack: string, container: string) => `/quarry/stacks/${stack}/care/${container}`,
};

/**
 * What a caretaker (a server's agent, or HQ in small mode) reports of one container it looks
 * after: how often it restarted it, how it last ended, and whether it gave up.
 */
export interface CareRecord {
  /** `<stack>.<name>.<n>` */
  container: string;
  stack: string;
  unit: string;
  /** The server it runs on (`local` in small mode). */
  server: string;
  /**
   * `running` (up, or never seen die), `backoff` (died; restarting after `nextRestartAt`),
   * `failed` (died too often within the policy's window: left stopped until a deploy replaces it).
   */
  state: 'running' | 'backoff' | 'failed';
  /** Restarts made by the caretaker since the container was created. */
  restarts: number;
  /** How it last ended: its exit code, when, and whether the kernel's OOM killer ended it. */
  lastExit?: { code: number; at: string; oom?: boolean };
  nextRestartAt?: string;
  /** Why it is `failed`. */
  reason?: string;
}

/** What an endpoint key holds: where a member of a unit is reached. */
export interface EndpointRecord {
  container: string;
  host: string;
  ports: Record<string, number>;
  /** On a grid: the server it runs on. */
  server?: string;
}
