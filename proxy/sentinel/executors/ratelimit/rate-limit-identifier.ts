/**
 * `compileIdentifier`: builds the counter identifier of a RateLimit policy from its sources
 * (dataplane.md §5.6). One source: its raw value. Several: each part has `\` escaped as `\\` and
 * `:` as `\:`, unresolved parts become `unknown`, joined with `:` (so `("a:b","c")` and
 * `("a","b:c")` differ). Nothing resolved → '' (the executor answers 429). The remote IP is the
 * client address as the proxy computed it: `X-Forwarded-For` counts only from trusted proxies,
 * which fixes the reference's spoofing pitfall (§10.13).
 */
import { principalField } from '../../principal.ts';
import type { RateLimitIdentifier } from '../../policy/policy-types.ts';
import type { EvaluationState } from '../../policy-executor.ts';
import type { RequestView } from '../../request-view.ts';

/** Longest identifier part used; longer values are cut (bounded counter keys). */
export const MAX_IDENTIFIER_PART_CHARS = 512;

type PartResolver = (request: RequestView, state: EvaluationState) => string | undefined;

/** Compiles the identifier sources once; the result is called per request. */
export function compileIdentifier(sources: readonly RateLimitIdentifier[]): (request: RequestView, state: EvaluationState) => string {
  const resolvers = sources.map(compilePart);
  if (resolvers.length === 1) {
    const resolve = resolvers[0]!;
    return (request, state) => bound(resolve(request, state) ?? '');
  }
  return (request, state) => {
    let resolvedAny = false;
    const parts: string[] = [];
    for (const resolve of resolvers) {
      const value = resolve(request, state);
      if (value === undefined || value === '') {
        parts.push('unknown');
        continue;
      }
      resolvedAny = true;
      parts.push(bound(value).replaceAll('\\', '\\\\').replaceAll(':', '\\:'));
    }
    return resolvedAny ? parts.join(':') : '';
  };
}

function compilePart(source: RateLimitIdentifier): PartResolver {
  if (source.remoteIp !== undefined) return (request) => request.clientIp || undefined;
  if (source.header !== undefined) {
    const name = source.header.name;
    return (request) => request.header(name);
  }
  if (source.path !== undefined) return (request) => request.path;
  if (source.authenticatedSubject !== undefined) return (_request, state) => state.principal?.subject || undefined;
  const segments = source.principalField!.path.split('.');
  return (_request, state) => principalField(state.principal, segments);
}

function bound(value: string): string {
  return value.length > MAX_IDENTIFIER_PART_CHARS ? value.slice(0, MAX_IDENTIFIER_PART_CHARS) : value;
}
