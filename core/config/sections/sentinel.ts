/**
 * The `sentinel` section: the gateway that runs the policies of `frontline.routes[].policies`
 * (KeyAuth, RateLimit, Firewall, JWTAuth, OpenAPI, Logging) in front of the route's upstreams.
 * `mode` chooses how it meets Frontline: `one-hop` runs the policy phase inside Frontline's
 * process and request (no extra hop), `two-hop` runs Sentinel as its own listener that Frontline
 * forwards to over keep-alive HTTP/1.1 (or h2c), naming the deployment in
 * `X-Keygate-Deployment-Id`, which Sentinel believes only from `trustedFrontlines`.
 */
import { field } from '../field.ts';

/** `sentinel.*` keys. */
export const sentinel = {
  mode: field.oneOf(['one-hop', 'two-hop'], { description: 'one-hop: policies run inside Frontline; two-hop: Frontline forwards to a separate Sentinel listener.', default: 'one-hop' }),
  balancing: field.oneOf(['round-robin', 'least-outstanding'], { description: 'How a request picks among a deployment\'s instances.', default: 'round-robin' }),
  ejectMs: field.durationMs({ description: 'How long an instance that refused a connection is tried only after the healthy ones.', default: 10_000, min: 0 }),
  trustedFrontlines: field.stringList({ description: 'IPs or CIDRs of Frontlines allowed to set X-Keygate-Deployment-Id (two-hop). Their X-Forwarded-For is believed too.', default: ['127.0.0.1', '::1'] }),
  trustedProxies: field.stringList({ description: 'IPs or CIDRs of other proxies whose X-Forwarded-For names the client (rate limits by IP, logs).', default: [] }),
  port: field.integer({ description: 'Port of the Sentinel listener in two-hop mode (0 picks a free port).', default: 0, min: 0, max: 65535 }),
  protocol: field.oneOf(['http1', 'h2c'], { description: 'Protocol of the Frontline → Sentinel hop in two-hop mode (keep-alive HTTP/1.1 or prior-knowledge HTTP/2).', default: 'http1' }),
  requestLogFlushIntervalMs: field.durationMs({ description: 'How often buffered request-log rows are written to the local gateway_requests table.', default: 5_000, min: 0 }),
} as const;
