/**
 * `Http1Connection`: keygate's own HTTP/1.1 request path for one plain-TCP connection, the fast
 * transport of {@link HttpServer}. It parses the common, unambiguous request shape itself
 * (`METHOD /origin-form HTTP/1.1`, token header names, a single decimal `content-length` or no
 * body) and writes each response as one socket write, skipping the `IncomingMessage` /
 * `ServerResponse` stream machinery that costs node:http most of its time per small request.
 *
 * Anything outside that shape (chunked or other transfer codings, `expect`, upgrades, HTTP/1.0,
 * duplicate or unusual headers, a missing `host`, absolute-form targets, control characters, a
 * malformed length) is not interpreted here: the connection, with the bytes already read, is
 * handed over to node:http for the rest of its life, and node:http answers or rejects it exactly
 * as it would have without this layer. A request is therefore either parsed by this strict subset
 * or by node's parser, never half by each, which keeps request smuggling out (one length source
 * only, never `transfer-encoding` here).
 *
 * Requests on one connection are handled one at a time in order (pipelined bytes wait, bounded);
 * the socket's idle timer closes a silent connection, and a request must finish arriving within
 * the header and receive deadlines, measured from its first byte, whatever the client trickles.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { KnownHeaderNames } from './known-header-names.ts';
import { keepable, pushReadsToStream, readIntoSharedBuffer } from './shared-read-buffer.ts';

/** What a connection needs from its server: called per request and at the connection's end. */
export interface Http1ConnectionOwner {
  /**
   * A request's head was parsed: return the body limit of its route (bytes), looked up once and
   * remembered for {@link Http1ConnectionOwner.request}.
   */
  bodyLimitFor(exchange: Http1Exchange): number;
  /** A complete request (head and body) arrived: run it; answer through `exchange.respond`. */
  request(exchange: Http1Exchange): void;
  /** The declared body is over the route's limit: answer (413) through `exchange.respond`. */
  bodyTooLarge(exchange: Http1Exchange, limitBytes: number): void;
  /** The connection must leave this fast path: continue it on node:http with these unread bytes. */
  handOff(socket: Socket, unread: Buffer | undefined): void;
  /** The connection closed (either side); it is no longer tracked. */
  closed(connection: Http1Connection): void;
}

/** Bounds of the fast path; each has the same meaning as the node:http option it mirrors. */
export interface Http1ConnectionLimits {
  /** Bound on the request line and headers together, bytes (over it: 431). */
  maxHeaderBytes: number;
  /** Time from a request's first byte to the end of its headers, ms (over it: 408 and close). */
  headersTimeoutMs: number;
  /** Time from a request's first byte to the end of its body, ms (over it: 408 and close). */
  requestReceiveTimeoutMs: number;
  /** Idle time (no byte either way) before the connection is closed, ms. */
  keepAliveTimeoutMs: number;
  /**
   * A request declaring a longer body than this is not read here: the connection, that request's
   * head included, goes to node:http (which streams bodies). Unset: every body is read here, up to
   * the owner's `bodyLimitFor`. A proxy sets it so that only small bodies are ever held in memory.
   */
  handOffBodiesOverBytes?: number;
}

