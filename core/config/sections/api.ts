/** The `api` section: settings of the key-management API service (`keygate api`). */
import { field } from '../field.ts';

/** `api.region`, `api.trustForwardedFor`. */
export const api = {
  region: field.string({
    description: 'Region name written into verification analytics events.',
    default: 'local',
  }),
  trustForwardedFor: field.boolean({
    description: 'Take the client IP for API IP allow-lists from the first X-Forwarded-For entry. Enable only behind a proxy that sets it; otherwise clients could claim any address.',
    default: false,
  }),
} as const;
