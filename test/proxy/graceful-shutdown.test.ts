import t from 'tap';
import http from 'node:http';
import { HttpPeer } from '../../proxy/http-peer.ts';
import { forEachEngine, request, startOrigin, startProxy, waitFor } from './helpers.ts';

forEachEngine(t, (t, engine) => {
  t.test('close() lets an in-flight request finish, refuses new connections, then resolves', async (t) => {
    let finishSlow: (() => void) | undefined;
    const origin = await startOrigin((req, res) => {
      if (req.url === '/slow') finishSlow = () => res.end('slow done');
      else res.end('fast');
    });
    const { proxy, url, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } });
    t.teardown(() => origin.close());
    t.equal((await request(`${url}/warm`)).body, 'fast');

    const inflight = request(`${url}/slow`);
    await waitFor(() => finishSlow !== undefined, 3_000, 'the slow request to reach the origin');
    let closed = false;
    const closing = proxy.close({ graceMs: 5_000 }).then(() => { closed = true; });
    await waitFor(() => proxy.draining, 1_000, 'draining');
    await t.rejects(new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, path: '/', agent: false }, resolve).on('error', reject)), 'new connections are refused');
    t.equal(closed, false, 'close waits for the in-flight request');
    finishSlow!();
    const response = await inflight;
    t.equal(response.status, 200);
    t.equal(response.body, 'slow done');
    t.equal(response.headers.connection, 'close', 'the client is told to close while draining');
    await closing;
    t.equal(closed, true);
  });

  t.test('close() destroys what is still open after the grace period', async (t) => {
    let arrived = false;
    const origin = await startOrigin(() => { arrived = true; /* never answers */ });
    const { proxy, url } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } });
    t.teardown(() => origin.close());
    const inflight = request(`${url}/hang`);
    inflight.catch(() => {});
    await waitFor(() => arrived, 3_000, 'the request to reach the origin');
    const startedMs = Date.now();
    await proxy.close({ graceMs: 100 });
    t.ok(Date.now() - startedMs >= 90, 'close waited for the grace period');
    await t.rejects(inflight, 'the hanging request was cut at the deadline');
  });
});
