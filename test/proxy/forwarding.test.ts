import t from 'tap';
import net from 'node:net';
import { HttpPeer } from '../../proxy/http-peer.ts';
import { forEachEngine, request, startOrigin, startProxy } from './helpers.ts';

forEachEngine(t, (t, engine) => {
  t.test('forwards method, path, query, body and the original Host, and relays status and headers', async (t) => {
    const origin = await startOrigin((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        res.writeHead(201, { 'x-origin': 'yes', 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, body: Buffer.concat(chunks).toString() }));
      });
    });
    const peer = new HttpPeer(origin.url);
    const { proxy, url, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => peer } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });

    const response = await request(url, { path: '/a/%2e%2e/b?x=1&y=%20', method: 'PUT', body: 'payload', headers: { 'content-type': 'text/plain' } });
    t.equal(response.status, 201);
    t.equal(response.headers['x-origin'], 'yes');
    t.match(response.headers['x-keygate-request-id'], /^req_[A-Za-z0-9]{9}$/);
    t.same(JSON.parse(response.body), { method: 'PUT', url: '/a/%2e%2e/b?x=1&y=%20', host: `127.0.0.1:${port}`, body: 'payload' });
  });

  t.test('strips hop-by-hop headers in both directions, including those named in Connection', async (t) => {
    let seen: Record<string, unknown> = {};
    // A raw origin, so it can send hop-by-hop response headers Node's server would not let through.
    const origin = net.createServer((socket) => {
      let buffered = '';
      socket.on('data', (chunk) => {
        buffered += chunk.toString('latin1');
        if (!buffered.includes('\r\n\r\n')) return;
        const lines = buffered.split('\r\n\r\n')[0]!.split('\r\n').slice(1);
        seen = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
        socket.end('HTTP/1.1 200 OK\r\nConnection: x-secret-hop, close\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\n'
          + 'Proxy-Authenticate: Basic\r\nUpgrade: h2c\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const peer = new HttpPeer(`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`);
    const { proxy, url } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => peer } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await new Promise((resolve) => origin.close(resolve)); });

    const response = await request(`${url}/`, {
      headers: {
        connection: 'keep-alive, x-client-hop', 'x-client-hop': 'secret', 'keep-alive': 'timeout=9', 'proxy-authorization': 'Basic abc',
        'proxy-connection': 'keep-alive', te: 'trailers, deflate', 'x-end-to-end': 'kept',
      },
    });
    t.equal(response.status, 200);
    t.equal(response.body, 'ok');
    for (const name of ['x-client-hop', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'trailer', 'upgrade']) {
      t.notOk(name in seen, `${name} not forwarded upstream`);
    }
    t.equal(seen.te, 'trailers', 'TE is reduced to trailers');
    t.equal(seen['x-end-to-end'], 'kept');
    t.notOk('x-secret-hop' in response.headers, 'a header named in the upstream Connection is removed');
    t.notOk('proxy-authenticate' in response.headers);
    t.notOk('upgrade' in response.headers);
    t.not(response.headers['keep-alive'], 'timeout=5', "the upstream's Keep-Alive is not relayed");
    t.equal(response.headers['x-kept'], 'yes');
  });

  t.test('replaces client-supplied X-Forwarded-* unless the direct peer is a trusted proxy', async (t) => {
    const origin = await startOrigin((req, res) => {
      res.end(JSON.stringify({
        for: req.headers['x-forwarded-for'], host: req.headers['x-forwarded-host'], proto: req.headers['x-forwarded-proto'],
      }));
    });
    const peer = new HttpPeer(origin.url);
    const untrusted = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => peer } });
    const trusted = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => peer }, trustedProxies: ['127.0.0.0/8'] });
    t.teardown(async () => {
      await untrusted.proxy.close({ graceMs: 100 });
      await trusted.proxy.close({ graceMs: 100 });
      await origin.close();
    });
    const spoofed = { 'x-forwarded-for': '6.6.6.6, 7.7.7.7', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };

    const fromClient = JSON.parse((await request(`${untrusted.url}/`, { headers: { ...spoofed, host: 'app.example.com' } })).body);
    t.same(fromClient, { for: '127.0.0.1', host: 'app.example.com', proto: 'http' }, 'an untrusted peer cannot choose its client IP, host or scheme');

    const fromTrustedPeer = JSON.parse((await request(`${trusted.url}/`, { headers: { ...spoofed, host: 'app.example.com' } })).body);
    t.same(fromTrustedPeer, { for: '6.6.6.6, 7.7.7.7, 127.0.0.1', host: 'evil.example', proto: 'https' }, 'a trusted proxy chain is appended to');

    const noChain = JSON.parse((await request(`${trusted.url}/`, { headers: { host: 'app.example.com' } })).body);
    t.same(noChain, { for: '127.0.0.1', host: 'app.example.com', proto: 'http' });
  });

  t.test('keeps upstream connections alive across requests (bounded pool, one socket when sequential)', async (t) => {
    let connections = 0;
    const origin = await startOrigin((_req, res) => res.end('ok'), (server) => server.on('connection', () => connections++));
    const peer = new HttpPeer(origin.url);
    const { proxy, url } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => peer } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
    for (let i = 0; i < 20; i++) t.equal((await request(`${url}/${i}`)).status, 200);
    t.equal(connections, 1, '20 sequential requests share one upstream connection');
  });

  t.test('an HTTP/1.0 request without Host goes upstream with the peer\'s authority, and the upstream connection is kept', async (t) => {
    let connections = 0;
    const seen: { host: string | undefined; forwardedHost: string | undefined }[] = [];
    const origin = await startOrigin((req, res) => {
      seen.push({ host: req.headers.host, forwardedHost: req.headers['x-forwarded-host'] as string | undefined });
      res.end('ok');
    }, (server) => server.on('connection', () => connections++));
    const peer = new HttpPeer(origin.url);
    const { proxy, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => peer } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
    for (let i = 0; i < 3; i++) {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.0\r\n\r\n'));
        let text = '';
        socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1'); });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      t.match(answer, /^HTTP\/1\.1 200 /, 'answered 200');
      t.match(answer, /\r\n\r\nok$/);
    }
    t.same(seen, Array(3).fill({ host: `${new URL(origin.url).host}`, forwardedHost: undefined }), 'Host is the peer\'s authority; no empty X-Forwarded-Host');
    t.equal(connections, 1, 'the origin kept its connection: no 400 for an empty Host, no close');
  });

  t.test('normalises the routing host: lower case, no port, no trailing dot, no IPv6 brackets', async (t) => {
    const hosts: string[] = [];
    const origin = await startOrigin((_req, res) => res.end('ok'));
    const peer = new HttpPeer(origin.url);
    const { proxy, url } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: (session) => { hosts.push(session.host); return peer; } } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
    for (const host of ['App.Example.COM:8443', 'app.example.com.', '[::1]:80', 'plain']) await request(`${url}/`, { headers: { host } });
    t.same(hosts, ['app.example.com', 'app.example.com', '::1', 'plain']);
  });
});
