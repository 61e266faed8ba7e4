import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import type { Fault } from '../../core/fault.ts';
import { HttpPeer } from '../../proxy/http-peer.ts';
import type { ProxyHooks } from '../../proxy/hooks.ts';
import { forEachEngine, refusedPort, request, startOrigin, startProxy, waitFor } from './helpers.ts';

function hooksFor(peers: HttpPeer | HttpPeer[], logged: (Fault | undefined)[] = []): ProxyHooks<object> {
  return { newCtx: () => ({}), upstreamPeer: () => peers, logging: (_session, fault) => { logged.push(fault); } };
}

forEachEngine(t, (t, engine) => {
  t.test('a refused connection becomes 503 service_unavailable, JSON or HTML by Accept, with the request id', async (t) => {
    const peer = new HttpPeer(`http://127.0.0.1:${await refusedPort()}`);
    const { proxy, url } = await startProxy({ engine, hooks: hooksFor(peer) });
    t.teardown(() => proxy.close({ graceMs: 100 }));

    const json = await request(url, { headers: { accept: 'application/json' } });
    t.equal(json.status, 503);
    t.equal(json.headers['content-type'], 'application/json');
    const body = JSON.parse(json.body);
    t.equal(body.error.code, 'err:frontline:upstream:service_unavailable');
    t.equal(body.meta.requestId, json.headers['x-keygate-request-id']);

    const html = await request(url, { headers: {} });
    t.equal(html.status, 503);
    t.match(html.headers['content-type'], /^text\/html/);
    t.match(html.body, html.headers['x-keygate-request-id'] as string);
    t.match(html.body, 'err:frontline:upstream:service_unavailable');
    t.match(html.body, 'https://unkey.com/docs/errors/frontline/upstream/service_unavailable');
  });

  t.test('a connect failure is retried on the next peer, and the POST body arrives intact', async (t) => {
    const origin = await startOrigin((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.end(`got:${Buffer.concat(chunks).toString()}`));
    });
    const dead = new HttpPeer(`http://127.0.0.1:${await refusedPort()}`);
    const connectFailures: string[] = [];
    const hooks: ProxyHooks<object> = {
      newCtx: () => ({}),
      upstreamPeer: () => [dead, new HttpPeer(origin.url)],
      failToConnect: (_session, peer, fault) => { connectFailures.push(`${peer.origin} ${fault.code} retryable=${fault.retryable}`); return 'next'; },
    };
    const { proxy, url } = await startProxy({ engine, hooks });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
    const response = await request(url, { method: 'POST', body: 'x'.repeat(100_000) });
    t.equal(response.status, 200);
    t.equal(response.body, `got:${'x'.repeat(100_000)}`);
    t.same(connectFailures, [`${dead.origin} err:frontline:upstream:service_unavailable retryable=true`]);
  });

  t.test('an upstream that accepts and then resets is a 502 and is never retried on another peer', async (t) => {
    let resetHits = 0;
    const resetting = net.createServer((socket) => {
      socket.once('data', () => { resetHits++; socket.resetAndDestroy(); });
    });
    await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
    let secondHits = 0;
    const second = await startOrigin((_req, res) => { secondHits++; res.end('second'); });
    const logged: (Fault | undefined)[] = [];
    const peers = [new HttpPeer(`http://127.0.0.1:${(resetting.address() as net.AddressInfo).port}`), new HttpPeer(second.url)];
    const { proxy, url } = await startProxy({ engine, hooks: hooksFor(peers, logged) });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await second.close(); await new Promise((resolve) => resetting.close(resolve)); });

    const response = await request(url, { method: 'POST', body: 'once only', headers: { accept: 'application/json' } });
    t.equal(response.status, 502);
    t.equal(JSON.parse(response.body).error.code, 'err:frontline:upstream:bad_gateway');
    t.equal(resetHits, 1);
    t.equal(secondHits, 0, 'the request was not replayed after bytes were sent');
    await waitFor(() => logged.length === 1, 2_000, 'logging');
    t.equal(logged[0]?.code, 'err:frontline:upstream:bad_gateway');
  });

  t.test('every peer refusing gives 503 after trying each candidate once', async (t) => {
    const peers = [new HttpPeer(`http://127.0.0.1:${await refusedPort()}`), new HttpPeer(`http://127.0.0.1:${await refusedPort()}`)];
    let attempts = 0;
    const { proxy, url } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => peers, failToConnect: () => { attempts++; return 'next'; } } });
    t.teardown(() => proxy.close({ graceMs: 100 }));
    t.equal((await request(url)).status, 503);
    t.equal(attempts, 2);
  });

  t.test('an upstream that never answers hits the header timeout: 504 gateway_timeout', async (t) => {
    const silent = await startOrigin(() => { /* never answers */ });
    const { proxy, url } = await startProxy({ engine, hooks: hooksFor(new HttpPeer(silent.url)), headersTimeoutMs: 150 });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await silent.close(); });
    const response = await request(url, { headers: { accept: 'application/json' } });
    t.equal(response.status, 504);
    t.equal(JSON.parse(response.body).error.code, 'err:frontline:upstream:gateway_timeout');
  });

  t.test('the total request timeout gives 504 request_timeout', async (t) => {
    const silent = await startOrigin(() => { /* never answers */ });
    const { proxy, url } = await startProxy({ engine, hooks: hooksFor(new HttpPeer(silent.url)), totalTimeoutMs: 150 });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await silent.close(); });
    const response = await request(url, { headers: { accept: 'application/json' } });
    t.equal(response.status, 504);
    t.equal(JSON.parse(response.body).error.code, 'err:user:bad_request:request_timeout');
  });

  t.test('a client abort is logged as 499 and cancels the upstream request', async (t) => {
    let upstreamClosed = false;
    let upstreamReceived = false;
    const origin = await startOrigin((req) => {
      upstreamReceived = true;
      req.socket.once('close', () => { upstreamClosed = true; });
    });
    const logged: (Fault | undefined)[] = [];
    const { proxy, port } = await startProxy({ engine, hooks: hooksFor(new HttpPeer(origin.url), logged) });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });

    const client = http.request({ host: '127.0.0.1', port, path: '/slow', agent: false });
    client.on('error', () => {});
    client.end();
    await waitFor(() => upstreamReceived, 3_000, 'the upstream to receive the request');
    client.destroy();
    await waitFor(() => logged.length === 1 && upstreamClosed, 3_000, '499 logged and upstream cancelled');
    t.equal(logged[0]?.code, 'err:user:bad_request:client_closed_request');
    t.equal(logged[0]?.status, 499);
  });

  t.test('an upstream failure mid-body cuts the client connection instead of faking a clean end', async (t) => {
    const origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
      setImmediate(() => res.socket?.destroy());
    });
    const logged: (Fault | undefined)[] = [];
    const { proxy, url } = await startProxy({ engine, hooks: hooksFor(new HttpPeer(origin.url), logged) });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
    await t.rejects(request(url), 'the client sees an incomplete response');
    await waitFor(() => logged.length === 1, 2_000, 'logging');
    t.equal(logged[0]?.code, 'err:frontline:upstream:bad_gateway');
  });

  t.test('a hook that throws a Fault answers with that fault; other errors become 500', async (t) => {
    const { Fault } = await import('../../core/fault.ts');
    const { proxy, url } = await startProxy({
      engine,
      hooks: {
        newCtx: () => ({}),
        requestFilter: (session) => {
          if (session.path === '/fault') throw Fault.expected('err:frontline:client:firewall_denied');
          if (session.path === '/async') return Promise.reject(new Error('boom'));
          throw new Error('plain');
        },
        upstreamPeer: () => new HttpPeer('http://127.0.0.1:1'),
      },
    });
    t.teardown(() => proxy.close({ graceMs: 100 }));
    const denied = await request(`${url}/fault`, { headers: { accept: 'application/json' } });
    t.equal(denied.status, 403);
    t.equal(JSON.parse(denied.body).error.code, 'err:frontline:client:firewall_denied');
    t.equal((await request(`${url}/async`)).status, 500);
    t.equal((await request(`${url}/plain`)).status, 500);
  });
});
