/**
 * Differential fuzz target: the proxy framework's downstream HTTP/1.1 path on keygate's own parser
 * (`proxy/http1-downstream.ts` on `core/http/http1-connection.ts`, `http1Parser: 'keygate'`)
 * against node:http (`http1Parser: 'node'`), on arbitrary request bytes. One recording origin
 * (plain node:http) answers every request with a JSON echo of what reached it: method, url, HTTP
 * version, headers (without the per-request `x-keygate-request-id`), trailers, and the length and
 * sha256 of the body. Two `ProxyServer`s on port 0 with the same hooks forward everything to it,
 * one per `http1Parser`.
 *
 * As in `http1-request.fuzz.ts`, each input is cut into requests where node's own parser (llhttp)
 * says each ends, and written over fresh sockets three ways: to the node proxy one request at a
 * time, each after the answers to the previous one (the reference); the same way to the keygate
 * proxy; and to the keygate proxy at once, pipelined (two writes split at a point derived from
 * the input). Responses are collected until the proxy closes or the connection is quiet for a
 * moment; a mismatch is re-checked once with a longer quiet period.
 *
 * Properties: keygate's paced sequence of (status, body) equals node's, and so does whether the
 * proxy closed the connection. Bodies are compared after taking out the request id (the echo's
 * `x-keygate-request-id`, and the id in the proxy's own JSON or HTML error pages). The
 * `x-forwarded-*` headers are compared as they are: both paths derive them from the same client
 * address (127.0.0.1) and the client's own `Host`, never from the listener's port, so they do not
 * differ between the two proxies. One intended difference is normalised: a `content-length` with
 * leading zeros (`007`) reaches the origin as the number (`7`) from keygate, which forwards the
 * inline body it read with the length it counted, and as sent from node:http, which streams the
 * body with the client's header; the echo's value is compared as a number. The origin answers
 * with a content-length or chunked (chosen by the url), so both response writers are exercised.
 * The one allowed divergence is the API target's: keygate may stop
 * early, its connection still open, where node answered the remaining bytes with 4xx (keygate
 * waits for a head's CRLF CRLF before judging it and then hands the connection to node:http,
 * while node's parser rejects a bad prefix of the head at once; the paced input ends before the
 * head does, so keygate has nothing to judge yet). Keygate's pipelined answers equal its paced
 * ones, except for node:http's dropped answers after a hand-off (see `pipelineDivergence`).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { HttpPeer } from '../proxy/http-peer.ts';
import { ProxyServer } from '../proxy/proxy-server.ts';
import type { RawResponse } from '../test/core/http/raw-http1-client.ts';
import type { FuzzTarget } from './fuzz-target.ts';
import {
  checkDifferential, collect, COMMON_REQUEST_SEEDS, divergence, HOST, MAX_HEADER_BYTES, MAX_REQUESTS, pipelineDivergence, requestPieces, splitPoint,
  waitsForHead, type Collected, type RequestPieces,
} from './http1-differential.ts';

/** The request id header both proxies add upstream and downstream (the runner's default). */
const REQUEST_ID_HEADER = 'x-keygate-request-id';

const SEEDS = [
  ...COMMON_REQUEST_SEEDS,
  'POST /v1/keys.verifyKey HTTP/1.1\r\nhost: api.example.com\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}',
  'POST /items/1 HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\nGET /echo HTTP/1.1\r\nhost: a\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-host: evil\r\n\r\n',
  // Hop-by-hop headers and the headers `connection` names are not forwarded.
  'GET /echo HTTP/1.1\r\nhost: a\r\nconnection: keep-alive, x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\nproxy-authorization: x\r\nte: trailers\r\n\r\n',
  // A declared length over the inline limit (handed to node:http), its body not sent in full.
  'PUT /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 70000\r\n\r\nstart of a large body',
  'POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 007\r\n\r\nleading',
  'GET /echo HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
];

/**
 * A normalized response: status and body, the request id taken out (the echo's header, and the
 * id wherever the proxy wrote it into its own error page, found through the response header).
 */
