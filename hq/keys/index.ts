// Who may push (authorised keys), HQ's own host key, the quarry key pair, the API token, the digest key.
export { addAuthorizedKey, fingerprint, isAuthorized, readAuthorizedKeys, type AuthorizedKey } from './authorized-keys.js';
export { loadHostKey } from './host-key.js';
export { ed25519Pair } from './key-pair.js';
export { loadOrCreateToken, tokenMatches } from './token.js';
export { loadOrCreateDigestKey } from './digest-key.js';
export { CertificateError, GridCa, type IssuedCert, type IssueOptions } from './grid-ca.js';
