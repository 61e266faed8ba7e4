/**
 * `KnownHeaderNames`: a fixed set of lower-case header names, matched in place inside a head
 * string in any letter case. The HTTP/1.1 parsers use the literal a match returns as the header's
 * property key: no slice, no lower-casing, no hashing of a fresh string, and a key V8 has already
 * interned. About a third of the cost of building a headers object, per header line.
 *
 * Folding with `| 0x20` is only exact for token characters (RFC 9110 field names), so callers pass
 * ranges they have checked to hold token characters only; the literals hold `a-z`, `0-9` and `-`,
 * and no other token character folds onto one of those.
 */
export class KnownHeaderNames {
  /** Candidates by name length. */
  readonly #byLength: Array<readonly string[] | undefined> = [];

  /** `names`: lower-case literals of `a-z`, `0-9` and `-` only (checked). */
  constructor(names: readonly string[]) {
    for (const name of names) {
      if (!/^[a-z0-9-]+$/.test(name)) throw new TypeError(`KnownHeaderNames: ${JSON.stringify(name)} is not a lower-case name of a-z, 0-9 and -`);
      this.#byLength[name.length] = [...(this.#byLength[name.length] ?? []), name];
    }
  }

  /** The literal equal to `text[start, end)` ignoring letter case, or undefined. Per header line. */
  find(text: string, start: number, end: number): string | undefined {
    const candidates = this.#byLength[end - start];
    if (candidates === undefined) return undefined;
    for (const candidate of candidates) {
      let index = 0;
      while (index < candidate.length && (text.charCodeAt(start + index) | 0x20) === candidate.charCodeAt(index)) index++;
      if (index === candidate.length) return candidate;
    }
    return undefined;
  }
}
