/**
 * `PeerHopAuthenticator`: the hop counter between Frontlines in different regions, made to work.
 * The reference strips every internal header at the edge, the hop counter included, so its hop
 * limit never fires (dataplane.md §3.5). Here a Frontline that forwards to a peer signs the hop
 * headers with HMAC-SHA256 under a secret shared by the fleet; the receiving edge reads and
 * verifies them *before* stripping every client `X-Keygate-*` header, and trusts the count only
 * when the signature matches. A client cannot lower the count (no secret), and a forged or
 * replayed header set can at most raise it for that client's own request.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Header names of a peer hop (lower case). All start with `x-keygate-`, so the edge strips them. */
export const HOP_HEADERS = {
  hops: 'x-keygate-frontline-hops',
  parentRequestId: 'x-keygate-parent-request-id',
  parentFrontlineId: 'x-keygate-parent-frontline-id',
  signature: 'x-keygate-hop-signature',
} as const;

/** The verified hop information of an inbound request. */
export interface InboundHop {
  /** Hops already taken (0 for a request straight from a client or with an invalid signature). */
  readonly hops: number;
  /** The forwarding Frontline's request id, when authenticated. */
  readonly parentRequestId: string | undefined;
  /** True when hop headers were present but not authentic (counted in metrics). */
  readonly rejected: boolean;
}

/** The hop of a request from a client: no hops yet. */
export const NO_HOP: InboundHop = Object.freeze({ hops: 0, parentRequestId: undefined, rejected: false });

/** Largest hop count accepted in a header (anything larger is treated as malformed). */
export const MAX_HOP_HEADER_VALUE = 1_000;

/** Signs and verifies hop headers with a shared secret; without a secret nothing is trusted. */
export class PeerHopAuthenticator {
  readonly #secret: Buffer | undefined;

  /** `secret`: the fleet's shared secret (at least 16 bytes recommended); undefined = never trust hop headers. */
  constructor(secret: string | undefined) {
    this.#secret = secret === undefined || secret === '' ? undefined : Buffer.from(secret, 'utf8');
  }

  /** True when a secret is configured (peer hop headers can be authenticated). */
  get enabled(): boolean {
    return this.#secret !== undefined;
  }

  /**
   * Reads the hop headers of an inbound request and verifies them. Call before the edge strips
   * `x-keygate-*` headers; per request, and cheap when no hop header is present.
   */
  read(headers: IncomingHttpHeaders, host: string): InboundHop {
    const hopsText = headers[HOP_HEADERS.hops];
    if (hopsText === undefined) return NO_HOP;
    const signature = headers[HOP_HEADERS.signature];
    const parentRequestId = headers[HOP_HEADERS.parentRequestId];
    const parentFrontlineId = headers[HOP_HEADERS.parentFrontlineId];
    if (this.#secret === undefined || typeof hopsText !== 'string' || typeof signature !== 'string'
      || typeof parentRequestId !== 'string' || typeof parentFrontlineId !== 'string' || !/^\d{1,4}$/.test(hopsText)) {
      return REJECTED;
    }
    const hops = Number(hopsText);
    if (hops > MAX_HOP_HEADER_VALUE) return REJECTED;
    const expected = this.#mac(hops, parentRequestId, parentFrontlineId, host);
    const given = Buffer.from(signature, 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return REJECTED;
    return { hops, parentRequestId, rejected: false };
  }

  /**
   * The headers for a request this Frontline forwards to a peer: `hops` is the count *after*
   * this hop. Per forwarded request. Without a secret, the count is still sent (unsigned) so a
   * peer's logs show it, but no peer will trust it.
   */
  sign(hops: number, requestId: string, frontlineId: string, host: string): Record<string, string> {
    const headers: Record<string, string> = {
      [HOP_HEADERS.hops]: String(hops),
      [HOP_HEADERS.parentRequestId]: requestId,
      [HOP_HEADERS.parentFrontlineId]: frontlineId,
    };
    if (this.#secret !== undefined) headers[HOP_HEADERS.signature] = this.#mac(hops, requestId, frontlineId, host).toString('utf8');
    return headers;
  }

  #mac(hops: number, requestId: string, frontlineId: string, host: string): Buffer {
    // Bound to the host too, so a signed header set cannot be moved to another tenant's request.
    const digest = createHmac('sha256', this.#secret!).update(`keygate-hop-v1\n${hops}\n${requestId}\n${frontlineId}\n${host}`).digest('base64url');
    return Buffer.from(`v1=${digest}`, 'utf8');
  }
}

const REJECTED: InboundHop = Object.freeze({ hops: 0, parentRequestId: undefined, rejected: true });
