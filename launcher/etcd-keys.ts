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
  /** Each element instance's figures of the last second (an `ElementMetrics`), under its server's lease (issue 17). */
  metrics: (stack: string) => `/quarry/stacks/${stack}/metrics/`,
  elementMetrics: (stack: string, element: string, replica: number) => `/quarry/stacks/${stack}/metrics/${element}/${replica}`,
};

/** One port of an element instance, over the last interval. */
export interface PortMetrics {
  kind: 'push' | 'query';
  dir: 'in' | 'out';
  /** Logs per second through the port (in: received and handled; out: emitted). */
  rate: number;
  /** The same, counted since the instance started. */
  total: number;
  /** in: logs received and not yet handled, its limit, and whether the port holds back its senders now. */
  queued?: number;
  queueLimit?: number;
  backpressure?: boolean;
  /** push out ports: the fraction of the interval the port was full, its sender waiting (0 to 1). */
  blocked?: number;
  /** query ports: queries per second, and the median and 99th percentile latency in ms. */
  queryRate?: number;
  p50Ms?: number;
  p99Ms?: number;
}

/**
 * What `/quarry/stacks/<stack>/metrics/<element>/<replica>` holds: one element instance's
 * figures, written about once a second by its server's metrics relay (the agent; HQ in small
 * mode; the runner for `quarry run`) from the instance's own counters (its control socket).
 */
export interface ElementMetrics {
  stack: string;
  element: string;
  replica: number;
  server: string;
  /** The instance's life: a new one after a restart (its counters start again from 0). */
  incarnation: string;
  /** When the figures were read (ISO), and the interval the rates cover, in ms. */
  at: string;
  intervalMs: number;
  /** Counters since the instance started: logs handled (all in ports) and seconds spent in its handlers. */
  processed: number;
  busySeconds: number;
  /** The fraction of the interval spent in the element's handlers (0 to 1). */
  busy: number;
  /** Logs handled per second over the interval. */
  rate: number;
  ports: Record<string, PortMetrics>;
}

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
