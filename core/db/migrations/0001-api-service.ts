/**
 * Migration 1: the API service schema (spec api.md §9): workspaces and their limits, key spaces
 * (`key_auth`), APIs, keys, recoverable-key ciphertexts, key migrations, identities, rate limits,
 * rate-limit namespaces and overrides, permissions, roles and their joins, audit logs and a
 * local key-verification event table (the analytics sink when ClickHouse is not configured).
 *
 * Conventions: `pk` is an auto-increment surrogate key (InnoDB clusters rows by it, so inserts
 * append instead of splitting pages on random ids); `id` is the public id, unique and
 * case-sensitive; timestamps are Unix milliseconds in `*_at_m` bigint columns; soft deletes set
 * `deleted_at_m`. JSON lives in text columns and is parsed by the query layer.
 */
import { createTable, joinStatements, type ColumnDefinition, type Migration } from '../migration.ts';

const pk: ColumnDefinition = { name: 'pk', type: 'pk' };
const id: ColumnDefinition = { name: 'id', type: 'id' };
const workspaceId: ColumnDefinition = { name: 'workspace_id', type: 'id' };
const createdAt: ColumnDefinition = { name: 'created_at_m', type: 'bigint' };
const updatedAt: ColumnDefinition = { name: 'updated_at_m', type: 'bigint', nullable: true };
const deletedAt: ColumnDefinition = { name: 'deleted_at_m', type: 'bigint', nullable: true };
const toWorkspace = { columns: ['workspace_id'], table: 'workspaces', referencedColumns: ['id'], onDelete: 'CASCADE' } as const;

const workspaces = createTable({
  name: 'workspaces',
  columns: [
    pk, id,
    { name: 'org_id', type: 'varchar(256)', nullable: true },
    { name: 'name', type: 'varchar(256)' },
    { name: 'slug', type: 'varchar(256)', nullable: true },
    { name: 'enabled', type: 'bool', default: true },
    { name: 'delete_protection', type: 'bool', default: false },
    createdAt, updatedAt, deletedAt,
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['org_id'], unique: true }, { columns: ['slug'], unique: true }],
});

const limits = createTable({
  name: 'limits',
  columns: [
    workspaceId,
    // NULL = no throttle; 0 = every request is throttled (api.md §5.2).
    { name: 'api_requests_count_max_per_minute', type: 'int', nullable: true },
    createdAt, updatedAt,
  ],
  primaryKey: ['workspace_id'],
  foreignKeys: [toWorkspace],
});

const keyAuth = createTable({
  name: 'key_auth',
  columns: [
    pk, id, workspaceId,
    { name: 'store_encrypted_keys', type: 'bool', default: false },
    { name: 'default_prefix', type: 'varchar(16)', nullable: true },
    { name: 'default_bytes', type: 'int', nullable: true },
    createdAt, updatedAt, deletedAt,
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['workspace_id'] }],
  foreignKeys: [toWorkspace],
});

const apis = createTable({
  name: 'apis',
  columns: [
    pk, id, workspaceId,
    { name: 'name', type: 'varchar(256)' },
    // Comma-separated client IPs; NULL = no restriction.
    { name: 'ip_whitelist', type: 'varchar(512)', nullable: true },
    { name: 'auth_type', type: 'varchar(16)', default: 'key' },
    { name: 'key_auth_id', type: 'id' },
    { name: 'delete_protection', type: 'bool', default: false },
    createdAt, updatedAt, deletedAt,
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['key_auth_id'], unique: true }, { columns: ['workspace_id', 'deleted_at_m'] }],
  foreignKeys: [toWorkspace, { columns: ['key_auth_id'], table: 'key_auth', referencedColumns: ['id'], onDelete: 'CASCADE' }],
});

const identities = createTable({
  name: 'identities',
  columns: [
    pk, id, workspaceId,
    { name: 'external_id', type: 'varchar(255)' },
    { name: 'environment', type: 'varchar(256)', default: 'default' },
    { name: 'meta', type: 'json', nullable: true },
    createdAt, updatedAt, deletedAt,
    // 1 while live, NULL once deleted. The unique index below includes it, and NULLs never
    // collide, so one live identity per external id is enforced while any number of deleted
    // ones may remain (the reference's (workspace, external_id, deleted) allowed only one).
    { name: 'live', type: 'int', generatedAs: 'CASE WHEN `deleted_at_m` IS NULL THEN 1 ELSE NULL END' },
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['workspace_id', 'external_id', 'live'], unique: true }],
  foreignKeys: [toWorkspace],
});

