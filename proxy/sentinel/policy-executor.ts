/**
 * The contract between the policy engine and the executors (one folder per policy type under
 * `executors/`). An executor is created once per policy when a policy set is compiled; per
 * request the engine calls `execute` for each enabled policy whose `match` holds, in list order.
 * An executor rejects by throwing a `Fault` (cheap `Fault.expected` for client errors) and
 * otherwise records its effects in the shared {@link EvaluationState}. Embedders register custom
 * executors with `PolicyEngineOptions.executors`.
 */
import type { Clock } from '../../core/clock.ts';
import type { Policy, PolicyType } from './policy/policy-types.ts';
import type { Principal } from './principal.ts';
import type { RateLimitOutcome } from './rate-limit-headers.ts';
import type { RequestView } from './request-view.ts';

/** Which parts of the exchange the request log captures (the Logging policy's flags, OR-ed). */
export interface LogCapture {
  requestHeaders: boolean;
  responseHeaders: boolean;
  requestBody: boolean;
  responseBody: boolean;
  query: boolean;
}

/** Per-request state shared by the executors of one evaluation. */
export interface EvaluationState {
  /** The workspace that owns the deployment (rate-limit counters and key lookups are scoped to it). */
  readonly workspaceId: string;
  /** The first successful authentication wins; later KeyAuth/JWTAuth policies are skipped. */
  principal: Principal | undefined;
  /** The most restrictive rate-limit result so far (headers). */
  rateLimit: RateLimitOutcome | undefined;
  /** Capture flags collected from Logging policies. */
  log: LogCapture;
}

/** What an executor factory receives besides the policy. */
export interface ExecutorContext {
  readonly clock: Clock;
  /** The deployment's OpenAPI document, when the deployment has one (OpenAPI policies without their own). */
  readonly openApiSpec?: Record<string, unknown>;
}

/** One compiled policy's behaviour. */
export interface PolicyExecutor {
  /** Runs the policy for one request: returns (maybe a promise) to continue, throws a `Fault` to reject. */
  execute(request: RequestView, state: EvaluationState): void | Promise<void>;
  /** Authentication executors are skipped once a principal exists. */
  readonly authenticates?: boolean;
  /** Releases timers or connections (JWKS fetchers). */
  close?(): void;
}

/** Builds the executor of one policy of type `type`; called when a policy set is compiled. May throw a `Fault` (422). */
export type ExecutorFactory = (policy: Policy, context: ExecutorContext) => PolicyExecutor | Promise<PolicyExecutor>;

/** Factories by policy type. */
export type ExecutorRegistry = Partial<Record<PolicyType, ExecutorFactory>>;
