/**
 * The proxy's HTTP/1.1 downstream on keygate's own request path (`core/http/http1-connection.ts`)
 * instead of node:http's `IncomingMessage`/`ServerResponse`: the default for plain `http`
 * listeners and for HTTP/1.1 over TLS on `https` listeners (`http1Parser: 'keygate'`).
 *
 * {@link Http1DownstreamRequest} and {@link Http1DownstreamResponse} carry the part of the node
 * objects' interface that a {@link ProxySession} and its hooks use (`method`, `url`, `headers`,
 * `socket`; `writeHead`, `write` with `'drain'`, `end`, `addTrailers`, `flushHeaders`,
 * `destroy`, `'close'`), so the phases run unchanged on either path.
 *
 * What the fast path does not interpret goes to node:http with the bytes already read, for the
 * rest of that connection's life (see the connection's file comment): upgrades (WebSocket),
 * chunked or larger request bodies (over {@link HTTP1_DOWNSTREAM_MAX_INLINE_BODY_BYTES}, so a body
 * is never held in memory beyond that), `expect`, HTTP/1.0, unusual headers. A small body with a
 * `content-length` is read whole before the phases run and forwarded with its length.
 *
 * Responses: the head is held until the first body write (head and body leave in one write for
 * small responses), `date` and `connection`/`keep-alive` are added, and a response without a
 * `content-length` is sent chunked (trailers included), as node:http does.
 */
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { Server, Socket } from 'node:net';
import { Http1Connection, httpDate, statusLine } from '../core/http/http1-connection.ts';
import type { Http1ConnectionLimits, Http1ConnectionOwner, Http1Exchange } from '../core/http/http1-connection.ts';

/** Request bodies up to this size (declared `content-length`) are read whole on the fast path. */
export const HTTP1_DOWNSTREAM_MAX_INLINE_BODY_BYTES = 64 * 1024;

/** RFC 9110 token: response header field names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A token without upper-case letters (the usual, already lower-cased name). */
const LOWER_CASE_TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
/** What node:http accepts in a response header value: HTAB, SP, visible ASCII and obs-text (latin1). */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const EMPTY_RAW_HEADERS: string[] = [];
const EMPTY_BODY = Buffer.alloc(0);
const CHUNKED_END = '0\r\n\r\n';
/** A whole response whose body is at most this long leaves in one buffer (see `end`). */
const SINGLE_WRITE_BODY_BYTES = 16 * 1024;
/** A `connection` header value that asks to close (node:http's test). */
const CONNECTION_CLOSE = /(?:^|\W)close(?:$|\W)/i;

/** The downstream request of the fast path: the part of `IncomingMessage` the proxy reads. */
export class Http1DownstreamRequest {
  readonly method: string;
  readonly url: string;
  /** Lower-cased names; hooks may change values (as with node's object). */
  readonly headers: IncomingHttpHeaders;
  /** Not kept on the fast path (duplicate headers never reach it); always empty. */
  readonly rawHeaders: string[] = EMPTY_RAW_HEADERS;
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  readonly complete = true;
  readonly socket: Socket;
  /**
   * The whole request body (at most {@link HTTP1_DOWNSTREAM_MAX_INLINE_BODY_BYTES}), empty when a
   * zero length was declared, or undefined without `content-length`.
   */
  readonly body: Buffer | undefined;

  constructor(exchange: Http1Exchange) {
    this.method = exchange.method;
    this.url = exchange.url;
    this.headers = exchange.headers;
    this.socket = exchange.socket;
    // A declared zero length in any spelling (`0`, `00`) is an empty body, not none: the session
    // then never takes this object, which is not a stream, for a body still to be read.
    this.body = exchange.body ?? (exchange.headers['content-length'] === undefined ? undefined : EMPTY_BODY);
  }
}

/**
 * The downstream response of the fast path: the part of `ServerResponse` the proxy writes with.
 * Emits `'drain'` after a `write` returned false, `'finish'` and then `'close'` after `end`, and
 * `'close'` alone when the connection went away first (then `writableFinished` is false).
 *
 * An `EventEmitter` (its prototype is `EventEmitter.prototype`, so `instanceof` and every method
 * work) whose listener table is created by the first `on`, not by a constructor: most responses
 * get no listener but the phase runner's, which uses {@link onClose} instead, and an event
 * without listeners is not emitted (`emit` allocates its arguments array even then). That saves
 * a dictionary object, and the work of filling and reading it, per request.
 */
