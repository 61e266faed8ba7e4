/**
 * What the differential HTTP/1.1 fuzz targets share (`http1-request.fuzz.ts`: keygate's request
 * path against node:http; `proxy-downstream.fuzz.ts`: the proxy's downstream on either parser):
 * cutting an input into requests where node's own parser (llhttp) says each ends, sending pieces
 * over a fresh loopback connection (paced or at once) and collecting the answers, and the rules
 * by which keygate's answers may differ from node's. Each target brings its own servers and its
 * own `normalize` (what of a response is compared).
 */
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { parseResponses } from '../test/core/http/raw-http1-client.ts';
import type { RawResponse } from '../test/core/http/raw-http1-client.ts';

// node's own request parser (llhttp), used only to find where each request ends.
const { HTTPParser, methods: PARSER_METHODS } = createRequire(import.meta.url)('_http_common') as { HTTPParser: HttpParserClass; methods: string[] };

/** Where the targets' servers listen. */
export const HOST = '127.0.0.1';
/** The servers' header bound (the default of both request paths); fuzz inputs stay below it. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Collection stops this long after the last byte received (or written), ms. */
export const QUIET_MS = 30;
/** ... and at the latest this long after the input was written, ms. */
export const MAX_COLLECT_MS = 500;
/** A mismatch is re-checked once with this quiet period, so a slow moment is not a finding. */
export const RECHECK_QUIET_MS = 100;
export const RECHECK_MAX_COLLECT_MS = 1_000;
/** Requests per input sent one at a time; the rest of a longer input is dropped. */
export const MAX_REQUESTS = 8;

/** Seed requests both targets start from (each adds its own); `/echo` and `/items/:id` exist on both. */
export const COMMON_REQUEST_SEEDS: readonly string[] = [
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
  'POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ncontent-length: 4\r\n\r\nbody',
];
const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');

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

/** The answers read on one connection, and whether the server closed it. */
export interface Collected {
  responses: RawResponse[];
  closed: boolean;
}

/** An input cut into requests: the bytes of each, and the method of each complete one. */
export interface RequestPieces {
  pieces: Buffer[];
  methods: string[];
  /** How many of the pieces are complete requests (the rest, at most one, is what llhttp did not finish or refused). */
  complete: number;
}

/** What of a response two servers must agree on, as one comparable string. */
export type Normalize = (response: RawResponse) => string;

/**
 * Writes `pieces` in order on a fresh connection and reads until the server closes, the connection
 * is quiet for `quietMs` after the last piece, or `maxMs` passes per wait. With `paced`, each
 * piece waits for the answers to the previous one (quiet or closed) first. With `methods` (the
 * methods of the requests in order), the answer to a HEAD is read without a body; the server must
 * then answer neither 204 nor 304, so that each final answer belongs to the next request.
 */
export async function collect(port: number, pieces: readonly Buffer[], paced: boolean, quietMs: number, maxMs: number, methods?: readonly string[]): Promise<Collected> {
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
  let finalAnswers = 0;
  const answersHead = methods === undefined ? undefined : (): boolean => methods[finalAnswers++] === 'HEAD';
  const { responses } = parseResponses(Buffer.concat(chunks), { ended, ...(answersHead === undefined ? {} : { answersHead }) });
  return { responses, closed: ended };
}

/**
 * Where each complete request in `input` ends, as node's own parser (llhttp, strict, with
 * `maxHeaderBytes`) reads it, plus the end of the input; and each complete request's method.
 * Used to pace node:http so that its answers do not depend on timing: given pipelined bytes,
 * node:http drops the answers still in flight when a later request in the same read is
 * malformed, where keygate has answered them.
 */
export function requestPieces(input: Buffer, maxHeaderBytes: number): RequestPieces {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, maxHeaderBytes, HTTPParser.kLenientNone);
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
 * True when keygate's own parser, given `tail` after the requests it answered, still waits for
 * the rest of a head: there is no CRLF CRLF in it (keygate judges a head only once it is whole)
 * and no bare LF (which keygate hands to node:http at once).
 */
export function waitsForHead(tail: Buffer | undefined): boolean {
  if (tail === undefined || tail.includes(CRLF_CRLF)) return false;
  for (let index = tail.indexOf(10); index !== -1; index = tail.indexOf(10, index + 1)) {
    if (index === 0 || tail[index - 1] !== 13) return false;
  }
  return true;
}

/**
 * Why `fast` (keygate) is not an acceptable answer where node answered `reference`, or undefined.
 * They must be the same, and so must whether the server closed; except, when `mayWaitForHead`,
 * that keygate may still wait, open, where node answered the rest of the bytes with 4xx (node's
 * parser rejects a bad prefix of a head at once; keygate judges a head once it is whole).
 */
export function divergence(fast: Collected, reference: Collected, normalize: Normalize, mayWaitForHead: boolean): string | undefined {
  const fastList = fast.responses.map(normalize);
  const referenceList = reference.responses.map(normalize);
  const prefix = fastList.every((response, index) => response === referenceList[index]);
  if (prefix && fastList.length === referenceList.length) {
    return fast.closed === reference.closed ? undefined : `same responses, but keygate ${fast.closed ? 'closed' : 'kept'} the connection and node ${reference.closed ? 'closed' : 'kept'} it`;
  }
  const waitsWhereNodeRefused = mayWaitForHead && prefix && fastList.length < referenceList.length && !fast.closed
    && reference.responses.slice(fastList.length).every((response) => response.status >= 400 && response.status < 500);
  if (waitsWhereNodeRefused) return undefined;
  return `keygate answered ${JSON.stringify(fastList)} (${fast.closed ? 'closed' : 'open'}), node ${JSON.stringify(referenceList)} (${reference.closed ? 'closed' : 'open'})`;
}

/** A split point derived from the input (deterministic, so replays see the same writes). */
export function splitPoint(input: Buffer): number {
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
export function pipelineDivergence(pipelined: Collected, paced: Collected, normalize: Normalize): string | undefined {
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

/**
 * One differential check: `run` sends the input (keygate paced, node paced, keygate pipelined, in
 * that order) and `why` judges the three answers; a mismatch is run again once with the longer
 * quiet period before it counts (throws). Returns the outcome label: node's first statuses,
 * whether node closed, and whether keygate still waited where node answered.
 */
export async function checkDifferential(
  run: (quietMs: number, maxMs: number) => Promise<Collected[]>,
  why: (outcomes: Collected[]) => string | undefined,
): Promise<string> {
  let outcomes = await run(QUIET_MS, MAX_COLLECT_MS);
  if (why(outcomes) !== undefined) {
    outcomes = await run(RECHECK_QUIET_MS, RECHECK_MAX_COLLECT_MS);
    const reason = why(outcomes);
    if (reason !== undefined) throw new Error(reason);
  }
  const [fastPaced, reference] = outcomes as [Collected, Collected, Collected];
  const statuses = reference.responses.slice(0, 6).map((response) => response.status).join(',');
  const early = fastPaced.responses.length < reference.responses.length ? '~keygate-waits' : '';
  return `${statuses || 'none'}${reference.closed ? '.closed' : '.open'}${early}`;
}
