/**
 * `Http1ResponseParser`: a minimal, strict, bounded, incremental parser of HTTP/1.1 responses for
 * the upstream leg of the raw forwarding engine. One parser per upstream connection, reset per
 * exchange; `execute` is called per socket chunk.
 *
 * Strict on purpose (the upstream is not trusted to be well-formed, and a lenient proxy is where
 * response splitting and desync live): CRLF line endings only, no obs-fold, token header names
 * with no whitespace before the colon, no control characters in values, `Content-Length` digits
 * only (repeats must agree), `Transfer-Encoding` exactly `chunked`, and a response carrying both
 * is rejected. Bounded: the head (and the trailers) at `maxHeaderBytes`, a chunk-size line at
 * `MAX_CHUNK_LINE_BYTES`, interim (1xx) responses at `MAX_INTERIM_RESPONSES`.
 */
import type { HeaderMap } from '../hooks.ts';
import { KnownHeaderNames } from '../../core/http/known-header-names.ts';

/** What the parser tells its owner, in order: `onHead`, `onBody`*, `onComplete` (or `onHead` + upgrade). */
export interface Http1ResponseListener {
  /**
   * A final response head (interim 1xx heads are skipped). Called once per exchange. `headers`
   * leaves out the framing headers the parser itself acts on and a proxy never forwards:
   * `Transfer-Encoding`, `Keep-Alive`, and `Connection` when it is just `keep-alive` or `close`
   * (a `Connection` naming other headers is kept, so the caller can strip those too).
   */
  onResponseHead(statusCode: number, headers: HeaderMap, statusMessage: string): void;
  /** A slice of the (de-chunked) body; the buffer is a view into the socket's chunk. */
  onResponseBody(chunk: Buffer): void;
  /** The response is complete; `trailers` holds chunked trailers (usually empty). */
  onResponseComplete(trailers: HeaderMap): void;
}

/** A malformed or disallowed upstream response; `code` starts with `HPE_` like Node's parser errors. */
export class Http1ParseError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'Http1ParseError';
    this.code = code;
  }
}

/** Bounds of the parser. */
export const HTTP1_PARSER_DEFAULTS = {
  /** Largest response head (status line + headers), and largest trailer section, in bytes. */
  maxHeaderBytes: 64 * 1024,
} as const;

/** Longest chunk-size line (size + extensions) in bytes. */
export const MAX_CHUNK_LINE_BYTES = 4096;
/** Interim (1xx) responses accepted before the final one. */
export const MAX_INTERIM_RESPONSES = 16;
/** Longest chunk size in hex digits (2^48 bytes; keeps the arithmetic exact). */
const MAX_CHUNK_SIZE_DIGITS = 12;
/** Longest Content-Length in digits (stays below Number.MAX_SAFE_INTEGER). */
const MAX_CONTENT_LENGTH_DIGITS = 15;

const STATE_HEAD = 0;
const STATE_BODY_LENGTH = 1;
const STATE_CHUNK_SIZE = 2;
const STATE_CHUNK_DATA = 3;
const STATE_CHUNK_DATA_END = 4;
const STATE_TRAILERS = 5;
const STATE_BODY_CLOSE = 6;
const STATE_DONE = 7;
const STATE_UPGRADED = 8;

const CR = 13;
const LF = 10;
const EMPTY_HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY_HEADERS: HeaderMap = Object.freeze({}) as HeaderMap;

