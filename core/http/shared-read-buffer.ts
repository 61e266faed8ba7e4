/**
 * Reads of an accepted socket (plain TCP, or TLS over TCP) into one buffer shared by every such
 * socket of the thread, through the same mechanism as `net.connect({ onread })`: the bytes are
 * handed to a callback straight from that buffer, without the `Readable` stream (no buffer
 * allocated per read, no `push`, no `'data'` event, no `maybeReadMore` tick). A `net.Server` or
 * `tls.Server` offers no `onread` for the sockets it accepts, so this switches an accepted socket
 * over after the fact: it sets the socket's `onread` fields (found by their symbol descriptions on
 * the instance, checked, never assumed) and tells the handle to read into the buffer
 * (`useUserBuffer`, the stream method `onread` uses; on TLS it receives the decrypted bytes).
 * Where this Node lacks any of it, `readIntoSharedBuffer` returns false and the caller keeps its
 * `'data'` listener.
 *
 * The callback's bytes are valid only until it returns, and less than that: the next read of any
 * socket overwrites them, and a read can arrive before the callback returns when it writes (an
 * empty write to a TLS socket makes Node read it at once). A caller therefore copies what it
 * keeps before it does anything that writes. Reads pause and resume with `socket.pause()` and
 * `socket.resume()` as usual, and the end of the stream still emits `'end'`.
 *
 * Once the handle reads into the buffer it cannot go back. When the socket is to be read by
 * someone else (a hand-off to node:http), `pushReadsToStream` makes every later read a copy
 * pushed into the socket's `Readable`, so `'data'` listeners, `unshift` and node:http see the
 * socket exactly as before.
 */
import { Socket } from 'node:net';

/** The shared buffer's size: the most one read delivers (Node's own read size is 64 KiB). */
const SHARED_READ_BUFFER_BYTES = 64 * 1024;

const SHARED_READ_BUFFER = Buffer.allocUnsafe(SHARED_READ_BUFFER_BYTES);
const SHARED_ARRAY_BUFFER = SHARED_READ_BUFFER.buffer;

/** The socket's own `onread` fields: the buffer, the callback, and the buffer factory (kept null). */
interface OnreadSymbols {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

/** What a socket exposes of its handle here. */
interface ReadHandle {
  useUserBuffer?: (buffer: Uint8Array) => void;
}

type SocketFields = Record<symbol, unknown> & { _handle?: ReadHandle | null };

const ONREAD_SYMBOLS = findOnreadSymbols();

/** The `onread` symbols of this Node's `net.Socket`, from a socket made for the purpose; undefined when absent. */
function findOnreadSymbols(): OnreadSymbols | undefined {
  const probe = new Socket();
  const byName = new Map<string, symbol>();
  for (const symbol of Object.getOwnPropertySymbols(probe)) {
    if (symbol.description !== undefined) byName.set(symbol.description, symbol);
  }
  probe.destroy();
  const buffer = byName.get('kBuffer');
  const callback = byName.get('kBufferCb');
  const generator = byName.get('kBufferGen');
  if (buffer === undefined || callback === undefined || generator === undefined) return undefined;
  return { buffer, callback, generator };
}

/** True when this Node lets an accepted socket read into the shared buffer. */
export function sharedReadsSupported(): boolean {
  return ONREAD_SYMBOLS !== undefined;
}

/**
 * Makes `socket`'s reads arrive as `onBytes(length, buffer)` (the first `length` bytes of the
 * shared buffer, valid only during the call; Node's own `onread` argument order, so the callback
 * is installed as it is) instead of `'data'` events. Returns false and
 * changes nothing when it cannot: this Node lacks the mechanism, the socket has no TCP or TLS
 * handle, or bytes were already read into its stream. Once per socket, before any `'data'`
 * listener is added.
 */
export function readIntoSharedBuffer(socket: Socket, onBytes: (length: number, buffer: Buffer) => void): boolean {
  const symbols = ONREAD_SYMBOLS;
  if (symbols === undefined) return false;
  const fields = socket as unknown as SocketFields;
  const handle = fields._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  // A socket on TCP or on TLS over TCP (its handle is then Node's TLSWrap), still in its initial
  // state: nothing buffered in the stream and no reader of its own.
  const kind = handle.constructor.name;
  if (kind !== 'TCP' && kind !== 'TLSWrap') return false;
  if (socket.readableLength !== 0 || fields[symbols.buffer] !== null || fields[symbols.generator] !== null) return false;
  fields[symbols.callback] = onBytes;
  fields[symbols.buffer] = SHARED_READ_BUFFER;
  handle.useUserBuffer(SHARED_READ_BUFFER);
  return true;
}

/**
 * After `readIntoSharedBuffer`: every later read is copied and pushed into the socket's
 * `Readable`, as a socket's reads are by default (`'data'`, `pause` by backpressure, `unshift`).
 */
export function pushReadsToStream(socket: Socket): void {
  const symbols = ONREAD_SYMBOLS!;
  (socket as unknown as SocketFields)[symbols.callback] = (length: number, buffer: Buffer): boolean => socket.push(Buffer.from(buffer.subarray(0, length)));
}

/** True when `bytes` is a view of the shared read buffer (its contents change with the next read). */
export function isSharedReadBytes(bytes: Uint8Array): boolean {
  return bytes.buffer === SHARED_ARRAY_BUFFER;
}

/** `bytes` itself, or a copy of it when it is a view of the shared read buffer: safe to keep. */
export function keepable<T extends Buffer | undefined>(bytes: T): T {
  return bytes !== undefined && isSharedReadBytes(bytes) ? Buffer.from(bytes) as T : bytes;
}
