/**
 * The endpoint matrix (API issue acceptance: "every endpoint has tests for success, bad input,
 * missing/invalid root key, insufficient permission and not found"). It iterates over EVERY
 * endpoint of `routes/index.ts`; each needs one row below (a valid body built from fixtures
 * seeded fresh for it, how it answers a root key without permissions, and its not-found cases),
 * so a new endpoint without a row fails the suite. Required fields and property types come from
 * the endpoint's own request schema.
 *
 * Per endpoint it checks: a valid request → 200 with the closed envelope, a `req_` + 9 request id
 * and `data` matching the endpoint's response schema; an unknown field, each missing required
 * field, each property with a wrong type and a body of the wrong type → 400 invalid_input with
 * errors[]; no Authorization → 400; a non-Bearer scheme → 400; `Bearer <unknown>` → 401
 * key_not_found, and a normal key as bearer → the identical 401; a root key without permissions
 * → 403 insufficient_permissions, or for endpoints that mask existence the 404 of a missing
 * resource, byte for byte except the request id (verifyKey: its 200 NOT_FOUND, identically);
 * the admin root key of another workspace → the same answer as for a missing resource; each
 * not-found target → 404 with the resource's code; a bad body with a bad token → 400
 * (validation precedes authentication).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Ajv } from 'ajv';
import t, { type Test } from 'tap';
import { insertKeyMigration } from '../../../core/db/queries/key-migrations.ts';
import { insertPermission } from '../../../core/db/queries/permissions.ts';
import { upsertRatelimitOverride } from '../../../core/db/queries/ratelimit-overrides.ts';
import { insertRatelimitNamespace } from '../../../core/db/queries/ratelimit-namespaces.ts';
import { insertRole } from '../../../core/db/queries/roles.ts';
import { faultTypeUrl } from '../../../core/fault.ts';
import { newId } from '../../../core/id.ts';
import { apiEndpoints } from '../../../control/api/routes/index.ts';
import type { JsonSchema } from '../../../control/api/schema-builders.ts';
import { startApiHarness, type ApiCallResult, type ApiHarness } from '../../helpers/api-harness.ts';

/** Resources seeded fresh for each endpoint (mutations may consume them), in the harness workspace. */
interface Fixtures {
  apiId: string;
  keyId: string;
  /** Plaintext of a normal (non-root) key of `apiId`, owned by the identity. */
  key: string;
  identityId: string;
  externalId: string;
  permissionId: string;
  permissionSlug: string;
  roleId: string;
  roleName: string;
  namespaceName: string;
  namespaceId: string;
  /** Identifier of an override in the namespace. */
  overrideIdentifier: string;
  migrationId: string;
  /** Unique per fixture set, for names that must be new. */
  suffix: string;
}

/** A body that addresses something missing, and the 404 code it must produce. */
interface NotFoundCase {
  name: string;
  body: (fixtures: Fixtures) => unknown;
  code: string;
}

/** One endpoint's row of the matrix. */
interface Row {
  valid: (fixtures: Fixtures) => unknown;
  /**
   * How a root key without permissions is answered: `forbidden` (403, a collection-level right),
   * `masked` (the identical 404 of the first not-found case), `verify` (verifyKey's 200 NOT_FOUND).
   */
  denied: 'forbidden' | 'masked' | 'verify';
  /** Not-found cases; empty for endpoints that address nothing that can be missing. */
  notFound: NotFoundCase[];
}

const missingApi = (body: (fixtures: Fixtures) => unknown): NotFoundCase => ({ name: 'a missing API', code: 'err:unkey:data:api_not_found', body });
const missingKey = (body: (fixtures: Fixtures) => unknown): NotFoundCase => ({ name: 'a missing key', code: 'err:unkey:data:key_not_found', body });
const missingIdentity = (body: (fixtures: Fixtures) => unknown): NotFoundCase => ({ name: 'a missing identity', code: 'err:unkey:data:identity_not_found', body });
const missingPermission = (body: (fixtures: Fixtures) => unknown): NotFoundCase => ({ name: 'a missing permission', code: 'err:unkey:data:permission_not_found', body });
const missingRole = (body: (fixtures: Fixtures) => unknown): NotFoundCase => ({ name: 'a missing role', code: 'err:unkey:data:role_not_found', body });
const missingNamespace = (body: (fixtures: Fixtures) => unknown): NotFoundCase => ({ name: 'a missing namespace', code: 'err:unkey:data:ratelimit_namespace_not_found', body });
const missingOverride = (body: (fixtures: Fixtures) => unknown): NotFoundCase => ({ name: 'a missing override', code: 'err:unkey:data:ratelimit_override_not_found', body });

