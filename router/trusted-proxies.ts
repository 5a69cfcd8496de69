import { BlockList, isIP } from 'node:net';

/** A `trustedProxies` entry that is neither an address nor a CIDR block. */
export class TrustedProxyError extends Error {
  constructor(readonly entry: string) {
    super(`not an IP address or CIDR block (like 10.0.0.0/8 or fd00::/8): ${JSON.stringify(entry)}`);
  }
}

/**
 * The peers whose X-Forwarded-* headers the router believes: proxies in front of it (a load
 * balancer, a CDN). Any other client's X-Forwarded-* are replaced by what the router saw, so
 * an app cannot be told a made-up client address. Entries are addresses or CIDR blocks, IPv4
 * or IPv6; an IPv4 entry also matches the IPv4-mapped IPv6 form a dual-stack socket reports.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const slash = entry.indexOf('/');
      const address = slash < 0 ? entry : entry.slice(0, slash);
      const family = isIP(address);
      if (family === 0) throw new TrustedProxyError(entry);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (slash < 0) {
        this.list.addAddress(address, type);
        continue;
      }
      const bits = entry.slice(slash + 1);
      const prefix = Number(bits);
      if (!/^\d{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new TrustedProxyError(entry);
      this.list.addSubnet(address, prefix, type);
    }
    this.size = entries.length;
  }

  has(address: string | undefined): boolean {
    if (this.size === 0 || !address) return false;
    return this.list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
}
