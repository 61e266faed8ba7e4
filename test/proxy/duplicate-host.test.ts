import { connect } from 'node:net';
import t from 'tap';
import { HttpPeer } from '../../proxy/index.ts';
import { forEachEngine, startOrigin, startProxy } from './helpers.ts';

/** Sends raw bytes (with `Connection: close`) and resolves with everything answered until the server closed. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => { answer += chunk; });
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

forEachEngine(t, (t, engine) => {
  t.test('a request with two Host headers is refused with 400 and never reaches the upstream', async (t) => {
    let originRequests = 0;
    const origin = await startOrigin((_req, res) => { originRequests++; res.end('origin'); });
    t.teardown(() => origin.close());
    const peer = new HttpPeer(origin.url);
    const routes = new Map([['app.test', peer]]);
    const { proxy, port } = await startProxy({
      engine,
      hooks: { newCtx: () => null, upstreamPeer: (session) => routes.get(session.host) ?? peer },
    });
    t.teardown(() => proxy.close({ graceMs: 0 }));

    const single = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n');
    t.match(single, /^HTTP\/1\.1 200 /, 'one Host header is proxied');
    t.equal(originRequests, 1);

    for (const [first, second] of [['app.test', 'other.test'], ['other.test', 'app.test'], ['app.test', 'app.test']]) {
      const answer = await rawExchange(port, `GET / HTTP/1.1\r\nHost: ${first}\r\nhost: ${second}\r\nConnection: close\r\nAccept: application/json\r\n\r\n`);
      t.match(answer, /^HTTP\/1\.1 400 /, `Host: ${first} + host: ${second} → 400`);
      t.match(answer, /err:user:bad_request:invalid_host/);
    }
    t.equal(originRequests, 1, 'no request with two Host headers reached the origin');
  });
});
