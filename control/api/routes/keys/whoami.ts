/**
 * `keys.whoami` (spec api.md §1): like getKey, but the key is named by its plaintext (hashed
 * here, never stored or logged). Needs `read_key` on the key's API, else the 404 of a missing key.
 */
import { findKeyForVerification } from '../../../../core/db/queries/find-key-for-verification.ts';
import { hashKey } from '../../../../core/keys/key-hash.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { object, string } from '../../schema-builders.ts';
import { keyResponseDataSchema } from '../shared/schemas.ts';
import { authorizedKeyResponse } from './get-key.ts';

/** Body of `keys.whoami`. */
export interface WhoamiBody {
  key: string;
}

/** The `keys.whoami` endpoint. */
export const whoamiEndpoint = defineEndpoint<WhoamiBody>({
  operationId: 'keys.whoami',
  summary: 'Get a key by its plaintext.',
  request: object({ key: string({ minLength: 1, maxLength: 512 }) }, ['key']),
  response: keyResponseDataSchema,
  errorStatuses: [404],
  async handler(request) {
    // Read from the database, not the verification cache: this is a management read and must
    // show the key's current state.
    const row = await findKeyForVerification(request.deps.db, hashKey(request.body.key));
    if (row === undefined || row.key.forWorkspaceId !== undefined) throw notFound.key();
    return { data: await authorizedKeyResponse(request, row, false) };
  },
});
