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
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';
import { createRequire } from 'node:module';
import { HttpPeer } from '../proxy/http-peer.ts';
import { ProxyServer } from '../proxy/proxy-server.ts';
import { parseResponses } from '../test/core/http/raw-http1-client.ts';
import type { RawResponse } from '../test/core/http/raw-http1-client.ts';
import type { FuzzTarget } from './fuzz-target.ts';

// node's own request parser (llhttp), used only to find where each request ends.
const { HTTPParser, methods: PARSER_METHODS } = createRequire(import.meta.url)('_http_common') as { HTTPParser: HttpParserClass; methods: string[] };

const HOST = '127.0.0.1';
/** The proxies' header bound (the listener default); fuzz inputs stay below it. */
const MAX_HEADER_BYTES = 16 * 1024;
/** The request id header both proxies add upstream and downstream (the runner's default). */
const REQUEST_ID_HEADER = 'x-keygate-request-id';
/** Collection stops this long after the last byte received (or written), ms. */
const QUIET_MS = 30;
/** ... and at the latest this long after the input was written, ms. */
const MAX_COLLECT_MS = 500;
/** A mismatch is re-checked once with this quiet period, so a slow moment is not a finding. */
const RECHECK_QUIET_MS = 100;
const RECHECK_MAX_COLLECT_MS = 1_000;
/** Requests per input sent one at a time; the rest of a longer input is dropped. */
const MAX_REQUESTS = 8;
const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');

const SEEDS = [
  'GET /echo HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n',
  'POST /v1/keys.verifyKey HTTP/1.1\r\nhost: api.example.com\r\ncontent-type: application/json\r\nauthorization: Bearer root_123\r\ncontent-length: 27\r\n\r\n{"key":"sk_1","apiId":"a1"}',
  // A keep-alive pair and a pipelined triple (the bytes on the wire are the same kind).
  'GET /items/itm_1?expand=true HTTP/1.1\r\nhost: a\r\nconnection: keep-alive\r\n\r\nPUT /items/itm_2 HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello',
  'GET /echo?n=1 HTTP/1.1\r\nhost: a\r\n\r\nHEAD /echo?n=2 HTTP/1.1\r\nhost: a\r\n\r\nDELETE /items/x%20y HTTP/1.1\r\nhost: a\r\n\r\n',
  'POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\nGET /echo HTTP/1.1\r\nhost: a\r\n\r\n',
  'PATCH /items/k%C3%A9y HTTP/1.1\r\nHOST: a\r\nX-Mixed-Case:  padded\t\r\nx-empty:\r\nx-latin: caf\xe9\r\nContent-Length: 3\r\n\r\nabc',
  'OPTIONS /echo HTTP/1.1\r\nhost: a\r\naccept: application/json\r\nconnection: close\r\n\r\nGET /echo HTTP/1.1\r\nhost: a\r\n\r\n',
  'POST /echo HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nhi',
  'GET /echo HTTP/1.0\r\nhost: a\r\nconnection: keep-alive\r\n\r\nGET /echo HTTP/1.0\r\nhost: a\r\n\r\n',
  'GET http://a/echo HTTP/1.1\r\nhost: a\r\n\r\n',
  'POST /items/1 HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\nGET /echo HTTP/1.1\r\nhost: a\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-host: evil\r\n\r\n',
  'POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ncontent-length: 4\r\n\r\nbody',
  // Hop-by-hop headers and the headers `connection` names are not forwarded.
  'GET /echo HTTP/1.1\r\nhost: a\r\nconnection: keep-alive, x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\nproxy-authorization: x\r\nte: trailers\r\n\r\n',
  // A declared length over the inline limit (handed to node:http), its body not sent in full.
  'PUT /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 70000\r\n\r\nstart of a large body',
  'POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 007\r\n\r\nleading',
  'GET /echo HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
];

/** The part of node's internal `HTTPParser` used here. */
interface HttpParserClass {
  new (): HttpParserInstance;
  readonly REQUEST: number;
  readonly kLenientNone: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
}
interface HttpParserInstance {
  [callback: number]: (...args: unknown[]) => unknown;
  initialize(type: number, resource: object, maxHeaderBytes: number, lenientFlags: number): void;
  execute(bytes: Buffer): number | Error;
  close(): void;
}

interface Collected {
  responses: RawResponse[];
  closed: boolean;
}

/** An input cut into requests: the bytes of each, and the method of each complete one. */
interface Pieces {
  pieces: Buffer[];
  methods: string[];
  /** How many of the pieces are complete requests (the rest, at most one, is what llhttp did not finish or refused). */
  complete: number;
}

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

/**
 * Writes `pieces` in order on a fresh connection and reads until the proxy closes, the connection
 * is quiet for `quietMs` after the last piece, or `maxMs` passes per wait. With `paced`, each
 * piece waits for the answers to the previous one (quiet or closed) first. `methods` are the
 * methods of the requests in order, so that the answer to a HEAD is read without a body.
 */
