/**
 * `HttpPeer`: one upstream a request can be forwarded to. Create peers when configuration loads
 * (not per request): the origin key and the options the forwarding engine needs are computed once.
 */
import { Fault } from '../core/fault.ts';

/** The wire protocol spoken to an upstream: HTTP/1.1, or HTTP/2 with prior knowledge over plain TCP. */
export type UpstreamProtocol = 'http1' | 'h2c';

/** Options for {@link HttpPeer}. */
export interface HttpPeerOptions {
  /** `http1` (default) or `h2c` (prior-knowledge HTTP/2, multiplexed). Ignored for `https:` peers. */
  protocol?: UpstreamProtocol;
  /** TLS server name for `https:` peers (default: the URL's hostname). */
  servername?: string;
  /** Verify the upstream's certificate for `https:` peers (default true). */
  rejectUnauthorized?: boolean;
  /** Extra CA certificates (PEM) trusted for `https:` peers. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Replaces the `Host` header sent upstream (default: the client's Host is kept). */
  hostHeader?: string;
  /** Free-form label for logs and metrics (default: the origin). */
  name?: string;
}

/** One upstream (origin URL plus how to speak to it). Immutable; share it across requests. */
export class HttpPeer {
  /** `scheme://host:port`, the key of the connection pool. */
  readonly origin: string;
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  readonly protocol: UpstreamProtocol;
  readonly servername: string | undefined;
  readonly rejectUnauthorized: boolean;
  readonly ca: string | Buffer | ReadonlyArray<string | Buffer> | undefined;
  readonly hostHeader: string | undefined;
  readonly name: string;
  /** Pool key: the origin plus the protocol (one pool per pair). */
  readonly poolKey: string;

  /** `url` is `http://host:port`, `https://host:port` or `host:port` (taken as http). Throws a `Fault` when invalid. */
  constructor(url: string, options: HttpPeerOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url.includes('://') ? url : `http://${url}`);
    } catch (err) {
      throw new Fault('err:frontline:config:invalid_configuration', { internalMessage: `invalid upstream URL: ${url}`, cause: err });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new Fault('err:frontline:config:invalid_configuration', { internalMessage: `unsupported upstream scheme: ${parsed.protocol}` });
    }
    this.tls = parsed.protocol === 'https:';
    this.hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
    this.port = parsed.port === '' ? (this.tls ? 443 : 80) : Number(parsed.port);
    this.origin = `${parsed.protocol}//${parsed.host}`;
    this.protocol = this.tls ? 'http1' : (options.protocol ?? 'http1');
    this.servername = options.servername ?? (this.tls ? this.hostname : undefined);
    this.rejectUnauthorized = options.rejectUnauthorized ?? true;
    this.ca = options.ca;
    this.hostHeader = options.hostHeader;
    this.name = options.name ?? this.origin;
    this.poolKey = this.protocol === 'h2c' ? `h2c+${this.origin}` : this.origin;
  }
}
