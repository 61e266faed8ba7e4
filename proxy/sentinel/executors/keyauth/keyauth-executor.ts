/**
 * KeyAuth executor (dataplane.md §5.5): extracts the key, verifies it in-process with the same
 * engine as `keys.verifyKey` (core/verification) against the key spaces the policy names, and on
 * success sets the request's principal. Status mapping: no key → 401 `missing_credentials`;
 * not found / disabled / expired / wrong key space / workspace disabled → 401 `invalid_key`;
 * permission query failed → 403 `insufficient_permissions`; a key rate limit → 429
 * `rate_limited`; credits exhausted → 429 `usage_exceeded`. The key's rate-limit results feed
 * the `X-RateLimit-*` headers on success and on failure. The key-space check happens inside the
 * verifier before any rate limit or credit is spent. Unlike the reference, an infrastructure
 * failure (database down) is a 500, not a misleading "invalid key".
 */
import { systemClock } from '../../../../core/clock.ts';
import type { Clock } from '../../../../core/clock.ts';
import { Fault } from '../../../../core/fault.ts';
import { hashKey } from '../../../../core/keys/key-hash.ts';
import { parsePermissionQuery } from '../../../../core/rbac/parse-permission-query.ts';
import type { VerificationResult, VerifyKeyInput, VerifyKeyOptions } from '../../../../core/verification/interface.ts';
import type { Policy } from '../../policy/policy-types.ts';
import type { EvaluationState, PolicyExecutor } from '../../policy-executor.ts';
import { moreRestrictive } from '../../rate-limit-headers.ts';
import type { RequestView } from '../../request-view.ts';
import { compileKeyExtractor, MAX_KEY_CHARS } from './extract-key.ts';
import { KnownKeys, type KnownKey } from './known-keys.ts';

/**
 * What KeyAuth needs from the verification engine; `core/verification`'s `KeyVerifier` satisfies
 * it as is. Called once per request that carries a key (per accepted key space until one knows it).
 */
export interface GatewayKeyVerifier {
  verify(input: VerifyKeyInput, options: VerifyKeyOptions): Promise<VerificationResult>;
  /**
   * Optional: the same answer, without a promise when the verifier needs none (a cached key, an
   * in-process limiter). When present KeyAuth calls it instead of `verify`, so a request whose
   * key is decided synchronously passes the whole policy phase without awaiting anything.
   */
  verifyNow?(input: VerifyKeyInput, options: VerifyKeyOptions): VerificationResult | Promise<VerificationResult>;
}

/** A key space a KeyAuth policy accepts, with the workspace that owns it. */
export interface KeySpaceTarget {
  workspaceId: string;
  keySpaceId: string;
}

/**
 * Resolves the ids a policy names into targets; undefined when unknown or deleted. Called at
 * compile time, and again for ids that were unknown then (see {@link KEYAUTH_DEFAULTS}).
 */
export interface KeySpaceResolver {
  keySpace(keySpaceId: string): Promise<KeySpaceTarget | undefined>;
  api(apiId: string): Promise<KeySpaceTarget | undefined>;
}

/** Bounds of KeyAuth. */
export const KEYAUTH_DEFAULTS = {
  /**
   * Least time between two attempts to resolve ids that were unknown (an API created after the
   * policy loaded), in ms. Attempts happen at request time, only for a key no known key space
   * holds, one at a time per policy: a stream of bad keys costs at most one lookup per interval.
   */
  unresolvedRetryMs: 5_000,
} as const;

/** Options of {@link createKeyAuthExecutor}. */
export interface KeyAuthExecutorOptions {
  clock?: Clock;
  /** See {@link KEYAUTH_DEFAULTS.unresolvedRetryMs}. */
  unresolvedRetryMs?: number;
  /** Keys remembered with their hash and principal (`KnownKeys`); default `DEFAULT_MAX_KNOWN_KEYS`. */
  maxKnownKeys?: number;
}

