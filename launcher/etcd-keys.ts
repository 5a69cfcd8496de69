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
};

/** What an endpoint key holds: where a member of a unit is reached. */
export interface EndpointRecord {
  container: string;
  host: string;
  ports: Record<string, number>;
  /** On a grid: the server it runs on. */
  server?: string;
}
