/**
 * `apiErrorBody`: the API's error envelope (spec api.md §4.1), the kernel's default
 * {@link ErrorBodyBuilder}:
 * `{"meta":{"requestId"},"error":{"title","detail","status","type","errors"?}}`.
 */
import { Fault } from '../fault.ts';
import type { ErrorReply } from './interface.ts';

/**
 * Builds the envelope for `fault`. `detail` joins the public messages along the fault's chain of
 * causes (internal messages never appear); `errors` is present only on 400 bodies, `[]` when the
 * fault carries none. Called once per failed request.
 */
export function apiErrorBody(fault: Fault, requestId: string): ErrorReply {
  const status = fault.status;
  const error: { title: string; detail: string; status: number; type: string; errors?: readonly unknown[] } = {
    title: fault.title,
    detail: publicDetail(fault),
    status,
    type: fault.type,
  };
  if (status === 400) error.errors = fault.errors ?? [];
  return { status, body: { meta: { requestId }, error } };
}

/** The public messages of `fault` and of the faults it wraps, joined with ": " (duplicates skipped). */
export function publicDetail(fault: Fault): string {
  let detail = fault.publicMessage;
  let cause = fault.cause;
  // Bounded: a cause chain is short, but a cycle must not hang the error path.
  for (let depth = 0; depth < 8 && cause instanceof Fault; depth++) {
    if (!detail.includes(cause.publicMessage)) detail += ': ' + cause.publicMessage;
    cause = cause.cause;
  }
  return detail;
}