export class Http1DownstreamResponse {
  statusCode = 200;
  /** True once the head was handed to the socket. */
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  /** Set to false before `writeHead` to close the connection after this response. */
  shouldKeepAlive = true;
  readonly req: Http1DownstreamRequest;
  readonly #exchange: Http1Exchange;
  /** The head built by `writeHead`, not yet written. */
  #head: string | undefined;
  #chunked = false;
  #hasBody = true;
  #trailers: string | undefined;
  #closed = false;
  #waitingForDrain = false;
  /** What `writeHead` saw among the names (see #checkedName). */
  #sawLength = false;
  #sawDate = false;
  #connectionValue: string | undefined;
  #closeListener: ((this: unknown) => void) | undefined = undefined;
  #closeListenerThis: unknown = undefined;

  constructor(exchange: Http1Exchange, req: Http1DownstreamRequest) {
    this.#exchange = exchange;
    this.req = req;
    // A shared function called with this response as `this`: no closure per request.
    exchange.onConnectionClose(Http1DownstreamResponse.#connectionLost, this);
  }

  get socket(): Socket {
    return this.#exchange.socket;
  }

  /**
   * @internal The framework's own `'close'` callback (the phase runner's), called with `thisArg`
   * as `this` just before the `'close'` listeners: a slot instead of a listener (and a shared
   * function instead of a closure) per request. One at most; hooks use `on('close', …)`.
   */
  onClose<T>(listener: (this: T) => void, thisArg: T): void {
    this.#closeListener = listener as (this: unknown) => void;
    this.#closeListenerThis = thisArg;
  }

  /** Bytes waiting in the socket's buffer are over its high-water mark. */
  get writableNeedDrain(): boolean {
    return this.#exchange.socket.writableNeedDrain;
  }

  /**
   * Builds the head (written with the first body bytes or `end`; see `flushHeaders`). Names are
   * tokens in any case (written lower-case) and values latin1 without control characters, else
   * a TypeError is thrown and nothing changes. `extra` holds more header lines as a flat
   * `[name, value, …]` list, written after `headers` with the same checks: what the proxy adds to
   * an upstream response, without copying it into the upstream's header object. Once per response.
   */
  writeHead(status: number, headers: Record<string, string | string[] | number | undefined> = {}, extra?: readonly string[]): this {
    if (this.#head !== undefined || this.headersSent) throw new Error('writeHead: the head was already written');
    let head = statusLine(status);
    this.#sawLength = false;
    this.#sawDate = false;
    this.#connectionValue = undefined;
    for (const key in headers) {
      const value = headers[key];
      if (value === undefined) continue;
      const name = this.#checkedName(key, value);
      if (typeof value === 'object') {
        for (const item of value) head += headerLine(name, item);
      } else {
        head += headerLine(name, typeof value === 'number' ? String(value) : value);
      }
    }
    if (extra !== undefined) {
      for (let index = 0; index < extra.length; index += 2) {
        const value = extra[index + 1]!;
        head += headerLine(this.#checkedName(extra[index]!, value), value);
      }
    }
    const hasLength = this.#sawLength;
    const hasDate = this.#sawDate;
    const connection = this.#connectionValue;
    const method = this.req.method;
    this.#hasBody = method !== 'HEAD' && status !== 204 && status !== 304 && (status < 100 || status >= 200);
    if (this.#hasBody && !hasLength) {
      this.#chunked = true;
      head += 'transfer-encoding: chunked\r\n';
    }
    if (!hasDate) head += `date: ${httpDate()}\r\n`;
    // As node:http does: a `connection` header from the caller (a response hook) is the only one
    // sent, and `close` in it ends the connection after this response.
    if (connection !== undefined) {
      if (CONNECTION_CLOSE.test(connection)) this.shouldKeepAlive = false;
      head += '\r\n';
    } else {
      head += this.shouldKeepAlive && !this.#exchange.closeAfter
        ? `connection: keep-alive\r\nkeep-alive: timeout=${this.#exchange.connection.keepAliveSeconds}\r\n\r\n`
        : 'connection: close\r\n\r\n';
    }
    this.statusCode = status;
    this.#head = head;
    return this;
  }

  /** A header name for the head (lower case), noting the names `writeHead` acts on; a TypeError for a non-token. */
  #checkedName(key: string, value: string | string[] | number): string {
    let name = key;
    if (!LOWER_CASE_TOKEN.test(name)) {
      if (!TOKEN.test(name)) throw new TypeError(`invalid response header name ${JSON.stringify(name)}`);
      name = name.toLowerCase();
    }
    if (name === 'content-length') this.#sawLength = true;
    else if (name === 'date') this.#sawDate = true;
    // Seen twice (the upstream's and an added one): both count, as node:http reads the joined value.
    else if (name === 'connection') this.#connectionValue = this.#connectionValue === undefined ? String(value) : `${this.#connectionValue}, ${String(value)}`;
    return name;
  }

  /** Writes the head now (a streamed response may not write its first body bytes for a while). */
  flushHeaders(): void {
    const head = this.#head;
    if (head === undefined || this.#closed) return;
    this.#head = undefined;
    this.headersSent = true;
    this.#exchange.writeStream(head, 'latin1');
  }

  /** Writes body bytes (chunk-framed when chunked); false: wait for `'drain'`. */
  write(chunk: Uint8Array | string): boolean {
    if (this.writableEnded || this.#closed) return true;
    if (this.#head === undefined && !this.headersSent) this.writeHead(this.statusCode);
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (bytes.length === 0 || !this.#hasBody) {
      this.flushHeaders();
      return true;
    }
    const exchange = this.#exchange;
    const head = this.#head;
    const socket = exchange.socket;
    let flushed: boolean;
    socket.cork();
    try {
      if (head !== undefined) {
        this.#head = undefined;
        this.headersSent = true;
        exchange.writeStream(this.#chunked ? `${head}${bytes.length.toString(16)}\r\n` : head, 'latin1');
      } else if (this.#chunked) {
        exchange.writeStream(`${bytes.length.toString(16)}\r\n`, 'latin1');
      }
      flushed = exchange.writeStream(bytes);
      if (this.#chunked) flushed = exchange.writeStream('\r\n', 'latin1');
    } finally {
      socket.uncork();
    }
    if (!flushed && !this.#waitingForDrain) {
      this.#waitingForDrain = true;
      // Rare (backpressure): the closure is made only then.
      socket.once('drain', () => this.#drained());
    }
    return flushed;
  }

  /** Trailer fields, sent after a chunked body (dropped otherwise, as node:http does). */
  addTrailers(trailers: Record<string, string | string[] | undefined>): void {
    let text = '';
    for (const name in trailers) {
      const value = trailers[name];
      if (value === undefined) continue;
      if (!TOKEN.test(name)) throw new TypeError(`invalid trailer name ${JSON.stringify(name)}`);
      if (typeof value === 'string') text += headerLine(name, value);
      else for (const item of value) text += headerLine(name, item);
    }
    this.#trailers = (this.#trailers ?? '') + text;
  }

  /**
   * Ends the response (with a last chunk, if given), then emits `'finish'` and `'close'` and lets
   * the connection go on with the next request or close.
   */
  end(chunk?: Uint8Array | string): this {
    if (this.writableEnded || this.#closed) return this;
    if (this.#head === undefined && !this.headersSent) this.writeHead(this.statusCode);
    const exchange = this.#exchange;
    const head = this.#head;
    if (head !== undefined && !this.#chunked && this.#hasBody && chunk !== undefined && typeof chunk !== 'string' && chunk.length > 0 && chunk.length <= SINGLE_WRITE_BODY_BYTES) {
      // A small whole response (the usual proxied one): head and body copied into one buffer and
      // written at once. A corked pair of writes goes through the stream's writev path, which
      // costs about 1 µs more per response (an array of chunks, an encoding per chunk, a heap
      // copy of the head); one buffer is written straight from its memory.
      this.#head = undefined;
      this.headersSent = true;
      const bytes = Buffer.allocUnsafe(head.length + chunk.length);
      bytes.write(head, 0, 'latin1');
      bytes.set(chunk, head.length);
      exchange.writeStream(bytes);
    } else if (this.#hasBody && chunk !== undefined && chunk.length > 0) {
      const socket = exchange.socket;
      socket.cork();
      this.write(chunk);
      if (this.#chunked) exchange.writeStream(this.#chunkedEnd(), 'latin1');
      socket.uncork();
    } else {
      this.#head = undefined;
      this.headersSent = true;
      const ending = this.#chunked ? this.#chunkedEnd() : '';
      if (head !== undefined) exchange.writeStream(head + ending, 'latin1');
      else if (ending !== '') exchange.writeStream(ending, 'latin1');
    }
    this.writableEnded = true;
    this.writableFinished = true;
    this.#closed = true;
    try {
      this.#emitIfListened('finish');
      this.#notifyClose();
    } finally {
      exchange.finishStream(!this.shouldKeepAlive);
    }
    return this;
  }

  /**
   * Cuts the connection (a body that cannot be completed must not look complete). After `end` it
   * does nothing: the connection may already serve the next request (node's response has let go
   * of its socket by then too).
   */
  destroy(_error?: Error): this {
    if (!this.writableEnded) this.#exchange.socket.destroy();
    return this;
  }

  #chunkedEnd(): string {
    const trailers = this.#trailers;
    return trailers === undefined ? CHUNKED_END : `0\r\n${trailers}\r\n`;
  }

  #drained(): void {
    this.#waitingForDrain = false;
    if (!this.#closed) this.emit('drain');
  }

  /** `'close'`: the framework's callback, then the listeners. */
  #notifyClose(): void {
    const listener = this.#closeListener;
    if (listener !== undefined) {
      this.#closeListener = undefined;
      listener.call(this.#closeListenerThis);
      this.#closeListenerThis = undefined;
    }
    this.#emitIfListened('close');
  }

  #emitIfListened(event: 'finish' | 'close'): void {
    if (this.listenerCount(event) > 0) this.emit(event);
  }

  static #connectionLost(this: Http1DownstreamResponse): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#notifyClose();
  }
}

// The methods of an emitter without its constructor: `_events` stays undefined until the first
// listener, which node's `EventEmitter` methods all accept (emit then returns false at once).
Object.setPrototypeOf(Http1DownstreamResponse.prototype, EventEmitter.prototype);
/** The emitter's methods, for the type checker (declaration merging; the prototype is set just above). */
export interface Http1DownstreamResponse extends EventEmitter {}

function headerLine(name: string, value: string): string {
  if (INVALID_VALUE.test(value)) throw new TypeError(`invalid character in the value of response header ${name}`);
  return `${name}: ${value}\r\n`;
}

/** What the fast path calls per request (a `PhaseRunner` provides it). */
export interface Http1DownstreamHandler {
  handleRequest(req: Http1DownstreamRequest, res: Http1DownstreamResponse): void;
}

/** The fast-path connections of one listener (for draining). */
export class Http1DownstreamConnections {
  readonly #connections = new Set<Http1Connection>();

  /** @internal */
  add(connection: Http1Connection): void {
    this.#connections.add(connection);
  }

  /** @internal */
  delete(connection: Http1Connection): void {
    this.#connections.delete(connection);
  }

  /** Open fast-path connections. */
  get size(): number {
    return this.#connections.size;
  }

  /** Closes the connections that are between requests (drain). */
  closeIdle(): void {
    for (const connection of this.#connections) if (connection.idle) connection.destroy();
  }
}

const CONNECTIONS = new WeakMap<Server, Http1DownstreamConnections>();

/** The fast-path connections of a server made by `createListener`, if it runs the fast path. */
export function http1DownstreamConnections(server: Server): Http1DownstreamConnections | undefined {
  return CONNECTIONS.get(server);
}

/**
 * Puts the fast path in front of a node server's own connection handling: node's listeners of
 * `event` (`'connection'` for node:http, `'secureConnection'` for the TLS server) are taken off
 * and kept; each new socket for which `useFastPath` holds is served here, and goes to node's
 * listeners (with the bytes already read) only if it leaves the fast path. Called once at boot.
 */
export function attachHttp1Downstream(server: Server, event: 'connection' | 'secureConnection', handler: Http1DownstreamHandler,
  limits: Http1ConnectionLimits, useFastPath: (socket: Socket) => boolean): Http1DownstreamConnections {
  const nodeListeners = server.listeners(event) as Array<(socket: Socket) => void>;
  server.removeAllListeners(event);
  const connections = new Http1DownstreamConnections();
  CONNECTIONS.set(server, connections);
  const toNode = (socket: Socket): void => {
    for (const listener of nodeListeners) listener.call(server, socket);
  };
  const owner: Http1ConnectionOwner = {
    bodyLimitFor: () => HTTP1_DOWNSTREAM_MAX_INLINE_BODY_BYTES,
    request: (exchange) => {
      const req = new Http1DownstreamRequest(exchange);
      handler.handleRequest(req, new Http1DownstreamResponse(exchange, req));
    },
    // Not reached: larger bodies are handed off (`handOffBodiesOverBytes`) before this check.
    bodyTooLarge: (exchange) => exchange.respond(413, ['content-length', '0'], undefined, true),
    handOff: (socket, unread) => {
      if (unread !== undefined) socket.unshift(unread);
      toNode(socket);
    },
    closed: (connection) => connections.delete(connection),
  };
  const fastLimits: Http1ConnectionLimits = { ...limits, handOffBodiesOverBytes: HTTP1_DOWNSTREAM_MAX_INLINE_BODY_BYTES };
  server.on(event, (socket: Socket) => {
    if (useFastPath(socket)) connections.add(new Http1Connection(socket, owner, fastLimits));
    else toNode(socket);
  });
  return connections;
}
