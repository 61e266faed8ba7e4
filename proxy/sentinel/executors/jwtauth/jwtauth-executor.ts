/**
 * JWTAuth executor: really enforced (the reference only parsed it, so a JWT-only config was open,
 * dataplane.md §5.10). The token comes from `Authorization: Bearer`. Keys come from a JWKS URL
 * (jose's remote key set: cached for `jwksCacheMs`, refetched when a token names an unknown
 * `kid`, at most once per cooldown, each fetch bounded by a timeout) or a static SPKI public key.
 * Checks: signature, allowed algorithms, `exp`/`nbf` with the clock skew, issuer, audience. On
 * success the principal is `type: "JWT"` with subject from `subjectClaim` and the token's
 * header and payload. No token → 401 `missing_credentials` (or pass when `allowAnonymous`); a bad
 * token → 401 `invalid_token`.
 */
import { createRemoteJWKSet, decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';
import type { JWTVerifyGetKey, CryptoKey, JWTPayload } from 'jose';
import { Fault } from '../../../../core/fault.ts';
import type { Policy } from '../../policy/policy-types.ts';
import type { EvaluationState, PolicyExecutor } from '../../policy-executor.ts';
import type { RequestView } from '../../request-view.ts';

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
  return {
    authenticates: true,
    async execute(request: RequestView, state: EvaluationState) {
      const authorization = request.headerValues('authorization')[0] ?? '';
      const token = authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ' ? authorization.slice(7).trim() : '';
      if (token === '') {
        if (config.allowAnonymous) return;
        throw Fault.expected('err:frontline:client:missing_credentials', { publicMessage: 'Missing bearer token.' });
      }
      let payload: JWTPayload;
      try {
        if (token.length > JWT_AUTH_DEFAULTS.maxTokenChars) throw new Error('token too long');
        const verified = typeof keySource === 'function'
          ? await jwtVerify(token, keySource, verifyOptions)
          : await jwtVerify(token, keySource, verifyOptions);
        payload = verified.payload;
      } catch (err) {
        const reason = (err as { code?: string }).code ?? (err as Error).message;
        if (reason === 'ERR_JWKS_TIMEOUT' || (reason === 'ERR_JOSE_GENERIC' && /fetch|JWKS/i.test((err as Error).message))) {
          throw new Fault('err:frontline:platform:internal_server_error', { internalMessage: `policy ${policyId}: JWKS unavailable: ${(err as Error).message}`, cause: err, source: 'upstream' });
        }
        throw Fault.expected('err:frontline:client:invalid_token', { publicMessage: 'Invalid token.', internalMessage: `policy ${policyId}: ${reason}` });
      }
      const subject = payload[config.subjectClaim];
      state.principal = {
        version: 'v1',
        subject: typeof subject === 'string' ? subject : '',
        type: 'JWT',
        source: { jwt: { header: decodeProtectedHeader(token) as Record<string, unknown>, payload: payload as Record<string, unknown> } },
      };
    },
  };
}