// The whole head in one native pass: a status line, then header lines of token ":" value where a
// value holds only HTAB, visible ASCII, SP and obs-text (no CR, LF, NUL or other controls), then
// the empty line. Anything else (bare LF, obs-fold, space before the colon) fails this test.
const HEAD_GRAMMAR = /^HTTP\/1\.[01] [1-9]\d\d(?: [\t\x20-\x7e\x80-\xff]*)?\r\n(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n$/;
const TRAILER_GRAMMAR = /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n$/;
const DIGITS = /^\d+$/;
const CHUNK_LINE = /^([0-9A-Fa-f]+)[\t ]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;

/** Parses responses on one connection; call `reset` before each exchange. */
export class Http1ResponseParser {
  /** True when the response allows the connection to be reused (set once the head is parsed). */
  keepAlive = false;
  /** The `Keep-Alive: timeout=N` hint in milliseconds, or 0 when absent. */
  keepAliveHintMs = 0;
  /** True once the final head arrived (bytes of the response were seen). */
  headReceived = false;
  /** The status code of the final response (0 until the head). */
  statusCode = 0;

  readonly #listener: Http1ResponseListener;
  readonly #maxHeaderBytes: number;
  #state = STATE_DONE;
  #noBody = false;
  #upgradeExpected = false;
  #pending: Buffer | undefined;
  #remaining = 0;
  #interimCount = 0;

  constructor(listener: Http1ResponseListener, maxHeaderBytes: number = HTTP1_PARSER_DEFAULTS.maxHeaderBytes) {
    this.#listener = listener;
    this.#maxHeaderBytes = maxHeaderBytes;
  }

  /** Prepares for the response to one request: `headRequest` for HEAD (no body), `upgradeExpected` when an Upgrade was asked for. */
  reset(headRequest: boolean, upgradeExpected: boolean): void {
    this.#state = STATE_HEAD;
    this.#noBody = headRequest;
    this.#upgradeExpected = upgradeExpected;
    this.#pending = undefined;
    this.#remaining = 0;
    this.#interimCount = 0;
    this.keepAlive = false;
    this.keepAliveHintMs = 0;
    this.headReceived = false;
    this.statusCode = 0;
  }

  /** True once the response (or the 101 upgrade head) was fully parsed. */
  get complete(): boolean {
    return this.#state === STATE_DONE || this.#state === STATE_UPGRADED;
  }

  /** True after a `101 Switching Protocols` answered an upgrade request. */
  get upgraded(): boolean {
    return this.#state === STATE_UPGRADED;
  }

  /** True when the body ends only when the connection closes (no length, not chunked). */
  get closeDelimited(): boolean {
    return this.#state === STATE_BODY_CLOSE;
  }

  /**
   * Feeds one chunk. Returns the offset where parsing stopped: `chunk.length` normally, less when
   * the response completed (or upgraded) before the end of the chunk, leaving bytes that belong to
   * no request. Throws {@link Http1ParseError} on malformed input. Per socket chunk.
   */
  execute(chunk: Buffer): number {
    let offset = 0;
    const length = chunk.length;
    while (offset < length) {
      switch (this.#state) {
        case STATE_HEAD: offset = this.#readHead(chunk, offset); break;
        case STATE_BODY_LENGTH: {
          const take = Math.min(this.#remaining, length - offset);
          this.#remaining -= take;
          const slice = offset === 0 && take === length ? chunk : chunk.subarray(offset, offset + take);
          offset += take;
          this.#listener.onResponseBody(slice);
          if (this.#remaining === 0) this.#finish(EMPTY_HEADERS);
          break;
        }
        case STATE_CHUNK_SIZE: offset = this.#readChunkSize(chunk, offset); break;
        case STATE_CHUNK_DATA: {
          const take = Math.min(this.#remaining, length - offset);
          this.#remaining -= take;
          const slice = chunk.subarray(offset, offset + take);
          offset += take;
          if (this.#remaining === 0) this.#state = STATE_CHUNK_DATA_END;
          this.#listener.onResponseBody(slice);
          break;
        }
        case STATE_CHUNK_DATA_END: offset = this.#readChunkDataEnd(chunk, offset); break;
        case STATE_TRAILERS: offset = this.#readTrailers(chunk, offset); break;
        case STATE_BODY_CLOSE: {
          this.#listener.onResponseBody(offset === 0 ? chunk : chunk.subarray(offset));
          offset = length;
          break;
        }
        default: return offset;
      }
    }
    return offset;
  }

  /**
   * The connection ended. Completes a close-delimited body; throws {@link Http1ParseError} when a
   * response was cut short (or never started). Does nothing when the response is complete.
   */
  finish(): void {
    if (this.#state === STATE_BODY_CLOSE) {
      this.#finish(EMPTY_HEADERS);
      return;
    }
    if (this.complete) return;
    throw new Http1ParseError('HPE_INCOMPLETE', this.headReceived ? 'upstream closed the connection before the response body was complete' : 'upstream closed the connection before sending a response');
  }

  // ---- head -------------------------------------------------------------------------------------

  #readHead(chunk: Buffer, offset: number): number {
    let buffer = chunk;
    let start = offset;
    let searchFrom = offset;
    const pending = this.#pending;
    if (pending !== undefined) {
      buffer = Buffer.concat([pending, chunk.subarray(offset)]);
      start = 0;
      searchFrom = Math.max(0, pending.length - 3);
    }
    const end = buffer.indexOf(EMPTY_HEAD_END, searchFrom);
    if (end === -1) {
      if (buffer.length - start > this.#maxHeaderBytes) throw new Http1ParseError('HPE_HEADER_OVERFLOW', 'upstream response head is too large');
      this.#pending = start === 0 && buffer !== chunk ? buffer : Buffer.from(buffer.subarray(start));
      return chunk.length;
    }
    const headEnd = end + 4;
    if (headEnd - start > this.#maxHeaderBytes) throw new Http1ParseError('HPE_HEADER_OVERFLOW', 'upstream response head is too large');
    this.#pending = undefined;
    const consumedOfChunk = pending === undefined ? headEnd : headEnd - pending.length + offset;
    this.#parseHead(buffer.toString('latin1', start, headEnd));
    return consumedOfChunk;
  }

  #parseHead(head: string): void {
    if (!HEAD_GRAMMAR.test(head)) throw new Http1ParseError('HPE_INVALID_HEAD', 'malformed upstream response head');
    const http10 = head.charCodeAt(7) === 48; // "HTTP/1.0"
    const statusCode = (head.charCodeAt(9) - 48) * 100 + (head.charCodeAt(10) - 48) * 10 + (head.charCodeAt(11) - 48);
    let lineEnd = head.indexOf('\r\n');
    const statusMessage = lineEnd > 13 ? head.slice(13, lineEnd) : '';
    const headers: HeaderMap = {};
    let contentLength: string | undefined;
    let transferEncoding: string | undefined;
    let transferEncodingCount = 0;
    let connection: string | undefined;
    let keepAliveHint: string | undefined;
    let position = lineEnd + 2;
    const last = head.length - 2;
    while (position < last) {
      lineEnd = head.indexOf('\r\n', position);
      const colon = head.indexOf(':', position);
      // The grammar above checked that names are tokens, which KnownHeaderNames requires.
      const name = KNOWN_RESPONSE_HEADER_NAMES.find(head, position, colon) ?? lowerCaseName(head.slice(position, colon));
      const value = trimWhitespace(head, colon + 1, lineEnd);
      position = lineEnd + 2;
      switch (name) {
        case 'content-length':
          if (!DIGITS.test(value) || value.length > MAX_CONTENT_LENGTH_DIGITS) throw new Http1ParseError('HPE_INVALID_CONTENT_LENGTH', 'invalid Content-Length in upstream response');
          if (contentLength !== undefined && Number(contentLength) !== Number(value)) throw new Http1ParseError('HPE_INVALID_CONTENT_LENGTH', 'conflicting Content-Length values in upstream response');
          contentLength = value;
          break;
        // Framing the parser consumes (see Http1ResponseListener.onResponseHead): not handed on.
        case 'transfer-encoding':
          transferEncoding = value;
          transferEncodingCount++;
          continue;
        case 'keep-alive':
          keepAliveHint = value;
          continue;
        case 'connection':
          connection = connection === undefined ? value : `${connection},${value}`;
          if (isPlainConnectionValue(value)) continue;
          break;
      }
      const existing = headers[name];
      if (existing === undefined) headers[name] = value;
      else if (typeof existing === 'string') headers[name] = [existing, value];
      else existing.push(value);
    }

    if (statusCode < 200) {
      if (statusCode === 101) {
        if (!this.#upgradeExpected) throw new Http1ParseError('HPE_UNEXPECTED_UPGRADE', 'upstream switched protocols without an upgrade request');
        this.headReceived = true;
        this.statusCode = 101;
        this.keepAlive = false;
        this.#state = STATE_UPGRADED;
        this.#listener.onResponseHead(101, headers, statusMessage);
        return;
      }
      // Interim responses (100 Continue, 103 Early Hints) are dropped: the final head follows.
      if (++this.#interimCount > MAX_INTERIM_RESPONSES) throw new Http1ParseError('HPE_TOO_MANY_INTERIM', 'too many interim (1xx) upstream responses');
      return;
    }

    // Request smuggling / response splitting guards (RFC 9112 §6.1, §6.3): a message with both
    // framings, or a transfer coding other than exactly `chunked`, has no single meaning, so it
    // is refused instead of picking one of its readings.
    if (transferEncoding !== undefined) {
      if (contentLength !== undefined) throw new Http1ParseError('HPE_UNEXPECTED_CONTENT_LENGTH', 'upstream response has both Content-Length and Transfer-Encoding');
      if (transferEncodingCount !== 1 || transferEncoding.toLowerCase() !== 'chunked') throw new Http1ParseError('HPE_INVALID_TRANSFER_ENCODING', `unsupported upstream Transfer-Encoding: ${transferEncoding}`);
      if (http10) throw new Http1ParseError('HPE_INVALID_TRANSFER_ENCODING', 'Transfer-Encoding in an HTTP/1.0 upstream response');
    }
    this.headReceived = true;
    this.statusCode = statusCode;
    this.keepAlive = !http10 && (connection === undefined || !hasCloseToken(connection));
    if (keepAliveHint !== undefined) this.keepAliveHintMs = parseKeepAliveTimeoutMs(keepAliveHint);

    if (this.#noBody || statusCode === 204 || statusCode === 304) {
      this.#state = STATE_DONE;
      this.#listener.onResponseHead(statusCode, headers, statusMessage);
      if (this.#state === STATE_DONE) this.#listener.onResponseComplete(EMPTY_HEADERS);
      return;
    }
    if (transferEncoding !== undefined) {
      this.#state = STATE_CHUNK_SIZE;
      this.#listener.onResponseHead(statusCode, headers, statusMessage);
      return;
    }
    if (contentLength !== undefined) {
      const length = Number(contentLength);
      this.#remaining = length;
      this.#state = length === 0 ? STATE_DONE : STATE_BODY_LENGTH;
      this.#listener.onResponseHead(statusCode, headers, statusMessage);
      if (length === 0 && this.#state === STATE_DONE) this.#listener.onResponseComplete(EMPTY_HEADERS);
      return;
    }
    // No framing: the body runs to the end of the connection, which therefore cannot be reused.
    this.keepAlive = false;
    this.#state = STATE_BODY_CLOSE;
    this.#listener.onResponseHead(statusCode, headers, statusMessage);
  }

  // ---- chunked ----------------------------------------------------------------------------------

  #readChunkSize(chunk: Buffer, offset: number): number {
    const newline = chunk.indexOf(LF, offset);
    const pendingLength = this.#pending?.length ?? 0;
    if (newline === -1) {
      if (pendingLength + chunk.length - offset > MAX_CHUNK_LINE_BYTES) throw new Http1ParseError('HPE_CHUNK_EXTENSIONS_OVERFLOW', 'chunk-size line too long');
      this.#pending = appendPending(this.#pending, chunk, offset, chunk.length);
      return chunk.length;
    }
    if (pendingLength + newline - offset > MAX_CHUNK_LINE_BYTES) throw new Http1ParseError('HPE_CHUNK_EXTENSIONS_OVERFLOW', 'chunk-size line too long');
    const lineBytes = this.#pending === undefined ? chunk.subarray(offset, newline + 1) : Buffer.concat([this.#pending, chunk.subarray(offset, newline + 1)]);
    this.#pending = undefined;
    if (lineBytes.length < 2 || lineBytes[lineBytes.length - 2] !== CR) throw new Http1ParseError('HPE_LF_EXPECTED', 'chunk-size line not ended by CRLF');
    const line = lineBytes.toString('latin1', 0, lineBytes.length - 2);
    const match = CHUNK_LINE.exec(line);
    if (match === null) throw new Http1ParseError('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size');
    const digits = match[1]!;
    if (digits.length > MAX_CHUNK_SIZE_DIGITS) throw new Http1ParseError('HPE_INVALID_CHUNK_SIZE', 'chunk size too large');
    const size = Number.parseInt(digits, 16);
    if (size === 0) {
      this.#state = STATE_TRAILERS;
    } else {
      this.#remaining = size;
      this.#state = STATE_CHUNK_DATA;
    }
    return newline + 1;
  }

  #readChunkDataEnd(chunk: Buffer, offset: number): number {
    // Exactly CRLF after the data; it may be split across socket chunks.
    const pending = this.#pending;
    const have = pending === undefined ? 0 : pending.length;
    const take = Math.min(2 - have, chunk.length - offset);
    for (let i = 0; i < take; i++) {
      const expected = have + i === 0 ? CR : LF;
      if (chunk[offset + i] !== expected) throw new Http1ParseError('HPE_STRICT', 'chunk data not followed by CRLF');
    }
    if (have + take < 2) {
      this.#pending = appendPending(pending, chunk, offset, offset + take);
      return offset + take;
    }
    this.#pending = undefined;
    this.#state = STATE_CHUNK_SIZE;
    return offset + take;
  }

  #readTrailers(chunk: Buffer, offset: number): number {
    const buffer = this.#pending === undefined ? chunk.subarray(offset) : Buffer.concat([this.#pending, chunk.subarray(offset)]);
    const consumedBefore = this.#pending?.length ?? 0;
    // The common case: no trailers, just the final CRLF.
    if (buffer.length >= 2 && buffer[0] === CR && buffer[1] === LF) {
      this.#pending = undefined;
      this.#finish(EMPTY_HEADERS);
      return offset + 2 - consumedBefore;
    }
    let end = buffer.indexOf(EMPTY_HEAD_END);
    if (end === -1) {
      if (buffer.length > this.#maxHeaderBytes) throw new Http1ParseError('HPE_HEADER_OVERFLOW', 'upstream trailers too large');
      this.#pending = Buffer.from(buffer);
      return chunk.length;
    }
    end += 4;
    if (end > this.#maxHeaderBytes) throw new Http1ParseError('HPE_HEADER_OVERFLOW', 'upstream trailers too large');
    const section = buffer.toString('latin1', 0, end);
    if (!TRAILER_GRAMMAR.test(section)) throw new Http1ParseError('HPE_INVALID_TRAILERS', 'malformed upstream trailers');
    const trailers: HeaderMap = {};
    let position = 0;
    while (position < section.length - 2) {
      const lineEnd = section.indexOf('\r\n', position);
      const colon = section.indexOf(':', position);
      const name = section.slice(position, colon).toLowerCase();
      const value = trimWhitespace(section, colon + 1, lineEnd);
      position = lineEnd + 2;
      const existing = trailers[name];
      if (existing === undefined) trailers[name] = value;
      else if (typeof existing === 'string') trailers[name] = [existing, value];
      else existing.push(value);
    }
    this.#pending = undefined;
    this.#finish(trailers);
    return offset + end - consumedBefore;
  }

  #finish(trailers: HeaderMap): void {
    this.#state = STATE_DONE;
    this.#listener.onResponseComplete(trailers);
  }
}

/** `value[from, to)` without leading and trailing SP / HTAB (optional whitespace, RFC 9110 §5.6.3). */
function trimWhitespace(text: string, from: number, to: number): string {
  let start = from;
  let end = to;
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
  return text.slice(start, end);
}

function appendPending(pending: Buffer | undefined, chunk: Buffer, from: number, to: number): Buffer {
  const part = chunk.subarray(from, to);
  return pending === undefined ? Buffer.from(part) : Buffer.concat([pending, part]);
}

/** Common response header names, matched in place in any letter case (no slice, interned keys). */
const KNOWN_RESPONSE_HEADER_NAMES = new KnownHeaderNames([
  'date', 'server', 'content-type', 'content-length', 'connection', 'keep-alive', 'transfer-encoding', 'cache-control',
  'etag', 'last-modified', 'expires', 'vary', 'set-cookie', 'location', 'content-encoding', 'accept-ranges', 'age',
  'access-control-allow-origin', 'x-request-id', 'x-keygate-request-id', 'strict-transport-security',
  'x-content-type-options', 'x-frame-options', 'content-security-policy', 'www-authenticate', 'retry-after',
  'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'alt-svc', 'link', 'pragma', 'content-disposition',
  'content-language', 'via', 'x-powered-by', 'trailer',
]);

// Other lower-cased header names by their spelling on the wire: upstreams repeat the same few names,
// and a name the engine has seen before then costs one lookup, no new string, and a key V8
// already knows when the header object is built. Bounded: past the limit, names are lowered
// each time.
const MAX_CACHED_NAMES = 1024;
const lowerCaseNames = new Map<string, string>();

/** `name` in lower case, from the cache when this spelling was seen before. Per header line. */
function lowerCaseName(name: string): string {
  let lower = lowerCaseNames.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    if (lowerCaseNames.size < MAX_CACHED_NAMES) lowerCaseNames.set(name, lower);
  }
  return lower;
}

/** True for `keep-alive` and `close` in any case: a Connection value that names no other header. */
function isPlainConnectionValue(value: string): boolean {
  if (value.length !== 10 && value.length !== 5) return false;
  const lower = value.toLowerCase();
  return lower === 'keep-alive' || lower === 'close';
}

/** True when a `Connection` value (comma-separated tokens) contains `close`. */
function hasCloseToken(value: string): boolean {
  if (value === 'keep-alive' || value === 'Keep-Alive') return false; // the usual value, without splitting
  for (const token of value.split(',')) {
    if (token.trim().toLowerCase() === 'close') return true;
  }
  return false;
}

/** The `timeout=N` of a `Keep-Alive` header in milliseconds (0 when absent or invalid). */
function parseKeepAliveTimeoutMs(value: string): number {
  const match = /(?:^|[,;\s])timeout\s*=\s*(\d{1,6})/i.exec(value);
  return match === null ? 0 : Number(match[1]) * 1000;
}
