/**
 * Keyring names. A keyring is a caller-chosen string (a workspace id, an environment id,
 * `acme`); it becomes part of the storage path `keyring/<ring>/<object>`, so it is validated
 * (spec pitfall 9: the reference accepts anything, including `""`).
 *
 * Rules: 1..{@link MAX_KEYRING_NAME_LENGTH} characters from `[A-Za-z0-9._~:@+=-]` in segments
 * separated by `/`; no empty, `.` or `..` segment; no segment equal to `LATEST` or starting with
 * `dek_`. The last two rules keep every keyring's objects apart: ring `a` owns `keyring/a/LATEST`
 * and `keyring/a/dek_*`, so no other ring's path may pass through those names.
 */
import { Fault } from '../../core/fault.ts';

/** Longest keyring name accepted, in characters. */
export const MAX_KEYRING_NAME_LENGTH = 255;

const SEGMENT_PATTERN = /^[A-Za-z0-9._~:@+=-]+$/;
const validated = new Set<string>();
// The set of names seen valid is only a fast path; it is bounded so hostile names cannot grow it.
const MAX_REMEMBERED_NAMES = 10_000;

/** Throws `err:vault:request:invalid_argument` unless `keyring` is a valid name. Per request. */
export function assertKeyringName(keyring: unknown): asserts keyring is string {
  if (typeof keyring === 'string' && validated.has(keyring)) return;
  const problem = keyringNameProblem(keyring);
  if (problem !== undefined) {
    throw Fault.expected('err:vault:request:invalid_argument', { publicMessage: `Invalid keyring: ${problem}.` });
  }
  if (validated.size >= MAX_REMEMBERED_NAMES) validated.clear();
  validated.add(keyring as string);
}

/** Why `keyring` is not a valid name, or undefined when it is. */
export function keyringNameProblem(keyring: unknown): string | undefined {
  if (typeof keyring !== 'string' || keyring.length === 0) return 'it must be a non-empty string';
  if (keyring.length > MAX_KEYRING_NAME_LENGTH) return `it is longer than ${MAX_KEYRING_NAME_LENGTH} characters`;
  for (const segment of keyring.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return 'it has an empty, "." or ".." path segment';
    if (!SEGMENT_PATTERN.test(segment)) return 'only letters, digits, "/" and ._~:@+=- are allowed';
    if (segment === 'LATEST' || segment.startsWith('dek_')) return 'a segment may not be "LATEST" or start with "dek_"';
  }
  return undefined;
}