async function collect(port: number, pieces: readonly Buffer[], methods: readonly string[], paced: boolean, quietMs: number, maxMs: number): Promise<Collected> {
  const socket = connect(port, HOST);
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  let ended = false;
  let activity: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    activity?.();
  });
  const onEnd = (): void => {
    ended = true;
    activity?.();
  };
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  /** Resolves once `quietMs` pass without a byte, the connection ends, or `maxMs` pass. */
  const settle = (): Promise<void> => new Promise((resolve) => {
    let quietTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(quietTimer);
      clearTimeout(hardTimer);
      activity = undefined;
      resolve();
    };
    const hardTimer = setTimeout(finish, maxMs);
    activity = (): void => {
      if (ended) return finish();
      clearTimeout(quietTimer);
      quietTimer = setTimeout(finish, quietMs);
    };
    activity();
  });
  for (const piece of pieces) {
    if (ended) break;
    if (piece.length > 0) await new Promise<void>((resolve) => socket.write(piece, () => resolve()));
    if (paced) await settle();
  }
  if (!paced) await settle();
  socket.destroy();
  // Final (non-1xx) answers are in request order; interim 1xx answers are not asked about here.
  // 204 and 304 are never answered (the origin always says 200), so each call is the next request.
  let finalAnswers = 0;
  const answersHead = (): boolean => methods[finalAnswers++] === 'HEAD';
  const { responses } = parseResponses(Buffer.concat(chunks), { ended, answersHead });
  return { responses, closed: ended };
}

/**
 * Where each complete request in `input` ends, as node's own parser (llhttp, strict, the
 * listener's header bound) reads it, plus the end of the input; and each complete request's
 * method. Used to pace node:http so that its answers do not depend on timing: given pipelined
 * bytes, node:http drops the answers still in flight when a later request in the same read is
 * malformed, where keygate has answered them.
 */
function requestPieces(input: Buffer): Pieces {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, MAX_HEADER_BYTES, HTTPParser.kLenientNone);
  const ends: number[] = [];
  const methods: string[] = [];
  let position = 0;
  parser[HTTPParser.kOnHeaders] = () => {};
  parser[HTTPParser.kOnHeadersComplete] = (_major: unknown, _minor: unknown, _headers: unknown, method: unknown) => {
    methods.push(PARSER_METHODS[method as number] ?? '');
    return 0;
  };
  parser[HTTPParser.kOnBody] = () => {};
  parser[HTTPParser.kOnMessageComplete] = () => {
    ends.push(position);
  };
  parser[HTTPParser.kOnExecute] = () => {};
  // Byte by byte, so that each message's end is known exactly (inputs are a few KiB at most).
  for (let index = 0; index < input.length; index++) {
    position = index + 1;
    if (parser.execute(input.subarray(index, index + 1)) instanceof Error) break;
  }
  parser.close();
  const pieces: Buffer[] = [];
  let start = 0;
  for (const end of ends) {
    pieces.push(input.subarray(start, end));
    start = end;
  }
  if (start < input.length) pieces.push(input.subarray(start));
  return { pieces, methods, complete: ends.length };
}

/**
 * True when keygate's fast path, given `tail` after the requests it answered, still waits for the
 * rest of a head: there is no CRLF CRLF in it (keygate judges a head only once it is whole) and no
 * bare LF (which keygate hands to node:http at once).
 */
function waitsForHead(tail: Buffer | undefined): boolean {
  if (tail === undefined || tail.includes(CRLF_CRLF)) return false;
  for (let index = tail.indexOf(10); index !== -1; index = tail.indexOf(10, index + 1)) {
    if (index === 0 || tail[index - 1] !== 13) return false;
  }
  return true;
}

/**
 * Why `fast` (keygate) is not an acceptable answer where node answered `reference`, or undefined.
 * `tail` is the last piece sent when it is not a complete request (what llhttp refused or did not
 * see the end of).
 */
function divergence(fast: Collected, reference: Collected, tail: Buffer | undefined): string | undefined {
  const fastList = fast.responses.map(normalize);
  const referenceList = reference.responses.map(normalize);
  const prefix = fastList.every((response, index) => response === referenceList[index]);
  if (prefix && fastList.length === referenceList.length) {
    return fast.closed === reference.closed ? undefined : `same responses, but keygate ${fast.closed ? 'closed' : 'kept'} the connection and node ${reference.closed ? 'closed' : 'kept'} it`;
  }
  // Allowed: keygate still waits (open) for the end of a head where node rejected a prefix of it.
  const waitsWhereNodeRefused = prefix && fastList.length < referenceList.length && !fast.closed && waitsForHead(tail)
    && reference.responses.slice(fastList.length).every((response) => response.status >= 400 && response.status < 500);
  if (waitsWhereNodeRefused) return undefined;
  return `keygate answered ${JSON.stringify(fastList)} (${fast.closed ? 'closed' : 'open'}), node ${JSON.stringify(referenceList)} (${reference.closed ? 'closed' : 'open'})`;
}

