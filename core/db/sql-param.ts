/**
 * Parameter normalisation shared by both engines, so that the same call binds the same values
 * on SQLite and MySQL.
 */
import { Fault } from '../fault.ts';
import type { SqlParam } from './database.ts';

/** A parameter after normalisation: what both drivers accept unchanged. */
export type BoundParam = string | number | bigint | null | Uint8Array;

/**
 * Maps booleans to 1/0 and `undefined` to NULL; rejects objects, arrays, dates and non-finite
 * numbers with `err:unkey:application:assertion_failed` (a programming error, not user input).
 * Called once per statement.
 */
export function normalizeParams(params: readonly SqlParam[] | undefined): BoundParam[] {
  if (params === undefined || params.length === 0) return [];
  const bound = new Array<BoundParam>(params.length);
  for (let index = 0; index < params.length; index++) {
    bound[index] = normalizeParam(params[index], index);
  }
  return bound;
}

function normalizeParam(value: unknown, index: number): BoundParam {
  switch (typeof value) {
    case 'string':
    case 'bigint':
      return value;
    case 'number':
      if (Number.isFinite(value)) return value;
      break;
    case 'boolean':
      return value ? 1 : 0;
    case 'undefined':
      return null;
    case 'object':
      if (value === null) return null;
      if (value instanceof Uint8Array) return value;
      break;
  }
  throw new Fault('err:unkey:application:assertion_failed', {
    internalMessage: `SQL parameter ${index + 1} has an unsupported type (${describe(value)}); serialise it first`,
  });
}

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'Date';
  return typeof value;
}
