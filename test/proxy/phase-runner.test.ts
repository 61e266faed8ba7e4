import t from 'tap';
import { Fault } from '../../core/fault.ts';
import { HttpPeer } from '../../proxy/http-peer.ts';
import type { ProxyHooks } from '../../proxy/hooks.ts';
import { PhaseRunner } from '../../proxy/phase-runner.ts';
import { forEachEngine, request, startOrigin, startProxy, waitFor } from './helpers.ts';

interface Ctx { trail: string[] }

forEachEngine(t, (t, engine) => {
  t.test('runs the phases in order, sync and async alike, and logs once', async (t) => {
    const origin = await startOrigin((req, res) => {
      res.setHeader('x-upstream-saw', String(req.headers['x-added']));
      res.setHeader('x-multi', 'from-upstream');
      res.end(`path=${req.url} method=${req.method}`);
    });
    const peer = new HttpPeer(origin.url);
    const trails: string[][] = [];
    const hooks: ProxyHooks<Ctx> = {
      newCtx: () => ({ trail: [] }),
      earlyRequestFilter: (_session, ctx) => { ctx.trail.push('early'); },
      requestFilter: async (_session, ctx) => { ctx.trail.push('request'); return 'continue' as const; },
      upstreamPeer: (_session, ctx) => { ctx.trail.push('peer'); return Promise.resolve(peer); },
      upstreamRequestFilter: (_session, upstream, ctx) => {
        ctx.trail.push('upstreamRequest');
        upstream.headers['x-added'] = 'yes';
        upstream.path = '/rewritten';
      },
      upstreamResponseFilter: async (_session, response, ctx) => { ctx.trail.push('upstreamResponse'); response.headers['x-status-seen'] = String(response.status); },
      responseFilter: (session, _response, ctx) => { ctx.trail.push('response'); session.addResponseHeader('x-multi', 'from-proxy'); },
      logging: (_session, fault, ctx) => { ctx.trail.push(`logging:${fault?.code ?? 'ok'}`); trails.push(ctx.trail); },
    };
    const { proxy, url } = await startProxy({ engine, hooks });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });

    const response = await request(`${url}/original`);
    t.equal(response.body, 'path=/rewritten method=GET');
    t.equal(response.headers['x-upstream-saw'], 'yes');
    t.equal(response.headers['x-status-seen'], '200');
    t.equal(response.headers['x-multi'], 'from-upstream, from-proxy', 'proxy headers are added, not replacing the upstream ones');
    await waitFor(() => trails.length === 1, 2_000, 'logging');
    t.same(trails[0], ['early', 'request', 'peer', 'upstreamRequest', 'upstreamResponse', 'response', 'logging:ok']);
  });

  t.test("requestFilter can answer by itself, and the upstream is never contacted", async (t) => {
    let upstreamHits = 0;
    const origin = await startOrigin((_req, res) => { upstreamHits++; res.end('upstream'); });
    const logged: string[] = [];
    const { proxy, url } = await startProxy({
      engine,
      hooks: {
        newCtx: () => ({}),
        requestFilter: (session) => session.headers.authorization === undefined ? session.respond(401, 'who are you?', { 'www-authenticate': 'Bearer' }) : 'continue',
        upstreamPeer: () => new HttpPeer(origin.url),
        logging: (session, fault) => { logged.push(`${session.responseStatus}:${fault?.code ?? 'ok'}`); },
      },
    });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
    const denied = await request(url);
    t.equal(denied.status, 401);
    t.equal(denied.body, 'who are you?');
    t.equal(denied.headers['www-authenticate'], 'Bearer');
    t.equal(upstreamHits, 0);
    t.equal((await request(url, { headers: { authorization: 'Bearer x' } })).body, 'upstream');
    await waitFor(() => logged.length === 2, 2_000, 'logging');
    t.same(logged, ['401:ok', '200:ok']);
  });

  t.test('failToProxy can write its own error response', async (t) => {
    const { proxy, url } = await startProxy({
      engine,
      hooks: {
        newCtx: () => ({}),
        upstreamPeer: () => { throw Fault.expected('err:frontline:routing:config_not_found'); },
        failToProxy: (session, fault) => {
          session.respond(fault.status, `custom ${fault.code}`, { 'content-type': 'text/plain' });
          return 'responded';
        },
      },
    });
    t.teardown(() => proxy.close({ graceMs: 100 }));
    const response = await request(url);
    t.equal(response.status, 404);
    t.equal(response.body, 'custom err:frontline:routing:config_not_found');
  });

  t.test('failToConnect returning fail stops at the first peer', async (t) => {
    const origin = await startOrigin((_req, res) => res.end('second'));
    let attempts = 0;
    const { proxy, url } = await startProxy({
      engine,
      hooks: {
        newCtx: () => ({}),
        upstreamPeer: () => [new HttpPeer('http://127.0.0.1:1'), new HttpPeer(origin.url)],
        failToConnect: () => { attempts++; return 'fail'; },
      },
    });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
    t.equal((await request(url)).status, 503);
    t.equal(attempts, 1);
  });

  t.test('rejects hooks without upstreamPeer at construction', async (t) => {
    t.throws(() => new PhaseRunner({ newCtx: () => ({}) } as unknown as ProxyHooks<object>), { code: 'err:frontline:config:invalid_configuration' });
  });

  t.test('an upstreamPeer returning no candidate is a 503 no_running_instances', async (t) => {
    const { proxy, url } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => [] } });
    t.teardown(() => proxy.close({ graceMs: 100 }));
    const response = await request(url, { headers: { accept: 'application/json' } });
    t.equal(response.status, 503);
    t.equal(JSON.parse(response.body).error.code, 'err:frontline:capacity:no_running_instances');
  });
});
