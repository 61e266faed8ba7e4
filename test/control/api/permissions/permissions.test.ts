/** permissions.* and roles: create (409), get by id/slug, list, delete (keys lose it at once), setRolePermissions, 403. */
import t from 'tap';
import { startApiHarness } from '../../../helpers/api-harness.ts';

const h = (await startApiHarness(t))!;
const admin = await h.createAdminRootKey();
const verifier = await h.createRootKey(['api.*.verify_key']);

t.test('permission life cycle', async (t) => {
  const created = await h.call('permissions.createPermission', { name: 'Read docs', slug: 'docs.read', description: 'Read' }, admin);
  t.equal(created.status, 200, created.text);
  const permissionId = created.body.data.permissionId;
  t.equal((await h.call('permissions.createPermission', { name: 'dup', slug: 'docs.read' }, admin)).status, 409);
  t.same((await h.call('permissions.getPermission', { permission: 'docs.read' }, admin)).body.data, { id: permissionId, name: 'Read docs', slug: 'docs.read', description: 'Read' });
  t.equal((await h.call('permissions.getPermission', { permission: permissionId }, admin)).status, 200);
  t.equal((await h.call('permissions.listPermissions', { search: 'docs' }, admin)).body.data.length, 1);
  const { apiId } = await h.seedApi();
  const { key } = await h.seedKey({ apiId, permissions: ['docs.read'] });
  t.equal((await h.call('keys.verifyKey', { key, permissions: 'docs.read' }, verifier)).body.data.valid, true);
  t.equal((await h.call('permissions.deletePermission', { permission: permissionId }, admin)).status, 200);
  t.equal((await h.call('keys.verifyKey', { key, permissions: 'docs.read' }, verifier)).body.data.code, 'INSUFFICIENT_PERMISSIONS', 'revoked at once');
  t.equal((await h.call('permissions.getPermission', { permission: permissionId }, admin)).status, 404);
  t.equal((await h.call('permissions.createPermission', { name: 'x', slug: 'bad slug' }, admin)).status, 400);
  t.equal((await h.call('permissions.createPermission', { name: 'x', slug: 'a.b' }, await h.createRootKey(['rbac.*.read_permission']))).status, 403);
});

t.test('role life cycle and setRolePermissions', async (t) => {
  const created = await h.call('permissions.createRole', { name: 'admin', description: 'all', permissions: ['a.read', 'a.write'] }, admin);
  t.equal(created.status, 200, created.text);
  const roleId = created.body.data.roleId;
  t.equal((await h.call('permissions.createRole', { name: 'admin' }, admin)).status, 409);
  const role = await h.call('permissions.getRole', { role: 'admin' }, admin);
  t.match(role.body.data, { id: roleId, name: 'admin', description: 'all', permissions: [{ slug: 'a.read' }, { slug: 'a.write' }] });
  const set = await h.call('permissions.setRolePermissions', { roleId, permissions: ['a.read', 'a.delete'] }, admin);
  t.same(set.body.data.map((p: { slug: string }) => p.slug), ['a.delete', 'a.read']);
  const list = await h.call('permissions.listRoles', { limit: 1 }, admin);
  t.equal(list.body.pagination.hasMore, false);
  t.equal((await h.call('permissions.deleteRole', { role: roleId }, admin)).status, 200);
  t.equal((await h.call('permissions.getRole', { role: roleId }, admin)).status, 404);
  t.equal((await h.call('permissions.setRolePermissions', { roleId, permissions: [] }, admin)).status, 404);
  t.equal((await h.call('permissions.listRoles', {}, 'bogus')).status, 401);
});
