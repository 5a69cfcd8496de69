import { connect } from 'node:net';
import { REPO } from '../house/import-graph.js';
import { docker as dockerCli } from '../pacific/fleet.js';

/** What a TCP connection attempt found: `open` (accepted), `refused`, or `dropped` (no answer in time). */
export type Reach = 'open' | 'refused' | 'dropped';

/** Tries a TCP connection from this process (loopback or HQ's host on a grid). */
export function tcpReach(host: string, port: number, timeoutMs = 1500): Promise<Reach> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (what: Reach) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => done('dropped'), timeoutMs);
    socket.once('connect', () => done('open'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'dropped'));
  });
}

/** The program a probe container runs: each `host:port` of argv tried at once; JSON out. */
const PROBE = `
const net = require('node:net');
const targets = process.argv.slice(1);
Promise.all(targets.map((t) => new Promise((resolve) => {
  const at = t.lastIndexOf(':');
  const s = net.connect({ host: t.slice(0, at), port: Number(t.slice(at + 1)) });
  const done = (what) => { clearTimeout(timer); s.destroy(); resolve([t, what]); };
  const timer = setTimeout(() => done('dropped'), 1500);
  s.once('connect', () => done('open'));
  s.once('error', (e) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'dropped'));
}))).then((r) => console.log(JSON.stringify(Object.fromEntries(r))));
`;

/**
 * Tries TCP connections from a stranger: a container of its own on `network` (not a member of
 * any firewall), returning what each `host:port` did.
 */
export async function strangerReach(network: string, targets: string[]): Promise<Record<string, Reach>> {
  const out = await dockerCli(['run', '--rm', '--network', network, 'quarry/node:20', 'node', '-e', PROBE, ...targets]);
  return JSON.parse(out.split('\n').at(-1)!) as Record<string, Reach>;
}

/**
 * What a stranger gets out of an etcd: a container on `network` with the repo's etcd3 client
 * asks `url` for every key, as plain gRPC and as TLS trusting `caPem` but without a client
 * certificate. Returns what each attempt got: the count of keys, or the error.
 */
export async function strangerEtcd(network: string, url: string, caPem: string): Promise<{ plain: string; tls: string }> {
  const program = `
const { Etcd3 } = require('/repo/node_modules/etcd3');
const ask = async (hosts, credentials) => {
  const c = new Etcd3({ hosts, dialTimeout: 2000, ...(credentials && { credentials }) });
  try { const keys = await Promise.race([c.getAll().prefix('/').keys(), new Promise((_, j) => setTimeout(() => j(new Error('no answer')), 5000))]); return 'got ' + keys.length + ' keys'; }
  catch (e) { return 'error: ' + String(e.message).split('\\n')[0].slice(0, 120); }
  finally { c.close(); }
};
(async () => {
  const url = process.argv[1];
  const plain = await ask(url.replace('https://', 'http://'));
  const tls = await ask(url, { rootCertificate: Buffer.from(process.env.CA) });
  console.log(JSON.stringify({ plain, tls }));
  process.exit(0);
})();
`;
  const out = await dockerCli(['run', '--rm', '--network', network, '-e', `CA=${caPem}`, '-v', `${REPO}:/repo:ro`, 'quarry/node:20', 'node', '-e', program, url]);
  return JSON.parse(out.split('\n').at(-1)!) as { plain: string; tls: string };
}
