/**
 * Fuzz target: the raw forwarding engine's HTTP/1.1 response parser, fed arbitrary upstream
 * bytes. Properties: only `Http1ParseError` is ever thrown; the outcome (events, body, trailers,
 * error code, bytes consumed) is the same whether the bytes arrive at once, one by one, or split
 * in two at any point; an accepted head never carries both Content-Length and Transfer-Encoding
 * nor a CR, LF or NUL in a value; a completed length-delimited body has exactly that length; no
 * byte past the reported stop offset is ever delivered as body.
 */
import { Http1ParseError, Http1ResponseParser } from '../proxy/forward/http1-response-parser.ts';
import type { HeaderMap } from '../proxy/hooks.ts';
import type { FuzzTarget } from './fuzz-target.ts';

interface Outcome {
  events: string[];
  headers: HeaderMap | undefined;
  body: Buffer;
  consumed: number;
  error: string | undefined;
}

const SEEDS = [
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n',
  'HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
  'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nclose-delimited body',
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00',
  'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
];

function run(input: Uint8Array, splits: number[], upgrade: boolean): Outcome {
  const outcome: Outcome = { events: [], headers: undefined, body: Buffer.alloc(0), consumed: 0, error: undefined };
  const bodyParts: Buffer[] = [];
  const parser = new Http1ResponseParser({
    onResponseHead(status, headers) { outcome.events.push(`head ${status}`); outcome.headers = headers; },
    onResponseBody(chunk) { bodyParts.push(Buffer.from(chunk)); },
    onResponseComplete(trailers) { outcome.events.push(`complete ${JSON.stringify(trailers)}`); },
  }, 4096);
  parser.reset(false, upgrade);
  const bytes = Buffer.from(input);
  let start = 0;
  try {
    for (const end of [...splits, bytes.length]) {
      if (end <= start) continue;
      const piece = bytes.subarray(start, end);
      const stopped = parser.execute(piece);
      outcome.consumed += stopped;
      start = end;
      if (stopped < piece.length) break;
    }
    if (!parser.complete) parser.finish();
  } catch (err) {
    if (!(err instanceof Http1ParseError)) throw new Error(`parser threw a non-parse error: ${String(err)}`);
    outcome.error = err.code;
  }
  outcome.body = Buffer.concat(bodyParts);
  return outcome;
}

function same(a: Outcome, b: Outcome, what: string): void {
  // Bytes consumed before an error depend on where the pieces fell; only the error must agree.
  if (a.error !== b.error || (a.error === undefined && a.consumed !== b.consumed) || !a.body.equals(b.body) || a.events.join('|') !== b.events.join('|')) {
    throw new Error(`parsing ${what} differs: ${JSON.stringify({ a: { ...a, body: a.body.length }, b: { ...b, body: b.body.length } })}`);
  }
}

/** Builds the target. */
export async function createFuzzTarget(): Promise<FuzzTarget> {
  return {
    name: 'http1-response-parser',
    seeds: SEEDS.map((seed) => Buffer.from(seed, 'latin1')),
    check(input) {
      const upgrade = input.length > 0 && (input[input.length - 1]! & 1) === 1;
      const whole = run(input, [], upgrade);
      if (input.length <= 512) {
        const everyByte = Array.from({ length: input.length }, (_, index) => index + 1);
        same(whole, run(input, everyByte, upgrade), 'byte by byte');
      }
      const middle = input.length >> 1;
      same(whole, run(input, [middle], upgrade), `split at ${middle}`);
      if (whole.consumed > input.length) throw new Error('consumed more bytes than it was given');
      const headers = whole.headers;
      if (headers !== undefined) {
        if (headers['content-length'] !== undefined && headers['transfer-encoding'] !== undefined) throw new Error('accepted both Content-Length and Transfer-Encoding');
        for (const name in headers) {
          const value = headers[name];
          for (const item of typeof value === 'string' ? [value] : value ?? []) {
            if (/[\r\n\0]/.test(item)) throw new Error(`accepted a control character in ${name}`);
          }
        }
        const length = headers['content-length'];
        const completed = whole.events.some((event) => event.startsWith('complete'));
        if (completed && typeof length === 'string' && whole.events[0] !== 'head 204' && whole.events[0] !== 'head 304' && whole.body.length !== Number(length)) {
          throw new Error(`a completed body of ${whole.body.length} bytes under Content-Length ${length}`);
        }
      }
      if (whole.error !== undefined) return whole.error;
      const head = whole.events.find((event) => event.startsWith('head')) ?? 'no head';
      return whole.events.some((event) => event.startsWith('complete')) ? `complete after ${head}` : `open after ${head}`;
    },
  };
}