/** Creates the executor of a KeyAuth policy; resolves its key spaces and parses its permission query (422 when invalid). */
export async function createKeyAuthExecutor(policy: Policy, verifier: GatewayKeyVerifier, resolver: KeySpaceResolver, options: KeyAuthExecutorOptions = {}): Promise<PolicyExecutor> {
  const config = policy.keyauth!;
  if (config.permissionQuery !== undefined) {
    try {
      parsePermissionQuery(config.permissionQuery);
    } catch (err) {
      throw new Fault('err:frontline:config:invalid_configuration', { publicMessage: `policy ${policy.id}: invalid permissionQuery: ${(err as Error).message}`, cause: err });
    }
  }
  const resolved = await Promise.all([
    ...config.keyspaces.map((id) => resolver.keySpace(id)),
    ...config.apiIds.map((id) => resolver.api(id)),
  ]);
  const targets = resolved.filter((target): target is KeySpaceTarget => target !== undefined);
  const unresolved = new UnresolvedIds(resolver, [
    ...config.keyspaces.filter((_id, index) => resolved[index] === undefined).map((id) => ({ kind: 'keySpace' as const, id })),
    ...config.apiIds.filter((_id, index) => resolved[config.keyspaces.length + index] === undefined).map((id) => ({ kind: 'api' as const, id })),
  ], targets, options.clock ?? systemClock, options.unresolvedRetryMs ?? KEYAUTH_DEFAULTS.unresolvedRetryMs);
  const extract = compileKeyExtractor(config.locations);
  // Resolved once: per request only the key changes (a fixed-shape literal, no spread).
  const permissions = config.permissionQuery;
  const credits = { cost: config.credits ?? 1 };
  const ratelimits = config.ratelimits.length === 0 ? undefined : config.ratelimits;
  const knownKeys = new KnownKeys(options.maxKnownKeys);
  const policyId = policy.id;
  // Bound once: `verifyNow` when the verifier has it (no promise for a cached key), else `verify`.
  const verifyNow = verifier.verifyNow === undefined ? verifier.verify.bind(verifier) : verifier.verifyNow.bind(verifier);

  /** One verification against one target; any failure of the verifier becomes a 500 Fault (thrown or rejected). */
  const verifyAt = (input: VerifyKeyInput, keyHash: string, candidate: KeySpaceTarget, request: RequestView): VerificationResult | Promise<VerificationResult> => {
    let outcome: VerificationResult | Promise<VerificationResult>;
    try {
      outcome = verifyNow(input, { workspaceId: candidate.workspaceId, keySpaceId: candidate.keySpaceId, clientIp: request.clientIp, requestId: request.requestId, keyHash });
    } catch (err) {
      throw verificationFailed(policyId, err);
    }
    if (outcome instanceof Promise) return outcome.catch((err: unknown) => { throw verificationFailed(policyId, err); });
    return outcome;
  };

  /**
   * Applies the final answer to the request's state: the principal, or the rejection. A key some
   * key space knows is remembered with its hash (`known`: its entry when it already was); one
   * that is no longer found is forgotten.
   */
  const conclude = (result: VerificationResult, target: KeySpaceTarget | undefined, state: EvaluationState, input: VerifyKeyInput, keyHash: string, known: KnownKey | undefined): void => {
    applyRateLimits(result, state);
    if (result.code === 'NOT_FOUND') {
      if (known !== undefined) knownKeys.forget(input.key);
    } else {
      known ??= knownKeys.remember(input.key, keyHash);
    }
    switch (result.code) {
      case 'VALID':
        state.principal = knownKeys.principalFor(known!, result, target!.keySpaceId);
        return;
      case 'INSUFFICIENT_PERMISSIONS':
        throw Fault.expected('err:frontline:client:insufficient_permissions', { publicMessage: 'The key lacks the permissions this route requires.' });
      case 'RATE_LIMITED':
        throw Fault.expected('err:frontline:client:rate_limited', { publicMessage: 'Rate limit exceeded.' });
      case 'USAGE_EXCEEDED':
        throw Fault.expected('err:frontline:client:usage_exceeded', { publicMessage: 'The key has no credits left.' });
      default:
        throw Fault.expected('err:frontline:client:invalid_key', { publicMessage: 'Invalid API key.', internalMessage: `policy ${policyId}: verification answered ${result.code}` });
    }
  };

  /**
   * The targets from `from` on, after `pending` (the answer of target `from - 1`) settles; then,
   * when no known key space holds the key, the ids unknown at compile time (rate-limited, see
   * KEYAUTH_DEFAULTS): maybe the key belongs to an API created since the policy loaded.
   */
  const searchAsync = async (input: VerifyKeyInput, keyHash: string, known: KnownKey | undefined, request: RequestView, state: EvaluationState, pending: Promise<VerificationResult> | undefined, from: number): Promise<void> => {
    let result: VerificationResult = NOT_FOUND_RESULT;
    if (pending !== undefined) {
      result = await pending;
      if (result.code !== 'NOT_FOUND') return conclude(result, targets[from - 1], state, input, keyHash, known);
    }
    for (;;) {
      for (; from < targets.length; from++) {
        const candidate = targets[from]!;
        result = await verifyAt(input, keyHash, candidate, request);
        if (result.code !== 'NOT_FOUND') return conclude(result, candidate, state, input, keyHash, known);
      }
      if (!unresolved.due()) break;
      await unresolved.retry();
      if (from >= targets.length) break;
    }
    conclude(result, undefined, state, input, keyHash, known);
  };

  return {
    authenticates: true,
    // Not `async`: while every answer is synchronous (cached keys, in-process limiter) the
    // request is decided without a promise; the first answer that waits continues in searchAsync.
    execute(request: RequestView, state: EvaluationState): void | Promise<void> {
      const key = extract(request);
      if (key === '') {
        throw Fault.expected('err:frontline:client:missing_credentials', { publicMessage: 'Missing API key.', internalMessage: `policy ${policyId}: no key in the request` });
      }
      const input: VerifyKeyInput = { key, permissions, credits, ratelimits };
      // Too long to be a key: no key space is asked (and nothing is hashed).
      if (key.length > MAX_KEY_CHARS) return conclude(NOT_FOUND_RESULT, undefined, state, input, '', undefined);
      // Hashed once per key while it is remembered, else once per request (not per key space).
      const known = knownKeys.get(key);
      const keyHash = known !== undefined ? known.hash : hashKey(key);
      for (let from = 0; from < targets.length; from++) {
        const candidate = targets[from]!;
        const result = verifyAt(input, keyHash, candidate, request);
        if (result instanceof Promise) return searchAsync(input, keyHash, known, request, state, result, from + 1);
        if (result.code !== 'NOT_FOUND') return conclude(result, candidate, state, input, keyHash, known);
      }
      if (unresolved.due()) return searchAsync(input, keyHash, known, request, state, undefined, targets.length);
      return conclude(NOT_FOUND_RESULT, undefined, state, input, keyHash, known);
    },
  };
}

