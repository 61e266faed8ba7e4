/**
 * `PolicyEngine`: compiles a deployment's policy list once (matchers, regexes, executors) into a
 * {@link CompiledPolicySet}, and evaluates it per request in list order (dataplane.md §5.3):
 * disabled policies are skipped (an absent `enabled` is false); a policy runs only when all its
 * match expressions hold; an authentication policy (KeyAuth, JWTAuth) is skipped once a
 * principal exists (the first success wins); the first rejection stops the evaluation. Unlike
 * the reference, JWTAuth is enforced, and unknown types cannot exist (validation rejects them).
 */
import { systemClock, type Clock } from '../../core/clock.ts';
import { Fault } from '../../core/fault.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { RateLimiter } from '../../core/ratelimit/interface.ts';
import { createFirewallExecutor } from './executors/firewall/firewall-executor.ts';
import { createJwtAuthExecutor } from './executors/jwtauth/jwtauth-executor.ts';
import type { JwtAuthExecutorOptions } from './executors/jwtauth/jwtauth-executor.ts';
import { createKeyAuthExecutor } from './executors/keyauth/keyauth-executor.ts';
import type { GatewayKeyVerifier, KeyAuthExecutorOptions, KeySpaceResolver } from './executors/keyauth/keyauth-executor.ts';
import { createLoggingExecutor } from './executors/logging/logging-executor.ts';
import { createOpenApiExecutor } from './executors/openapi/openapi-executor.ts';
import { createRateLimitExecutor } from './executors/ratelimit/ratelimit-executor.ts';
import { compileMatch } from './match/compile-match.ts';
import type { RequestPredicate } from './match/compile-match.ts';
import type { Policy, PolicyType } from './policy/policy-types.ts';
import type { EvaluationState, ExecutorContext, ExecutorRegistry, PolicyExecutor } from './policy-executor.ts';
import type { RequestView } from './request-view.ts';

/** Options of {@link PolicyEngine}: the services executors need. A missing service makes its policy type fail to compile (422). */
export interface PolicyEngineOptions {
  rateLimiter?: RateLimiter;
  keyVerifier?: GatewayKeyVerifier;
  keySpaceResolver?: KeySpaceResolver;
  jwt?: JwtAuthExecutorOptions;
  /** KeyAuth bounds (the clock comes from `clock`). */
  keyAuth?: Omit<KeyAuthExecutorOptions, 'clock'>;
  clock?: Clock;
  metrics?: Metrics;
  /** Custom executors by type; replace the built-in ones. */
  executors?: ExecutorRegistry;
}

/** The outcome of one evaluation: the state (principal, rate-limit headers, log flags) and the rejection, if any. */
export interface EvaluationResult {
  state: EvaluationState;
  fault: Fault | undefined;
}

/** The metric of per-policy decisions (labels `policy`, `type`, `outcome`). */
export const POLICY_DECISIONS_METRIC = 'keygate_sentinel_policy_decisions_total';

type OutcomeLabel = 'success' | 'rejected' | 'error' | 'skipped';
const OUTCOMES: readonly OutcomeLabel[] = ['success', 'rejected', 'error', 'skipped'];

/** Decisions counted in plain numbers on the hot path; published to Prometheus when scraped. */
type Tally = Record<OutcomeLabel, number>;

interface CompiledPolicy {
  id: string;
  type: PolicyType;
  matches: RequestPredicate;
  executor: PolicyExecutor;
  tally: Tally;
  published: Tally;
}

/** Compiles policy lists; one per process (it holds the services executors use). */
export class PolicyEngine {
  readonly #options: PolicyEngineOptions;
  readonly #clock: Clock;
  readonly #registry: Required<ExecutorRegistry>;