/** Ids with the right shape that were never issued. */
const NO_API = 'api_doesNotExist0000';
const NO_KEY = 'key_doesNotExist0000';
const NO_ROLE = 'role_doesNotExist000';

/** The matrix: one row per operation id of `routes/index.ts`. */
const ROWS: Record<string, Row> = {
  'apis.createApi': { valid: () => ({ name: 'matrix api' }), denied: 'forbidden', notFound: [] },
  'apis.getApi': { valid: (f) => ({ apiId: f.apiId }), denied: 'masked', notFound: [missingApi(() => ({ apiId: NO_API }))] },
  'apis.listKeys': { valid: (f) => ({ apiId: f.apiId }), denied: 'masked', notFound: [missingApi(() => ({ apiId: NO_API }))] },
  'apis.deleteApi': { valid: (f) => ({ apiId: f.apiId }), denied: 'masked', notFound: [missingApi(() => ({ apiId: NO_API }))] },

  'keys.createKey': { valid: (f) => ({ apiId: f.apiId, prefix: 'mx' }), denied: 'masked', notFound: [missingApi(() => ({ apiId: NO_API }))] },
  'keys.verifyKey': { valid: (f) => ({ key: f.key }), denied: 'verify', notFound: [] },
  'keys.getKey': { valid: (f) => ({ keyId: f.keyId }), denied: 'masked', notFound: [missingKey(() => ({ keyId: NO_KEY }))] },
  'keys.whoami': { valid: (f) => ({ key: f.key }), denied: 'masked', notFound: [missingKey(() => ({ key: 'mx_neverIssuedKeyValue' }))] },
  'keys.updateKey': { valid: (f) => ({ keyId: f.keyId, name: 'renamed' }), denied: 'masked', notFound: [missingKey(() => ({ keyId: NO_KEY, name: 'renamed' }))] },
  'keys.deleteKey': { valid: (f) => ({ keyId: f.keyId }), denied: 'masked', notFound: [missingKey(() => ({ keyId: NO_KEY }))] },
  'keys.updateCredits': {
    valid: (f) => ({ keyId: f.keyId, operation: 'set', value: 5 }), denied: 'masked',
    notFound: [missingKey(() => ({ keyId: NO_KEY, operation: 'set', value: 5 }))],
  },
  'keys.addPermissions': {
    valid: (f) => ({ keyId: f.keyId, permissions: [f.permissionSlug] }), denied: 'masked',
    notFound: [missingKey((f) => ({ keyId: NO_KEY, permissions: [f.permissionSlug] }))],
  },
  'keys.removePermissions': {
    valid: (f) => ({ keyId: f.keyId, permissions: [f.permissionSlug] }), denied: 'masked',
    notFound: [
      missingKey((f) => ({ keyId: NO_KEY, permissions: [f.permissionSlug] })),
      missingPermission((f) => ({ keyId: f.keyId, permissions: ['never.created'] })),
    ],
  },
  'keys.setPermissions': {
    valid: (f) => ({ keyId: f.keyId, permissions: [f.permissionSlug] }), denied: 'masked',
    notFound: [missingKey((f) => ({ keyId: NO_KEY, permissions: [f.permissionSlug] }))],
  },
  'keys.addRoles': {
    valid: (f) => ({ keyId: f.keyId, roles: [f.roleName] }), denied: 'masked',
    notFound: [missingKey((f) => ({ keyId: NO_KEY, roles: [f.roleName] })), missingRole((f) => ({ keyId: f.keyId, roles: ['never_created_role'] }))],
  },
  'keys.removeRoles': {
    valid: (f) => ({ keyId: f.keyId, roles: [f.roleName] }), denied: 'masked',
    notFound: [missingKey((f) => ({ keyId: NO_KEY, roles: [f.roleName] })), missingRole((f) => ({ keyId: f.keyId, roles: ['never_created_role'] }))],
  },
  'keys.setRoles': {
    valid: (f) => ({ keyId: f.keyId, roles: [f.roleName] }), denied: 'masked',
    notFound: [missingKey((f) => ({ keyId: NO_KEY, roles: [f.roleName] })), missingRole((f) => ({ keyId: f.keyId, roles: ['never_created_role'] }))],
  },
  'keys.rerollKey': { valid: (f) => ({ keyId: f.keyId, expiration: 0 }), denied: 'masked', notFound: [missingKey(() => ({ keyId: NO_KEY, expiration: 0 }))] },
  'keys.migrateKeys': {
    valid: (f) => ({ migrationId: f.migrationId, apiId: f.apiId, keys: [{ hash: sha256Hex(`migrated ${f.suffix}`) }] }),
    denied: 'masked',
    notFound: [
      missingApi((f) => ({ migrationId: f.migrationId, apiId: NO_API, keys: [{ hash: sha256Hex('x') }] })),
      { name: 'a missing migration', code: 'err:unkey:data:migration_not_found', body: (f) => ({ migrationId: 'mig_doesNotExist000', apiId: f.apiId, keys: [{ hash: sha256Hex('x') }] }) },
    ],
  },

  'identities.createIdentity': { valid: (f) => ({ externalId: `new_${f.suffix}` }), denied: 'forbidden', notFound: [] },
  'identities.getIdentity': { valid: (f) => ({ identity: f.identityId }), denied: 'masked', notFound: [missingIdentity(() => ({ identity: 'id_doesNotExist0000' }))] },
  'identities.listIdentities': { valid: () => ({}), denied: 'forbidden', notFound: [] },
  'identities.updateIdentity': {
    valid: (f) => ({ identity: f.externalId, meta: { plan: 'pro' } }), denied: 'masked',
    notFound: [missingIdentity(() => ({ identity: 'never_created_identity', meta: { plan: 'pro' } }))],
  },
  'identities.deleteIdentity': { valid: (f) => ({ identity: f.identityId }), denied: 'masked', notFound: [missingIdentity(() => ({ identity: 'id_doesNotExist0000' }))] },

  'permissions.createPermission': { valid: (f) => ({ name: 'new permission', slug: `new.${f.suffix}` }), denied: 'forbidden', notFound: [] },
  'permissions.getPermission': { valid: (f) => ({ permission: f.permissionId }), denied: 'forbidden', notFound: [missingPermission(() => ({ permission: 'perm_doesNotExist000' }))] },
  'permissions.listPermissions': { valid: () => ({}), denied: 'forbidden', notFound: [] },
  'permissions.deletePermission': { valid: (f) => ({ permission: f.permissionSlug }), denied: 'forbidden', notFound: [missingPermission(() => ({ permission: 'never.created' }))] },
  'permissions.createRole': { valid: (f) => ({ name: `new_role_${f.suffix}` }), denied: 'forbidden', notFound: [] },
  'permissions.getRole': { valid: (f) => ({ role: f.roleId }), denied: 'forbidden', notFound: [missingRole(() => ({ role: NO_ROLE }))] },
  'permissions.listRoles': { valid: () => ({}), denied: 'forbidden', notFound: [] },
  'permissions.deleteRole': { valid: (f) => ({ role: f.roleName }), denied: 'forbidden', notFound: [missingRole(() => ({ role: 'never_created_role' }))] },
  'permissions.setRolePermissions': {
    valid: (f) => ({ roleId: f.roleId, permissions: [f.permissionSlug] }), denied: 'forbidden',
    notFound: [missingRole((f) => ({ roleId: NO_ROLE, permissions: [f.permissionSlug] }))],
  },

  // limit/multiLimit create a missing namespace (with the right), so nothing is ever "not found".
  'ratelimit.limit': { valid: (f) => ({ namespace: f.namespaceName, identifier: 'user_1', limit: 10, duration: 60_000 }), denied: 'forbidden', notFound: [] },
  'ratelimit.multiLimit': { valid: (f) => [{ namespace: f.namespaceId, identifier: 'user_1', limit: 10, duration: 60_000 }], denied: 'forbidden', notFound: [] },
  'ratelimit.setOverride': {
    valid: (f) => ({ namespace: f.namespaceName, identifier: 'premium_*', limit: 100, duration: 60_000 }), denied: 'masked',
    notFound: [missingNamespace(() => ({ namespace: 'never_created_namespace', identifier: 'premium_*', limit: 100, duration: 60_000 }))],
  },
  'ratelimit.getOverride': {
    valid: (f) => ({ namespace: f.namespaceName, identifier: f.overrideIdentifier }), denied: 'masked',
    notFound: [
      missingNamespace((f) => ({ namespace: 'never_created_namespace', identifier: f.overrideIdentifier })),
      missingOverride((f) => ({ namespace: f.namespaceId, identifier: 'no_override_here' })),
    ],
  },
  'ratelimit.listOverrides': { valid: (f) => ({ namespace: f.namespaceId }), denied: 'masked', notFound: [missingNamespace(() => ({ namespace: 'never_created_namespace' }))] },
  'ratelimit.deleteOverride': {
    valid: (f) => ({ namespace: f.namespaceName, identifier: f.overrideIdentifier }), denied: 'masked',
    notFound: [
      missingNamespace((f) => ({ namespace: 'never_created_namespace', identifier: f.overrideIdentifier })),
      missingOverride((f) => ({ namespace: f.namespaceName, identifier: 'no_override_here' })),
    ],
  },
};

