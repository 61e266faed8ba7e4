import t from 'tap';
import { Http1ParseError, Http1ResponseParser, MAX_CHUNK_LINE_BYTES } from '../../../proxy/forward/http1-response-parser.ts';
import type { HeaderMap } from '../../../proxy/hooks.ts';

interface Parsed {
  status?: number;
  headers?: HeaderMap;
  body: string;
  trailers?: HeaderMap;
  complete: boolean;
  keepAlive: boolean;
  stoppedAt: number;
  error?: string;
}

/** Parses `input` fed in pieces of `pieceBytes` (every split point must give the same result). */
function parse(input: string, options: { head?: boolean; upgrade?: boolean; pieceBytes?: number; end?: boolean; maxHeaderBytes?: number } = {}): Parsed {
  const result: Parsed = { body: '', complete: false, keepAlive: false, stoppedAt: -1 };
  const parser = new Http1ResponseParser({
    onResponseHead(status, headers) { result.status = status; result.headers = headers; },
    onResponseBody(chunk) { result.body += chunk.toString('latin1'); },
    onResponseComplete(trailers) { result.trailers = trailers; result.complete = true; },
  }, options.maxHeaderBytes);
  parser.reset(options.head === true, options.upgrade === true);
  const bytes = Buffer.from(input, 'latin1');
  const piece = options.pieceBytes ?? bytes.length;
  let consumed = 0;
  try {
    for (let offset = 0; offset < bytes.length; offset += piece) {
      const chunk = bytes.subarray(offset, Math.min(bytes.length, offset + piece));
      const stopped = parser.execute(chunk);
      consumed += stopped;
      if (stopped < chunk.length) break;
    }
    if (options.end === true) parser.finish();
  } catch (err) {
    t.ok(err instanceof Http1ParseError, `error is an Http1ParseError: ${(err as Error).message}`);
    result.error = (err as Http1ParseError).code;
  }
  result.keepAlive = parser.keepAlive;
  result.stoppedAt = consumed;
  return result;
}

/** Runs `check` on every piece size from 1 byte to the whole input. */
function everySplit(input: string, options: Parameters<typeof parse>[1], check: (parsed: Parsed, pieceBytes: number) => void): void {
  for (let piece = 1; piece <= input.length; piece++) check(parse(input, { ...options, pieceBytes: piece }), piece);
}

t.test('parses a content-length response identically at every split point', async (t) => {
  const input = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello world';
  everySplit(input, {}, (parsed, piece) => {
    t.equal(parsed.error, undefined, `piece ${piece}`);
    t.equal(parsed.status, 200);
    t.equal(parsed.body, 'hello world');
    t.ok(parsed.complete);
    t.ok(parsed.keepAlive);
    t.same(parsed.headers, { 'content-type': 'text/plain', 'content-length': '11', 'set-cookie': ['a=1', 'b=2'] });
  });
});

t.test('decodes chunked bodies with extensions and trailers at every split point', async (t) => {
  const input = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n';
  everySplit(input, {}, (parsed, piece) => {
    t.equal(parsed.error, undefined, `piece ${piece}`);
    t.equal(parsed.body, 'hello world');
    t.ok(parsed.complete);
    t.same(parsed.trailers, { 'x-checksum': 'abc' });
    t.equal(parsed.stoppedAt, input.length);
  });
});

t.test('stops at the end of a response and reports the stray bytes after it', async (t) => {
  const first = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  const parsed = parse(`${first}HTTP/1.1 200 OK\r\n`);
  t.ok(parsed.complete);
  t.equal(parsed.stoppedAt, first.length);
});

