/**
 * `SessionTicketKeys`: the keys that encrypt TLS session tickets, shared by every listener (and
 * every worker thread) that should resume each other's sessions. A key is 48 bytes, laid out as
 * Node's `ticketKeys`: 16 bytes key name, 16 bytes HMAC-SHA256 key, 16 bytes AES-128-CBC key.
 *
 * Three keys are held at once. `current` encrypts every new ticket. `previous` (the key before
 * the last rotation) still decrypts, so a ticket stays usable for one more rotation interval;
 * such a ticket is renewed under `current`. `next` (the key the next rotation promotes) already
 * decrypts, so when one worker thread rotates before another, a ticket the first one issued
 * under its new key is still accepted by the second. A ticket under any other key (older than
 * two intervals, or from another key set) is ignored: the client gets a full handshake.
 *
 * Node accepts only one ticket key through its documented `ticketKeys`/`setTicketKeys`. Holding
 * several needs the per-ticket key callback that Node's own tests use
 * (`enableTicketKeyCallback` + `onticketkeycallback` on the native secure context); `attach`
 * installs it when this Node has it (checked, not assumed) and reports false otherwise, in which
 * case the listener keeps the single key it was created with.
 *
 * Keys never reach logs: `inspect`/`JSON.stringify` of an instance show no key bytes.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { inspect } from 'node:util';
import type { Server as TlsServer } from 'node:tls';
import { Fault } from '../../core/fault.ts';

/** Length of one ticket key in bytes (name 16 + HMAC 16 + AES 16), as Node's `ticketKeys`. */
export const TICKET_KEY_BYTES = 48;

/** Defaults of the ticket key life cycle. */
export const SESSION_TICKET_DEFAULTS = {
  /** How often keys rotate (1 h); a ticket is accepted for at most two intervals (and `sessionTimeout`). */
  rotationIntervalMs: 60 * 60_000,
} as const;

/** One generation of keys, plain data (it crosses `workerData` and `postMessage` unchanged). */
export interface TicketKeySet {
  /** Encrypts new tickets; decrypts. 48 bytes. */
  current: Uint8Array;
  /** The previous `current`: decrypts only (the ticket is then renewed). Absent before the first rotation. */
  previous?: Uint8Array;
  /** The next `current`: decrypts only, so threads that rotate a moment apart still agree. */
  next: Uint8Array;
}

/** What Node's ticket key callback returns: [status, hmacKey, aesKey, keyName, iv]. */
type TicketKeyAnswer = [number, Buffer, Buffer, Buffer, Buffer];

interface SplitKey {
  name: Buffer;
  hmac: Buffer;
  aes: Buffer;
}

interface NativeSecureContext {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => TicketKeyAnswer;
}

/** OpenSSL's answers to a ticket lookup: 0 unknown key (full handshake), 1 accepted, 2 accepted and renew. */
const TICKET_UNKNOWN = 0;
const TICKET_ACCEPTED = 1;
const TICKET_ACCEPTED_RENEW = 2;
const TICKET_IV_BYTES = 16;
/** Placeholder keys returned with "unknown" (never used to decrypt anything). */
const UNKNOWN_KEY: SplitKey = { name: Buffer.alloc(16), hmac: Buffer.alloc(16), aes: Buffer.alloc(16) };

/** The rotating ticket keys of one process (or a copy of the main thread's, inside a worker). */
export class SessionTicketKeys {
  #current: SplitKey;
  #previous: SplitKey | undefined;
  #next: SplitKey;
  #rotationTimer: NodeJS.Timeout | undefined;
  /** Native contexts already answered by this instance, so `attach` per handshake costs a lookup. */
  readonly #attached = new WeakSet<object>();

