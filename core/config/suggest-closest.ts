/**
 * "Did you mean …?" for unknown keys, flags, variables and commands: the candidate with the
 * smallest edit distance, when it is close enough to be a plausible typo.
 */

/**
 * The candidate closest to `input` (case-insensitive Damerau–Levenshtein distance), or undefined
 * when none is within a third of the input's length (at least 2 edits allowed, fewer than the
 * input's length).
 */
export function suggestClosest(input: string, candidates: Iterable<string>): string | undefined {
  const needle = input.toLowerCase();
  // A third of the input (at least 2 edits), but never the whole input: "x" is no typo of "db".
  const maxDistance = Math.min(Math.max(2, Math.floor(needle.length / 3)), needle.length - 1);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(needle, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= maxDistance ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const columns = b.length + 1;
  const table: number[] = new Array<number>(rows * columns).fill(0);
  const at = (i: number, j: number): number => table[i * columns + j]!;
  for (let i = 0; i < rows; i++) table[i * columns] = i;
  for (let j = 0; j < columns; j++) table[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < columns; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, at(i - 2, j - 2) + 1);
      table[i * columns + j] = distance;
    }
  }
  return at(a.length, b.length);
}