t.test('no body for HEAD, 204 and 304; 1xx interim responses are skipped', async (t) => {
  t.ok(parse('HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n', { head: true }).complete);
  t.ok(parse('HTTP/1.1 204 No Content\r\n\r\n').complete);
  t.ok(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n').complete);
  const early = parse('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx');
  t.equal(early.status, 200);
  t.equal(early.body, 'x');
  t.ok(early.complete);
});

t.test('a body without framing runs to the end of the connection and disables reuse', async (t) => {
  const parsed = parse('HTTP/1.1 200 OK\r\n\r\nstreamed until close', { end: true });
  t.equal(parsed.body, 'streamed until close');
  t.ok(parsed.complete);
  t.notOk(parsed.keepAlive);
});

t.test('keep-alive follows Connection: close and HTTP/1.0', async (t) => {
  t.notOk(parse('HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n').keepAlive);
  t.notOk(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive);
  t.ok(parse('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').keepAlive);
});

t.test('hands on every header but the framing it consumes; a Connection naming other headers is kept for the caller to strip', async (t) => {
  const plain = parse('HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok');
  t.strictSame(plain.headers, { 'x-a': '1', 'content-length': '2' });
  t.ok(plain.keepAlive);
  const chunked = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n');
  t.strictSame(chunked.headers, {});
  t.equal(chunked.body, 'ok');
  t.notOk(chunked.keepAlive);
  const naming = parse('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: X-Hop\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n');
  t.strictSame(naming.headers, { connection: 'X-Hop', 'x-hop': '1', 'content-length': '0' });
  t.ok(naming.keepAlive);
  const mixedCase = parse('HTTP/1.1 200 OK\r\nCONTENT-type: a\r\ncontent-TYPE: b\r\nContent-Length: 0\r\n\r\n');
  t.strictSame(mixedCase.headers, { 'content-type': ['a', 'b'], 'content-length': '0' }, 'names are lower-cased whatever their spelling');
});

t.test('101 is accepted only for an upgrade request and leaves the tunnel bytes unread', async (t) => {
  const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
  const upgraded = parse(`${head}\x81\x02hi`, { upgrade: true });
  t.equal(upgraded.status, 101);
  t.equal(upgraded.stoppedAt, head.length);
  t.equal(parse(head).error, 'HPE_UNEXPECTED_UPGRADE');
});

// Smuggling attempts and malformed responses: each must be refused, never read one way or another.
const REJECTED: [string, string, string][] = [
  ['Content-Length and Transfer-Encoding together', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'HPE_UNEXPECTED_CONTENT_LENGTH'],
  ['Transfer-Encoding then Content-Length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n', 'HPE_UNEXPECTED_CONTENT_LENGTH'],
  ['conflicting Content-Length values', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', 'HPE_INVALID_CONTENT_LENGTH'],
  ['Content-Length list in one field', 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello', 'HPE_INVALID_CONTENT_LENGTH'],
  ['signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello', 'HPE_INVALID_CONTENT_LENGTH'],
  ['huge Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
  ['Transfer-Encoding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING'],
  ['obfuscated Transfer-Encoding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING'],
  ['repeated Transfer-Encoding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING'],
  ['Transfer-Encoding in HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING'],
  ['space before the colon', 'HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['obs-fold continuation line', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['bare LF line ending', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['bare CR inside a value', 'HTTP/1.1 200 OK\r\nX-A: 1\r2\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['NUL inside a value', 'HTTP/1.1 200 OK\r\nX-A: 1\x002\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['header name with a space', 'HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['empty header name', 'HTTP/1.1 200 OK\r\n: 1\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['HTTP/2 status line', 'HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['two-digit status', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['status 099', 'HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['not HTTP at all', 'SSH-2.0-OpenSSH_9.2\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['leading empty line', '\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEAD'],
  ['chunk size not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'HPE_INVALID_CHUNK_SIZE'],
  ['negative chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n', 'HPE_INVALID_CHUNK_SIZE'],
  ['chunk size with a prefix', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
  ['oversized chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n', 'HPE_INVALID_CHUNK_SIZE'],
  ['chunk-size line ended by bare LF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n', 'HPE_LF_EXPECTED'],
  ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n', 'HPE_STRICT'],
  ['malformed trailer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer\r\n\r\n', 'HPE_INVALID_TRAILERS'],
];

for (const [name, input, code] of REJECTED) {
  t.test(`rejects ${name}`, async (t) => {
    everySplit(input, { upgrade: false }, (parsed, piece) => {
      t.equal(parsed.error, code, `piece ${piece}`);
      t.notOk(parsed.complete, 'never reports a complete response');
    });
  });
}

t.test('bounds the head, the chunk-size line and interim responses', async (t) => {
  t.equal(parse(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`, { maxHeaderBytes: 1024 }).error, 'HPE_HEADER_OVERFLOW');
  t.equal(parse(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(2000)}`, { maxHeaderBytes: 1024, pieceBytes: 100 }).error, 'HPE_HEADER_OVERFLOW');
  t.equal(parse(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(MAX_CHUNK_LINE_BYTES)}`, { pieceBytes: 512 }).error, 'HPE_CHUNK_EXTENSIONS_OVERFLOW');
  t.equal(parse('HTTP/1.1 100 Continue\r\n\r\n'.repeat(20)).error, 'HPE_TOO_MANY_INTERIM');
});

t.test('a connection that ends early is an error, not a short body', async (t) => {
  t.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', { end: true }).error, 'HPE_INCOMPLETE');
  t.equal(parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', { end: true }).error, 'HPE_INCOMPLETE');
  t.equal(parse('HTTP/1.1 200 O', { end: true }).error, 'HPE_INCOMPLETE');
  t.equal(parse('', { end: true }).error, 'HPE_INCOMPLETE');
});

t.test('the Keep-Alive timeout hint is read in milliseconds', async (t) => {
  const parser = new Http1ResponseParser({ onResponseHead() {}, onResponseBody() {}, onResponseComplete() {} });
  parser.reset(false, false);
  parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n'));
  t.equal(parser.keepAliveHintMs, 5000);
});