/** Methods parsed here; any other method goes to node:http (which answers 405/400 as usual). */
const FAST_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** RFC 9110 token characters (header field names), by character code below 128: 1 = allowed. */
const TOKEN_CHARACTERS = new Uint8Array(128);
for (const character of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN_CHARACTERS[character.charCodeAt(0)] = 1;
/** RFC 9110 token: response header field names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Origin-form request target: `/` then visible ASCII only. */
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;
/** Header names whose presence sends the connection to node:http (semantics we do not implement here). */
const HAND_OFF_HEADERS: ReadonlySet<string> = new Set(['transfer-encoding', 'expect', 'upgrade', 'te', 'http2-settings', '__proto__']);
/** What node:http accepts in a response header value: HTAB, SP, visible ASCII and obs-text (latin1). */
const INVALID_RESPONSE_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** A response header value that needs no encoding care: printable ASCII and HTAB. */
const ASCII_VALUE = /^[\t\x20-\x7e]*$/;
/** Content-length digits: at most 15, so the number is exact. */
const DECIMAL = /^[0-9]{1,15}$/;
/** A response body above this size is written slice by slice as the client reads it. */
const STREAMED_PAYLOAD_BYTES = 256 * 1024;
/** The slice size of a streamed response body. */
const STREAMED_SLICE_BYTES = 64 * 1024;
/** Pipelined bytes kept while a request is in flight before the socket is paused. */
const MAX_PIPELINED_BYTES = 64 * 1024;
const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');

/** Cached `date` header value, refreshed at most once per second (RFC 9110 §6.6.1). */
let cachedDateSecond = -1;
let cachedDate = '';
/** The current `date` header value (IMF-fixdate), cached per second. */
export function httpDate(): string {
  const nowMs = Date.now();
  const second = Math.floor(nowMs / 1000);
  if (second !== cachedDateSecond) {
    cachedDateSecond = second;
    cachedDate = new Date(nowMs).toUTCString();
  }
  return cachedDate;
}

/** Status lines for the statuses this server writes, built once. */
const STATUS_LINES = new Map<number, string>();
/** `HTTP/1.1 <status> <reason>\r\n`, cached for the first 128 statuses seen. */
export function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    if (STATUS_LINES.size < 128) STATUS_LINES.set(status, line);
  }
  return line;
}

/**
 * One request on a fast connection, as the server sees it: the parsed head, the body once
 * complete, and `respond` to answer. Created per request.
 */
export class Http1Exchange {
  /** Upper-case method. */
  readonly method: string;
  /** The request target (origin-form: path and query). */
  readonly url: string;
  /** Lower-cased header names; values trimmed of optional whitespace. */
  readonly headers: IncomingHttpHeaders;
  /** The declared body length in bytes (0 without `content-length`). */
  readonly contentLength: number;
  /** The whole body, set when it has arrived. */
  body: Buffer | undefined;
  /** The server's per-request data (route match), set in `bodyLimitFor`. */
  route: unknown = undefined;
  /** True once the response was written or the connection closed first. */
  done = false;
  /** The client asked to close the connection after this exchange (`connection: close`). */
  readonly closeAfter: boolean;
  readonly #connection: Http1Connection;
  #onClose: ((this: unknown) => void) | undefined;
  #onCloseThis: unknown = undefined;

  constructor(connection: Http1Connection, method: string, url: string, headers: IncomingHttpHeaders, contentLength: number, closeAfter: boolean) {
    this.#connection = connection;
    this.method = method;
    this.url = url;
    this.headers = headers;
    this.contentLength = contentLength;
    this.closeAfter = closeAfter;
  }

  /** The client's address (the socket's peer). */
  get remoteAddress(): string {
    return this.#connection.remoteAddress;
  }

  /** The connection this request came on (an identity for per-connection memos). */
  get connection(): Http1Connection {
    return this.#connection;
  }

  /** The connection's socket (TLS details, `cork`, `'drain'` for a streamed response). */
  get socket(): Socket {
    return this.#connection.socket;
  }

  /**
   * A streamed response, instead of `respond`: hands bytes (head and body framing are the
   * caller's) to the socket and returns what `socket.write` returned (false: wait for the
   * socket's `'drain'`). Does nothing and returns true once the connection is gone. The
   * connection stays with this exchange, and its idle timer leaves it alone, until
   * {@link Http1Exchange.finishStream}.
   */
  writeStream(data: string | Uint8Array, encoding?: BufferEncoding): boolean {
    return this.#connection.writeStream(data, encoding);
  }

  /** The streamed response is complete: the connection closes (`close`) or reads the next request. */
  finishStream(close: boolean): void {
    if (this.done) return;
    this.done = true;
    this.#onClose = undefined;
    this.#connection.finishStream(close || this.closeAfter);
  }

  /** True once the connection is gone: nothing can be written any more. */
  get connectionClosed(): boolean {
    return this.#connection.isClosed;
  }

  /**
   * Registers the one listener called if the connection closes before the response, with
   * `thisArg` as `this` (a shared function and its object: no closure per request).
   */
  onConnectionClose<T>(listener: (this: T) => void, thisArg?: T): void {
    this.#onClose = listener as (this: unknown) => void;
    this.#onCloseThis = thisArg;
  }

