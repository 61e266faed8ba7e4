import t from 'tap';
import { listAuditLogs } from '../../../../core/db/queries/audit-logs.ts';
import { getApiWithKeySpace } from '../../../../core/db/queries/apis.ts';
import { startApiHarness } from '../../../helpers/api-harness.ts';

t.test('apis.createApi', async (t) => {
  const h = (await startApiHarness(t))!;

  t.test('200: creates the API and its key space in the root key\'s workspace, with an audit event', async (t) => {
    const rootKey = await h.createRootKey(['api.*.create_api']);
    const res = await h.call('apis.createApi', { name: 'payments' }, rootKey);
    t.equal(res.status, 200, res.text);
    t.match(res.body, { meta: { requestId: /^req_[A-Za-z0-9]{9}$/ }, data: { apiId: /^api_/ } });
    t.same(Object.keys(res.body.meta), ['requestId'], 'meta is closed');
    const stored = await getApiWithKeySpace(h.db, h.workspaceId, res.body.data.apiId);
    t.equal(stored?.api.name, 'payments');
    t.equal(stored?.keySpace.workspaceId, h.workspaceId);
    const audit = await listAuditLogs(h.db, { workspaceId: h.workspaceId, event: 'api.create' });
    t.equal(audit.length, 1);
    t.equal(audit[0]!.correlationId, res.body.meta.requestId, 'correlation id is the request id');
    t.equal(audit[0]!.actor.type, 'key');
  });

  t.test('200: a URN collection grant also allows it', async (t) => {
    const rootKey = await h.createRootKey([`unkey:v1:${h.workspaceId}:keyspaces/*#create_keyspace`]);
    const res = await h.call('apis.createApi', { name: 'urn-made' }, rootKey);
    t.equal(res.status, 200, res.text);
  });

  t.test('400: name too short, unknown field, missing body, bad JSON (validation runs before auth)', async (t) => {
    const short = await h.call('apis.createApi', { name: 'ab' }, 'not-a-real-key');
    t.equal(short.status, 400);
    t.equal(short.body.error.type, 'https://unkey.com/docs/errors/unkey/application/invalid_input');
    t.ok(Array.isArray(short.body.error.errors) && short.body.error.errors.length > 0);
    const extra = await h.call('apis.createApi', { name: 'abcd', extra: 1 }, 'not-a-real-key');
    t.equal(extra.status, 400);
    const missing = await h.call('apis.createApi', {}, 'not-a-real-key');
    t.equal(missing.status, 400);
    const garbage = await h.call('apis.createApi', '{not json', 'not-a-real-key');
    t.equal(garbage.status, 400);
    t.equal(garbage.body.error.type, 'https://unkey.com/docs/errors/user/bad_request/request_body_unreadable');
  });

  t.test('401: unknown root key', async (t) => {
    const res = await h.call('apis.createApi', { name: 'payments' }, 'kg_root_doesnotexist');
    t.equal(res.status, 401);
    t.equal(res.body.error.type, 'https://unkey.com/docs/errors/unkey/authentication/key_not_found');
  });

  t.test('403: root key without create_api names the missing permission', async (t) => {
    const rootKey = await h.createRootKey(['api.*.read_api']);
    const res = await h.call('apis.createApi', { name: 'payments' }, rootKey);
    t.equal(res.status, 403);
    t.equal(res.body.error.type, 'https://unkey.com/docs/errors/unkey/authorization/insufficient_permissions');
    t.match(res.body.error.detail, /api\.\*\.create_api/);
  });
});