/** A split point derived from the input (deterministic, so replays see the same writes). */
function splitPoint(input: Buffer): number {
  let hash = 0;
  for (const byte of input) hash = (hash * 31 + byte) >>> 0;
  return input.length === 0 ? 0 : hash % (input.length + 1);
}

/**
 * Why keygate's answers to the input sent at once (`pipelined`) are not acceptable given its
 * answers to the same requests sent one at a time (`paced`), or undefined. They must be the same,
 * except after a hand-off: node:http then reads the rest of the pipelined bytes at once and, at a
 * malformed request, drops the answers still in flight and writes a 400 (or none, when an answer
 * already started), where paced it answered them, or closed (HTTP/1.0, `connection: close`)
 * before it ever read the malformed bytes. So where both closed, the pipelined answers, less a
 * final 4xx, may be any prefix of the paced ones.
 */
function pipelineDivergence(pipelined: Collected, paced: Collected): string | undefined {
  const pipelinedList = pipelined.responses.map(normalize);
  const pacedList = paced.responses.map(normalize);
  if (pipelinedList.length === pacedList.length && pipelinedList.every((response, index) => response === pacedList[index]) && pipelined.closed === paced.closed) return undefined;
  if (pipelined.closed && paced.closed) {
    const last = pipelined.responses.at(-1);
    const answered = last !== undefined && last.status >= 400 && last.status < 500 ? pipelinedList.slice(0, -1) : pipelinedList;
    if (answered.length <= pacedList.length && answered.every((response, index) => response === pacedList[index])) return undefined;
  }
  return `keygate answered the pipelined bytes with ${JSON.stringify(pipelinedList)} (${pipelined.closed ? 'closed' : 'open'}), the same requests one at a time with ${JSON.stringify(pacedList)} (${paced.closed ? 'closed' : 'open'})`;
}

/** The fuzz target (see the module comment). */
export async function createFuzzTarget(): Promise<FuzzTarget> {
  const origin = await recordingOrigin();
  const peer = new HttpPeer(`http://${HOST}:${origin.port}`);
  const keygate = await proxyServer(peer, 'keygate');
  const node = await proxyServer(peer, 'node');
  const run = ({ pieces, methods }: Pieces, quietMs: number, maxMs: number) => {
    const input = Buffer.concat(pieces);
    const splitAt = splitPoint(input);
    const pipelined = [input.subarray(0, splitAt), input.subarray(splitAt)];
    return Promise.all([
      collect(keygate.port, pieces, methods, true, quietMs, maxMs),
      collect(node.port, pieces, methods, true, quietMs, maxMs),
      collect(keygate.port, pipelined, methods, false, quietMs, maxMs),
    ]);
  };
  const why = ([fastPaced, reference, fastPipelined]: Collected[], tail: Buffer | undefined) =>
    divergence(fastPaced!, reference!, tail) ?? pipelineDivergence(fastPipelined!, fastPaced!);
  return {
    name: 'proxy-downstream',
    seeds: SEEDS.map((seed) => Buffer.from(seed, 'latin1')),
    async check(input) {
      // At most MAX_REQUESTS requests (and what follows them), so a paced run stays short.
      const cut = requestPieces(Buffer.from(input));
      const pieces: Pieces = { ...cut, pieces: cut.pieces.slice(0, MAX_REQUESTS) };
      const tail = pieces.pieces.length > cut.complete ? pieces.pieces[cut.complete] : undefined;
      let outcomes = await run(pieces, QUIET_MS, MAX_COLLECT_MS);
      if (why(outcomes, tail) !== undefined) {
        outcomes = await run(pieces, RECHECK_QUIET_MS, RECHECK_MAX_COLLECT_MS);
        const reason = why(outcomes, tail);
        if (reason !== undefined) throw new Error(reason);
      }
      const [fastPaced, reference] = outcomes as [Collected, Collected, Collected];
      const statuses = reference.responses.slice(0, 6).map((response) => response.status).join(',');
      const early = fastPaced.responses.length < reference.responses.length ? '~keygate-waits' : '';
      return `${statuses || 'none'}${reference.closed ? '.closed' : '.open'}${early}`;
    },
    async close() {
      await Promise.all([keygate.proxy.close({ graceMs: 100 }), node.proxy.close({ graceMs: 100 })]);
      for (const socket of origin.sockets) socket.destroy();
      await new Promise<void>((resolve) => origin.server.close(() => resolve()));
    },
  };
}
