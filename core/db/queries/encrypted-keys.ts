/**
 * Encrypted copies of recoverable keys: the Vault ciphertext of the plaintext, stored next to
 * the key so getKey/listKeys with `decrypt` can return it (api.md §6).
 */
import type { Database, SqlRow } from '../database.ts';
import { placeholders, readNumber, readOptionalNumber } from './row-values.ts';

/** An encrypted key as stored. */
export interface EncryptedKey {
  keyId: string;
  workspaceId: string;
  /** Vault ciphertext, at most 1024 characters. */
  encrypted: string;
  /** Id of the Vault data key that encrypted it. */
  encryptionKeyId: string;
  createdAtMs: number;
  updatedAtMs?: number;
}

const SELECT = 'SELECT `key_id`, `workspace_id`, `encrypted`, `encryption_key_id`, `created_at_m`, `updated_at_m` FROM `encrypted_keys`';

/** Stores the ciphertext of a key; a second one for the same key fails with `database:conflict`. */
export async function insertEncryptedKey(db: Database, encryptedKey: Omit<EncryptedKey, 'updatedAtMs'>): Promise<void> {
  await db.execute(
    'INSERT INTO `encrypted_keys` (`key_id`, `workspace_id`, `encrypted`, `encryption_key_id`, `created_at_m`) VALUES (?, ?, ?, ?, ?)',
    [encryptedKey.keyId, encryptedKey.workspaceId, encryptedKey.encrypted, encryptedKey.encryptionKeyId, encryptedKey.createdAtMs],
  );
}

/** The ciphertext of one key in this workspace, or `undefined`. */
export async function getEncryptedKey(db: Database, workspaceId: string, keyId: string): Promise<EncryptedKey | undefined> {
  const rows = await db.query(`${SELECT} WHERE \`key_id\` = ? AND \`workspace_id\` = ?`, [keyId, workspaceId]);
  return rows[0] === undefined ? undefined : mapEncryptedKey(rows[0]);
}

/** The ciphertexts of several keys (listKeys with decrypt), by key id; keys without one are absent. */
export async function getEncryptedKeys(db: Database, workspaceId: string, keyIds: readonly string[]): Promise<Map<string, EncryptedKey>> {
  if (keyIds.length === 0) return new Map();
  const rows = await db.query(`${SELECT} WHERE \`workspace_id\` = ? AND \`key_id\` IN (${placeholders(keyIds.length)})`, [workspaceId, ...keyIds]);
  return new Map(rows.map((row) => [String(row.key_id), mapEncryptedKey(row)]));
}

function mapEncryptedKey(row: SqlRow): EncryptedKey {
  return {
    keyId: String(row.key_id),
    workspaceId: String(row.workspace_id),
    encrypted: String(row.encrypted),
    encryptionKeyId: String(row.encryption_key_id),
    createdAtMs: readNumber(row.created_at_m, 'encrypted_keys.created_at_m'),
    updatedAtMs: readOptionalNumber(row.updated_at_m, 'encrypted_keys.updated_at_m'),
  };
}
