/**
 * A raw HTTP/1.1 client for tests and the request fuzz target: writes exact bytes on a plain TCP
 * socket and reads responses off it with a small, lenient response parser (no node:http client
 * in between, so what the server wrote is what the test sees).
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import type { Socket } from 'node:net';

/** One response as read off the socket. */
export interface RawResponse {
  status: number;
  /** Lower-cased header names; a repeated header's values joined with `, `. */
  headers: Record<string, string>;
  /** The head exactly as received (latin1), without the final CRLF CRLF. */
  head: string;
  body: Buffer;
  /** True when the connection closed before the declared body was complete. */
  truncated: boolean;
}

/** How to read the responses in a byte stream. */
export interface ParseResponsesOptions {
  /** The server closed the connection: a body without a length runs to the end of `bytes`. */
  ended: boolean;
  /**
   * True when the response at this position answers a HEAD request (no body whatever its
   * `content-length`). Default: the response carries `x-method: HEAD`.
   */
  answersHead?: (response: Omit<RawResponse, 'body' | 'truncated'>, index: number) => boolean;
}

const CRLF_CRLF = Buffer.from('\r\n\r\n');

/**
 * Parses every complete response in `bytes` (interim 1xx responses included). Returns them and
 * the offset where the first incomplete one starts.
 */
export function parseResponses(bytes: Buffer, options: ParseResponsesOptions): { responses: RawResponse[]; consumed: number } {
  const responses: RawResponse[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const parsed = parseOneResponse(bytes, offset, options, responses.length);
    if (parsed === undefined) break;
    responses.push(parsed.response);
    offset = parsed.next;
  }
  return { responses, consumed: offset };
}

function parseOneResponse(bytes: Buffer, offset: number, options: ParseResponsesOptions, index: number): { response: RawResponse; next: number } | undefined {
  const headEnd = bytes.indexOf(CRLF_CRLF, offset);
  if (headEnd === -1) return undefined;
  const head = bytes.toString('latin1', offset, headEnd);
  const lines = head.split('\r\n');
  const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (statusMatch === null) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(lines[0])}`);
  const status = Number(statusMatch[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const bodyStart = headEnd + 4;
  const answersHead = options.answersHead ?? ((response) => response.headers['x-method'] === 'HEAD');
  const noBody = (status >= 100 && status < 200) || status === 204 || status === 304 || answersHead({ status, headers, head }, index);
  if (noBody) return { response: { status, headers, head, body: Buffer.alloc(0), truncated: false }, next: bodyStart };
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') return parseChunkedBody(bytes, bodyStart, { status, headers, head }, options.ended);
  const declared = headers['content-length'];
  if (declared !== undefined) {
    const length = Number(declared);
    if (bytes.length - bodyStart >= length) {
      return { response: { status, headers, head, body: bytes.subarray(bodyStart, bodyStart + length), truncated: false }, next: bodyStart + length };
    }
    if (!options.ended) return undefined;
    return { response: { status, headers, head, body: bytes.subarray(bodyStart), truncated: true }, next: bytes.length };
  }
  // No framing: the body runs until the server closes.
  if (!options.ended) return undefined;
  return { response: { status, headers, head, body: bytes.subarray(bodyStart), truncated: false }, next: bytes.length };
}

function parseChunkedBody(bytes: Buffer, start: number, response: Omit<RawResponse, 'body' | 'truncated'>, ended: boolean): { response: RawResponse; next: number } | undefined {
  const parts: Buffer[] = [];
  let offset = start;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset);
    if (lineEnd === -1) break;
    const size = parseInt(bytes.toString('latin1', offset, lineEnd), 16);
    if (size === 0) {
      const trailerEnd = bytes.indexOf('\r\n', lineEnd + 2);
      if (trailerEnd === -1) break;
      return { response: { ...response, body: Buffer.concat(parts), truncated: false }, next: trailerEnd + 2 };
    }
    if (bytes.length < lineEnd + 2 + size + 2) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  if (!ended) return undefined;
  return { response: { ...response, body: Buffer.concat(parts), truncated: true }, next: bytes.length };
}

/**
 * One raw client connection. Responses are taken in order with {@link RawConnection.response};
 * every wait is bounded by a deadline. The test closes it (`destroy`) in a teardown.
 */
export class RawConnection {
  readonly socket: Socket;
  #received = Buffer.alloc(0);
  #consumed = 0;
  #responsesTaken = 0;
  #ended = false;
  #closed = false;
  #changed: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk]);
      this.#notify();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#ended = true;
      this.#closed = true;
      this.#notify();
    });
  }

  /** Connects to `port` on 127.0.0.1. */
  static async open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    const socket = connect(port, host);
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  /** True once the server ended its side (FIN) or the socket closed. */
  get ended(): boolean {
    return this.#ended;
  }

  /** True once the socket closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Everything received so far. */
  get received(): Buffer {
    return this.#received;
  }

  /** Bytes received after the last response taken. */
  get unreadBytes(): Buffer {
    return this.#received.subarray(this.#consumed);
  }

  /** Writes `data`; resolves once it is handed to the kernel. */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Half-closes the client side (FIN). */
  end(): void {
    this.socket.end();
  }

  /** Closes the socket now. */
  destroy(): void {
    this.socket.destroy();
  }

  /**
   * The next response, waiting at most `timeoutMs`. `head: true` reads it as the answer to a
   * HEAD request. Rejects when the connection closes first or the deadline passes.
   */
  async response(options: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    const deadline = Date.now() + (options.timeoutMs ?? 5_000);
    for (;;) {
      const parsed = parseOneResponse(this.#received, this.#consumed, { ended: this.#ended, answersHead: () => options.head === true }, this.#responsesTaken);
      if (parsed !== undefined) {
        this.#consumed = parsed.next;
        this.#responsesTaken++;
        return parsed.response;
      }
      if (this.#closed) throw new Error(`connection closed before a complete response; unread: ${JSON.stringify(this.unreadBytes.toString('latin1'))}`);
      await this.#change(deadline, 'a response');
    }
  }

  /** Waits until the socket is closed (by either side), at most `timeoutMs`. */
  async waitClosed(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) await this.#change(deadline, 'the connection to close');
  }

  /** Waits for a byte, an end or a close, or until `deadline` (then rejects). */
  #change(deadline: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#changed = undefined;
        reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.#received.toString('latin1'))}`));
      }, Math.max(0, deadline - Date.now()));
      this.#changed = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #notify(): void {
    const changed = this.#changed;
    this.#changed = undefined;
    changed?.();
  }
}