const REQUEST_ID = /^req_[A-Za-z0-9]{9}$/;
const INVALID_INPUT = 'err:unkey:application:invalid_input';

const h = (await startApiHarness(t))!;
const adminKey = await h.createAdminRootKey();
const powerlessKey = await h.createRootKey([]);
// Every permission, but on another workspace: the fixtures must be invisible to it.
const otherWorkspaceAdminKey = await h.createAdminRootKey(await h.createWorkspace());
// Response schemas are documentation in the service; here they are checked against real answers.
const responseValidator = new Ajv({ strict: false, allErrors: true });

t.test('every registered endpoint has a row in the matrix, and every row an endpoint', async (t) => {
  const registered = h.api.endpoints.map((endpoint) => endpoint.operationId).sort();
  t.same(registered, apiEndpoints.map((endpoint) => endpoint.operationId).sort(), 'the harness serves every endpoint of routes/index.ts');
  t.same(registered.filter((operationId) => ROWS[operationId] === undefined), [], 'endpoints without a row');
  t.same(Object.keys(ROWS).filter((operationId) => !registered.includes(operationId)), [], 'rows without an endpoint');
  t.equal(new Set(registered).size, registered.length, 'operation ids are unique');
});

for (const endpoint of apiEndpoints) {
  const row = ROWS[endpoint.operationId];
  if (row === undefined) continue; // reported by the completeness test above
  t.test(endpoint.operationId, async (t) => {
    const fixtures = await seedFixtures(h);
    const validBody = row.valid(fixtures);
    const operationId = endpoint.operationId;

    await t.test('bad input: 400 invalid_input with errors[] for every schema violation', async (t) => {
      for (const [name, body] of badBodies(endpoint.request, validBody)) {
        const result = await h.call(operationId, body, adminKey);
        checkInvalidInput(t, result, name);
      }
      checkInvalidInput(t, await h.call(operationId, 'null', adminKey), 'a JSON null body');
      checkError(t, await h.call(operationId, '{"truncated":', adminKey), 400, 'err:user:bad_request:request_body_unreadable', 'a body that is not JSON');
    });

    await t.test('validation precedes authentication: a bad body with a bad token is 400', async (t) => {
      checkInvalidInput(t, await h.call(operationId, withUnknownField(endpoint.request, validBody), 'not_a_real_root_key'), 'unknown field + unknown token');
      checkInvalidInput(t, await h.call(operationId, withUnknownField(endpoint.request, validBody)), 'unknown field + no Authorization');
    });

    await t.test('authentication: 400 without credentials, 401 for unknown and for normal keys', async (t) => {
      const missing = await h.call(operationId, validBody);
      checkError(t, missing, 400, 'err:unkey:authentication:missing', 'no Authorization header');
      const malformed = await h.call(operationId, validBody, undefined, { authorization: `Basic ${Buffer.from('user:pass').toString('base64')}` });
      checkError(t, malformed, 400, 'err:unkey:authentication:malformed', 'a non-Bearer scheme');
      const unknown = await h.call(operationId, validBody, `unknown_${randomBytes(12).toString('hex')}`);
      checkError(t, unknown, 401, 'err:unkey:authentication:key_not_found', 'Bearer <unknown>');
      const normal = await h.call(operationId, validBody, fixtures.key);
      checkError(t, normal, 401, 'err:unkey:authentication:key_not_found', 'a normal key as bearer');
      t.equal(withoutRequestId(normal.text), withoutRequestId(unknown.text), 'a normal key gets exactly the answer of an unknown key');
    });

    // Before the success case: a successful mutation may consume the fixtures.
    await t.test(`a root key without permissions: ${row.denied}`, async (t) => {
      const denied = await h.call(operationId, validBody, powerlessKey);
      if (row.denied === 'forbidden') {
        checkError(t, denied, 403, 'err:unkey:authorization:insufficient_permissions', 'no permissions');
        return;
      }
      if (row.denied === 'verify') {
        const unknownKey = await h.call(operationId, { ...(validBody as object), key: 'mx_neverIssuedKeyValue' }, adminKey);
        t.equal(denied.status, 200, 'verifyKey answers 200');
        t.same(denied.body?.data, { valid: false, code: 'NOT_FOUND' }, 'masked as NOT_FOUND with no other field');
        t.equal(withoutRequestId(denied.text), withoutRequestId(unknownKey.text), 'identical to the answer for a key that does not exist');
        return;
      }
      const first = row.notFound[0];
      if (first === undefined) throw new Error(`${operationId}: a masked row needs a not-found case to compare with`);
      const realNotFound = await h.call(operationId, first.body(fixtures), adminKey);
      checkError(t, denied, 404, first.code, 'no permissions');
      t.equal(withoutRequestId(denied.text), withoutRequestId(realNotFound.text), `identical to the 404 of ${first.name}, byte for byte except the request id`);
    });

    await t.test("another workspace's admin root key: the answer for a missing resource", async (t) => {
      const first = row.notFound[0];
      if (row.denied === 'verify') {
        const foreign = await h.call(operationId, validBody, otherWorkspaceAdminKey);
        t.equal(foreign.status, 200);
        t.same(foreign.body?.data, { valid: false, code: 'NOT_FOUND' }, 'a key of another workspace verifies as NOT_FOUND');
        return;
      }
      if (first === undefined) {
        t.pass('addresses nothing by id: the request is scoped to the caller (covered by the resource tests)');
        return;
      }
      const foreign = await h.call(operationId, validBody, otherWorkspaceAdminKey);
      const realNotFound = await h.call(operationId, first.body(fixtures), adminKey);
      checkError(t, foreign, 404, first.code, 'a resource of another workspace');
      t.equal(withoutRequestId(foreign.text), withoutRequestId(realNotFound.text), `identical to the 404 of ${first.name}`);
    });

    await t.test('not found: 404 with the resource code', async (t) => {
      if (row.notFound.length === 0) {
        t.pass('addresses nothing that can be missing');
        return;
      }
      for (const notFound of row.notFound) checkError(t, await h.call(operationId, notFound.body(fixtures), adminKey), 404, notFound.code, notFound.name);
    });

    await t.test('a valid request succeeds with the envelope and a data matching the response schema', async (t) => {
      const result = await h.call(operationId, validBody, adminKey);
      t.equal(result.status, 200, `200: ${result.text}`);
      const expectedKeys = endpoint.paginated === true ? ['data', 'meta', 'pagination'] : ['data', 'meta'];
      t.same(Object.keys(result.body ?? {}).sort(), expectedKeys, 'closed envelope');
      t.same(Object.keys(result.body?.meta ?? {}), ['requestId'], 'meta holds only requestId');
      t.match(result.body?.meta?.requestId, REQUEST_ID, 'requestId is req_ + 9 alphanumerics');
      if (endpoint.paginated === true) {
        t.equal(typeof result.body.pagination.hasMore, 'boolean', 'pagination.hasMore is always present');
        if (result.body.pagination.hasMore === false) t.notOk('cursor' in result.body.pagination, 'no cursor without more');
      }
      const validate = responseValidator.compile(endpoint.response);
      t.ok(validate(result.body?.data), `data matches the response schema: ${JSON.stringify(validate.errors)}`);
    });
  });
}