  /**
   * From a key set (e.g. the main thread's, in a worker), or from one 48-byte key used as
   * `current` (a random `next` is made). Throws a `Fault` when a key is not 48 bytes.
   */
  constructor(keys: TicketKeySet | Uint8Array) {
    const set: TicketKeySet = keys instanceof Uint8Array ? { current: keys, next: randomBytes(TICKET_KEY_BYTES) } : keys;
    this.#current = splitKey(set.current, 'current');
    this.#previous = set.previous === undefined ? undefined : splitKey(set.previous, 'previous');
    this.#next = splitKey(set.next, 'next');
  }

  /** A fresh random key set (the default: random per process). */
  static generate(): SessionTicketKeys {
    return new SessionTicketKeys({ current: randomBytes(TICKET_KEY_BYTES), next: randomBytes(TICKET_KEY_BYTES) });
  }

  /** The current key as 48 bytes, for Node's static `ticketKeys` option (used until `attach`). */
  get currentKey(): Buffer {
    return joinKey(this.#current);
  }

  /** A copy of the keys as plain data, to hand to worker threads. Contains secrets: never log it. */
  snapshot(): TicketKeySet {
    return {
      current: joinKey(this.#current),
      ...(this.#previous === undefined ? {} : { previous: joinKey(this.#previous) }),
      next: joinKey(this.#next),
    };
  }

  /** Moves one generation on: previous ← current ← next ← new random key. Returns the new set. */
  rotate(): TicketKeySet {
    this.#previous = this.#current;
    this.#current = this.#next;
    this.#next = splitKey(randomBytes(TICKET_KEY_BYTES), 'next');
    return this.snapshot();
  }

  /** Takes over a key set made elsewhere (a worker applying the main thread's rotation). Validates all keys first. */
  replace(keys: TicketKeySet): void {
    const current = splitKey(keys.current, 'current');
    const previous = keys.previous === undefined ? undefined : splitKey(keys.previous, 'previous');
    const next = splitKey(keys.next, 'next');
    this.#current = current;
    this.#previous = previous;
    this.#next = next;
  }

  /**
   * Rotates every `intervalMs` (default {@link SESSION_TICKET_DEFAULTS.rotationIntervalMs}) and
   * hands each new set to `onRotate` (e.g. to post it to worker threads). The timer does not keep
   * the process alive. Calling it again restarts the timer.
   */
  startRotation(intervalMs: number = SESSION_TICKET_DEFAULTS.rotationIntervalMs, onRotate?: (keys: TicketKeySet) => void): void {
    if (!(intervalMs > 0)) throw new Fault('err:frontline:config:invalid_configuration', { internalMessage: `ticket key rotation interval must be > 0 ms, got ${intervalMs}` });
    this.stopRotation();
    this.#rotationTimer = setInterval(() => {
      const keys = this.rotate();
      onRotate?.(keys);
    }, intervalMs);
    this.#rotationTimer.unref();
  }

  /** Stops the rotation timer (idempotent). */
  stopRotation(): void {
    if (this.#rotationTimer !== undefined) clearInterval(this.#rotationTimer);
    this.#rotationTimer = undefined;
  }

  /**
   * Makes `server` encrypt and decrypt tickets with these keys, following every later rotation.
   * Call once after creating a `tls`/`https`/`http2` secure server. Returns false when this Node
   * lacks the ticket key callback (the server then keeps its static `ticketKeys`).
   */
  attach(server: TlsServer): boolean {
    return this.attachContext((server as unknown as { _sharedCreds?: { context?: unknown } })._sharedCreds?.context);
  }

  /**
   * Same as `attach`, from a server-side `TLSSocket` during its handshake (the SNI callback
   * receives it as `this`): its secure context is the server's, so the callback is installed on
   * the server before the session ticket is read. Once per server; later calls are a lookup.
   */
  attachSocket(socket: unknown): boolean {
    const options = (socket as { _tlsOptions?: { secureContext?: { context?: unknown } } } | undefined)?._tlsOptions;
    return this.attachContext(options?.secureContext?.context);
  }

  /** Installs the ticket callback on a native secure context; false when impossible. */
  attachContext(context: unknown): boolean {
    if (typeof context !== 'object' || context === null) return false;
    if (this.#attached.has(context)) return true;
    const native = context as NativeSecureContext;
    if (typeof native.enableTicketKeyCallback !== 'function') return false;
    native.onticketkeycallback = this.#answer;
    native.enableTicketKeyCallback();
    this.#attached.add(context);
    return true;
  }

  /**
   * Node's per-ticket callback: encrypting → the current key with a fresh IV; decrypting → the
   * key whose name the ticket carries, or "unknown". Per handshake; must never throw (it runs
   * inside OpenSSL's handshake).
   *
   * Every accepted ticket is answered "accepted, renew", under whichever key: OpenSSL then sends
   * the resumed connection a new ticket under `current`. TLS 1.3 needs it: clients use each
   * ticket once (RFC 8446 §C.4, and OpenSSL clients such as wrk and curl resume with the newest
   * one), and after a TLS 1.3 resumption answered plain "accepted" OpenSSL sends no ticket, so
   * such a client had none left and every other connection was a full handshake (measured with
   * wrk: half the connections resumed, against every one of them with nginx). In TLS 1.2 the
   * renewal costs one NewSessionTicket per resumed handshake.
   */
  readonly #answer = (name: Buffer, iv: Buffer, encrypt: boolean): TicketKeyAnswer => {
    if (encrypt) {
      const key = this.#current;
      return [TICKET_ACCEPTED, key.hmac, key.aes, key.name, nextTicketIv()];
    }
    // `previous` still decrypts for one interval, `next` already does (a thread that rotated first).
    const key = name.equals(this.#current.name) ? this.#current
      : this.#previous !== undefined && name.equals(this.#previous.name) ? this.#previous
        : name.equals(this.#next.name) ? this.#next : undefined;
    if (key !== undefined) return [TICKET_ACCEPTED_RENEW, key.hmac, key.aes, key.name, iv];
    // Node reads the key slots even for "unknown": hand it throwaway keys rather than none.
    return [TICKET_UNKNOWN, UNKNOWN_KEY.hmac, UNKNOWN_KEY.aes, UNKNOWN_KEY.name, iv];
  };

  /** Keys stay out of logs and debug output. */
  [inspect.custom](): string {
    return 'SessionTicketKeys { [redacted] }';
  }

  /** Keys stay out of JSON logs. */
  toJSON(): string {
    return '[redacted]';
  }
}

// Ticket IVs come from a pool refilled by the CSPRNG 256 IVs at a time: OpenSSL asks for one per
// ticket issued (two per TLS 1.3 handshake), and a native RNG call each time showed in profiles.
// Node copies the IV before the callback returns, so the pool's bytes are never reused.
const IV_POOL_BYTES = 256 * TICKET_IV_BYTES;
const ivPool = Buffer.allocUnsafe(IV_POOL_BYTES);
let ivPoolOffset = IV_POOL_BYTES;

/** A fresh random 16-byte IV for one ticket. Per ticket issued. */
function nextTicketIv(): Buffer {
  if (ivPoolOffset === IV_POOL_BYTES) {
    randomFillSync(ivPool);
    ivPoolOffset = 0;
  }
  const iv = ivPool.subarray(ivPoolOffset, ivPoolOffset + TICKET_IV_BYTES);
  ivPoolOffset += TICKET_IV_BYTES;
  return iv;
}

function splitKey(key: Uint8Array, label: string): SplitKey {
  if (!(key instanceof Uint8Array) || key.byteLength !== TICKET_KEY_BYTES) {
    throw new Fault('err:frontline:config:invalid_configuration', { internalMessage: `ticket key "${label}" must be ${TICKET_KEY_BYTES} bytes` });
  }
  // Copies: the caller's buffer (or a structured-cloned view) may be reused or shared.
  const bytes = Buffer.from(key);
  return { name: bytes.subarray(0, 16), hmac: bytes.subarray(16, 32), aes: bytes.subarray(32, 48) };
}

function joinKey(key: SplitKey): Buffer {
  return Buffer.concat([key.name, key.hmac, key.aes]);
}
