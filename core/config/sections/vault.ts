/** The `vault` section: the envelope-encryption service (`keygate vault`) and how roles reach it. */
import { join } from 'node:path';
import { field } from '../field.ts';

/** Name of the vault's directory inside the data directory when `vault.storage` is not set. */
export const DEFAULT_VAULT_DIRECTORY_NAME = 'vault';

/**
 * `vault.*` keys: master keys, the bearer token, where DEKs are stored (a directory, or
 * `s3://bucket[/prefix]` with `vault.s3.*`), the listen port, and cache windows.
 */
export const vault = {
  masterKeys: field.stringList({
    description: 'Master keys (KEKs) as printed by "keygate vault keygen"; the first is current, the others only unwrap (for rotation).',
    secret: true,
  }),
  bearerToken: field.secret({
    description: 'Token callers must send as "Authorization: Bearer <token>" to the vault service.',
  }),
  storage: field.string({
    description: 'Where data keys are stored: a directory, or s3://bucket[/prefix] (see vault.s3.*). Default: vault in the data directory.',
    default: (read) => join(String(read('dataDir')), DEFAULT_VAULT_DIRECTORY_NAME),
  }),
  port: field.integer({
    description: 'TCP port "keygate vault" listens on (--port overrides it); 8060 is the reference vault port.',
    default: 8060,
    min: 0,
    max: 65535,
  }),
  url: field.url({
    description: 'Base URL of a remote vault (http://host:8060) for other roles; unset means they run the vault in-process.',
    protocols: ['http:', 'https:'],
  }),
  latestFreshMs: field.durationMs({
    description: 'How long a keyring\'s current data key is used before storage is checked for a newer one (keys rolled on other nodes).',
    default: 60_000,
    min: 0,
  }),
  maxCachedKeys: field.integer({
    description: 'Most data keys held in memory.',
    default: 10_000,
    min: 1,
  }),
  requestTimeoutMs: field.durationMs({
    description: 'Deadline of one vault call: the server\'s handler deadline and the remote client\'s timeout.',
    default: 5_000,
    min: 1,
  }),
  s3: {
    endpoint: field.url({
      description: 'S3-compatible endpoint (http://127.0.0.1:9000 for MinIO); unset means AWS.',
      protocols: ['http:', 'https:'],
    }),
    region: field.string({ description: 'S3 region; "auto" suits R2, MinIO and most others.', default: 'auto' }),
    accessKeyId: field.string({ description: 'S3 access key id.' }),
    secretAccessKey: field.secret({ description: 'S3 secret access key.' }),
    createBucket: field.boolean({ description: 'Create the bucket at start-up if it does not exist.', default: false }),
  },
} as const;
