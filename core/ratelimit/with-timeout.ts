/**
 * A deadline for one call to a shared store (Redis), so a slow or unreachable store turns into a
 * prompt, coded failure that the caller's failure mode can handle instead of a hung request.
 */
import { Fault } from '../fault.ts';

/**
 * Resolves like `promise`, or rejects with `Fault(service_unavailable, retryable)` after
 * `timeoutMs`. The timer is always cleared. The underlying operation is not cancelled: a late
 * Redis write may still land, which only ever errs on the side of counting more.
 */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new Fault('err:unkey:application:service_unavailable', {
          source: 'upstream',
          retryable: true,
          internalMessage: `the store did not answer within ${timeoutMs} ms`,
        }),
      );
    }, timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