  /** @internal The connection closed while this exchange was open. */
  connectionLost(): void {
    const listener = this.#onClose;
    const thisArg = this.#onCloseThis;
    this.#onClose = undefined;
    this.#onCloseThis = undefined;
    listener?.call(thisArg);
  }

  /**
   * Writes the response: status, the flat header list `[name, value, …]` (lower-case names,
   * validated here: a bad name or value throws a TypeError and nothing is written), and the
   * payload (omitted for HEAD). `content-length` must be among the headers when there is a body.
   * `close` ends the connection after it. Called once per exchange.
   */
  respond(status: number, headers: readonly string[], payload: string | Uint8Array | undefined, close: boolean): void {
    let head = statusLine(status);
    let asciiHead = true;
    for (let index = 0; index < headers.length; index += 2) {
      const name = headers[index]!;
      const value = headers[index + 1]!;
      if (!TOKEN.test(name)) throw new TypeError(`invalid response header name ${JSON.stringify(name)}`);
      // As node:http does: a character outside latin1 cannot be written as one octet, so it is
      // refused (→ 500) rather than silently truncated on the wire.
      if (INVALID_RESPONSE_VALUE.test(value)) throw new TypeError(`invalid character in the value of response header ${name}`);
      if (asciiHead && !ASCII_VALUE.test(value)) asciiHead = false;
      head += `${name}: ${value}\r\n`;
    }
    const closeConnection = close || this.closeAfter;
    head += closeConnection
      ? `date: ${httpDate()}\r\nconnection: close\r\n\r\n`
      : `date: ${httpDate()}\r\nconnection: keep-alive\r\nkeep-alive: timeout=${this.#connection.keepAliveSeconds}\r\n\r\n`;
    this.done = true;
    this.#onClose = undefined;
    this.#connection.write(head, asciiHead, this.method === 'HEAD' ? undefined : payload, closeConnection);
  }
}

/** Where the parser is in the current request. */
type Phase = 'idle' | 'head' | 'body' | 'in-flight' | 'responding' | 'closing';

/**
 * One accepted plain-TCP connection on the fast path. Created per connection by the server;
 * lives until the socket closes or the connection is handed to node:http.
 */
export class Http1Connection {
  readonly #socket: Socket;
  readonly #owner: Http1ConnectionOwner;
  readonly #limits: Http1ConnectionLimits;
  /** Bytes read and not yet consumed by a request. */
  #pending: Buffer | undefined;
  /** Where to resume looking for the end of the headers in `#pending`. */
  #scanFrom = 0;
  #phase: Phase = 'idle';
  /** `performance.now()` when the current request's first byte arrived. */
  #requestStartedMs = 0;
  #exchange: Http1Exchange | undefined;
  /** Growable storage behind `#pending` while bytes arrive in small reads (see `#append`). */
  #storage: Buffer | undefined;
  /** Bytes of `#storage` in use (its end is where the next read is appended). */
  #storageUsed = 0;
  /** True while the socket timer runs at something other than the idle timeout (a slow request). */
  #timerChanged = false;
  /** The client half-closed: nothing more is read, and nothing more is answered. */
  #ended = false;
  /** The current body's reads, while it is longer than what has arrived. */
  #bodyChunks: Buffer[] | undefined;
  #bodyBytes = 0;
  #parsing = false;
  #closed = false;
  /** The socket's idle timeout, ms. */
  readonly #idleTimeoutMs: number;
  /** Slices of streamed response bodies handed to the socket (progress of a slow reader). */
  #slicesWritten = 0;
  /** {@link Http1Connection.#flushProgress} when the idle timer last fired during a response. */
  #progressAtTimeout = -1;
  #handedOff = false;
  #paused = false;
  /** Reads arrive from the thread's shared read buffer (`shared-read-buffer.ts`), not as `'data'`. */
  readonly #sharedReads: boolean;
  /** Shared-buffer reads from now on are dropped (the `'data'` listener's removal, in that mode). */
  #readsIgnored = false;
  readonly remoteAddress: string;
  readonly keepAliveSeconds: number;