const keys = createTable({
  name: 'keys',
  columns: [
    pk, id,
    { name: 'key_auth_id', type: 'id' },
    // base64(sha256(key)), 44 characters; longer for migrated hashes.
    { name: 'hash', type: 'varchar(256)' },
    { name: 'start', type: 'varchar(256)' },
    workspaceId,
    // Set only on root keys: the workspace the key may manage.
    { name: 'for_workspace_id', type: 'id', nullable: true },
    { name: 'name', type: 'varchar(256)', nullable: true },
    { name: 'identity_id', type: 'id', nullable: true },
    { name: 'meta', type: 'json', nullable: true },
    { name: 'expires_at_m', type: 'bigint', nullable: true },
    { name: 'enabled', type: 'bool', default: true },
    // NULL = unlimited credits.
    { name: 'remaining_requests', type: 'bigint', nullable: true },
    // NULL with refill_amount set = daily refill; 1..31 = monthly on that day.
    { name: 'refill_day', type: 'int', nullable: true },
    { name: 'refill_amount', type: 'bigint', nullable: true },
    { name: 'last_refill_at_m', type: 'bigint', nullable: true },
    { name: 'last_used_at_m', type: 'bigint', nullable: true },
    { name: 'pending_migration_id', type: 'varchar(256)', nullable: true },
    createdAt, updatedAt, deletedAt,
  ],
  indexes: [
    { columns: ['id'], unique: true },
    { columns: ['hash'], unique: true },
    { columns: ['key_auth_id', 'deleted_at_m', 'id'] },
    { columns: ['identity_id', 'key_auth_id', 'id'] },
    { columns: ['for_workspace_id'] },
    { columns: ['refill_amount', 'deleted_at_m'] },
    { columns: ['workspace_id'] },
  ],
  foreignKeys: [
    toWorkspace,
    { columns: ['key_auth_id'], table: 'key_auth', referencedColumns: ['id'], onDelete: 'CASCADE' },
    { columns: ['for_workspace_id'], table: 'workspaces', referencedColumns: ['id'], onDelete: 'CASCADE' },
    { columns: ['identity_id'], table: 'identities', referencedColumns: ['id'], onDelete: 'SET NULL' },
  ],
  checks: ['`refill_day` IS NULL OR (`refill_day` >= 1 AND `refill_day` <= 31)'],
});

const encryptedKeys = createTable({
  name: 'encrypted_keys',
  columns: [
    pk, workspaceId,
    { name: 'key_id', type: 'id' },
    { name: 'encrypted', type: 'varchar(1024)' },
    { name: 'encryption_key_id', type: 'varchar(256)' },
    createdAt, updatedAt,
  ],
  indexes: [{ columns: ['key_id'], unique: true }],
  foreignKeys: [toWorkspace, { columns: ['key_id'], table: 'keys', referencedColumns: ['id'], onDelete: 'CASCADE' }],
});

const keyMigrations = createTable({
  name: 'key_migrations',
  columns: [
    pk, id, workspaceId,
    // 'sha256' | 'github.com/seamapi/prefixed-api-key'
    { name: 'algorithm', type: 'varchar(64)' },
    createdAt,
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['workspace_id'] }],
  foreignKeys: [toWorkspace],
});

const ratelimits = createTable({
  name: 'ratelimits',
  columns: [
    pk, id, workspaceId,
    { name: 'key_id', type: 'id', nullable: true },
    { name: 'identity_id', type: 'id', nullable: true },
    { name: 'name', type: 'varchar(128)' },
    { name: 'limit', type: 'bigint' },
    { name: 'duration_ms', type: 'bigint' },
    { name: 'auto_apply', type: 'bool', default: false },
    createdAt, updatedAt,
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['key_id', 'name'], unique: true }, { columns: ['identity_id', 'name'], unique: true }],
  foreignKeys: [
    toWorkspace,
    { columns: ['key_id'], table: 'keys', referencedColumns: ['id'], onDelete: 'CASCADE' },
    { columns: ['identity_id'], table: 'identities', referencedColumns: ['id'], onDelete: 'CASCADE' },
  ],
  // A limit belongs to exactly one owner.
  checks: ['(`key_id` IS NULL) <> (`identity_id` IS NULL)'],
});

const ratelimitNamespaces = createTable({
  name: 'ratelimit_namespaces',
  columns: [pk, id, workspaceId, { name: 'name', type: 'varchar(512)' }, createdAt, updatedAt, deletedAt],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['workspace_id', 'name'], unique: true }],
  foreignKeys: [toWorkspace],
});

