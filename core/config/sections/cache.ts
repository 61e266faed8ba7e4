/** The `cache` section: defaults for the stale-while-revalidate caches in front of the database. */
import { field } from '../field.ts';

/** `cache.freshMs`, `cache.staleMs`, `cache.maxEntries`: the reference's key-cache values. */
export const cache = {
  freshMs: field.durationMs({
    description: 'How long a cached entry is served without asking the database (reference: 10 s).',
    default: 10_000,
    min: 0,
  }),
  staleMs: field.durationMs({
    description: 'Until this age a cached entry is still served while it is refreshed in the background (reference: 10 min).',
    default: 600_000,
    min: 0,
  }),
  maxEntries: field.integer({
    description: 'Most entries one cache holds before evicting the least recently used (reference: 1,000,000).',
    default: 1_000_000,
    min: 1,
  }),
} as const;
