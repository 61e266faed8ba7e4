/**
 * The one home of the JSON Schemas shared by several endpoints (spec api.md §3, SDK models): ids,
 * permission slugs, rate limits, credits, meta, pagination, and the response shapes
 * `KeyResponseData`, `RatelimitResponse`, `Identity`, `Permission`, `Role`. Built with
 * `schema-builders.ts` so the same objects validate requests (compiled once at boot) and appear
 * in `GET /openapi.json`; response schemas only document.
 */
import { array, boolean, freeObject, integer, nullable, object, string, type JsonSchema } from '../../schema-builders.ts';

/** Upper bound of `expires` (year 2100, api.md §3.1), in Unix ms. */
export const MAX_EXPIRES_MS = 4_102_444_800_000;
/** Largest credit amount accepted (keeps values exact in JS numbers). */
export const MAX_CREDITS = Number.MAX_SAFE_INTEGER;
/** Page size bounds of list operations (api.md §2). */
export const MAX_LIST_LIMIT = 100;

/** An `xxx_…` id such as a key or API id. */
export const idSchema = (description?: string): JsonSchema =>
  string({ minLength: 3, maxLength: 255, pattern: '^[a-zA-Z0-9_]+$', ...(description === undefined ? {} : { description }) });

/** A permission slug (exact string; `*` is a literal character). */
export const permissionSlugSchema: JsonSchema = string({ minLength: 1, maxLength: 128, pattern: '^[a-zA-Z0-9_:\\-\\.\\*]+$' });

/** A role name (or `role_…` id where accepted). */
export const roleNameSchema: JsonSchema = string({ minLength: 1, maxLength: 128 });

/** Customer-chosen identity id. */
export const externalIdSchema: JsonSchema = string({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9_.\\-]+$' });

/** `meta`: a free-form object of at most 100 properties. */
export const metaSchema: JsonSchema = freeObject(100, { description: 'Free-form JSON object stored with the resource.' });

/** A rate limit to configure (RatelimitRequest). */
export const ratelimitRequestSchema: JsonSchema = object(
  {
    name: string({ minLength: 3, maxLength: 128 }),
    limit: integer({ minimum: 1, maximum: MAX_CREDITS }),
    duration: integer({ minimum: 1000, maximum: 2_592_000_000, description: 'Window in ms.' }),
    autoApply: boolean('Applied on every verification (cost 1) without being named.'),
  },
  ['name', 'limit', 'duration'],
);

/** A list of rate limits (full replacement by name on update). */
export const ratelimitListSchema: JsonSchema = array(ratelimitRequestSchema, { maxItems: 50 });

/** RatelimitResponse. */
export const ratelimitResponseSchema: JsonSchema = object(
  { id: string(), name: string(), limit: integer(), duration: integer(), autoApply: boolean() },
  ['id', 'name', 'limit', 'duration', 'autoApply'],
);

/** A refill schedule (KeyCreditsRefill). */
export const refillSchema: JsonSchema = object(
  {
    interval: string({ enum: ['daily', 'monthly'] }),
    amount: integer({ minimum: 1, maximum: MAX_CREDITS }),
    refillDay: integer({ minimum: 1, maximum: 31, description: 'Day of the month for monthly refills; on shorter months the last day.' }),
  },
  ['interval', 'amount'],
);

/** KeyCreditsData as input (createKey-like): `remaining` is a required key, null = unlimited. */
export const keyCreditsInputSchema: JsonSchema = object(
  { remaining: nullable(integer({ minimum: 0, maximum: MAX_CREDITS })), refill: refillSchema },
  ['remaining'],
);

/** KeyCreditsData as output: `remaining` always present (null = unlimited). */
export const keyCreditsResponseSchema: JsonSchema = object(
  { remaining: nullable(integer()), refill: refillSchema },
  ['remaining'],
);

/** Permission. */
export const permissionResponseSchema: JsonSchema = object(
  { id: string(), name: string(), slug: string(), description: string() },
  ['id', 'name', 'slug'],
);

/** Role. */
export const roleResponseSchema: JsonSchema = object(
  { id: string(), name: string(), description: string(), permissions: array(permissionResponseSchema) },
  ['id', 'name'],
);

/** Identity. */
export const identityResponseSchema: JsonSchema = object(
  { id: string(), externalId: string(), meta: freeObject(), ratelimits: array(ratelimitResponseSchema) },
  ['id', 'externalId'],
);

/** KeyResponseData (getKey, whoami, listKeys). Optional fields are omitted, never null. */
export const keyResponseDataSchema: JsonSchema = object(
  {
    keyId: string(), start: string(), enabled: boolean(), name: string(), meta: metaSchema,
    createdAt: integer(), updatedAt: integer(), lastUsedAt: integer(), expires: integer(),
    permissions: array(string()), roles: array(string()), credits: keyCreditsResponseSchema,
    identity: identityResponseSchema, plaintext: string(), ratelimits: array(ratelimitResponseSchema),
  },
  ['keyId', 'start', 'enabled', 'createdAt'],
);

/** The empty `data` of mutations that return nothing. */
export const emptySchema: JsonSchema = object({});

/** `limit` of a list request. */
export const listLimitSchema = (defaultLimit = 100): JsonSchema => ({ ...integer({ minimum: 1, maximum: MAX_LIST_LIMIT }), default: defaultLimit });

/** `cursor` of a list request: the id of the first item of the page. */
export const cursorSchema: JsonSchema = string({ minLength: 1, maxLength: 1024 });
