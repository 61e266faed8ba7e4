/**
 * `ForwardingEngine`: the one small contract between the phase runner and whatever speaks HTTP to
 * upstreams. The per-request exchange is an {@link UpstreamHandler} with undici's dispatch-handler
 * method names, so the undici engine passes it through without an adapter, and another engine
 * (raw `node:http`, a hand-written client) calls the same six methods.
 */
import type { Duplex, Readable } from 'node:stream';
import type { HeaderMap } from '../hooks.ts';
import type { HttpPeer } from '../http-peer.ts';

/** Flow control over one upstream exchange (undici's `DispatchController` satisfies it). */
export interface UpstreamController {
  pause(): void;
  resume(): void;
  abort(reason: Error): void;
}

/** What one attempt sends upstream. Built per attempt by the runner. */
export interface UpstreamDispatch {
  method: string;
  path: string;
  headers: HeaderMap;
  /** The downstream body stream, or null for none. Engines must not consume it before connecting. */
  body: Readable | null;
  /** The `Upgrade` protocol for an HTTP/1.1 upgrade (e.g. `websocket`), else undefined. */
  upgrade: string | undefined;
  /** Longest wait for the response head after the request was written (0 = none). */
  headersTimeoutMs: number;
  /** Longest silence between response body chunks (0 = none). */
  bodyIdleTimeoutMs: number;
}

/**
 * The receiver of one exchange, called by the engine in this order: `onRequestStart` once a
 * connection is assigned and bytes are about to go out; then either `onResponseStart`,
 * `onResponseData`*, `onResponseEnd`, or `onRequestUpgrade` (101); `onResponseError` at any point
 * (with `controller` undefined when the connection never came up: safe to retry elsewhere).
 */
export interface UpstreamHandler {
  onRequestStart(controller: UpstreamController, context: unknown): void;
  onResponseStart(controller: UpstreamController, statusCode: number, headers: HeaderMap, statusMessage?: string): void;
  onResponseData(controller: UpstreamController, chunk: Buffer): void;
  onResponseEnd(controller: UpstreamController, trailers: HeaderMap): void;
  onResponseError(controller: UpstreamController | undefined, error: Error): void;
  onRequestUpgrade(controller: UpstreamController, statusCode: number, headers: HeaderMap, socket: Duplex): void;
}

/** Something that forwards exchanges to peers through bounded keep-alive pools. */
export interface ForwardingEngine {
  /** Starts one exchange; never throws (failures arrive at `handler.onResponseError`). Per attempt. */
  dispatch(peer: HttpPeer, request: UpstreamDispatch, handler: UpstreamHandler): void;
  /** Lets in-flight exchanges finish, then closes every pooled connection. */
  close(): Promise<void>;
  /** Closes every connection at once, failing in-flight exchanges. */
  destroy(): Promise<void>;
}
