/**
 * Builds the OpenAPI 3.1 document of the API from the endpoint list, so `GET /openapi.json`
 * always describes exactly the schemas the server validates with. Built once at boot.
 */
import type { Endpoint } from './endpoint.ts';
import type { JsonSchema } from './schema-builders.ts';

const ERROR_TITLES: Record<number, string> = {
  400: 'Bad request: the body failed validation, or the Authorization header is missing or malformed.',
  401: 'Unauthorized: the root key is unknown.',
  403: 'Forbidden: the root key is disabled, expired, or lacks a permission.',
  404: 'Not found (also when the root key may not know the resource exists).',
  409: 'Conflict: the resource already exists.',
  410: 'Gone: the resource was deleted.',
  412: 'Precondition failed.',
  429: 'Too many requests for this workspace.',
  500: 'Internal error.',
};

const META_SCHEMA: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['requestId'],
  properties: { requestId: { type: 'string', description: 'Id of this request (`req_…`); quote it when reporting a problem.' } },
};

const PAGINATION_SCHEMA: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['hasMore'],
  properties: { hasMore: { type: 'boolean' }, cursor: { type: 'string', description: 'Present only when hasMore: pass it back to get the next page.' } },
};

const ERROR_SCHEMA: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['meta', 'error'],
  properties: {
    meta: { $ref: '#/components/schemas/Meta' },
    error: {
      type: 'object', additionalProperties: false, required: ['title', 'detail', 'status', 'type'],
      properties: {
        title: { type: 'string' }, detail: { type: 'string' }, status: { type: 'integer' }, type: { type: 'string' },
        errors: { type: 'array', items: { type: 'object', required: ['location', 'message'], properties: { location: { type: 'string' }, message: { type: 'string' }, fix: { type: 'string' } } } },
      },
    },
  },
};

/** Options of {@link buildOpenApiDocument}. */
export interface OpenApiOptions {
  title?: string;
  version?: string;
  serverUrl?: string;
}

/** The OpenAPI document for `endpoints` (plain JSON). */
export function buildOpenApiDocument(endpoints: readonly Endpoint[], options: OpenApiOptions = {}): Record<string, unknown> {
  const paths: Record<string, unknown> = {
    '/v2/liveness': {
      get: {
        operationId: 'liveness', summary: 'Liveness probe: 200 while serving, 503 while draining.', security: [],
        responses: {
          200: { description: 'Serving.', content: { 'application/json': { schema: envelope({ type: 'object', required: ['message'], properties: { message: { type: 'string' } } }, false) } } },
          503: { description: 'Draining.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        },
      },
    },
  };
  for (const endpoint of endpoints) {
    const responses: Record<string, unknown> = {
      200: { description: 'Success.', content: { 'application/json': { schema: envelope(endpoint.response, endpoint.paginated === true) } } },
    };
    for (const status of [400, 401, 403, ...(endpoint.errorStatuses ?? []), 500]) {
      responses[String(status)] = { description: ERROR_TITLES[status] ?? 'Error.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    }
    paths[`/v2/${endpoint.operationId}`] = {
      post: {
        operationId: endpoint.operationId,
        summary: endpoint.summary,
        ...(endpoint.description === undefined ? {} : { description: endpoint.description }),
        tags: [endpoint.operationId.split('.')[0]],
        requestBody: { required: true, content: { 'application/json': { schema: endpoint.request } } },
        responses,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: options.title ?? 'keygate API', version: options.version ?? '2.0.0' },
    ...(options.serverUrl === undefined ? {} : { servers: [{ url: options.serverUrl }] }),
    security: [{ rootKey: [] }],
    paths,
    components: {
      securitySchemes: { rootKey: { type: 'http', scheme: 'bearer', description: 'A root key: `Authorization: Bearer <root key>`.' } },
      schemas: { Meta: META_SCHEMA, Pagination: PAGINATION_SCHEMA, Error: ERROR_SCHEMA },
    },
  };
}

function envelope(data: JsonSchema, paginated: boolean): JsonSchema {
  const properties: Record<string, JsonSchema> = { meta: { $ref: '#/components/schemas/Meta' }, data };
  const required = ['meta', 'data'];
  if (paginated) {
    properties['pagination'] = { $ref: '#/components/schemas/Pagination' };
    required.push('pagination');
  }
  return { type: 'object', additionalProperties: false, required, properties };
}
