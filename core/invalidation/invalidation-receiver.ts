/**
 * `InvalidationReceiver`: the part every bus shares. It stamps this node's invalidations with
 * its hybrid logical clock, and decides for each delivered one whether to apply it (own
 * messages, duplicates and safely-older messages are skipped; see `applied-versions.ts`),
 * then runs the subscribed handlers. Transports only move bytes and call {@link receive}.
 */
import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';
import { Fault } from '../fault.ts';
import { AppliedVersions } from './applied-versions.ts';
import type { AppliedVersionsOptions } from './applied-versions.ts';
import { HybridLogicalClock } from './hybrid-logical-clock.ts';
import { ALL_CACHES } from './interface.ts';
import type {
  Invalidation,
  InvalidationBusError,
  InvalidationHandler,
  InvalidationIgnoreReason,
  InvalidationRequest,
} from './interface.ts';

/** Callbacks for metrics and logs; each is optional and must not throw. */
export interface InvalidationReceiverObserver {
  /** An invalidation was applied; `latencyMs` is sender time to apply for remote ones, else 0. */
  applied?(invalidation: Invalidation, origin: 'local' | 'remote', latencyMs: number): void;
  /** A delivered invalidation was skipped. `invalidation` is undefined for malformed bytes. */
  ignored?(reason: InvalidationIgnoreReason, invalidation: Invalidation | undefined): void;
  /** A handler failed, or the transport reported a failure through {@link InvalidationReceiver.recordError}. */
  failed?(error: Fault, atMs: number): void;
}

/** Options for {@link InvalidationReceiver}. */
export interface InvalidationReceiverOptions extends AppliedVersionsOptions {
  nodeId: string;
  clock?: Clock;
  /** See `HybridLogicalClockOptions.maxForwardDriftMs`. */
  maxForwardDriftMs?: number;
  observer?: InvalidationReceiverObserver;
}

/** Counters of a receiver, for `InvalidationBus.status()`. */
export interface InvalidationReceiverCounts {
  publishedCount: number;
  receivedCount: number;
  appliedCount: number;
  ignoredCount: number;
  lastError: InvalidationBusError | undefined;
}