/** The 400 bodies derived from the request schema, each with a name. */
function badBodies(schema: JsonSchema, validBody: unknown): Array<[string, unknown]> {
  const cases: Array<[string, unknown]> = [['an unknown field', withUnknownField(schema, validBody)]];
  const isArray = schema['type'] === 'array';
  cases.push(['a body of the wrong type', isArray ? { items: validBody } : [validBody]]);
  // For a bare-array body (multiLimit) the object rules apply to its first item.
  const objectSchema = (isArray ? schema['items'] : schema) as JsonSchema;
  const validObject = (isArray ? (validBody as unknown[])[0] : validBody) as Record<string, unknown>;
  const rewrap = (item: Record<string, unknown>): unknown => (isArray ? [item, ...(validBody as unknown[]).slice(1)] : item);
  for (const field of (objectSchema['required'] as string[] | undefined) ?? []) {
    const { [field]: _removed, ...rest } = validObject;
    cases.push([`missing required '${field}'`, rewrap(rest)]);
  }
  const properties = (objectSchema['properties'] as Record<string, JsonSchema> | undefined) ?? {};
  for (const [field, propertySchema] of Object.entries(properties)) {
    cases.push([`'${field}' of the wrong type`, rewrap({ ...validObject, [field]: wrongTypeFor(propertySchema) })]);
    if (!allowedTypes(propertySchema).has('null')) cases.push([`'${field}' null (not nullable)`, rewrap({ ...validObject, [field]: null })]);
    for (const [violation, value] of constraintViolations(propertySchema)) cases.push([`'${field}' ${violation}`, rewrap({ ...validObject, [field]: value })]);
  }
  return cases;
}

