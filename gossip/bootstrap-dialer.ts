/**
 * `BootstrapDialer`: keeps this node connected to the configured peers (`gossip.peers`, plain
 * `host:port`). Each address is dialed until a connection stands; the peer id is learnt from
 * the handshake, so operators never copy peer ids around. When the last connection to that
 * peer closes (it restarted, the network split) the address is dialed again with exponential
 * backoff and jitter, for as long as the dialer runs. An address that turns out to be this
 * node itself (one shared peer list for the whole cluster) is recognised and left alone.
 */
import type { Libp2p, PeerId } from '@libp2p/interface';
import { Fault } from '../core/fault.ts';
import type { HostPort } from './host-port.ts';

/** Default of {@link BootstrapDialerOptions.dialTimeoutMs}. */
export const DEFAULT_DIAL_TIMEOUT_MS = 5000;
/** Default of {@link BootstrapDialerOptions.redialMinDelayMs}. */
export const DEFAULT_REDIAL_MIN_DELAY_MS = 250;
/** Default of {@link BootstrapDialerOptions.redialMaxDelayMs}. */
export const DEFAULT_REDIAL_MAX_DELAY_MS = 5000;

/** Options for {@link BootstrapDialer}. */
export interface BootstrapDialerOptions {
  libp2p: Libp2p;
  peers: readonly HostPort[];
  /** One dial attempt's limit. Default 5 s. */
  dialTimeoutMs?: number;
  /** First retry delay after a failed dial or a lost connection; doubles per failure. Default 250 ms. */
  redialMinDelayMs?: number;
  /** Retry delay ceiling. Default 5 s. */
  redialMaxDelayMs?: number;
  /** Told about each failed dial (the bus records it as its last error and logs it). */
  onDialError?: (target: string, error: Fault) => void;
  /** Told when a connection to a configured address stands, with the peer id learnt. */
  onConnected?: (target: string, peerId: PeerId) => void;
}

/** What the dialer knows about one configured address. */
export interface BootstrapTargetStatus {
  readonly address: string;
  /** Peer id learnt on the last successful dial. */
  readonly peerId: string | undefined;
  readonly connected: boolean;
  /** The address is this node's own. */
  readonly self: boolean;
  readonly failedAttempts: number;
}

interface Target {
  readonly address: string;
  readonly hostPort: HostPort;
  peerId: PeerId | undefined;
  connected: boolean;
  self: boolean;
  failedAttempts: number;
  timer: NodeJS.Timeout | undefined;
  dialing: AbortController | undefined;
}

/** Dials and re-dials the configured peers; see the file comment. */
export class BootstrapDialer {
  readonly #libp2p: Libp2p;
  readonly #targets: Target[];
  readonly #dialTimeoutMs: number;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #onDialError: BootstrapDialerOptions['onDialError'];
  readonly #onConnected: BootstrapDialerOptions['onConnected'];
  #running = false;