/** One per bus. Delivery order is the order of {@link receive} calls. */
export class InvalidationReceiver {
  /** This node's id. */
  readonly nodeId: string;
  /** The clock that stamps this node's versions. */
  readonly hybridClock: HybridLogicalClock;
  readonly #clock: Clock;
  readonly #applied: AppliedVersions;
  readonly #observer: InvalidationReceiverObserver;
  #handlers: InvalidationHandler[] = [];
  readonly #counts: InvalidationReceiverCounts = {
    publishedCount: 0,
    receivedCount: 0,
    appliedCount: 0,
    ignoredCount: 0,
    lastError: undefined,
  };

  constructor(options: InvalidationReceiverOptions) {
    this.nodeId = options.nodeId;
    this.#clock = options.clock ?? systemClock;
    this.hybridClock = new HybridLogicalClock({ clock: this.#clock, maxForwardDriftMs: options.maxForwardDriftMs });
    this.#applied = new AppliedVersions(options);
    this.#observer = options.observer ?? {};
  }

  /** Stamps a request with a new version, this node as origin and the current time. Per publish. */
  stamp(request: InvalidationRequest): Invalidation {
    this.#counts.publishedCount += 1;
    const clearAll = request.clearAll === true;
    return {
      cache: request.cache,
      keys: clearAll ? [] : [...(request.keys ?? [])],
      clearAll,
      version: this.hybridClock.tick(),
      originNode: this.nodeId,
      sentAtMs: this.#clock.nowMs(),
    };
  }

  /**
   * Applies an invalidation that starts on this node (a publish, a relay, a resync) under the
   * ordering rules, without the own-origin check. Resolves when the handlers have run.
   */
  async applyLocal(invalidation: Invalidation): Promise<boolean> {
    if (invalidation.originNode !== this.nodeId && !this.hybridClock.observe(invalidation.version)) {
      // A relayed version from a clock far in the future: apply, never record (see receive).
      await this.#run(invalidation, 'local');
      return true;
    }
    return this.#admitAndRun(invalidation, 'local');
  }

  /**
   * Applies an invalidation received from the network. Skips (and reports) this node's own
   * messages, duplicates and safely-older ones. Resolves to true when handlers ran.
   * Per received message.
   */
  async receive(invalidation: Invalidation): Promise<boolean> {
    this.#counts.receivedCount += 1;
    if (invalidation.originNode === this.nodeId) {
      this.#ignore('own', invalidation);
      return false;
    }
    // Merging the remote version makes this node's later stamps greater: a write made after
    // seeing this invalidation orders after it on every node, whatever the clocks say.
    if (!this.hybridClock.observe(invalidation.version)) {
      // Stamped too far in the future (a broken clock): still drop the entries, which is always
      // safe, but never record the version, or every later invalidation of these keys (or of
      // the whole cache, for a clear) would look older and be skipped: revoked keys stay cached.
      await this.#run(invalidation, 'remote');
      return true;
    }
    return this.#admitAndRun(invalidation, 'remote');
  }

  /** Counts bytes from a peer that did not decode as an invalidation. */
  receiveMalformed(error: Fault): void {
    this.#counts.receivedCount += 1;
    this.#ignore('malformed', undefined);
    this.recordError(error);
  }

  /** Remembers a transport failure as the last error (and tells the observer). */
  recordError(error: Fault): void {
    const atMs = this.#clock.nowMs();
    this.#counts.lastError = { message: `${error.code}: ${error.message}`, atMs };
    this.#observer.failed?.(error, atMs);
  }

  /**
   * Runs the handlers with a local "drop every cache" invalidation ({@link ALL_CACHES}), for
   * a node that may have missed messages (it was cut off from every peer). Not sent to peers.
   */
  async resync(): Promise<void> {
    const invalidation = this.stamp({ cache: ALL_CACHES, clearAll: true });
    // A resync is neither a publish nor an applied invalidation: keep the counters to those.
    this.#counts.publishedCount -= 1;
    this.#counts.appliedCount -= 1;
    await this.#run(invalidation, 'local');
  }

  /** Registers a handler; returns its remover. */
  subscribe(handler: InvalidationHandler): () => void {
    this.#handlers = [...this.#handlers, handler];
    return () => {
      this.#handlers = this.#handlers.filter((candidate) => candidate !== handler);
    };
  }

  /** A copy of the counters. */
  counts(): InvalidationReceiverCounts {
    return { ...this.#counts };
  }

  #ignore(reason: InvalidationIgnoreReason, invalidation: Invalidation | undefined): void {
    this.#counts.ignoredCount += 1;
    this.#observer.ignored?.(reason, invalidation);
  }

  async #admitAndRun(invalidation: Invalidation, origin: 'local' | 'remote'): Promise<boolean> {
    const verdict = this.#applied.admit(invalidation);
    if (!verdict.apply) {
      this.#ignore(verdict.reason, invalidation);
      return false;
    }
    await this.#run(verdict.invalidation, origin);
    return true;
  }

  async #run(invalidation: Invalidation, origin: 'local' | 'remote'): Promise<void> {
    this.#counts.appliedCount += 1;
    // The handler list is replaced (never mutated) on subscribe, so this loop sees one snapshot.
    const handlers = this.#handlers;
    let pending: Promise<void>[] | undefined;
    for (const handler of handlers) {
      try {
        const result = handler(invalidation);
        if (result instanceof Promise) (pending ??= []).push(result.catch((err: unknown) => this.#handlerFailed(err)));
      } catch (err) {
        this.#handlerFailed(err);
      }
    }
    if (pending !== undefined) await Promise.all(pending);
    const latencyMs = origin === 'remote' ? Math.max(0, this.#clock.nowMs() - invalidation.sentAtMs) : 0;
    this.#observer.applied?.(invalidation, origin, latencyMs);
  }

  #handlerFailed(err: unknown): void {
    this.recordError(Fault.from(err));
  }
}
