/**
 * `HybridLogicalClock`: versions for invalidations that follow wall-clock time when clocks
 * agree and causality when they do not. A version is one unsigned 64-bit integer (a `bigint`):
 * physical Unix milliseconds in the upper 48 bits, a logical counter in the lower 16. Versions
 * stamped by one clock strictly increase, and a version stamped after observing a remote one
 * is greater than it, even when the local wall clock is behind.
 */
import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';

/** Bits of the logical counter in a version. */
export const HLC_LOGICAL_BITS = 16n;
const LOGICAL_MAX = (1 << Number(HLC_LOGICAL_BITS)) - 1;
/** The largest physical time a version can hold (48 bits of milliseconds, year 10889). */
export const HLC_MAX_PHYSICAL_MS = 2 ** 48 - 1;

/** Default for {@link HybridLogicalClockOptions.maxForwardDriftMs}: one minute. */
export const DEFAULT_MAX_FORWARD_DRIFT_MS = 60_000;

/** Options for {@link HybridLogicalClock}. */
export interface HybridLogicalClockOptions {
  clock?: Clock;
  /**
   * A remote version whose physical part is further ahead of our wall clock than this is not
   * adopted (a node with a broken clock must not drag the cluster into the future).
   * Default {@link DEFAULT_MAX_FORWARD_DRIFT_MS}.
   */
  maxForwardDriftMs?: number;
}

/** A hybrid logical clock; one per node. Not safe to share between processes (state is local). */
export class HybridLogicalClock {
  readonly #clock: Clock;
  readonly #maxForwardDriftMs: number;
  #physicalMs = 0;
  #logical = 0;

  constructor(options: HybridLogicalClockOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#maxForwardDriftMs = options.maxForwardDriftMs ?? DEFAULT_MAX_FORWARD_DRIFT_MS;
  }

  /** A new version, greater than every version this clock stamped or observed. Per publish. */
  tick(): bigint {
    const wallMs = Math.min(Math.floor(this.#clock.nowMs()), HLC_MAX_PHYSICAL_MS);
    if (wallMs > this.#physicalMs) {
      this.#physicalMs = wallMs;
      this.#logical = 0;
    } else {
      this.#bumpLogical();
    }
    return hlcVersion(this.#physicalMs, this.#logical);
  }

  /**
   * Merges a version received from a peer, so later ticks are greater than it. Returns false
   * (and changes nothing) when the remote physical time is more than `maxForwardDriftMs` ahead
   * of our wall clock. Per received message.
   */
  observe(remoteVersion: bigint): boolean {
    const remotePhysicalMs = hlcPhysicalMs(remoteVersion);
    const remoteLogical = hlcLogical(remoteVersion);
    const wallMs = Math.min(Math.floor(this.#clock.nowMs()), HLC_MAX_PHYSICAL_MS);
    if (remotePhysicalMs - wallMs > this.#maxForwardDriftMs) return false;
    if (remotePhysicalMs > this.#physicalMs) {
      this.#physicalMs = remotePhysicalMs;
      this.#logical = remoteLogical;
    } else if (remotePhysicalMs === this.#physicalMs && remoteLogical > this.#logical) {
      this.#logical = remoteLogical;
    }
    // The next tick bumps past the merged state, so nothing more is needed here.
    return true;
  }

  /** The greatest version stamped or observed so far (0n before the first). */
  peek(): bigint {
    return hlcVersion(this.#physicalMs, this.#logical);
  }

  #bumpLogical(): void {
    if (this.#logical < LOGICAL_MAX) {
      this.#logical += 1;
      return;
    }
    // 65,536 versions in one millisecond: borrow the next millisecond rather than wrap,
    // so versions stay strictly increasing.
    this.#physicalMs += 1;
    this.#logical = 0;
  }
}

/** Packs a physical time (Unix ms) and a logical counter into a version. */
export function hlcVersion(physicalMs: number, logical: number): bigint {
  return (BigInt(physicalMs) << HLC_LOGICAL_BITS) | BigInt(logical);
}

/** The physical part of a version, Unix ms. */
export function hlcPhysicalMs(version: bigint): number {
  return Number(version >> HLC_LOGICAL_BITS);
}

/** The logical part of a version. */
export function hlcLogical(version: bigint): number {
  return Number(version & BigInt(LOGICAL_MAX));
}
