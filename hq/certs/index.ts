// HQ's certificates: kept in etcd for every router (store.ts), obtained by ACME (acme.ts).
export {
  CertificateNotFoundError, CertificateRefusedError, CertificateStore, MemoryCertificateKv, certificateDomain, etcdCertificateKv,
  type CertificateKv,
} from './store.js';
export { AcmeCertificates, type AcmeOptions, type AcmeSettings } from './acme.js';
