/**
 * `keys.updateCredits` (spec api.md §3.5): `set` (null = unlimited, which also clears the
 * refill), `increment`, `decrement` (floors at 0). Increment/decrement need a value and fail
 * with 400 on an unlimited key. Returns the credits after the change.
 *
 * Counter consistency: the credits counter (memory or Redis) is reset before the write, so
 * consumption not yet written back lands first, and after it, so the next verification reloads
 * the new value (core/credits README). The increment/decrement is one SQL statement, so two
 * concurrent calls never lose an update.
 */
import { Fault } from '../../../../core/fault.ts';
import { getKeyById, updateKey } from '../../../../core/db/queries/keys.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { integer, nullable, object, string } from '../../schema-builders.ts';
import { invalidateKeyHashes } from '../shared/invalidate.ts';
import { loadKeyOrNotFound } from '../shared/key-access.ts';
import { idSchema, keyCreditsResponseSchema, MAX_CREDITS } from '../shared/schemas.ts';
import { keyCreditsView } from '../shared/views.ts';

/** Body of `keys.updateCredits`. */
export interface UpdateCreditsBody {
  keyId: string;
  operation: 'set' | 'increment' | 'decrement';
  value?: number | null;
}

/** The `keys.updateCredits` endpoint. */
export const updateCreditsEndpoint = defineEndpoint<UpdateCreditsBody>({
  operationId: 'keys.updateCredits',
  summary: 'Set, increment or decrement the remaining credits of a key.',
  request: object(
    {
      keyId: idSchema(),
      operation: string({ enum: ['set', 'increment', 'decrement'] }),
      value: nullable(integer({ minimum: 0, maximum: MAX_CREDITS })),
    },
    ['keyId', 'operation'],
  ),
  response: keyCreditsResponseSchema,
  errorStatuses: [404],
  async handler({ body, principal, deps, audit }) {
    const { key } = await loadKeyOrNotFound(deps.db, principal, body.keyId, 'update_key');
    const value = body.value ?? null;
    if (body.operation !== 'set') {
      if (value === null) throw invalid(`value is required for ${body.operation}.`);
      if (key.remainingRequests === undefined) throw invalid(`Cannot ${body.operation} the credits of a key with unlimited credits; use set first.`);
    }
    await deps.usageLimiter.reset(key.id);
    const nowMs = deps.clock.nowMs();
    const updated = await deps.db.transaction(async (tx) => {
      let changed: boolean;
      if (body.operation === 'set') {
        // Unlimited credits cannot be refilled: the schedule goes with them.
        changed = await updateKey(tx, key.id, value === null ? { remainingRequests: null, refillAmount: null, refillDay: null } : { remainingRequests: value }, nowMs);
      } else {
        const delta = value!;
        const sql = body.operation === 'increment'
          ? 'UPDATE `keys` SET `remaining_requests` = `remaining_requests` + ?, `updated_at_m` = ? WHERE `id` = ? AND `deleted_at_m` IS NULL AND `remaining_requests` IS NOT NULL'
          : 'UPDATE `keys` SET `remaining_requests` = CASE WHEN `remaining_requests` > ? THEN `remaining_requests` - ? ELSE 0 END, `updated_at_m` = ? WHERE `id` = ? AND `deleted_at_m` IS NULL AND `remaining_requests` IS NOT NULL';
        const params = body.operation === 'increment' ? [delta, nowMs, key.id] : [delta, delta, nowMs, key.id];
        changed = (await tx.execute(sql, params)).affectedRows > 0;
      }
      if (!changed) throw body.operation === 'set' ? notFound.key() : invalid(`Cannot ${body.operation} the credits of a key with unlimited credits; use set first.`);
      const after = await getKeyById(tx, key.id);
      if (after === undefined) throw notFound.key();
      await deps.audit.write(tx, audit, [{
        event: 'key.update',
        description: `Credits of ${key.id}: ${body.operation}${value === null ? ' unlimited' : ` ${value}`}`,
        targets: [{ type: 'key', id: key.id }],
        meta: { operation: body.operation, value, remaining: after.remainingRequests ?? null },
      }]);
      return after;
    });
    await deps.usageLimiter.reset(key.id);
    // The cached entry decides whether credits apply at all (finite vs unlimited).
    await invalidateKeyHashes(deps, [key.hash]);
    return { data: keyCreditsView(updated) };
  },
});

function invalid(message: string): Fault {
  return Fault.expected('err:unkey:application:invalid_input', { publicMessage: message, errors: [] });
}
