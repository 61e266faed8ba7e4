/** The `log` section: how much the process logs. */
import { field } from '../field.ts';

/** Log levels, most to least severe; `silent` turns logging off. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** `log.level` (flag `--log-level`). */
export const log = {
  level: field.oneOf(LOG_LEVELS, {
    description: 'Minimum level written to the log.',
    default: 'info',
  }),
} as const;
