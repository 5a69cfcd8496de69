// HQ's own etcd (small mode, and the grid's until servers run members).
export { startOwnEtcd, type OwnEtcd, type OwnEtcdOptions } from './etcd-server.js';
export { etcdTls, type EtcdTlsFiles } from './etcd-tls.js';
