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
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { HttpServer } from '../core/http/http-server.ts';
import type { Http1Parser } from '../core/http/http-server.ts';
import type { RequestContext } from '../core/http/request-context.ts';
import type { HttpMethod } from '../core/http/interface.ts';
import { createLogger } from '../core/log.ts';
import { Metrics } from '../core/metrics.ts';
import { parseResponses } from '../test/core/http/raw-http1-client.ts';
import type { RawResponse } from '../test/core/http/raw-http1-client.ts';
import type { FuzzTarget } from './fuzz-target.ts';

// node's own request parser (llhttp), used only to find where each request ends.
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: HttpParserClass };

const HOST = '127.0.0.1';
/** The servers' header bound (the default); fuzz inputs stay below it. */
const MAX_HEADER_BYTES = 16 * 1024;
/** Collection stops this long after the last byte received (or written), ms. */
const QUIET_MS = 30;
/** ... and at the latest this long after the input was written, ms. */
const MAX_COLLECT_MS = 500;
/** A mismatch is re-checked once with this quiet period, so a slow moment is not a finding. */
const RECHECK_QUIET_MS = 100;
const RECHECK_MAX_COLLECT_MS = 1_000;
/** Requests per input sent one at a time; the rest of a longer input is dropped. */
const MAX_REQUESTS = 8;
const ECHO_METHODS: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

const SEEDS = [
  'GET /echo HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n',
  'POST /echo HTTP/1.1\r\nhost: api.example.com\r\ncontent-type: application/json\r\nauthorization: Bearer root_123\r\ncontent-length: 27\r\n\r\n{"key":"sk_1","apiId":"a1"}',
  // A keep-alive pair and a pipelined triple (the bytes on the wire are the same kind).
  'GET /items/itm_1?expand=true HTTP/1.1\r\nhost: a\r\nconnection: keep-alive\r\n\r\nPUT /items/itm_2 HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello',
  'GET /echo?n=1 HTTP/1.1\r\nhost: a\r\n\r\nHEAD /echo?n=2 HTTP/1.1\r\nhost: a\r\n\r\nDELETE /items/x%20y HTTP/1.1\r\nhost: a\r\n\r\n',
  'POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\nGET /echo HTTP/1.1\r\nhost: a\r\n\r\n',
  'PATCH /items/k%C3%A9y HTTP/1.1\r\nHOST: a\r\nX-Mixed-Case:  padded\t\r\nx-empty:\r\nx-latin: caf\xe9\r\nContent-Length: 3\r\n\r\nabc',
  'OPTIONS /echo HTTP/1.1\r\nhost: a\r\naccept: application/problem+json\r\nconnection: close\r\n\r\nGET /echo HTTP/1.1\r\nhost: a\r\n\r\n',
  'POST /echo HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nhi',
  'GET /echo HTTP/1.0\r\nhost: a\r\nconnection: keep-alive\r\n\r\nGET /echo HTTP/1.0\r\nhost: a\r\n\r\n',
  'GET http://a/echo HTTP/1.1\r\nhost: a\r\n\r\n',
  'GET /nope HTTP/1.1\r\nhost: a\r\n\r\nPOST /items/1 HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n',
  'POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ncontent-length: 4\r\n\r\nbody',
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

/**
 * Writes `pieces` in order on a fresh connection and reads until the server closes, the
 * connection is quiet for `quietMs` after the last piece, or `maxMs` passes per wait. With
 * `paced`, each piece waits for the answers to the previous one (quiet or closed) first.
 */
async function collect(port: number, pieces: readonly Buffer[], paced: boolean, quietMs: number, maxMs: number): Promise<Collected> {
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
  const received = Buffer.concat(chunks);
  const { responses } = parseResponses(received, { ended });
  return { responses, closed: ended };
}

/**
 * Where each complete request in `input` ends, as node's own parser (llhttp, strict, the
 * server's header bound) reads it, plus the end of the input. Used to pace node:http so that its
 * answers do not depend on timing: given pipelined bytes, node:http drops the answers still in
 * flight when a later request in the same read is malformed, where keygate has answered them.
 */
function requestPieces(input: Buffer): Buffer[] {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, MAX_HEADER_BYTES, HTTPParser.kLenientNone);
  const ends: number[] = [];
  let position = 0;
  parser[HTTPParser.kOnHeaders] = () => {};
  parser[HTTPParser.kOnHeadersComplete] = () => 0;
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
  return pieces;
}

/** Why `fast` (keygate) is not an acceptable answer where node answered `reference`, or undefined. */
function divergence(fast: Collected, reference: Collected): string | undefined {
  const fastList = fast.responses.map(normalize);
  const referenceList = reference.responses.map(normalize);
  const prefix = fastList.every((response, index) => response === referenceList[index]);
  if (prefix && fastList.length === referenceList.length) {
    return fast.closed === reference.closed ? undefined : `same responses, but keygate ${fast.closed ? 'closed' : 'kept'} the connection and node ${reference.closed ? 'closed' : 'kept'} it`;
  }
  // Allowed: keygate still waits (open) where node rejected the rest of the bytes.
  const waitsWhereNodeRefused = prefix && fastList.length < referenceList.length && !fast.closed
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
  const why = ([fastPaced, reference, fastPipelined]: Collected[]) => divergence(fastPaced!, reference!) ?? pipelineDivergence(fastPipelined!, fastPaced!);
  return {
    name: 'http1-request',
    seeds: SEEDS.map((seed) => Buffer.from(seed, 'latin1')),
    async check(input) {
      // At most MAX_REQUESTS requests (and what follows them), so a paced run stays short.
      const pieces = requestPieces(Buffer.from(input)).slice(0, MAX_REQUESTS);
      let outcomes = await run(pieces, QUIET_MS, MAX_COLLECT_MS);
      if (why(outcomes) !== undefined) {
        outcomes = await run(pieces, RECHECK_QUIET_MS, RECHECK_MAX_COLLECT_MS);
        const reason = why(outcomes);
        if (reason !== undefined) throw new Error(reason);
      }
      const [fastPaced, reference] = outcomes as [Collected, Collected, Collected];
      const statuses = reference.responses.slice(0, 6).map((response) => response.status).join(',');
      const early = fastPaced.responses.length < reference.responses.length ? '~keygate-waits' : '';
      return `${statuses || 'none'}${reference.closed ? '.closed' : '.open'}${early}`;
    },
    async close() {
      await Promise.all([keygate.server.close(), node.server.close()]);
    },
  };
}
