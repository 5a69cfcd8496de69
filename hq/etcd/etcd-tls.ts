import type { HomeLayout } from '../../home/index.js';
import type { GridCa } from '../keys/index.js';

/** The files etcd's TLS listener is started with (`startOwnEtcd`'s `tls`). */
export interface EtcdTlsFiles {
  cert: string;
  key: string;
  ca: string;
}

/**
 * The certificate HQ's own etcd shows on the servers' network, signed by the grid's CA for
 * the addresses it listens on there: `<home>/ca/etcd.{crt,key}`, made again only when those
 * addresses change. etcd then takes only clients with a certificate from the same CA.
 */
export async function etcdTls(_home: HomeLayout, ca: GridCa, hosts: string[]): Promise<EtcdTlsFiles> {
  return ca.serverFiles('etcd', hosts);
}