function normalize(response: RawResponse): string {
  let text = response.body.toString('latin1');
  const requestId = response.headers[REQUEST_ID_HEADER];
  if (requestId !== undefined && requestId !== '') text = text.replaceAll(requestId, '<request-id>');
  if (response.headers['x-origin-echo'] === '1' && text !== '') { // (a HEAD's answer has no body)
    const echo = JSON.parse(text) as { headers: Record<string, unknown> };
    const length = echo.headers['content-length'];
    // Intended: keygate forwards its inline body with the length it counted (`007` → `7`), node
    // forwards the client's spelling while it streams the body; the same number either way.
    if (typeof length === 'string' && /^0+[0-9]/.test(length)) echo.headers['content-length'] = String(Number(length));
    text = JSON.stringify(echo);
  }
  return `${response.status} ${text}`;
}

/** The recording origin: answers every request with what reached it (see the module comment). */
async function recordingOrigin(): Promise<{ server: http.Server; sockets: Set<Socket>; port: number }> {
  const server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 60_000, maxHeaderSize: 64 * 1024 }, (req, res) => {
    const hash = createHash('sha256');
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bodyBytes += chunk.length;
    });
    req.on('error', () => {});
    req.on('end', () => {
      const headers: Record<string, string | string[] | undefined> = { ...req.headers };
      delete headers[REQUEST_ID_HEADER];
      const echo = JSON.stringify({
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        headers,
        trailers: req.trailers,
        bodyBytes,
        bodySha256: hash.digest('hex'),
      });
      // The framing varies with the url, so that the proxies' response writers see both kinds: a
      // content-length, or chunked (the proxy then writes chunked too). No trailers: the raw
      // response reader of the tests takes a chunked body's end as the end of the response.
      if ((req.url ?? '').length % 2 === 0) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(echo), 'x-origin-echo': '1' });
        res.end(echo);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-origin-echo': '1' });
      const half = Math.floor(echo.length / 2);
      res.write(echo.slice(0, half));
      res.end(echo.slice(half));
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return { server, sockets, port: (server.address() as AddressInfo).port };
}

/** A proxy forwarding everything to `peer`, on one `http` listener with the given parser. */
async function proxyServer(peer: HttpPeer, http1Parser: 'keygate' | 'node'): Promise<{ proxy: ProxyServer<null>; port: number }> {
  const proxy = new ProxyServer<null>({ hooks: { newCtx: () => null, upstreamPeer: () => peer } });
  const { port } = await proxy.listen({ port: 0, host: HOST, http1Parser });
  return { proxy, port };
}

/** The fuzz target (see the module comment). */
export async function createFuzzTarget(): Promise<FuzzTarget> {
  const origin = await recordingOrigin();
  const peer = new HttpPeer(`http://${HOST}:${origin.port}`);
  const keygate = await proxyServer(peer, 'keygate');
  const node = await proxyServer(peer, 'node');
  const run = ({ pieces, methods }: RequestPieces, quietMs: number, maxMs: number) => {
    const input = Buffer.concat(pieces);
    const splitAt = splitPoint(input);
    const pipelined = [input.subarray(0, splitAt), input.subarray(splitAt)];
    return Promise.all([
      collect(keygate.port, pieces, true, quietMs, maxMs, methods),
      collect(node.port, pieces, true, quietMs, maxMs, methods),
      collect(keygate.port, pipelined, false, quietMs, maxMs, methods),
    ]);
  };
  const why = ([fastPaced, reference, fastPipelined]: Collected[], tail: Buffer | undefined) =>
    divergence(fastPaced!, reference!, normalize, waitsForHead(tail)) ?? pipelineDivergence(fastPipelined!, fastPaced!, normalize);
  return {
    name: 'proxy-downstream',
    seeds: SEEDS.map((seed) => Buffer.from(seed, 'latin1')),
    async check(input) {
      // At most MAX_REQUESTS requests (and what follows them), so a paced run stays short.
      const cut = requestPieces(Buffer.from(input), MAX_HEADER_BYTES);
      const pieces: RequestPieces = { ...cut, pieces: cut.pieces.slice(0, MAX_REQUESTS) };
      const tail = pieces.pieces.length > cut.complete ? pieces.pieces[cut.complete] : undefined;
      return checkDifferential((quietMs, maxMs) => run(pieces, quietMs, maxMs), (outcomes) => why(outcomes, tail));
    },
    async close() {
      await Promise.all([keygate.proxy.close({ graceMs: 100 }), node.proxy.close({ graceMs: 100 })]);
      for (const socket of origin.sockets) socket.destroy();
      await new Promise<void>((resolve) => origin.server.close(() => resolve()));
    },
  };
}
