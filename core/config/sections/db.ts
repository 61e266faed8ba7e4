/** The `db` section: which database holds the platform's state. */
import { join } from 'node:path';
import { field } from '../field.ts';

/** Name of the SQLite file created in the data directory when no database URL is given. */
export const DEFAULT_SQLITE_FILE_NAME = 'keygate.db';

/** `db.url` (flag `--db`); defaults to `<dataDir>/keygate.db`. */
export const db = {
  url: field.databaseUrl({
    description: 'A SQLite file path, sqlite:PATH, :memory:, or mysql://user:pass@host:port/db (add ?socket=/path for a Unix socket). Default: keygate.db in the data directory.',
    default: (read) => join(String(read('dataDir')), DEFAULT_SQLITE_FILE_NAME),
    flagAliases: ['db'],
  }),
} as const;
