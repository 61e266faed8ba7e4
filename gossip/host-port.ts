/**
 * `parseHostPort`: turns the `host:port` strings of the configuration (`gossip.listen`,
 * `gossip.peers`) into libp2p multiaddrs. Operators write `127.0.0.1:7001`, `[::1]:7001` or
 * `node-b.internal:7001`; peer ids are never required (they are learnt on connect).
 */
import { isIP } from 'node:net';
import { multiaddr } from '@multiformats/multiaddr';
import type { Multiaddr } from '@multiformats/multiaddr';
import { Fault } from '../core/fault.ts';

/** A parsed `host:port`. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
  /** `/ip4/…/tcp/…`, `/ip6/…/tcp/…` or `/dns/…/tcp/…`. */
  readonly multiaddr: Multiaddr;
}

/**
 * Parses `host:port` (IPv6 in brackets). `what` names the setting in the error. Throws `Fault`
 * `err:keygate:config:invalid` for anything else, or a port outside 0–65535 (0 only when
 * `allowPortZero`, for listening on a free port).
 */
export function parseHostPort(text: string, what: string, options: { allowPortZero?: boolean } = {}): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s/]+)):(\d{1,5})$/.exec(text.trim());
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  const minPort = options.allowPortZero === true ? 0 : 1;
  if (host === undefined || !Number.isInteger(port) || port < minPort || port > 65535) {
    throw new Fault('err:keygate:config:invalid', {
      internalMessage: `${what}: "${text}" is not host:port (for example 127.0.0.1:7001, [::1]:7001 or node-b.internal:7001)`,
    });
  }
  const family = isIP(host);
  if (match?.[1] !== undefined && family !== 6) {
    throw new Fault('err:keygate:config:invalid', { internalMessage: `${what}: "${host}" in brackets is not an IPv6 address` });
  }
  const protocol = family === 4 ? 'ip4' : family === 6 ? 'ip6' : 'dns';
  return { host, port, multiaddr: multiaddr(`/${protocol}/${host}/tcp/${port}`) };
}

/** `host:port` of a TCP multiaddr (brackets around IPv6), for logs and status. */
export function formatHostPort(address: Multiaddr): string {
  const components = address.getComponents();
  const host = components.find((component) => component.name === 'ip4' || component.name === 'ip6' || component.name.startsWith('dns'));
  const port = components.find((component) => component.name === 'tcp');
  if (host?.value === undefined || port?.value === undefined) return address.toString();
  return host.name === 'ip6' ? `[${host.value}]:${port.value}` : `${host.value}:${port.value}`;
}
