/**
 * `FuzzTarget`: the contract every `fuzz/*.fuzz.ts` file implements by exporting
 * `createFuzzTarget(): Promise<FuzzTarget>`. The runner mutates the target's seed inputs and
 * calls `check` with each; `check` throws when a property is violated.
 */

/** One fuzz target. */
export interface FuzzTarget {
  /** Short name, used by `--target` and in reports. */
  readonly name: string;
  /** Valid inputs that mutations start from (the initial corpus). */
  readonly seeds: readonly Uint8Array[];
  /**
   * Runs one input. Throws (anything) when a property the target protects is violated; resolves
   * with a short outcome label (a fault code, `ok`, …). An input whose label was not seen before
   * joins the corpus, a crude behavioural feedback in place of coverage instrumentation.
   */
  check(input: Uint8Array): Promise<string> | string;
  /** Releases what `createFuzzTarget` opened. */
  close?(): Promise<void>;
}

/** What a `*.fuzz.ts` module exports. */
export interface FuzzTargetModule {
  createFuzzTarget(): Promise<FuzzTarget>;
}
