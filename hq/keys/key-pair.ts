import ssh2 from 'ssh2';

/**
 * A new ed25519 key pair in OpenSSH form. ssh2's generator strips leading zero bytes of the
 * public key, so about one pair in 256 is one its own parser refuses ("Malformed OpenSSH
 * private key", mscdex/ssh2#1513): such a pair is thrown away and another made.
 */
export function ed25519Pair(comment: string): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error) && !(ssh2.utils.parseKey(pair.public) instanceof Error)) return pair;
  }
}
