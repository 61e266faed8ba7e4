/**
 * Identifier patterns of rate-limit overrides (spec api.md §8, pitfall §14.19): `*` matches any
 * run of characters (including none); every other character is literal; the match is anchored
 * at both ends. Matched without regular expressions, so no pattern can trigger catastrophic
 * backtracking: the greedy-with-one-backtrack-point scan is O(pattern × text) at worst.
 */

/** True iff `text` matches `pattern`. Called per wildcard override on a cache miss of the resolver. */
export function matchesWildcard(pattern: string, text: string): boolean {
  let patternIndex = 0;
  let textIndex = 0;
  let starIndex = -1;
  let starTextIndex = 0;
  while (textIndex < text.length) {
    if (patternIndex < pattern.length && pattern[patternIndex] === '*') {
      starIndex = patternIndex++;
      starTextIndex = textIndex;
    } else if (patternIndex < pattern.length && pattern[patternIndex] === text[textIndex]) {
      patternIndex++;
      textIndex++;
    } else if (starIndex >= 0) {
      // Let the last star absorb one more character and retry from there.
      patternIndex = starIndex + 1;
      textIndex = ++starTextIndex;
    } else {
      return false;
    }
  }
  while (patternIndex < pattern.length && pattern[patternIndex] === '*') patternIndex++;
  return patternIndex === pattern.length;
}

/** Number of non-`*` characters: how specific a pattern is. */
export function literalCharacterCount(pattern: string): number {
  let count = 0;
  for (let index = 0; index < pattern.length; index++) if (pattern.charCodeAt(index) !== 0x2a) count++;
  return count;
}
