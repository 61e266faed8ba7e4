/** The public surface of keygate's configuration: load it, type it, print it safely. */
export { loadConfig, loadConfigTree, NON_CONFIG_ENV_VARS, TEST_ENV_PREFIX } from './load-config.ts';
export type { LoadConfigOptions } from './load-config.ts';
export { redactConfig } from './redact-config.ts';
export { configSchema } from './schema.ts';
export type { KeygateConfig } from './schema.ts';
export { configKeys, ENV_PREFIX } from './config-keys.ts';
export type { ConfigKey, ConfigKeyIndex } from './config-keys.ts';
export { field, isField, REDACTED, redactUrlPassword } from './field.ts';
export type { ConfigOf, ConfigTree, Field, FieldKind } from './field.ts';
