/**
 * `runFuzzTarget`: a small, seeded, mutation-based fuzzer. Each iteration takes an input from
 * the corpus (the target's seeds plus inputs that produced a new outcome), applies one to four
 * random mutations (bit flips, byte overwrites with interesting values, inserts, deletes,
 * truncation, duplication, splicing with another input) or, now and then, generates random
 * bytes, and calls the target's `check`. A thrown error is a failure: the input is kept with the
 * error. Deterministic for a given seed and iteration count.
 */
import { seededRandom } from '../test/helpers/seeded-random.ts';
import type { FuzzTarget } from './fuzz-target.ts';

/** Options of {@link runFuzzTarget}; each bound has a default. */
export interface FuzzRunOptions {
  /** Stop after this long, in ms. Default 10,000. */
  durationMs?: number;
  /** Stop after this many iterations (whichever comes first). Default unbounded. */
  maxIterations?: number;
  /** PRNG seed; the same seed replays the same inputs. Default: random. */
  seed?: number;
  /** Largest generated input, in bytes. Default 4096. */
  maxInputBytes?: number;
  /** Most inputs kept in the corpus. Default 1000. */
  maxCorpusSize?: number;
  /** Most failures kept (all are counted). Default 20. */
  maxFailuresKept?: number;
  /** A check slower than this counts as a failure (a hang), in ms. Default 2000. */
  checkTimeoutMs?: number;
}

/** One failing input and what it threw. */
export interface FuzzFailure {
  input: Uint8Array;
  error: unknown;
}

/** The outcome of a run. */
export interface FuzzReport {
  target: string;
  seed: number;
  iterations: number;
  failureCount: number;
  failures: FuzzFailure[];
  corpusSize: number;
  /** How many inputs ended with each outcome label. */
  outcomes: Record<string, number>;
  elapsedMs: number;
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x1a, 0x22, 0x28];

/** Runs `target` until the time or iteration bound; never throws for a failing input. */
export async function runFuzzTarget(target: FuzzTarget, options: FuzzRunOptions = {}): Promise<FuzzReport> {
  const durationMs = options.durationMs ?? 10_000;
  const maxIterations = options.maxIterations ?? Number.POSITIVE_INFINITY;
  const seed = options.seed ?? Math.floor(Math.random() * 0xffffffff);
  const maxInputBytes = options.maxInputBytes ?? 4096;
  const maxCorpusSize = options.maxCorpusSize ?? 1000;
  const maxFailuresKept = options.maxFailuresKept ?? 20;
  const checkTimeoutMs = options.checkTimeoutMs ?? 2000;
  const random = seededRandom(seed);
  const corpus: Uint8Array[] = target.seeds.length > 0 ? [...target.seeds] : [new Uint8Array(0)];
  const outcomes: Record<string, number> = {};
  const failures: FuzzFailure[] = [];
  let failureCount = 0;
  let iterations = 0;
  const startedAt = performance.now();
  while (iterations < maxIterations && performance.now() - startedAt < durationMs) {
    const input = nextInput(corpus, random, maxInputBytes);
    iterations++;
    try {
      const outcome = await withTimeout(Promise.resolve().then(() => target.check(input)), checkTimeoutMs);
      if (outcomes[outcome] === undefined && corpus.length < maxCorpusSize) corpus.push(input);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    } catch (error) {
      failureCount++;
      if (failures.length < maxFailuresKept) failures.push({ input, error });
    }
  }
  return { target: target.name, seed, iterations, failureCount, failures, corpusSize: corpus.length, outcomes, elapsedMs: performance.now() - startedAt };
}

function nextInput(corpus: readonly Uint8Array[], random: () => number, maxInputBytes: number): Uint8Array {
  const pick = () => corpus[Math.floor(random() * corpus.length)]!;
  if (random() < 0.05) return randomBytes(random, Math.floor(random() * Math.min(256, maxInputBytes)));
  let bytes: Uint8Array = Uint8Array.from(pick());
  const mutations = 1 + Math.floor(random() * 4);
  for (let index = 0; index < mutations; index++) bytes = mutate(bytes, random, pick);
  return bytes.length > maxInputBytes ? bytes.subarray(0, maxInputBytes) : bytes;
}

function mutate(bytes: Uint8Array, random: () => number, pick: () => Uint8Array): Uint8Array {
  const position = () => Math.floor(random() * (bytes.length + 1));
  switch (Math.floor(random() * 8)) {
    case 0: { // flip one bit
      if (bytes.length === 0) return bytes;
      const at = Math.floor(random() * bytes.length);
      bytes[at]! ^= 1 << Math.floor(random() * 8);
      return bytes;
    }
    case 1: { // overwrite a byte with an interesting value
      if (bytes.length === 0) return bytes;
      bytes[Math.floor(random() * bytes.length)] = INTERESTING_BYTES[Math.floor(random() * INTERESTING_BYTES.length)]!;
      return bytes;
    }
    case 2: { // overwrite a byte with a random value
      if (bytes.length === 0) return bytes;
      bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      return bytes;
    }
    case 3: { // insert random bytes
      const at = position();
      return concat(bytes.subarray(0, at), randomBytes(random, 1 + Math.floor(random() * 8)), bytes.subarray(at));
    }
    case 4: { // delete a range
      const from = position();
      const to = Math.min(bytes.length, from + 1 + Math.floor(random() * 16));
      return concat(bytes.subarray(0, from), bytes.subarray(to));
    }
    case 5: // truncate
      return bytes.subarray(0, position());
    case 6: { // duplicate a range
      const from = position();
      const to = Math.min(bytes.length, from + 1 + Math.floor(random() * 16));
      return concat(bytes.subarray(0, to), bytes.subarray(from, to), bytes.subarray(to));
    }
    default: { // splice with another input
      const other = pick();
      const at = position();
      const otherAt = Math.floor(random() * (other.length + 1));
      return concat(bytes.subarray(0, at), other.subarray(otherAt));
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function randomBytes(random: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let index = 0; index < length; index++) out[index] = Math.floor(random() * 256);
  return out;
}


async function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`check did not finish within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
