/**
 * `DatabaseKeySpaceResolver`: resolves the key spaces and APIs a KeyAuth policy names from the
 * database (`key_auth` and `apis` rows that are not deleted). Called when a policy set is
 * compiled, not per request.
 */
import type { Database } from '../../../../core/db/database.ts';
import type { KeySpaceResolver, KeySpaceTarget } from './keyauth-executor.ts';

/** {@link KeySpaceResolver} over the keygate schema. */
export class DatabaseKeySpaceResolver implements KeySpaceResolver {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  async keySpace(keySpaceId: string): Promise<KeySpaceTarget | undefined> {
    const rows = await this.#db.query<{ id: string; workspace_id: string }>('SELECT id, workspace_id FROM key_auth WHERE id = ? AND deleted_at_m IS NULL', [keySpaceId]);
    const row = rows[0];
    return row === undefined ? undefined : { workspaceId: row.workspace_id, keySpaceId: row.id };
  }

  async api(apiId: string): Promise<KeySpaceTarget | undefined> {
    const rows = await this.#db.query<{ workspace_id: string; key_auth_id: string | null }>('SELECT workspace_id, key_auth_id FROM apis WHERE id = ? AND deleted_at_m IS NULL', [apiId]);
    const row = rows[0];
    return row === undefined || row.key_auth_id === null ? undefined : { workspaceId: row.workspace_id, keySpaceId: row.key_auth_id };
  }
}
