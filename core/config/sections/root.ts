/** Top-level keys of the configuration (no section prefix): where local state lives. */
import { field } from '../field.ts';

/** Top-level keys: `dataDir` (env `KEYGATE_DATA_DIR`, flag `--data-dir`). */
export const root = {
  dataDir: field.path({
    description: 'Directory for local state: the SQLite database, vault files, certificates.',
    default: './.keygate',
  }),
} as const;
