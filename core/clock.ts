/**
 * `Clock`: the injected source of time. Production code never calls `Date.now()` directly,
 * so tests can move time forward without sleeping.
 */
export interface Clock {
  /** Wall-clock time in Unix milliseconds. */
  nowMs(): number;
}

/** The real clock: `Date.now()`. */
export const systemClock: Clock = { nowMs: () => Date.now() };

/**
 * A clock that only moves when told to. Starts at `startMs` (default 1_700_000_000_000,
 * a fixed point so test output is stable).
 */
export class TestClock implements Clock {
  #nowMs: number;

  constructor(startMs = 1_700_000_000_000) {
    this.#nowMs = startMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  /** Moves time forward by `durationMs` (must be ≥ 0) and returns the new time. */
  advance(durationMs: number): number {
    if (!(durationMs >= 0)) throw new RangeError(`TestClock.advance: durationMs must be >= 0, got ${durationMs}`);
    this.#nowMs += durationMs;
    return this.#nowMs;
  }

  /** Sets the time; it may not go backwards. */
  set(nowMs: number): void {
    if (nowMs < this.#nowMs) throw new RangeError(`TestClock.set: time may not go backwards (${nowMs} < ${this.#nowMs})`);
    this.#nowMs = nowMs;
  }
}
