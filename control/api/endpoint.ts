/**
 * `defineEndpoint`: one API operation, declared once. Its request schema validates bodies and,
 * with its response schema, generates `GET /openapi.json`; its handler gets an {@link ApiRequest}
 * (validated body, authenticated principal, dependencies) and returns the `data` of the
 * envelope (plus `pagination` for lists). `api-service.ts` registers it at `POST /v2/<operationId>`.
 */
import type { RequestContext } from '../../core/http/request-context.ts';
import type { Page } from '../../core/db/queries/row-values.ts';
import type { AuditContext } from './audit-log.ts';
import type { ApiDependencies } from './dependencies.ts';
import type { RootKeyPrincipal } from './root-key-auth.ts';
import type { JsonSchema } from './schema-builders.ts';

/** `pagination` of a list response: `hasMore` always, `cursor` only when there is more (api.md §2). */
export interface Pagination {
  hasMore: boolean;
  cursor?: string;
}

/** What a handler returns; the service wraps it in `{meta:{requestId}, data, pagination?}`. */
export interface EndpointResult {
  data: unknown;
  pagination?: Pagination;
}

/** One request as a handler sees it. Built per request by the API service. */
export interface ApiRequest<Body = unknown> {
  /** The body, already validated against the endpoint's request schema. */
  readonly body: Body;
  /** The authenticated root key (scopes every read and write to `principal.workspaceId`). */
  readonly principal: RootKeyPrincipal;
  readonly deps: ApiDependencies;
  readonly requestId: string;
  /** The kernel's context: headers, remote address, abort signal, logger. */
  readonly ctx: RequestContext;
  /** Actor, workspace and correlation id for audit events of this request. */
  readonly audit: AuditContext;
  /** The client's IP: first `X-Forwarded-For` entry when the config trusts it, else the socket peer. */
  readonly clientIp: string;
}

/** The declaration of one operation. */
export interface Endpoint<Body = unknown> {
  /** `<service>.<procedure>`, e.g. `keys.createKey`; the route is `POST /v2/<operationId>`. */
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  /** Request body schema (closed objects, built with `schema-builders.ts`). */
  readonly request: JsonSchema;
  /** Schema of `data` in a 200 response. */
  readonly response: JsonSchema;
  /** True for list operations: the 200 body also carries `pagination`. */
  readonly paginated?: boolean;
  /** `rootKey`: Bearer root key required (the default and only kind of auth today). */
  readonly auth?: 'rootKey';
  /** Error statuses this operation can answer besides 400/401/403/500 (for the OpenAPI document). */
  readonly errorStatuses?: readonly number[];
  /**
   * Runs the operation. Returns the result directly when it needed no wait (keys.verifyKey of a
   * cached key), else a promise; throws or rejects with a `Fault` for an error answer.
   */
  handler(request: ApiRequest<Body>): EndpointResult | Promise<EndpointResult>;
}

/** Declares an endpoint (identity function that fixes the body type). Called once per endpoint at module load. */
export function defineEndpoint<Body>(endpoint: Endpoint<Body>): Endpoint<Body> {
  return endpoint;
}

/** The `{data, pagination}` of a list handler from a query-layer page: `cursor` only when there is more. */
export function paginated<T, R>(page: Page<T>, map: (item: T) => R): EndpointResult {
  const pagination: Pagination = { hasMore: page.nextCursor !== undefined };
  if (page.nextCursor !== undefined) pagination.cursor = page.nextCursor;
  return { data: page.items.map(map), pagination };
}