/** The 500 of a verifier that failed (database down): never a misleading "invalid key". */
function verificationFailed(policyId: string, err: unknown): Fault {
  return new Fault('err:frontline:platform:internal_server_error', { internalMessage: `policy ${policyId}: key verification failed: ${(err as Error)?.message}`, cause: err, source: 'upstream' });
}

/** The answer when no key space was asked (the key is too long to be one); read only. */
const NOT_FOUND_RESULT: VerificationResult = Object.freeze({ valid: false, code: 'NOT_FOUND' });

interface PendingId {
  kind: 'keySpace' | 'api';
  id: string;
}

/** The ids of one policy still unknown, resolved again at most once per interval (singleflight). */
class UnresolvedIds {
  readonly #resolver: KeySpaceResolver;
  readonly #targets: KeySpaceTarget[];
  readonly #clock: Clock;
  readonly #retryMs: number;
  #pending: PendingId[];
  #nextAttemptMs: number;
  #inFlight: Promise<void> | undefined;

  constructor(resolver: KeySpaceResolver, pending: PendingId[], targets: KeySpaceTarget[], clock: Clock, retryMs: number) {
    this.#resolver = resolver;
    this.#pending = pending;
    this.#targets = targets;
    this.#clock = clock;
    this.#retryMs = retryMs;
    this.#nextAttemptMs = clock.nowMs();
  }

  /** True when some id is unknown and an attempt may run (or is running) now. */
  due(): boolean {
    return this.#pending.length > 0 && (this.#inFlight !== undefined || this.#clock.nowMs() >= this.#nextAttemptMs);
  }

  /** Resolves the unknown ids; new targets are appended to the policy's list. Never rejects. */
  retry(): Promise<void> {
    this.#inFlight ??= this.#attempt().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #attempt(): Promise<void> {
    this.#nextAttemptMs = this.#clock.nowMs() + this.#retryMs;
    const pending = this.#pending;
    let found: (KeySpaceTarget | undefined)[];
    try {
      found = await Promise.all(pending.map((item) => item.kind === 'api' ? this.#resolver.api(item.id) : this.#resolver.keySpace(item.id)));
    } catch {
      return; // The database is unavailable: the known targets keep working; try again later.
    }
    const still: PendingId[] = [];
    for (const [index, target] of found.entries()) {
      if (target === undefined) still.push(pending[index]!);
      else this.#targets.push(target);
    }
    this.#pending = still;
  }
}

function applyRateLimits(result: VerificationResult, state: EvaluationState): void {
  if (result.ratelimits === undefined) return;
  for (const limit of result.ratelimits) {
    const outcome = { limit: limit.limit, remaining: limit.remaining, resetMs: limit.reset, passed: !limit.exceeded };
    if (moreRestrictive(state.rateLimit, outcome)) state.rateLimit = outcome;
  }
}
