/**
 * Picks the override that applies to an identifier (spec api.md §3.9, §8; pitfall §14.19), with a
 * deterministic precedence where the reference used database order:
 *   1. an override whose identifier equals the identifier exactly;
 *   2. otherwise the most specific matching wildcard pattern: most literal (non-`*`) characters,
 *      then the longest pattern, then the lexicographically smallest pattern.
 * Compiled once per override set (when the namespace is loaded into its cache).
 */
import { literalCharacterCount, matchesWildcard } from './wildcard-pattern.ts';

/** The part of an override the resolver needs; anything else travels along untouched. */
export interface RateLimitOverrideLike {
  readonly identifier: string;
}

/** Identifiers whose resolution is remembered per resolver, so hot identifiers skip the wildcard scan. */
export const DEFAULT_OVERRIDE_MEMO_ENTRIES = 10_000;

/** Resolves identifiers to overrides; immutable after construction except for its bounded memo. */
export class OverrideResolver<Override extends RateLimitOverrideLike> {
  readonly #exact = new Map<string, Override>();
  /** Wildcard overrides in precedence order: the first match wins. */
  readonly #wildcards: Override[];
  readonly #memo = new Map<string, Override | null>();
  readonly #maxMemoEntries: number;

  /** Compiles `overrides`; called once per load of a namespace's overrides. */
  constructor(overrides: Iterable<Override>, options: { maxMemoEntries?: number } = {}) {
    this.#maxMemoEntries = options.maxMemoEntries ?? DEFAULT_OVERRIDE_MEMO_ENTRIES;
    const wildcards: Override[] = [];
    for (const override of overrides) {
      if (override.identifier.includes('*')) wildcards.push(override);
      else this.#exact.set(override.identifier, override);
    }
    this.#wildcards = wildcards.sort(compareSpecificity);
  }

  /** Number of overrides in the set. */
  get size(): number {
    return this.#exact.size + this.#wildcards.length;
  }

  /** The override for `identifier`, or undefined. Called per ratelimit.limit request. */
  resolve(identifier: string): Override | undefined {
    const exact = this.#exact.get(identifier);
    if (exact !== undefined) return exact;
    if (this.#wildcards.length === 0) return undefined;
    const memo = this.#memo.get(identifier);
    if (memo !== undefined) return memo ?? undefined;
    let found: Override | null = null;
    for (const candidate of this.#wildcards) {
      if (matchesWildcard(candidate.identifier, identifier)) {
        found = candidate;
        break;
      }
    }
    // A simple bound: when full, start over. Cheap, and correct because the set is immutable.
    if (this.#memo.size >= this.#maxMemoEntries) this.#memo.clear();
    this.#memo.set(identifier, found);
    return found ?? undefined;
  }
}

function compareSpecificity(left: RateLimitOverrideLike, right: RateLimitOverrideLike): number {
  const literals = literalCharacterCount(right.identifier) - literalCharacterCount(left.identifier);
  if (literals !== 0) return literals;
  const length = right.identifier.length - left.identifier.length;
  if (length !== 0) return length;
  return left.identifier < right.identifier ? -1 : left.identifier > right.identifier ? 1 : 0;
}
