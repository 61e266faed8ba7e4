/**
 * The whole configuration schema, assembled from one file per section under `sections/`.
 * To add a section: create `sections/<name>.ts` exporting `const <name> = { key: field.…(…) }`
 * and add it below (one import, one entry). Its keys are then read from the file
 * (`{"<name>": {"someKey": …}}`), the environment (`KEYGATE_<NAME>_SOME_KEY`) and flags
 * (`--<name>-some-key`), and typed in `KeygateConfig`.
 */
import type { ConfigOf } from './field.ts';
import { analytics } from './sections/analytics.ts';
import { api } from './sections/api.ts';
import { cache } from './sections/cache.ts';
import { db } from './sections/db.ts';
import { frontline } from './sections/frontline.ts';
import { gossip } from './sections/gossip.ts';
import { log } from './sections/log.ts';
import { redis } from './sections/redis.ts';
import { root } from './sections/root.ts';
import { sentinel } from './sections/sentinel.ts';
import { server } from './sections/server.ts';
import { vault } from './sections/vault.ts';

/** The schema tree: top-level keys first, then one entry per section. */
export const configSchema = {
  ...root,
  server,
  db,
  redis,
  cache,
  log,
  vault,
  gossip,
  frontline,
  sentinel,
  api,
  analytics,
} as const;

/** The typed, frozen configuration `loadConfig` returns; derived from {@link configSchema}. */
export type KeygateConfig = ConfigOf<typeof configSchema>;
