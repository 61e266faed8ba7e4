import t from 'tap';
import { allOf, anyOf, perm } from '../../../core/rbac/permission-query.ts';
import { legacyTuple, resourceUrn } from '../../../core/rbac/required-permissions.ts';
import { RootKeyPermissions } from '../../../core/rbac/root-key-permissions.ts';

const WS = 'ws_1';

t.test('legacy tuples are exact strings; api.* is a literal that handlers OR in', async (t) => {
  const wildcardHolder = RootKeyPermissions.compile(WS, ['api.*.verify_key']);
  const specificHolder = RootKeyPermissions.compile(WS, ['api.api_1.verify_key']);
  const requirement = legacyTuple('api', 'api_1', 'verify_key');
  t.ok(wildcardHolder.satisfies(requirement));
  t.ok(specificHolder.satisfies(requirement));
  t.notOk(specificHolder.satisfies(legacyTuple('api', 'api_2', 'verify_key')));
  t.notOk(RootKeyPermissions.compile(WS, ['api.*']).satisfies(requirement), '`api.*` is not a wildcard');
  t.notOk(RootKeyPermissions.compile(WS, ['api.*.*']).satisfies(requirement));
  t.notOk(wildcardHolder.has('api.api_1.verify_key'), 'has() never expands legacy stars');
  t.same(legacyTuple('api', undefined, 'create_api'), perm('api.*.create_api'));
});

t.test('URN grants match with * for one segment and trailing ** for descendants', async (t) => {
  const required = (path: string, action = 'verify_key') => `unkey:v1:${WS}:${path}#${action}`;
  const cases: Array<[string, string, boolean]> = [
    // [grant, required, expected]
    ['unkey:v1:ws_1:keyspaces/ks_1/keys/key_1#verify_key', required('keyspaces/ks_1/keys/key_1'), true],
    ['unkey:v1:ws_1:keyspaces/ks_1/keys/*#verify_key', required('keyspaces/ks_1/keys/key_1'), true],
    ['unkey:v1:ws_1:keyspaces/ks_1/keys/*#verify_key', required('keyspaces/ks_2/keys/key_1'), false],
    ['unkey:v1:ws_1:keyspaces/ks_1/keys/*#verify_key', required('keyspaces/ks_1/keys/key_1', 'read_key'), false],
    ['unkey:v1:ws_1:keyspaces/ks_1/keys/*#verify_key', required('keyspaces/ks_1'), false],
    ['unkey:v1:ws_1:keyspaces/*/keys/*#verify_key', required('keyspaces/ks_9/keys/key_1'), true],
    ['unkey:v1:ws_1:keyspaces/*#create_key', required('keyspaces/ks_1', 'create_key'), true],
    ['unkey:v1:ws_1:keyspaces/*#create_key', required('keyspaces/ks_1/keys/k', 'create_key'), false],
    ['unkey:v1:ws_1:keyspaces/ks_1/**#verify_key', required('keyspaces/ks_1'), true],
    ['unkey:v1:ws_1:keyspaces/ks_1/**#verify_key', required('keyspaces/ks_1/keys/key_1'), true],
    ['unkey:v1:ws_1:keyspaces/ks_1/**#verify_key', required('keyspaces/ks_10/keys/key_1'), false],
    ['unkey:v1:ws_1:keyspaces/**#*', required('keyspaces/ks_1/keys/key_1', 'delete_key'), true],
    ['unkey:v1:ws_1:**#*', required('rbac/roles/role_1', 'delete_role'), true],
    ['unkey:v1:ws_1:**#read_key', required('keyspaces/ks_1/keys/key_1', 'read_key'), true],
    ['unkey:v1:ws_1:**#read_key', required('keyspaces/ks_1/keys/key_1', 'update_key'), false],
    // top-level creates require the collection wildcard literally
    ['unkey:v1:ws_1:keyspaces/*#create_keyspace', required('keyspaces/*', 'create_keyspace'), true],
    ['unkey:v1:ws_1:keyspaces/ks_1#create_keyspace', required('keyspaces/*', 'create_keyspace'), false],
    // never across workspaces
    ['unkey:v1:ws_2:**#*', required('keyspaces/ks_1'), false],
    ['unkey:v1:ws_1:**#*', 'unkey:v1:ws_2:keyspaces/ks_1#verify_key', false],
    ['unkey:v1:*:**#*', required('keyspaces/ks_1'), false],
  ];
  for (const [grant, req, expected] of cases) {
    t.equal(RootKeyPermissions.compile(WS, [grant]).has(req), expected, `${grant} → ${req}`);
  }
});

t.test('invalid grants are reported and never match', async (t) => {
  const grants = [
    'unkey:v1:ws_1:keyspaces/*/keys/key_1#verify_key', // id after a wildcard id selector
    'unkey:v1:ws_1:keyspaces/ks_1#*', // action * without **
    'unkey:v1:ws_1:keyspaces/**/keys#verify_key', // ** not last
    'unkey:v1:ws_2:**#*', // other workspace
  ];
  const permissions = RootKeyPermissions.compile(WS, grants);
  t.same(
    permissions.ignoredGrants.map((ignored) => ignored.reason),
    ['id_after_wildcard', 'action_wildcard_without_double_star', 'double_star_not_last', 'other_workspace'],
  );
  t.notOk(permissions.has('unkey:v1:ws_1:keyspaces/ks_1/keys/key_1#verify_key'));
  t.notOk(permissions.has('unkey:v1:ws_1:keyspaces/ks_1#delete_key'));
  t.notOk(permissions.has('unkey:v1:ws_1:keyspaces/ks_1/keys#verify_key'));
});

t.test('handler requirements combine legacy tuples and URNs with anyOf/allOf', async (t) => {
  const verify = anyOf(legacyTuple('api', 'api_1', 'verify_key'), resourceUrn(WS, 'keyspaces/ks_1/keys/key_1', 'verify_key'));
  t.ok(RootKeyPermissions.compile(WS, ['unkey:v1:ws_1:keyspaces/ks_1/keys/*#verify_key']).satisfies(verify));
  t.notOk(RootKeyPermissions.compile(WS, ['api.api_2.verify_key', 'unkey:v1:ws_1:keyspaces/ks_2/**#*']).satisfies(verify));

  const addPermissions = anyOf(
    resourceUrn(WS, 'keyspaces/ks_1/keys/key_1', 'update_key'),
    allOf(legacyTuple('api', 'api_1', 'update_key'), perm('rbac.*.add_permission_to_key')),
  );
  t.notOk(RootKeyPermissions.compile(WS, ['api.*.update_key']).satisfies(addPermissions), 'AND needs both');
  t.ok(RootKeyPermissions.compile(WS, ['api.*.update_key', 'rbac.*.add_permission_to_key']).satisfies(addPermissions));
  t.equal(RootKeyPermissions.compile(WS, []).satisfies(addPermissions), false);
});
