/**
 * `SafeRegex`: a policy regex that cannot stall the event loop (dataplane.md §10.17: JS RegExp
 * backtracks, the reference used RE2). Two layers:
 *
 * 1. When the policy is saved (`vetRegex`): patterns with backreferences, lookarounds, a
 *    quantified group that itself contains a quantifier or an alternation (`(a+)+`, `(a|aa)*`,
 *    `(.*a){20}`), or more than `maxPatternChars` characters are rejected with a reason.
 * 2. When compiled: V8's linear-time engine (the `l` flag, enabled once per process) is used
 *    whenever it accepts the pattern (it does not support `i`); otherwise the vetted pattern runs
 *    on the backtracking engine with the input cut to `maxInputChars`, which bounds the remaining
 *    polynomial cases.
 */
import v8 from 'node:v8';
import { Fault } from '../../../core/fault.ts';

/** Bounds of policy regexes. */
export const SAFE_REGEX_DEFAULTS = {
  /** Longest pattern accepted when a policy is saved. */
  maxPatternChars: 512,
  /** Longest input a backtracking (non-linear) regex is run on; longer inputs are cut. */
  maxInputChars: 8192,
} as const;

let linearEngineEnabled = false;

/** Enables V8's linear-time regex engine for this process (idempotent; the flag only adds the `l` flag). */
function enableLinearEngine(): void {
  if (linearEngineEnabled) return;
  v8.setFlagsFromString('--enable-experimental-regexp-engine');
  linearEngineEnabled = true;
}

/**
 * Returns undefined when `pattern` is acceptable, or the reason it is not. Called when a policy
 * document is validated (save time), never per request.
 */
export function vetRegex(pattern: string, maxPatternChars: number = SAFE_REGEX_DEFAULTS.maxPatternChars): string | undefined {
  if (pattern.length > maxPatternChars) return `regex is longer than ${maxPatternChars} characters`;
  try {
    new RegExp(pattern);
  } catch (err) {
    return `invalid regex: ${(err as Error).message}`;
  }
  // Each open group records whether a quantifier or an alternation occurred inside it.
  const groups: Array<{ quantified: boolean; alternation: boolean }> = [];
  let lastAtomWasGroup: { quantified: boolean; alternation: boolean } | undefined;
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index]!;
    if (char === '\\') {
      const next = pattern[index + 1] ?? '';
      if (/[1-9]/.test(next) || next === 'k') return 'backreferences are not allowed (they make matching exponential)';
      index++;
      lastAtomWasGroup = undefined;
      continue;
    }
    if (char === '[') {
      // Skip the character class (escapes inside included).
      index++;
      while (index < pattern.length && pattern[index] !== ']') {
        if (pattern[index] === '\\') index++;
        index++;
      }
      lastAtomWasGroup = undefined;
      continue;
    }
    if (char === '(') {
      if (pattern.startsWith('(?=', index) || pattern.startsWith('(?!', index) || pattern.startsWith('(?<=', index) || pattern.startsWith('(?<!', index)) {
        return 'lookaround assertions are not allowed';
      }
      groups.push({ quantified: false, alternation: false });
      // Skip the group's modifier (`?:`, `?<name>`) so its `?` is not read as a quantifier.
      if (pattern[index + 1] === '?') {
        if (pattern[index + 2] === '<') index = pattern.indexOf('>', index);
        else index += 2;
      }
      lastAtomWasGroup = undefined;
      continue;
    }
    if (char === ')') {
      const closed = groups.pop();
      if (closed === undefined) return 'unbalanced parenthesis';
      const parent = groups[groups.length - 1];
      if (parent !== undefined) {
        parent.quantified ||= closed.quantified;
        parent.alternation ||= closed.alternation;
      }
      lastAtomWasGroup = closed;
      continue;
    }
    if (char === '|') {
      const current = groups[groups.length - 1];
      if (current !== undefined) current.alternation = true;
      lastAtomWasGroup = undefined;
      continue;
    }
    const quantifierLength = quantifierAt(pattern, index);
    if (quantifierLength > 0) {
      const repeats = quantifierRepeats(pattern.slice(index, index + quantifierLength));
      if (repeats && lastAtomWasGroup !== undefined && (lastAtomWasGroup.quantified || lastAtomWasGroup.alternation)) {
        return 'nested quantifiers are not allowed (a quantified group containing a quantifier or an alternation can backtrack exponentially)';
      }
      const current = groups[groups.length - 1];
      if (current !== undefined) current.quantified = true;
      index += quantifierLength - 1;
      // A lazy or possessive-looking suffix (`+?`) belongs to the same quantifier.
      if (pattern[index + 1] === '?') index++;
      lastAtomWasGroup = undefined;
      continue;
    }
    lastAtomWasGroup = undefined;
  }
  return undefined;
}

/** A compiled, vetted policy regex (unanchored, like RE2's `MatchString`). */
export class SafeRegex {
  readonly pattern: string;
  /** True when V8's linear-time engine runs it (no input bound needed). */
  readonly linear: boolean;
  readonly #regex: RegExp;
  readonly #maxInputChars: number;

  /** Compiles `pattern`; throws `Fault` `invalid_configuration` when it fails {@link vetRegex}. Called at policy load. */
  constructor(pattern: string, ignoreCase: boolean, maxInputChars: number = SAFE_REGEX_DEFAULTS.maxInputChars) {
    const problem = vetRegex(pattern);
    if (problem !== undefined) {
      throw new Fault('err:frontline:config:invalid_configuration', { publicMessage: `regex ${JSON.stringify(pattern)}: ${problem}` });
    }
    this.pattern = pattern;
    this.#maxInputChars = maxInputChars;
    let regex: RegExp | undefined;
    if (!ignoreCase) {
      enableLinearEngine();
      try {
        regex = new RegExp(pattern, 'l');
      } catch {
        regex = undefined;
      }
    }
    this.linear = regex !== undefined;
    this.#regex = regex ?? new RegExp(pattern, ignoreCase ? 'i' : '');
  }

  /** True when the pattern matches somewhere in `input`. Called per request. */
  test(input: string): boolean {
    if (!this.linear && input.length > this.#maxInputChars) return this.#regex.test(input.slice(0, this.#maxInputChars));
    return this.#regex.test(input);
  }
}

/** True when a quantifier can repeat its atom more than once (`?`, `{1}` and `{0,1}` cannot). */
function quantifierRepeats(quantifier: string): boolean {
  if (quantifier === '?') return false;
  if (quantifier === '*' || quantifier === '+') return true;
  const [, low, comma, high] = /^\{(\d+)(,?)(\d*)\}$/.exec(quantifier) ?? [];
  if (comma === '') return Number(low) > 1;
  return high === '' || Number(high) > 1;
}

/** Length of the quantifier starting at `index` (`*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`), else 0. */
function quantifierAt(pattern: string, index: number): number {
  const char = pattern[index];
  if (char === '*' || char === '+' || char === '?') return 1;
  if (char === '{') {
    const match = /^\{\d+(,\d*)?\}/.exec(pattern.slice(index, index + 24));
    if (match !== null) return match[0].length;
  }
  return 0;
}