/** Values of the right type that break one bound of the schema (length, range, pattern, enum, item count). */
function constraintViolations(schema: JsonSchema): Array<[string, unknown]> {
  const branch = ((schema['anyOf'] as JsonSchema[] | undefined)?.find((part) => part['type'] !== 'null') ?? schema) as JsonSchema;
  const violations: Array<[string, unknown]> = [];
  const minLength = branch['minLength'] as number | undefined;
  const maxLength = branch['maxLength'] as number | undefined;
  const pattern = branch['pattern'] as string | undefined;
  if (minLength !== undefined && minLength > 0) violations.push([`shorter than ${minLength}`, 'a'.repeat(minLength - 1)]);
  if (maxLength !== undefined) violations.push([`longer than ${maxLength}`, 'a'.repeat(maxLength + 1)]);
  if (pattern !== undefined) {
    const offending = ['has spaces in it', 'semi;colon', 'ünïcödé'].find((candidate) => !new RegExp(pattern, 'u').test(candidate));
    if (offending !== undefined) violations.push([`not matching ${pattern}`, offending]);
  }
  const enumValues = branch['enum'] as unknown[] | undefined;
  if (enumValues !== undefined) violations.push(['outside its enum', 'not_one_of_them']);
  const minimum = branch['minimum'] as number | undefined;
  const maximum = branch['maximum'] as number | undefined;
  if (minimum !== undefined) violations.push([`below ${minimum}`, minimum - 1]);
  if (maximum !== undefined && maximum < Number.MAX_SAFE_INTEGER) violations.push([`above ${maximum}`, maximum + 1]);
  if ((branch['type'] === 'integer') && (minimum === undefined || minimum < 1.5)) violations.push(['a fraction', 1.5]);
  const minItems = branch['minItems'] as number | undefined;
  if (minItems !== undefined && minItems > 0) violations.push([`with fewer than ${minItems} items`, []]);
  return violations;
}

