/**
 * The typed data-access layer in one import: plain functions that take a `Database` (or a
 * transaction handle) and return typed rows with booleans, numbers, parsed JSON and `undefined`
 * for absent values.
 */
export * from './apis.ts';
export * from './audit-logs.ts';
export * from './encrypted-keys.ts';
export * from './find-key-for-verification.ts';
export * from './identities.ts';
export * from './key-migrations.ts';
export * from './key-spaces.ts';
export * from './key-verifications.ts';
export * from './keys.ts';
export * from './permissions.ts';
export * from './ratelimit-namespaces.ts';
export * from './ratelimit-overrides.ts';
export * from './ratelimits.ts';
export * from './roles.ts';
export * from './workspaces.ts';
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_ROWS_PER_INSERT, type JsonObject, type Page } from './row-values.ts';
