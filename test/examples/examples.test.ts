import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ProxyServer } from '../../proxy/index.ts';
import { createAuthProxy } from '../../examples/auth-proxy.ts';
import { createTenantRouter } from '../../examples/tenant-router.ts';
import { request, startOrigin, waitFor } from '../proxy/helpers.ts';

t.test('tenant router: routes by X-Tenant or subdomain, fails over on refused connections, 404s unknown tenants', async (t) => {
  const acme = await startOrigin((req, res) => res.end(`acme ${req.url} tenant-header=${req.headers['x-tenant'] ?? 'none'}`));
  const globex = await startOrigin((_req, res) => res.end('globex'));
  const proxy = new ProxyServer({ hooks: createTenantRouter({ acme: ['http://127.0.0.1:1', acme.url], globex: [globex.url] }) });
  const { port } = await proxy.listen();
  t.teardown(async () => { await proxy.close({ graceMs: 100 }); await acme.close(); await globex.close(); });
  const url = `http://127.0.0.1:${port}`;

  const byHeader = await request(`${url}/orders`, { headers: { 'x-tenant': 'ACME' } });
  t.equal(byHeader.body, 'acme /orders tenant-header=none', 'the tenant header is not forwarded; the dead first upstream was skipped');
  t.equal(byHeader.headers['x-tenant'], 'acme');
  t.equal((await request(url, { headers: { host: 'globex.api.example.com' } })).body, 'globex');
  const unknown = await request(url, { headers: { 'x-tenant': 'initech', accept: 'application/json' } });
  t.equal(unknown.status, 404);
  t.equal(JSON.parse(unknown.body).error.code, 'err:frontline:routing:config_not_found');
});

t.test('auth proxy: 401 without a token, 403 for a wrong one, identity forwarded and token stripped', async (t) => {
  let upstreamHits = 0;
  const origin = await startOrigin((req, res) => { upstreamHits++; res.end(`user=${req.headers['x-authenticated-user']} auth=${req.headers.authorization ?? 'none'}`); });
  const lines: string[] = [];
  const proxy = new ProxyServer({ hooks: createAuthProxy({ upstream: origin.url, tokens: { alice: 's3cret' }, log: (line) => lines.push(line) }) });
  const { port } = await proxy.listen();
  t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
  const url = `http://127.0.0.1:${port}`;

  t.equal((await request(url)).status, 401);
  t.equal((await request(url, { headers: { authorization: 'Bearer wrong' } })).status, 403);
  t.equal(upstreamHits, 0, 'rejected requests never reach the upstream');
  const ok = await request(`${url}/me`, { headers: { authorization: 'Bearer s3cret', 'x-authenticated-user': 'mallory' } });
  t.equal(ok.status, 200);
  t.equal(ok.body, 'user=alice auth=none', 'a client cannot claim an identity, and the token does not travel on');
  await waitFor(() => lines.length === 3, 2_000, 'log lines');
  t.match(lines[2], /GET \/me user=alice status=200/);
  t.notMatch(lines.join('\n'), /s3cret/, 'the token is never logged');
});

t.test('the tenant router runs as a program and drains an in-flight request on SIGTERM', async (t) => {
  let finishSlow: (() => void) | undefined;
  const origin = await startOrigin((_req, res) => { finishSlow = () => res.end('finished after SIGTERM'); });
  t.teardown(() => origin.close());
  const script = fileURLToPath(new URL('../../examples/tenant-router.ts', import.meta.url));
  const child = spawn(process.execPath, [script, '--port', '0', '--tenant', `acme=${origin.url}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let output = '';
  child.stdout!.on('data', (data: Buffer) => { output += data.toString(); });
  await waitFor(() => /listening on .*:(\d+)/.test(output), 10_000, 'the example to listen');
  const port = Number(/listening on .*:(\d+)/.exec(output)![1]);

  const inflight = request(`http://127.0.0.1:${port}/slow`, { headers: { 'x-tenant': 'acme' } });
  await waitFor(() => finishSlow !== undefined, 5_000, 'the request to reach the origin');
  child.kill('SIGTERM');
  const exited = once(child, 'exit');
  // Wait until the listener is closed (SIGTERM handled) while the request is still open.
  const deadline = Date.now() + 5_000;
  for (;;) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(false); });
      socket.once('error', () => resolve(true));
    });
    if (refused) break;
    if (Date.now() > deadline) throw new Error('the listener did not close after SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.equal(child.exitCode, null, 'the process is still running while the request is in flight');
  finishSlow!();
  const response = await inflight;
  t.equal(response.body, 'finished after SIGTERM');
  const [exitCode] = await exited;
  t.equal(exitCode, 0, 'the process exited cleanly after draining');
});
