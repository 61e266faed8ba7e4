/**
 * `compileKeyExtractor`: where KeyAuth finds the key (dataplane.md §5.5 step 1). Locations are
 * tried in order and the first non-empty value wins; no locations means bearer. Bearer: the first
 * `Authorization` value must start with `Bearer ` (any case) and be longer than 7 characters; the
 * rest, untrimmed, is the key. Header: its value, and with `stripPrefix` the value must be longer
 * than the prefix and start with it (any case). Query parameter: its first value.
 */
import type { KeyLocation } from '../../policy/policy-types.ts';
import type { RequestView } from '../../request-view.ts';

/** Longest key accepted from a request; longer values are treated as absent-and-invalid by the verifier. */
export const MAX_KEY_CHARS = 1024;

/** Compiles the locations once; the result is called per request and returns '' when no key is present. */
export function compileKeyExtractor(locations: readonly KeyLocation[]): (request: RequestView) => string {
  const extractors = (locations.length === 0 ? [{ bearer: {} }] : locations).map(compileLocation);
  if (extractors.length === 1) return extractors[0]!;
  return (request) => {
    for (const extract of extractors) {
      const key = extract(request);
      if (key !== '') return key;
    }
    return '';
  };
}

function compileLocation(location: KeyLocation): (request: RequestView) => string {
  if (location.header !== undefined) {
    const name = location.header.name;
    const prefix = location.header.stripPrefix;
    if (prefix === undefined) return (request) => request.header(name) ?? '';
    const lowerPrefix = prefix.toLowerCase();
    return (request) => {
      const value = request.header(name) ?? '';
      return value.length > prefix.length && value.slice(0, prefix.length).toLowerCase() === lowerPrefix ? value.slice(prefix.length) : '';
    };
  }
  if (location.queryParam !== undefined) {
    const name = location.queryParam.name;
    return (request) => request.query.get(name) ?? '';
  }
  return (request) => {
    // The first Authorization line (Node keeps only the first; `header` builds no per-line view).
    const value = request.header('authorization') ?? '';
    return value.length > 7 && startsWithBearer(value) ? value.slice(7) : '';
  };
}

/** `value.slice(0, 7).toLowerCase() === 'bearer '` without the two strings (per request). */
function startsWithBearer(value: string): boolean {
  // `| 0x20` lower-cases an ASCII letter; no other character maps onto these letters that way
  // (the space is compared exactly).
  return (value.charCodeAt(0) | 0x20) === 98 /* b */ && (value.charCodeAt(1) | 0x20) === 101 /* e */ &&
    (value.charCodeAt(2) | 0x20) === 97 /* a */ && (value.charCodeAt(3) | 0x20) === 114 /* r */ &&
    (value.charCodeAt(4) | 0x20) === 101 /* e */ && (value.charCodeAt(5) | 0x20) === 114 /* r */ && value.charCodeAt(6) === 32;
}
