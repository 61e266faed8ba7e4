/**
 * Every endpoint the API service serves, in the order of the OpenAPI document. To add one: write
 * `routes/<service>/<procedure>.ts` exporting `<procedure>Endpoint` (see `endpoint.ts`) and add
 * one import and one entry here.
 */
import type { Endpoint } from '../endpoint.ts';
import { createApiEndpoint } from './apis/create-api.ts';
import { getApiEndpoint } from './apis/get-api.ts';
import { createKeyEndpoint } from './keys/create-key.ts';
import { getKeyEndpoint } from './keys/get-key.ts';
import { verifyKeyEndpoint } from './keys/verify-key.ts';
import { whoamiEndpoint } from './keys/whoami.ts';
import { managementEndpoints } from './management-endpoints.ts';

/** The served endpoints. */
export const apiEndpoints: readonly Endpoint[] = [
  // apis
  createApiEndpoint,
  getApiEndpoint,
  // keys
  createKeyEndpoint,
  verifyKeyEndpoint,
  getKeyEndpoint,
  whoamiEndpoint,
  // keys (management), apis.listKeys/deleteApi, identities, permissions, ratelimit
  ...managementEndpoints,
];
