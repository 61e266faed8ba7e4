/** Shared helpers of the executor tests: a request view and a fresh evaluation state. */
import { Fault } from '../../../../core/fault.ts';
import type { EvaluationState } from '../../../../proxy/sentinel/policy-executor.ts';
import { RequestView } from '../../../../proxy/sentinel/request-view.ts';
import type { GatewayRequestSource } from '../../../../proxy/sentinel/request-view.ts';

/** A request view over `url` with lower-case `headers`. */
export function requestView(url: string, headers: Record<string, string> = {}, extra: Partial<GatewayRequestSource> = {}): RequestView {
  return new RequestView({ requestId: 'req_test', method: 'GET', url, headers, clientIp: '203.0.113.7', ...extra });
}

/** A fresh state for workspace `ws_test`. */
export function freshState(): EvaluationState {
  return { workspaceId: 'ws_test', principal: undefined, rateLimit: undefined, log: { requestHeaders: false, responseHeaders: false, requestBody: false, responseBody: false, query: false } };
}

/** Runs `run` and returns the Fault it threw or rejected with (fails when none). */
export async function rejection(run: () => unknown): Promise<Fault> {
  try {
    await run();
  } catch (err) {
    if (err instanceof Fault) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}