/** The JSON types a schema allows (through `type` and `anyOf`). */
function allowedTypes(schema: JsonSchema): Set<string> {
  const allowed = new Set<string>();
  const collect = (part: JsonSchema): void => {
    const type = part['type'];
    if (typeof type === 'string') allowed.add(type);
    else if (Array.isArray(type)) for (const name of type) allowed.add(String(name));
    for (const branch of (part['anyOf'] as JsonSchema[] | undefined) ?? []) collect(branch);
  };
  collect(schema);
  return allowed;
}

/** The valid body with a property the closed schema does not know. */
function withUnknownField(schema: JsonSchema, validBody: unknown): unknown {
  if (schema['type'] === 'array') return (validBody as unknown[]).map((item, index) => (index === 0 ? { ...(item as object), unknownField: true } : item));
  return { ...(validBody as object), unknownField: true };
}

/** A JSON value whose type the schema does not allow. */
function wrongTypeFor(schema: JsonSchema): unknown {
  const allowed = allowedTypes(schema);
  if (allowed.size === 0) throw new Error(`no type in ${JSON.stringify(schema)}: the matrix cannot derive a wrong one`);
  if (!allowed.has('string')) return 'wrong';
  if (!allowed.has('integer') && !allowed.has('number')) return 7;
  return true;
}