  constructor(socket: Socket, owner: Http1ConnectionOwner, limits: Http1ConnectionLimits) {
    this.#socket = socket;
    this.#owner = owner;
    this.#limits = limits;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.keepAliveSeconds = Math.max(1, Math.floor(limits.keepAliveTimeoutMs / 1000));
    socket.setNoDelay(true);
    // One idle timer for the connection's whole life: Node re-arms it on every read and write.
    this.#idleTimeoutMs = Math.min(limits.keepAliveTimeoutMs, limits.headersTimeoutMs);
    socket.setTimeout(this.#idleTimeoutMs);
    // Plain TCP and TLS: reads straight from one shared buffer, without the socket's Readable
    // stream (no buffer, push or 'data' event per read); whatever outlives a read is copied.
    this.#sharedReads = readIntoSharedBuffer(socket, this.#onSharedRead);
    if (!this.#sharedReads) socket.on('data', this.#onData);
    socket.on('timeout', this.#onTimeout);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('end', this.#onEnd);
  }

  /** True once the socket closed or the client half-closed: nothing more can be answered. */
  get isClosed(): boolean {
    return this.#closed || this.#ended;
  }

  /** True when no request is being received or handled (safe to close at drain). */
  get idle(): boolean {
    return this.#phase === 'idle' && (this.#pending === undefined || this.#pending.length === 0);
  }

  /** Closes the connection now (drain of idle connections, shutdown). */
  destroy(): void {
    this.#socket.destroy();
  }

  /** The accepted socket. */
  get socket(): Socket {
    return this.#socket;
  }

  /** @internal Bytes of a streamed response (from {@link Http1Exchange.writeStream}). */
  writeStream(data: string | Uint8Array, encoding: BufferEncoding | undefined): boolean {
    if (this.#closed || this.#ended) return true;
    return encoding === undefined ? this.#socket.write(data) : this.#socket.write(data, encoding);
  }

  /** @internal The end of a streamed response (from {@link Http1Exchange.finishStream}). */
  finishStream(close: boolean): void {
    if (this.#closed) return;
    this.#exchange = undefined;
    this.#responded(close);
  }

  /** @internal Writes one response (from {@link Http1Exchange.respond}) and moves to the next request. */
  write(head: string, asciiHead: boolean, payload: string | Uint8Array | undefined, close: boolean): void {
    if (this.#closed || this.#ended) return;
    const socket = this.#socket;
    this.#exchange = undefined;
    if (payload !== undefined && payload.length > STREAMED_PAYLOAD_BYTES) {
      // A large body is handed to the socket a slice at a time, as the client takes it: the
      // socket buffers at most one slice, and the idle timer sees a reader that stopped.
      const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
      this.#phase = 'responding';
      socket.write(head, 'latin1');
      this.#writeSlices(bytes, 0, close);
      return;
    }
    if (payload === undefined) {
      socket.write(head, 'latin1');
    } else if (typeof payload === 'string' && asciiHead) {
      // One write, one syscall: an ASCII head is the same bytes in UTF-8.
      socket.write(head + payload, 'utf8');
    } else {
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(payload);
      socket.uncork();
    }
    this.#responded(close);
  }

  /** Writes `bytes` from `offset` on, slice by slice, waiting for 'drain' between slices. */
  #writeSlices(bytes: Uint8Array, offset: number, close: boolean): void {
    const socket = this.#socket;
    while (offset < bytes.length) {
      if (this.#closed) return;
      const end = Math.min(offset + STREAMED_SLICE_BYTES, bytes.length);
      const flushed = socket.write(bytes.subarray(offset, end));
      this.#slicesWritten++;
      offset = end;
      if (!flushed && offset < bytes.length) {
        socket.once('drain', () => this.#writeSlices(bytes, offset, close));
        return;
      }
    }
    this.#responded(close);
  }

  /** The whole response was handed to the socket: close, or go on with the next request. */
  #responded(close: boolean): void {
    if (this.#closed) return;
    const socket = this.#socket;
    if (close || this.#ended) {
      this.#phase = 'idle';
      this.#pending = undefined;
      this.#stopReading();
      // As node:http does: end, then destroy once the response is flushed, so a client still
      // sending a refused body cannot hold the socket open.
      socket.end(() => socket.destroy());
      return;
    }
    if (socket.writableNeedDrain) {
      // The client is not taking responses as fast as it sends requests: no next request is
      // read or answered until it has, so unread responses cannot pile up in memory.
      this.#phase = 'responding';
      if (!this.#paused) {
        this.#paused = true;
        socket.pause();
      }
      socket.once('drain', () => this.#responded(false));
      return;
    }
    this.#phase = 'idle';
    if (this.#paused) {
      this.#paused = false;
      socket.resume();
    }
    if (!this.#parsing && this.#pending !== undefined) this.#parse();
  }

  /** No more request bytes are wanted: later reads are dropped. */
  #stopReading(): void {
    if (this.#sharedReads) this.#readsIgnored = true;
    else this.#socket.removeListener('data', this.#onData);
  }

  /**
   * A read in the shared buffer: handled as a `'data'` chunk, then whatever still refers to the
   * buffer (unconsumed or pipelined bytes, the start of a body) is copied, since the next read of
   * any socket overwrites it. A whole request per read, the usual case, leaves nothing to copy.
   */
  #onSharedRead = (length: number, buffer: Buffer): void => {
    if (this.#readsIgnored) return;
    this.#onData(buffer.subarray(0, length));
    this.#pending = keepable(this.#pending);
    const bodyChunks = this.#bodyChunks;
    if (bodyChunks !== undefined) {
      for (let index = 0; index < bodyChunks.length; index++) bodyChunks[index] = keepable(bodyChunks[index]!);
    }
  };

  #onData = (chunk: Buffer): void => {
    if (this.#bodyChunks !== undefined) {
      // A body longer than what came with its head: gathered once, not re-concatenated per read.
      this.#bodyChunks.push(chunk);
      this.#bodyBytes += chunk.length;
      if (this.#bodyBytes < this.#exchange!.contentLength) {
        if (performance.now() - this.#requestStartedMs > this.#limits.requestReceiveTimeoutMs) this.#refuse(408);
        return;
      }
      this.#pending = Buffer.concat(this.#bodyChunks, this.#bodyBytes);
      this.#bodyChunks = undefined;
      this.#bodyBytes = 0;
      this.#parse();
      return;
    }
    this.#append(chunk);
    if (this.#phase === 'in-flight' || this.#phase === 'responding' || this.#phase === 'closing') {
      // Pipelined bytes wait for the current response; bounded by pausing the socket.
      if (this.#pending!.length > MAX_PIPELINED_BYTES && !this.#paused) {
        this.#paused = true;
        this.#socket.pause();
      }
      return;
    }
    this.#parse();
  };

  /**
   * Appends a read to `#pending`. A head or pipelined bytes arriving in many small reads are
   * copied into a buffer that doubles as needed, so a client trickling bytes costs linear, not
   * quadratic, copying. The common case (a whole request per read) copies nothing.
   */
  #append(chunk: Buffer): void {
    const pending = this.#pending;
    if (pending === undefined || pending.length === 0) {
      this.#pending = chunk;
      return;
    }
    const storage = this.#storage;
    const needed = pending.length + chunk.length;
    if (storage !== undefined && pending.buffer === storage.buffer && pending.byteOffset + pending.length === storage.byteOffset + this.#storageUsed
      && this.#storageUsed + chunk.length <= storage.length) {
      // `pending` ends where the storage's used part ends: the chunk goes right after it.
      chunk.copy(storage, this.#storageUsed);
      this.#storageUsed += chunk.length;
      this.#pending = storage.subarray(pending.byteOffset - storage.byteOffset, this.#storageUsed);
      return;
    }
    const grown = Buffer.allocUnsafe(Math.max(2 * needed, 1024));
    pending.copy(grown, 0);
    chunk.copy(grown, pending.length);
    this.#storage = grown;
    this.#storageUsed = needed;
    this.#pending = grown.subarray(0, needed);
  }

  #onTimeout = (): void => {
    // Idle with nothing pending, or a request that went silent mid-way: close. A request in
    // flight is the handler's business (the server's deadline answers it).
    if (this.#phase === 'in-flight') return;
    if (this.#phase === 'closing') {
      // A refusal whose bytes the client does not take: nothing more to wait for.
      this.#socket.destroy();
      return;
    }
    if (this.#phase === 'head' || this.#phase === 'body') {
      // Silence inside a request is allowed up to the request's own deadline (headers or whole
      // request, from its first byte), as node:http allows it; then 408.
      const deadlineMs = this.#phase === 'head' ? this.#limits.headersTimeoutMs : this.#limits.requestReceiveTimeoutMs;
      const remainingMs = deadlineMs - (performance.now() - this.#requestStartedMs);
      if (remainingMs >= 1) {
        this.#timerChanged = true;
        this.#socket.setTimeout(Math.min(this.#idleTimeoutMs, Math.ceil(remainingMs)));
        return;
      }
      this.#refuse(408);
    }
    // A response still being flushed to a slow reader is not idleness: it gets another period
    // as long as the reader took something since the last one; a reader that took nothing for
    // two whole periods is closed (a slow-read attack must not hold the socket forever).
    else if (this.#socket.writableLength > 0 && this.#flushProgress() !== this.#progressAtTimeout) {
      this.#progressAtTimeout = this.#flushProgress();
      this.#socket.setTimeout(this.#idleTimeoutMs);
    } else this.#socket.destroy();
  };

  /** A number that changes whenever the client took bytes of the response being written. */
  #flushProgress(): number {
    return this.#slicesWritten * 2 ** 32 + this.#socket.writableLength;
  }

  #onEnd = (): void => {
    // The client half-closed (the listener allows half-open sockets for node:http's sake). As
    // node:http does by default, that aborts a request in flight (nothing more is answered), and
    // what was already written is flushed before the connection closes.
    this.#ended = true;
    this.#pending = undefined;
    this.#bodyChunks = undefined;
    const exchange = this.#exchange;
    this.#exchange = undefined;
    if (exchange !== undefined && !exchange.done) exchange.connectionLost();
    const socket = this.#socket;
    this.#stopReading();
    // A response being streamed is finished first; `#responded` then ends the connection.
    if (this.#phase === 'responding') return;
    this.#phase = 'closing';
    socket.end(() => socket.destroy());
  };

  #onError = (): void => {
    // A reset or write to a closed peer: 'close' follows and does the bookkeeping.
  };

  #onClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    const exchange = this.#exchange;
    this.#exchange = undefined;
    this.#pending = undefined;
    this.#bodyChunks = undefined;
    if (exchange !== undefined && !exchange.done) exchange.connectionLost();
    if (!this.#handedOff) this.#owner.closed(this);
  };

  /** Consumes complete requests from `#pending`, one at a time, until one is in flight or bytes run out. */
  #parse(): void {
    this.#parsing = true;
    try {
      while (!this.#closed && (this.#phase === 'idle' || this.#phase === 'head' || this.#phase === 'body') && this.#pending !== undefined && this.#pending.length > 0) {
        if (this.#phase === 'body') {
          if (!this.#takeBody()) return;
          continue;
        }
        if (this.#phase === 'idle') {
          this.#phase = 'head';
          this.#requestStartedMs = performance.now();
          this.#scanFrom = 0;
        }
        if (!this.#takeHead()) return;
      }
    } finally {
      this.#parsing = false;
    }
  }

  /** Parses the head if complete. Returns false when more bytes are needed (or the connection left). */
  #takeHead(): boolean {
    const pending = this.#pending!;
    const end = pending.indexOf(CRLF_CRLF, this.#scanFrom);
    if (end === -1) {
      // A line ended by a bare LF is outside the fast subset: node:http decides (now, not when
      // a CRLF CRLF that may never come arrives).
      if (hasBareLineFeed(pending, this.#scanFrom)) {
        this.#handOff();
        return false;
      }
      if (pending.length > this.#limits.maxHeaderBytes) {
        this.#refuse(431);
        return false;
      }
      if (performance.now() - this.#requestStartedMs > this.#limits.headersTimeoutMs) {
        this.#refuse(408);
        return false;
      }
      this.#scanFrom = Math.max(0, pending.length - 3);
      return false;
    }
    if (end + 4 > this.#limits.maxHeaderBytes) {
      this.#refuse(431);
      return false;
    }
    const exchange = this.#parseHead(pending.toString('latin1', 0, end));
    const handOffOver = this.#limits.handOffBodiesOverBytes;
    if (exchange === undefined || (handOffOver !== undefined && exchange.contentLength > handOffOver)) {
      this.#handOff();
      return false;
    }
    this.#pending = end + 4 === pending.length ? undefined : pending.subarray(end + 4);
    this.#exchange = exchange;
    const limitBytes = this.#owner.bodyLimitFor(exchange);
    if (exchange.contentLength > limitBytes) {
      // Refused before a byte of it is read; the connection cannot be reused (the body follows).
      this.#phase = 'in-flight';
      this.#pending = undefined;
      this.#stopReading();
      this.#socket.pause();
      this.#owner.bodyTooLarge(exchange, limitBytes);
      return false;
    }
    this.#phase = 'body';
    if (exchange.contentLength === 0) {
      this.#dispatch(exchange, undefined);
      return true;
    }
    return this.#pending === undefined ? false : this.#takeBody();
  }

  /** Takes the current request's body if complete. Returns false when more bytes are needed. */
  #takeBody(): boolean {
    const exchange = this.#exchange!;
    const pending = this.#pending!;
    const length = exchange.contentLength;
    if (pending.length < length) {
      this.#bodyChunks = [pending];
      this.#bodyBytes = pending.length;
      this.#pending = undefined;
      return false;
    }
    const body = pending.length === length ? pending : pending.subarray(0, length);
    this.#pending = pending.length === length ? undefined : pending.subarray(length);
    this.#dispatch(exchange, body);
    return true;
  }

  #dispatch(exchange: Http1Exchange, body: Buffer | undefined): void {
    if (this.#timerChanged) {
      this.#timerChanged = false;
      this.#socket.setTimeout(this.#idleTimeoutMs);
    }
    // Nothing of a shared-buffer read is used once the owner runs: it may keep the body past this
    // read (a proxy streams it upstream later), and what it writes may bring the next read into
    // the buffer before this one is done with (an empty write to a TLS socket reads).
    exchange.body = keepable(body);
    this.#pending = keepable(this.#pending);
    this.#phase = 'in-flight';
    this.#owner.request(exchange);
  }

  /**
   * Parses a request head (latin1, without the final CRLF CRLF). Returns undefined for anything
   * outside the fast subset: the caller hands the connection to node:http.
   */
  #parseHead(head: string): Http1Exchange | undefined {
    const lineEnd = head.indexOf('\r\n');
    const requestLine = lineEnd === -1 ? head : head.slice(0, lineEnd);
    const firstSpace = requestLine.indexOf(' ');
    const secondSpace = requestLine.indexOf(' ', firstSpace + 1);
    if (firstSpace <= 0 || secondSpace === -1) return undefined;
    if (requestLine.length - secondSpace !== 9 || !requestLine.endsWith(' HTTP/1.1')) return undefined;
    const method = requestLine.slice(0, firstSpace);
    if (!FAST_METHODS.has(method)) return undefined;
    const url = requestLine.slice(firstSpace + 1, secondSpace);
    if (!ORIGIN_FORM.test(url)) return undefined;

    const headers: IncomingHttpHeaders = {};
    let contentLength = 0;
    let closeAfter = false;
    let hasHost = false;
    const length = head.length;
    let position = lineEnd === -1 ? length : lineEnd + 2;
    // One pass over the characters per header line, with a table for the name's token
    // characters: this runs for every request, so no regex or intermediate slices here.
    while (position < length) {
      const nameStart = position;
      let hasUpperCase = false;
      let code = 0;
      for (; position < length; position++) {
        code = head.charCodeAt(position);
        if (code === 58 /* : */) break;
        // Refuses a name with a non-token character, which includes obs-fold (leading whitespace).
        if (code > 127 || TOKEN_CHARACTERS[code] === 0) return undefined;
        if (code >= 65 && code <= 90) hasUpperCase = true;
      }
      if (position === nameStart || position === length) return undefined;
      let name = KNOWN_REQUEST_HEADER_NAMES.find(head, nameStart, position);
      if (name === undefined) name = hasUpperCase ? head.slice(nameStart, position).toLowerCase() : head.slice(nameStart, position);
      position++;
      while (position < length && ((code = head.charCodeAt(position)) === 32 || code === 9)) position++;
      const valueStart = position;
      let valueEnd = position;
      for (; position < length; position++) {
        code = head.charCodeAt(position);
        if (code === 13 /* CR */) break;
        // Control characters (LF included: a bare LF) and DEL are never accepted in a value.
        if ((code < 32 && code !== 9) || code === 127) return undefined;
        if (code !== 32 && code !== 9) valueEnd = position + 1;
      }
      // A CR must start the CRLF that ends the line.
      if (position < length && head.charCodeAt(position + 1) !== 10) return undefined;
      const value = head.slice(valueStart, valueEnd);
      position += 2;
      if (HAND_OFF_HEADERS.has(name) || headers[name] !== undefined) return undefined;
      if (name === 'content-length') {
        if (!DECIMAL.test(value)) return undefined;
        contentLength = Number(value);
      } else if (name === 'host') {
        hasHost = true;
      } else if (name === 'connection') {
        // Only the two plain values are interpreted here; a token list (`close, te`, `closed`,
        // `upgrade`) is node:http's to read, so that both paths agree on when to close.
        const option = value.toLowerCase();
        if (option === 'close') closeAfter = true;
        else if (option !== 'keep-alive') return undefined;
      }
      headers[name] = value;
    }
    // RFC 9112 §3.2: a request without Host is answered 400 by node:http; let it say so.
    if (!hasHost) return undefined;
    return new Http1Exchange(this, method, url, headers, contentLength, closeAfter);
  }

  /** Continues this connection on node:http with everything not yet consumed. */
  #handOff(): void {
    const socket = this.#socket;
    // Handed over through the stream (`unshift`), read whenever node:http gets to it: a copy
    // when it is still in the shared buffer, which the next read of any socket overwrites.
    const unread = keepable(this.#pending);
    this.#pending = undefined;
    this.#handedOff = true;
    this.#phase = 'idle';
    // node:http reads the socket from now on: later reads go to the socket's stream again.
    if (this.#sharedReads) pushReadsToStream(socket);
    else socket.removeListener('data', this.#onData);
    socket.removeListener('timeout', this.#onTimeout);
    socket.removeListener('error', this.#onError);
    socket.removeListener('close', this.#onClose);
    socket.removeListener('end', this.#onEnd);
    socket.setTimeout(0);
    this.#owner.closed(this);
    this.#owner.handOff(socket, unread);
  }

  /** Answers a malformed or too slow request with a bare status and closes the connection. */
  #refuse(status: 408 | 431): void {
    this.#phase = 'closing';
    this.#pending = undefined;
    this.#bodyChunks = undefined;
    const socket = this.#socket;
    this.#stopReading();
    socket.end(`${statusLine(status)}content-length: 0\r\ndate: ${httpDate()}\r\nconnection: close\r\n\r\n`, 'latin1', () => socket.destroy());
  }
}

/** Common request header names: a match is used as the (interned) property key. */
const KNOWN_REQUEST_HEADER_NAMES = new KnownHeaderNames([
  'host', 'connection', 'content-length', 'content-type', 'authorization', 'user-agent', 'accept', 'accept-encoding',
  'accept-language', 'origin', 'referer', 'cookie', 'cache-control', 'pragma', 'x-forwarded-for', 'x-real-ip',
  'x-request-id', 'traceparent', 'tracestate', 'sec-fetch-mode', 'sec-fetch-site', 'sec-fetch-dest', 'keep-alive',
]);

/** True when `bytes` holds, from `from` on, an LF not preceded by a CR. */
function hasBareLineFeed(bytes: Buffer, from: number): boolean {
  let index = bytes.indexOf(10, from);
  while (index !== -1) {
    if (index === 0 || bytes[index - 1] !== 13) return true;
    index = bytes.indexOf(10, index + 1);
  }
  return false;
}
