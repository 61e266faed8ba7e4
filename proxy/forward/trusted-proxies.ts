/**
 * `TrustedProxies`: which direct peers may tell us about the original client through
 * `X-Forwarded-*` (an L7 load balancer in front of us). Everyone else is the client itself, and
 * whatever it sends in those headers is replaced (dataplane.md §10.13: a client must not be able
 * to choose the IP that rate limits and logs see). Built once from a list of IPs and CIDRs.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { Fault } from '../../core/fault.ts';

/** A set of trusted addresses; `check` is called once per request when the list is not empty. */
export class TrustedProxies {
  readonly #list = new BlockList();
  /** True when no address is trusted (the common case: we are the first hop). */
  readonly empty: boolean;

  /** `entries`: IPv4/IPv6 addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`). Throws a `Fault` on a bad entry. */
  constructor(entries: readonly string[] = []) {
    for (const entry of entries) {
      const [address, prefix] = entry.split('/') as [string, string | undefined];
      const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
      const prefixLength = prefix === undefined ? undefined : Number(prefix);
      if (family === undefined || (prefixLength !== undefined && !Number.isInteger(prefixLength))) {
        throw new Fault('err:frontline:config:invalid_configuration', { internalMessage: `invalid trusted proxy entry: ${entry}` });
      }
      if (prefixLength === undefined) this.#list.addAddress(address, family);
      else this.#list.addSubnet(address, prefixLength, family);
    }
    this.empty = entries.length === 0;
  }

  /** True when `address` (as normalised by {@link normalizeAddress}) is trusted. */
  check(address: string): boolean {
    if (this.empty || address === '') return false;
    return this.#list.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
  }
}

/** Strips the IPv4-mapped IPv6 prefix (`::ffff:1.2.3.4` → `1.2.3.4`); `undefined` becomes `''`. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