function checkInvalidInput(t: Test, result: ApiCallResult, name: string): void {
  checkError(t, result, 400, INVALID_INPUT, name);
  const errors = result.body?.error?.errors;
  t.ok(Array.isArray(errors) && errors.length > 0, `${name}: errors[] lists the problem`);
  if (Array.isArray(errors)) {
    t.ok(errors.every((detail: any) => typeof detail.location === 'string' && typeof detail.message === 'string'), `${name}: each error has a location and a message`);
  }
}

function checkError(t: Test, result: ApiCallResult, status: number, code: string, name: string): void {
  t.equal(result.status, status, `${name}: HTTP ${status} (${result.text})`);
  t.same(Object.keys(result.body ?? {}).sort(), ['error', 'meta'], `${name}: error envelope`);
  t.match(result.body?.meta?.requestId, REQUEST_ID, `${name}: requestId format`);
  t.equal(result.body?.error?.type, faultTypeUrl(code), `${name}: ${code}`);
  t.equal(result.body?.error?.status, status, `${name}: error.status`);
  t.equal(typeof result.body?.error?.title, 'string', `${name}: error.title`);
  t.equal(typeof result.body?.error?.detail, 'string', `${name}: error.detail`);
}

function withoutRequestId(text: string): string {
  return text.replace(/"requestId":"req_[A-Za-z0-9]+"/g, '"requestId":"<request id>"');
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Seeds a fresh set of resources directly in the database (not through the endpoints under test). */
async function seedFixtures(harness: ApiHarness): Promise<Fixtures> {
  const suffix = randomBytes(5).toString('hex');
  const workspaceId = harness.workspaceId;
  const nowMs = harness.clock.nowMs();
  const { apiId } = await harness.seedApi({ name: `matrix ${suffix}` });
  const permissionId = newId('perm');
  const permissionSlug = `matrix.${suffix}.read`;
  await insertPermission(harness.db, { id: permissionId, workspaceId, name: permissionSlug, slug: permissionSlug, createdAtMs: nowMs });
  const roleId = newId('role');
  const roleName = `matrix_role_${suffix}`;
  await insertRole(harness.db, { id: roleId, workspaceId, name: roleName, createdAtMs: nowMs });
  const externalId = `matrix_user_${suffix}`;
  const seeded = await harness.seedKey({ apiId, externalId, remaining: 100, permissions: [permissionSlug], prefix: 'mx' });
  const namespaceId = newId('rlns');
  const namespaceName = `matrix_ns_${suffix}`;
  await insertRatelimitNamespace(harness.db, { id: namespaceId, workspaceId, name: namespaceName, createdAtMs: nowMs });
  const overrideIdentifier = `vip_${suffix}`;
  await upsertRatelimitOverride(harness.db, { id: newId('rlor'), workspaceId, namespaceId, identifier: overrideIdentifier, limit: 1000, durationMs: 60_000, nowMs });
  const migrationId = newId('mig');
  await insertKeyMigration(harness.db, { id: migrationId, workspaceId, algorithm: 'sha256', createdAtMs: nowMs });
  return {
    apiId, keyId: seeded.keyId, key: seeded.key, identityId: seeded.identityId!, externalId, permissionId, permissionSlug, roleId, roleName,
    namespaceName, namespaceId, overrideIdentifier, migrationId, suffix,
  };
}
