/**
 * JWTAuth executor: really enforced (the reference only parsed it, so a JWT-only config was open,
 * dataplane.md §5.10). The token comes from `Authorization: Bearer`. Keys come from a JWKS URL
 * (jose's remote key set: cached for `jwksCacheMs`, refetched when a token names an unknown
 * `kid`, at most once per cooldown, each fetch bounded by a timeout) or a static SPKI public key.
 * Checks: signature, allowed algorithms, `exp`/`nbf` with the clock skew, issuer, audience. On
 * success the principal is `type: "JWT"` with subject from `subjectClaim` and the token's
 * header and payload. No token → 401 `missing_credentials` (or pass when `allowAnonymous`); a bad
 * token → 401 `invalid_token`. A token that verified is remembered by its exact characters until
 * its `exp` (bounded; see `VerifiedTokenCache`), so a repeated token is decided synchronously
 * without a signature check. `exp`/`nbf` are checked against the executor's clock.
 */
import { createRemoteJWKSet, decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';
import type { JWTVerifyGetKey, CryptoKey, JWTPayload } from 'jose';
import { systemClock, type Clock } from '../../../../core/clock.ts';
import { Fault } from '../../../../core/fault.ts';
import type { Policy } from '../../policy/policy-types.ts';
import type { EvaluationState, PolicyExecutor } from '../../policy-executor.ts';
import { freezeWithHeader, type Principal } from '../../principal.ts';
import type { RequestView } from '../../request-view.ts';
import { VerifiedTokenCache, type VerifiedTokenCacheOptions } from './verified-token-cache.ts';

/** Bounds of JWKS fetching. */
export const JWT_AUTH_DEFAULTS = {
  /** Timeout of one JWKS fetch. */
  jwksTimeoutMs: 5_000,
  /** Least time between two refetches triggered by unknown `kid`s (bounds what a stream of forged kids can cause). */
  jwksCooldownMs: 5_000,
  /** Longest token accepted. */
  maxTokenChars: 8_192,
} as const;

/** Options of {@link createJwtAuthExecutor}. */
export interface JwtAuthExecutorOptions {
  jwksTimeoutMs?: number;
  jwksCooldownMs?: number;
  /** Bounds of the verified-token cache (`maxEntries: 0` turns it off). */
  verifiedTokens?: VerifiedTokenCacheOptions;
  /** The time `exp`/`nbf` and the cache are checked against; default the system clock. */
  clock?: Clock;
}

/** Creates the executor of a JWTAuth policy (called at compile time; imports a static key, 422 when it is invalid). */
export async function createJwtAuthExecutor(policy: Policy, options: JwtAuthExecutorOptions = {}): Promise<PolicyExecutor> {
  const config = policy.jwtauth!;
  let keySource: JWTVerifyGetKey | CryptoKey;
  if (config.jwksUri !== undefined) {
    keySource = createRemoteJWKSet(new URL(config.jwksUri), {
      cacheMaxAge: config.jwksCacheMs,
      cooldownDuration: options.jwksCooldownMs ?? JWT_AUTH_DEFAULTS.jwksCooldownMs,
      timeoutDuration: options.jwksTimeoutMs ?? JWT_AUTH_DEFAULTS.jwksTimeoutMs,
    });
  } else {
    try {
      keySource = await importSPKI(config.publicKeyPem!, config.algorithms[0]!);
    } catch (err) {
      throw new Fault('err:frontline:config:invalid_configuration', { publicMessage: `policy ${policy.id}: publicKeyPem is not a usable ${config.algorithms[0]} public key`, cause: err });
    }
  }
  const verifyOptions = {
    algorithms: config.algorithms,
    clockTolerance: config.clockSkewMs / 1000,
    ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
    ...(config.audiences.length === 0 ? {} : { audience: config.audiences }),
  };
  const policyId = policy.id;
  const clock = options.clock ?? systemClock;
  const verifiedTokens = new VerifiedTokenCache(options.verifiedTokens);

  /** The full check (signature, claims); remembers the principal of a token that passes. */
  const verifyToken = async (token: string, nowMs: number): Promise<Principal> => {
    let payload: JWTPayload;
    try {
      if (token.length > JWT_AUTH_DEFAULTS.maxTokenChars) throw new Error('token too long');
      const claimOptions = { ...verifyOptions, currentDate: new Date(nowMs) };
      const verified = typeof keySource === 'function'
        ? await jwtVerify(token, keySource, claimOptions)
        : await jwtVerify(token, keySource, claimOptions);
      payload = verified.payload;
    } catch (err) {
      const reason = (err as { code?: string }).code ?? (err as Error).message;
      if (reason === 'ERR_JWKS_TIMEOUT' || (reason === 'ERR_JOSE_GENERIC' && /fetch|JWKS/i.test((err as Error).message))) {
        throw new Fault('err:frontline:platform:internal_server_error', { internalMessage: `policy ${policyId}: JWKS unavailable: ${(err as Error).message}`, cause: err, source: 'upstream' });
      }
      throw Fault.expected('err:frontline:client:invalid_token', { publicMessage: 'Invalid token.', internalMessage: `policy ${policyId}: ${reason}` });
    }
    const subject = payload[config.subjectClaim];
    const header = Object.freeze(decodeProtectedHeader(token) as Record<string, unknown>);
    // Frozen: one principal is shared by every request that presents this token, and it
    // carries its header string (freezeWithHeader).
    const principal: Principal = freezeWithHeader<Principal>({
      version: 'v1',
      subject: typeof subject === 'string' ? subject : '',
      type: 'JWT',
      source: Object.freeze({ jwt: Object.freeze({ header, payload: Object.freeze(payload) as Record<string, unknown> }) }),
    });
    verifiedTokens.set(token, principal, typeof payload.exp === 'number' ? payload.exp : undefined, nowMs);
    return principal;
  };

  return {
    authenticates: true,
    // Not `async`: a remembered token is decided without a promise.
    execute(request: RequestView, state: EvaluationState): void | Promise<void> {
      // The first Authorization line (Node keeps only the first; `header` builds no per-line view).
      const authorization = request.header('authorization') ?? '';
      const token = authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ' ? authorization.slice(7).trim() : '';
      if (token === '') {
        if (config.allowAnonymous) return;
        throw Fault.expected('err:frontline:client:missing_credentials', { publicMessage: 'Missing bearer token.' });
      }
      const nowMs = clock.nowMs();
      const remembered = verifiedTokens.get(token, nowMs);
      if (remembered !== undefined) {
        state.principal = remembered;
        return;
      }
      return verifyToken(token, nowMs).then((principal) => {
        state.principal = principal;
      });
    },
  };
}
