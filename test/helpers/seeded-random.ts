/**
 * `seededRandom`: the one seeded PRNG of the tests, simulations and fuzzers (Mulberry32: small,
 * fast, 32-bit state). The same seed always gives the same sequence, so a failing run is replayed
 * from its seed. Not for anything secret.
 */

/** Returns a generator of floats in [0, 1) determined only by `seed` (taken as an unsigned 32-bit integer). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}