const ratelimitOverrides = createTable({
  name: 'ratelimit_overrides',
  columns: [
    pk, id, workspaceId,
    { name: 'namespace_id', type: 'id' },
    // Exact identifier, or a pattern where `*` matches any run of characters.
    { name: 'identifier', type: 'varchar(512)' },
    { name: 'limit', type: 'bigint' },
    { name: 'duration_ms', type: 'bigint' },
    createdAt, updatedAt, deletedAt,
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['namespace_id', 'identifier'], unique: true }],
  foreignKeys: [toWorkspace, { columns: ['namespace_id'], table: 'ratelimit_namespaces', referencedColumns: ['id'], onDelete: 'CASCADE' }],
});

const permissions = createTable({
  name: 'permissions',
  columns: [
    pk, id, workspaceId,
    { name: 'name', type: 'varchar(512)' },
    { name: 'slug', type: 'varchar(128)' },
    { name: 'description', type: 'varchar(512)', nullable: true },
    createdAt, updatedAt,
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['workspace_id', 'slug'], unique: true }],
  foreignKeys: [toWorkspace],
});

const roles = createTable({
  name: 'roles',
  columns: [
    pk, id, workspaceId,
    { name: 'name', type: 'varchar(128)' },
    { name: 'description', type: 'varchar(512)', nullable: true },
    createdAt, updatedAt,
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['workspace_id', 'name'], unique: true }],
  foreignKeys: [toWorkspace],
});

function joinTable(name: string, left: [string, string], right: [string, string]) {
  return createTable({
    name,
    columns: [{ name: left[0], type: 'id' }, { name: right[0], type: 'id' }, workspaceId, createdAt],
    primaryKey: [left[0], right[0]],
    indexes: [{ columns: [right[0]] }],
    foreignKeys: [
      { columns: [left[0]], table: left[1], referencedColumns: ['id'], onDelete: 'CASCADE' },
      { columns: [right[0]], table: right[1], referencedColumns: ['id'], onDelete: 'CASCADE' },
    ],
  });
}

const keysPermissions = joinTable('keys_permissions', ['key_id', 'keys'], ['permission_id', 'permissions']);
const keysRoles = joinTable('keys_roles', ['key_id', 'keys'], ['role_id', 'roles']);
const rolesPermissions = joinTable('roles_permissions', ['role_id', 'roles'], ['permission_id', 'permissions']);

// Append-only logs: no foreign keys, so history outlives what it describes.
const auditLogs = createTable({
  name: 'audit_logs',
  columns: [
    pk, id, workspaceId,
    { name: 'bucket', type: 'varchar(64)', default: 'unkey_mutations' },
    { name: 'source', type: 'varchar(64)', default: 'platform' },
    { name: 'event', type: 'varchar(128)' },
    { name: 'time', type: 'bigint' },
    { name: 'description', type: 'text' },
    { name: 'actor_type', type: 'varchar(64)' },
    { name: 'actor_id', type: 'varchar(256)' },
    { name: 'actor_name', type: 'varchar(256)', nullable: true },
    { name: 'actor_meta', type: 'json', nullable: true },
    { name: 'remote_ip', type: 'varchar(64)', nullable: true },
    { name: 'user_agent', type: 'text', nullable: true },
    { name: 'meta', type: 'json', nullable: true },
    { name: 'targets', type: 'json' },
    { name: 'correlation_id', type: 'varchar(64)', nullable: true },
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['workspace_id', 'time'] }, { columns: ['correlation_id'] }],
});

const keyVerifications = createTable({
  name: 'key_verifications',
  columns: [
    pk,
    { name: 'request_id', type: 'varchar(64)' },
    { name: 'time', type: 'bigint' },
    workspaceId,
    { name: 'key_space_id', type: 'id' },
    { name: 'key_id', type: 'id' },
    { name: 'identity_id', type: 'id', nullable: true },
    { name: 'external_id', type: 'varchar(255)', nullable: true },
    { name: 'outcome', type: 'varchar(32)' },
    { name: 'tags', type: 'json' },
    { name: 'spent_credits', type: 'bigint', default: 0 },
    { name: 'latency_ms', type: 'double' },
    { name: 'region', type: 'varchar(64)' },
  ],
  indexes: [{ columns: ['workspace_id', 'time'] }, { columns: ['workspace_id', 'key_space_id', 'time'] }, { columns: ['key_id', 'time'] }],
});

/** Migration 1. */
export const migration0001: Migration = {
  version: 1,
  name: 'api-service',
  // Order matters: a table comes after every table its foreign keys point to.
  statements: joinStatements([
    workspaces, limits, keyAuth, apis, identities, keys, encryptedKeys, keyMigrations, ratelimits,
    ratelimitNamespaces, ratelimitOverrides, permissions, roles, keysPermissions, keysRoles,
    rolesPermissions, auditLogs, keyVerifications,
  ]),
};
