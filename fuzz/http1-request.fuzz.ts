/**
 * Differential fuzz target: keygate's own HTTP/1.1 request path (`core/http/http1-connection.ts`)
 * against node:http, on arbitrary request bytes. Two `HttpServer`s listen on port 0, one per
 * `http1Parser`, with the same echo routes (several methods, an exact path and a `:param` path)
 * answering `{ method, url, params, headers, body (base64) }`. Each input is cut into requests
 * where node's own parser (llhttp) says each ends, and written over fresh sockets three ways: to
 * node:http one request at a time, each after the answers to the previous one (the reference);
 * the same way to keygate; and to keygate at once, pipelined (two writes split at a point
 * derived from the input). Responses are collected until the server closes or the connection is
 * quiet for a moment. Pacing the reference matters: given pipelined bytes, node:http drops the
 * answers still in flight when a later request in the same read is malformed, so its unpaced
 * answers depend on timing.
 *
 * Properties: keygate's paced sequence of (status, body without the request id) equals node's,
 * and so does whether the server closed the connection; except that keygate may stop early, its
 * connection still open, where node answered the remaining bytes with 4xx errors (keygate waits
 * for the end of a head before judging it; node's parser rejects a bad prefix at once). Keygate's
 * pipelined answers equal its paced ones, except for node's dropped answers after a hand-off
 * (see `pipelineDivergence`).
 */
import { HttpServer } from '../core/http/http-server.ts';
import type { Http1Parser } from '../core/http/http-server.ts';
import type { RequestContext } from '../core/http/request-context.ts';
import type { HttpMethod } from '../core/http/interface.ts';
import { createLogger } from '../core/log.ts';
import { Metrics } from '../core/metrics.ts';
import type { RawResponse } from '../test/core/http/raw-http1-client.ts';
import type { FuzzTarget } from './fuzz-target.ts';
import {
  checkDifferential, collect, COMMON_REQUEST_SEEDS, divergence, HOST, MAX_HEADER_BYTES, MAX_REQUESTS, pipelineDivergence, requestPieces, splitPoint,
  type Collected,
} from './http1-differential.ts';

const ECHO_METHODS: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

const SEEDS = [
  ...COMMON_REQUEST_SEEDS,
  'GET /nope HTTP/1.1\r\nhost: a\r\n\r\nPOST /items/1 HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n',
];

/** A normalized response: status and body, the per-request id removed from error envelopes. */
function normalize(response: RawResponse): string {
  const text = response.body.toString('latin1');
  let body = text;
  try {
    const parsed = JSON.parse(text) as { meta?: { requestId?: unknown } };
    if (parsed !== null && typeof parsed === 'object' && parsed.meta !== undefined) delete parsed.meta.requestId;
    body = JSON.stringify(parsed);
  } catch {
    // Not JSON (node's own bare error answers): compared as it is.
  }
  return `${response.status} ${body}`;
}

/** An echo server on port 0 using `http1Parser`. */
async function echoServer(http1Parser: Http1Parser): Promise<{ server: HttpServer; port: number }> {
  const server = new HttpServer({ http1Parser, logger: createLogger({ level: 'silent' }), metrics: new Metrics() });
  // Every answer says which method it answers, so the reader knows a HEAD response has no body.
  server.use((ctx, next) => {
    ctx.setResponseHeader('x-method', ctx.method);
    return next(ctx);
  });
  const echo = (ctx: RequestContext) => ({
    body: {
      method: ctx.method,
      url: ctx.req?.url ?? ctx.exchange?.url,
      params: ctx.params,
      headers: ctx.headers,
      body: ctx.rawBody.toString('base64'),
    },
  });
  for (const method of ECHO_METHODS) {
    server.route(method, '/echo', echo);
    server.route(method, '/items/:id', echo);
  }
  const { port } = await server.listen({ port: 0, host: HOST });
  return { server, port };
}

/** The fuzz target (see the module comment). */
export async function createFuzzTarget(): Promise<FuzzTarget> {
  const keygate = await echoServer('keygate');
  const node = await echoServer('node');
  const run = (pieces: Buffer[], quietMs: number, maxMs: number) => {
    const input = Buffer.concat(pieces);
    const splitAt = splitPoint(input);
    const pipelined = [input.subarray(0, splitAt), input.subarray(splitAt)];
    return Promise.all([
      collect(keygate.port, pieces, true, quietMs, maxMs),
      collect(node.port, pieces, true, quietMs, maxMs),
      collect(keygate.port, pipelined, false, quietMs, maxMs),
    ]);
  };
  // This target allows keygate to wait for a head node refused whatever the bytes (the narrower
  // rule, waitsForHead, is the proxy target's).
  const why = ([fastPaced, reference, fastPipelined]: Collected[]) => divergence(fastPaced!, reference!, normalize, true) ?? pipelineDivergence(fastPipelined!, fastPaced!, normalize);
  return {
    name: 'http1-request',
    seeds: SEEDS.map((seed) => Buffer.from(seed, 'latin1')),
    async check(input) {
      // At most MAX_REQUESTS requests (and what follows them), so a paced run stays short.
      const pieces = requestPieces(Buffer.from(input), MAX_HEADER_BYTES).pieces.slice(0, MAX_REQUESTS);
      return checkDifferential((quietMs, maxMs) => run(pieces, quietMs, maxMs), why);
    },
    async close() {
      await Promise.all([keygate.server.close(), node.server.close()]);
    },
  };
}
