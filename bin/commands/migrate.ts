/**
 * `keygate migrate`: brings a database (SQLite file or MySQL/MariaDB) to the latest schema.
 * Idempotent: a second run applies nothing and says so.
 */
import { configKeys } from '../../core/config/config-keys.ts';
import { redactUrlPassword } from '../../core/config/field.ts';
import { EXIT_CODES } from '../command.ts';
import type { Command } from '../command.ts';
import { contractOptions, loadCommandConfig } from '../command-config.ts';

/** The `migrate` command: `keygate migrate [--db URL] [--config FILE] [--data-dir DIR]`. */
export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'bring the database to the latest schema (safe to run again)',
  usage: 'keygate migrate [--db URL] [--config FILE] [--data-dir DIR]',
  details: 'The database is --db, else db.url from KEYGATE_DB_URL or the config file, else\n'
    + '<data-dir>/keygate.db. Prints each migration applied, or "already up to date".',
  options: contractOptions('db', 'config', 'data-dir'),
  async run(args, io) {
    const config = loadCommandConfig(args, io);
    // Relative SQLite paths mean relative to where the command runs, whatever the engine's own default.
    const url = configKeys().byKey.get('db.url')!.field.resolveRelative(config.db.url, io.cwd) as string;
    // Loaded on demand so that `--help` and `version` never load the database drivers.
    const { openDatabase } = await import('../../core/db/database.ts');
    const { migrate } = await import('../../core/db/migrate.ts');
    io.stdout(`migrating ${redactUrlPassword(url)}\n`);
    const db = await openDatabase(url);
    try {
      const { applied } = await migrate(db);
      if (applied.length === 0) io.stdout('already up to date\n');
      for (const name of applied) io.stdout(`applied ${name}\n`);
    } finally {
      await db.close();
    }
    return EXIT_CODES.success;
  },
};