  constructor(options: BootstrapDialerOptions) {
    this.#libp2p = options.libp2p;
    this.#dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.#minDelayMs = options.redialMinDelayMs ?? DEFAULT_REDIAL_MIN_DELAY_MS;
    this.#maxDelayMs = options.redialMaxDelayMs ?? DEFAULT_REDIAL_MAX_DELAY_MS;
    this.#onDialError = options.onDialError;
    this.#onConnected = options.onConnected;
    this.#targets = options.peers.map((hostPort) => ({
      address: `${hostPort.host}:${hostPort.port}`,
      hostPort,
      peerId: undefined,
      connected: false,
      self: false,
      failedAttempts: 0,
      timer: undefined,
      dialing: undefined,
    }));
  }

  /** Starts dialing every address now. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#libp2p.addEventListener('peer:disconnect', this.#onPeerDisconnect);
    for (const target of this.#targets) void this.#dial(target);
  }

  /** Stops: clears timers and aborts dials in flight. Idempotent. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#libp2p.removeEventListener('peer:disconnect', this.#onPeerDisconnect);
    for (const target of this.#targets) {
      clearTimeout(target.timer);
      target.timer = undefined;
      target.dialing?.abort();
    }
  }

  /** Marks addresses that point at this node, so they are never dialed (one list for every node). */
  markSelf(isSelf: (hostPort: HostPort) => boolean): void {
    for (const target of this.#targets) if (isSelf(target.hostPort)) target.self = true;
  }

  /** The addresses that are not this node's own. */
  get expectedPeerCount(): number {
    return this.#targets.filter((target) => !target.self).length;
  }

  /** A snapshot per configured address. */
  status(): BootstrapTargetStatus[] {
    return this.#targets.map((target) => ({
      address: target.address,
      peerId: target.peerId?.toString(),
      connected: target.connected,
      self: target.self,
      failedAttempts: target.failedAttempts,
    }));
  }

  readonly #onPeerDisconnect = (event: CustomEvent<PeerId>): void => {
    for (const target of this.#targets) {
      if (target.peerId === undefined || !target.peerId.equals(event.detail)) continue;
      target.connected = false;
      target.failedAttempts = 0;
      this.#schedule(target);
    }
  };

  async #dial(target: Target): Promise<void> {
    target.timer = undefined;
    if (!this.#running || target.self || target.dialing !== undefined) return;
    if (target.peerId !== undefined && this.#libp2p.getConnections(target.peerId).length > 0) {
      target.connected = true;
      return;
    }
    const controller = new AbortController();
    target.dialing = controller;
    const timer = setTimeout(() => controller.abort(new DOMException(`no connection within ${this.#dialTimeoutMs} ms`, 'TimeoutError')), this.#dialTimeoutMs);
    let retry = false;
    try {
      // Raced against our own abort: libp2p can leave a dial to an address whose previous dial
      // timed out mid-handshake (a peer with another cluster key) pending forever.
      const connection = await raceAbort(this.#libp2p.dial(target.hostPort.multiaddr, { signal: controller.signal }), controller.signal);
      target.peerId = connection.remotePeer;
      target.failedAttempts = 0;
      target.connected = true;
      this.#onConnected?.(target.address, connection.remotePeer);
      // The connection may have closed between the dial and now; the disconnect event was then
      // for a peer id we did not know yet.
      if (this.#libp2p.getConnections(connection.remotePeer).length === 0) {
        target.connected = false;
        retry = true;
      }
    } catch (err) {
      if (!this.#running) return;
      if (isSelfDial(err)) {
        target.self = true;
        return;
      }
      target.failedAttempts += 1;
      target.connected = false;
      this.#onDialError?.(target.address, dialFault(target.address, err));
      retry = true;
    } finally {
      clearTimeout(timer);
      target.dialing = undefined;
    }
    if (retry) this.#schedule(target);
  }

  #schedule(target: Target): void {
    if (!this.#running || target.self || target.timer !== undefined || target.dialing !== undefined) return;
    const exponent = Math.min(Math.max(target.failedAttempts - 1, 0), 16);
    const baseMs = Math.min(this.#maxDelayMs, this.#minDelayMs * 2 ** exponent);
    // Up to 20% jitter so restarted nodes do not all redial in the same instant.
    const delayMs = Math.round(baseMs * (1 + Math.random() * 0.2));
    target.timer = setTimeout(() => void this.#dial(target), delayMs);
    target.timer.unref();
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function isSelfDial(err: unknown): boolean {
  return /dial self|dialing self|self-dial/i.test(err instanceof Error ? `${err.name} ${err.message}` : String(err));
}

function dialFault(address: string, err: unknown): Fault {
  const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new Fault('err:keygate:gossip:peer_unreachable', {
    internalMessage: `dialing gossip peer ${address} failed: ${reason}`,
    source: 'upstream',
    retryable: true,
    cause: err,
  });
}