  constructor(options: PolicyEngineOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const missing = (service: string) => (policy: Policy): never => {
      throw new Fault('err:frontline:config:invalid_configuration', { publicMessage: `policy ${policy.id}: ${policy.type} needs a ${service}, which this gateway does not have` });
    };
    this.#registry = {
      firewall: createFirewallExecutor,
      logging: createLoggingExecutor,
      openapi: (policy, context) => createOpenApiExecutor(policy, context),
      ratelimit: options.rateLimiter === undefined ? missing('rate limiter') : (policy) => createRateLimitExecutor(policy, options.rateLimiter!),
      keyauth: options.keyVerifier === undefined || options.keySpaceResolver === undefined
        ? missing('key verifier')
        : (policy, context) => createKeyAuthExecutor(policy, options.keyVerifier!, options.keySpaceResolver!, { clock: context.clock, ...options.keyAuth }),
      jwtauth: (policy, context) => createJwtAuthExecutor(policy, { clock: context.clock, ...options.jwt }),
      ...options.executors,
    };
  }

  /**
   * Compiles a validated policy list (see `parsePolicies`). Called when a deployment's policies
   * load or change, never per request. Throws a `Fault` (422) naming the policy that failed.
   */
  async compile(policies: readonly Policy[], context: Partial<ExecutorContext> = {}): Promise<CompiledPolicySet> {
    const executorContext: ExecutorContext = { clock: this.#clock, ...context };
    const compiled: CompiledPolicy[] = [];
    for (const [index, policy] of policies.entries()) {
      if (!policy.enabled) continue;
      let matches: RequestPredicate;
      let executor: PolicyExecutor;
      try {
        matches = compileMatch(policy.match);
        executor = await this.#registry[policy.type](policy, executorContext);
      } catch (err) {
        const fault = Fault.from(err, 'err:frontline:config:invalid_configuration');
        throw new Fault('err:frontline:config:invalid_configuration', {
          publicMessage: fault.publicMessage,
          internalMessage: `policies[${index}] (${policy.id}): ${fault.internalMessage}`,
          errors: [{ location: `policies[${index}]`, message: fault.publicMessage }],
          cause: err,
        });
      }
      compiled.push({ id: policy.id, type: policy.type, matches, executor, tally: newTally(), published: newTally() });
    }
    return new CompiledPolicySet(compiled, this.#options.metrics);
  }
}

/** A compiled, immutable policy list. Share it across requests; `close()` when replaced. */
export class CompiledPolicySet {
  readonly #policies: readonly CompiledPolicy[];
  readonly #publish: (() => void) | undefined;
  #stopPublishing: (() => void) | undefined;

  /** Built by {@link PolicyEngine.compile}; with `metrics`, decisions are published as {@link POLICY_DECISIONS_METRIC}. */
  constructor(policies: readonly CompiledPolicy[], metrics?: Metrics) {
    this.#policies = policies;
    if (metrics !== undefined && policies.length > 0) {
      const decisions = metrics.counter(POLICY_DECISIONS_METRIC, 'Policy decisions by policy id, policy type and outcome (success, rejected, error, skipped).', ['policy', 'type', 'outcome']);
      // Per request only a number is incremented; the deltas reach prom-client when scraped.
      this.#publish = () => {
        for (const policy of policies) {
          for (const outcome of OUTCOMES) {
            const delta = policy.tally[outcome] - policy.published[outcome];
            if (delta === 0) continue;
            policy.published[outcome] = policy.tally[outcome];
            decisions.labels(policy.id, policy.type, outcome).inc(delta);
          }
        }
      };
      this.#stopPublishing = metrics.onCollect(POLICY_DECISIONS_METRIC, this.#publish);
    }
  }

  /** True when no enabled policy exists (a plain pass-through: `evaluate` can be skipped). */
  get empty(): boolean {
    return this.#policies.length === 0;
  }

  /** Ids of the enabled policies in execution order. */
  get policyIds(): string[] {
    return this.#policies.map((policy) => policy.id);
  }

  /**
   * Runs the policies for one request. Never throws: a rejection (or an executor's unexpected
   * error, as a 500 fault) is returned with the state gathered until then. Synchronous while every
   * executor is (firewall, in-process rate limits, KeyAuth on a cached key): a promise only from
   * the first executor that returns one. Called per request.
   */
  evaluate(request: RequestView, workspaceId: string): EvaluationResult | Promise<EvaluationResult> {
    const state: EvaluationState = {
      workspaceId,
      principal: undefined,
      rateLimit: undefined,
      log: { requestHeaders: false, responseHeaders: false, requestBody: false, responseBody: false, query: false },
    };
    return this.#runFrom(0, request, state);
  }

  /** Policies `from` onwards; returns a promise only once an executor returned one. */
  #runFrom(from: number, request: RequestView, state: EvaluationState): EvaluationResult | Promise<EvaluationResult> {
    const policies = this.#policies;
    for (let index = from; index < policies.length; index++) {
      const policy = policies[index]!;
      let pending: void | Promise<void>;
      try {
        if (!policy.matches(request)) continue;
        if (policy.executor.authenticates === true && state.principal !== undefined) {
          policy.tally.skipped++;
          continue;
        }
        pending = policy.executor.execute(request, state);
      } catch (err) {
        return rejected(policy, err, state);
      }
      if (pending !== undefined) {
        return pending.then(
          () => {
            policy.tally.success++;
            return this.#runFrom(index + 1, request, state);
          },
          (err: unknown) => rejected(policy, err, state),
        );
      }
      policy.tally.success++;
    }
    return { state, fault: undefined };
  }

  /** Stops what executors hold (JWKS fetchers). */
  close(): void {
    // The last decisions of a replaced set still count: publish them before letting go.
    this.#publish?.();
    this.#stopPublishing?.();
    this.#stopPublishing = undefined;
    for (const policy of this.#policies) policy.executor.close?.();
  }
}

/** The result of a policy that threw or rejected: its Fault, or a 500 for anything else; counted. */
function rejected(policy: CompiledPolicy, err: unknown, state: EvaluationState): EvaluationResult {
  const fault = err instanceof Fault
    ? err
    : new Fault('err:frontline:platform:internal_server_error', { internalMessage: `policy ${policy.id} failed: ${(err as Error)?.message}`, cause: err });
  if (fault.status >= 500) policy.tally.error++;
  else policy.tally.rejected++;
  return { state, fault };
}

function newTally(): Tally {
  return { success: 0, rejected: 0, error: 0, skipped: 0 };
}
