import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWrite, type HomeLayout } from '../../home/index.js';
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
export async function etcdTls(home: HomeLayout, ca: GridCa, hosts: string[]): Promise<EtcdTlsFiles> {
  const files = { cert: join(ca.dir, 'etcd.crt'), key: join(ca.dir, 'etcd.key'), ca: ca.certFile };
  const sansFile = join(ca.dir, 'etcd.sans');
  const sans = [...new Set([...hosts, '127.0.0.1'])].sort().join(',');
  const made = existsSync(files.cert) && existsSync(files.key) && existsSync(sansFile) && readFileSync(sansFile, 'utf8') === sans;
  if (!made) {
    const issued = await ca.issue({ cn: 'quarry-etcd', sans: sans.split(',') });
    home.ensure(ca.dir);
    atomicWrite(files.key, issued.key, 0o600);
    atomicWrite(files.cert, issued.cert, 0o644);
    atomicWrite(sansFile, sans, 0o644);
  }
  return files;
}
