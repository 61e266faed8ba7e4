import t from 'tap';
import { startApiHarness } from '../../helpers/api-harness.ts';

t.test('API service pipeline', async (t) => {
  const h = (await startApiHarness(t))!;
  const { apiId } = await h.seedApi();

  t.test('missing Authorization header is 400 authentication:missing', async (t) => {
    const res = await h.call('apis.getApi', { apiId });
    t.equal(res.status, 400);
    t.equal(res.body.error.type, 'https://unkey.com/docs/errors/unkey/authentication/missing');
    t.same(res.body.error.errors, [], 'a 400 carries errors[] even when empty');
  });

  t.test('a non-Bearer scheme is 400 authentication:malformed', async (t) => {
    const res = await h.call('apis.getApi', { apiId }, undefined, { authorization: 'Basic abc' });
    t.equal(res.status, 400);
    t.equal(res.body.error.type, 'https://unkey.com/docs/errors/unkey/authentication/malformed');
  });

  t.test('a normal key used as a root key gets exactly the 401 of an unknown key', async (t) => {
    const normal = await h.seedKey({ apiId });
    const asRoot = await h.call('apis.getApi', { apiId }, normal.key);
    const unknown = await h.call('apis.getApi', { apiId }, 'kg_root_unknown');
    t.equal(asRoot.status, 401);
    t.same(asRoot.body.error, unknown.body.error);
  });

  t.test('a disabled root key is 403 key_disabled; an expired one 403 forbidden', async (t) => {
    const disabled = await h.createRootKey(['api.*.read_api'], { enabled: false });
    const res = await h.call('apis.getApi', { apiId }, disabled);
    t.equal(res.status, 403);
    t.equal(res.body.error.type, 'https://unkey.com/docs/errors/unkey/authorization/key_disabled');
    const expiring = await h.createRootKey(['api.*.read_api'], { expiresAtMs: h.clock.nowMs() + 1000 });
    t.equal((await h.call('apis.getApi', { apiId }, expiring)).status, 200);
    h.clock.advance(1000);
    const expired = await h.call('apis.getApi', { apiId }, expiring);
    t.equal(expired.status, 403);
    t.equal(expired.body.error.type, 'https://unkey.com/docs/errors/unkey/authorization/forbidden');
  });

  t.test('a root key for a disabled workspace is 403 workspace_disabled', async (t) => {
    const workspaceId = await h.createWorkspace({ enabled: false });
    const rootKey = await h.createRootKey(['api.*.read_api'], { workspaceId });
    const res = await h.call('apis.getApi', { apiId }, rootKey);
    t.equal(res.status, 403);
    t.equal(res.body.error.type, 'https://unkey.com/docs/errors/unkey/authorization/workspace_disabled');
  });

  t.test('unknown operation is 404, GET on an operation 405', async (t) => {
    t.equal((await h.call('apis.nope', {})).status, 404);
    t.equal((await h.inject({ method: 'GET', url: '/v2/apis.getApi' })).status, 405);
  });

  t.test('liveness answers 200 OK, and 503 once draining', async (t) => {
    const ok = await h.inject({ method: 'GET', url: '/v2/liveness' });
    t.equal(ok.status, 200);
    t.match(ok.json(), { meta: { requestId: /^req_/ }, data: { message: 'OK' } });
    const openApi = await h.inject({ method: 'GET', url: '/openapi.json' });
    t.equal(openApi.status, 200);
    const document = openApi.json<{ openapi: string; paths: Record<string, { post?: { requestBody: { content: Record<string, { schema: unknown }> } } }> }>();
    t.equal(document.openapi, '3.1.0');
    const createApiSchema = document.paths['/v2/apis.createApi']?.post?.requestBody.content['application/json']?.schema;
    t.same(createApiSchema, h.api.endpoints.find((endpoint) => endpoint.operationId === 'apis.createApi')!.request, 'the document carries the very schema the server validates with');
    h.api.startDraining();
    const draining = await h.inject({ method: 'GET', url: '/v2/liveness' });
    t.equal(draining.status, 503);
  });
});
