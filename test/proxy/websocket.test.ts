import t from 'tap';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { HttpPeer } from '../../proxy/http-peer.ts';
import { forEachEngine, startOrigin, startProxy, waitFor } from './helpers.ts';

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A minimal RFC 6455 echo: unmasks each client text frame (payload < 64 KiB) and sends it back. */
function acceptWebSocket(req: http.IncomingMessage, socket: Duplex): void {
  const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${WEBSOCKET_GUID}`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Origin: ws\r\n\r\n`);
  let buffered = Buffer.alloc(0);
  socket.on('data', (data: Buffer) => {
    buffered = Buffer.concat([buffered, data]);
    while (buffered.length >= 2) {
      const opcode = buffered[0]! & 0x0f;
      let length = buffered[1]! & 0x7f;
      let offset = 2;
      if (length === 126) { length = buffered.readUInt16BE(2); offset = 4; }
      if (buffered.length < offset + 4 + length) return;
      const mask = buffered.subarray(offset, offset + 4);
      const payload = Buffer.from(buffered.subarray(offset + 4, offset + 4 + length));
      for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
      buffered = buffered.subarray(offset + 4 + length);
      if (opcode === 0x8) { socket.end(Buffer.from([0x88, 0x00])); return; }
      const header = length < 126 ? Buffer.from([0x80 | opcode, length]) : Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff]);
      socket.write(Buffer.concat([header, payload]));
    }
  });
  socket.on('error', () => {});
}

forEachEngine(t, (t, engine) => {
  t.test('a WebSocket echo works through the proxy, with the policies run before the upgrade', async (t) => {
    const origin = await startOrigin((_req, res) => res.end('not a websocket'), (server) => server.on('upgrade', acceptWebSocket));
    const filtered: string[] = [];
    const { proxy, port } = await startProxy({
      engine,
      hooks: {
        newCtx: () => ({}),
        requestFilter: (session) => {
          filtered.push(`${session.upgrade}:${session.path}`);
          return session.path === '/forbidden' ? session.respond(403, 'no') : 'continue';
        },
        upstreamPeer: () => new HttpPeer(origin.url),
      },
    });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });

    const socket = new WebSocket(`ws://127.0.0.1:${port}/chat`);
    const messages: string[] = [];
    socket.addEventListener('message', (event) => messages.push(String(event.data)));
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve());
      socket.addEventListener('error', () => reject(new Error('websocket failed to open')));
    });
    socket.send('hello');
    socket.send('x'.repeat(1000));
    await waitFor(() => messages.length === 2, 3_000, 'echoes');
    t.same(messages, ['hello', 'x'.repeat(1000)]);
    const closed = new Promise<void>((resolve) => socket.addEventListener('close', () => resolve()));
    socket.close();
    await closed;
    t.same(filtered, ['websocket:/chat']);

    const denied = new WebSocket(`ws://127.0.0.1:${port}/forbidden`);
    await new Promise<void>((resolve) => denied.addEventListener('error', () => resolve()));
    t.same(filtered, ['websocket:/chat', 'websocket:/forbidden'], 'the request filter answered before any upgrade');
  });

  t.test('an upgraded tunnel relays the bytes sent with the 101 and a large stream to a slow reader, whole and in order', async (t) => {
    const streamBytes = 8 * 1024 * 1024;
    const payload = Buffer.alloc(streamBytes);
    for (let index = 0; index < streamBytes; index++) payload[index] = (index * 31 + 7) & 0xff;
    const origin = await startOrigin((_req, res) => res.end('no'), (server) => server.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => {
      socket.on('error', () => {});
      // The first tunnel bytes share the write (often the segment) with the 101 head.
      socket.write(Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\nConnection: Upgrade\r\n\r\nfirst|'), payload]));
      socket.on('data', (data: Buffer) => socket.write(data));
    }));
    const { proxy, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });

    const client = net.connect(port, '127.0.0.1');
    t.teardown(() => client.destroy());
    client.write('GET /tunnel HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n');
    const chunks: Buffer[] = [];
    let received = 0;
    const expected = Buffer.byteLength('first|') + streamBytes;
    client.pause();
    // A slow reader: a little at a time, so the tunnel must hold back instead of buffering 8 MB.
    await new Promise<void>((resolve, reject) => {
      client.on('error', reject);
      const timer = setInterval(() => {
        // One read per tick: what the socket holds (bounded by its buffer), no more.
        const chunk = client.read() as Buffer | null;
        if (chunk === null) return;
        chunks.push(chunk);
        received += chunk.length;
        const headEnd = Buffer.concat(chunks).indexOf('\r\n\r\n');
        if (headEnd !== -1 && received - headEnd - 4 >= expected) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
      t.teardown(() => clearInterval(timer));
    });
    const all = Buffer.concat(chunks);
    const headEnd = all.indexOf('\r\n\r\n');
    t.match(all.subarray(0, headEnd).toString('latin1'), /^HTTP\/1\.1 101 /);
    const body = all.subarray(headEnd + 4);
    t.equal(body.subarray(0, 6).toString(), 'first|', 'the bytes that came with the 101 arrive first');
    t.ok(body.subarray(6, 6 + streamBytes).equals(payload), 'the 8 MB stream arrives whole and in order');
    client.write('ping');
    const echoed = await new Promise<string>((resolve) => {
      let text = '';
      client.on('data', (data: Buffer) => { text += data.toString(); if (text.includes('ping')) resolve(text); });
      client.resume();
    });
    t.match(echoed, /ping/, 'client → upstream still flows');
  });

  t.test('an upgrade to a dead backend gets a prompt 503, not a hang', async (t) => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const deadPort = (server.address() as net.AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const { proxy, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(`http://127.0.0.1:${deadPort}`) } });
    t.teardown(() => proxy.close({ graceMs: 100 }));

    const raw = net.connect(port, '127.0.0.1');
    raw.write('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      raw.on('data', (data) => { text += data.toString(); });
      raw.on('end', () => resolve(text));
    });
    raw.destroy();
    t.match(reply, /^HTTP\/1\.1 503 /);
    t.match(reply, /err:frontline:upstream:service_unavailable/);
  });

  t.test('an upstream that declines the upgrade has its answer relayed', async (t) => {
    const origin = await startOrigin((_req, res) => res.end('unused'), (server) => server.on('upgrade', (_req, socket: Duplex) => {
      socket.end('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope');
    }));
    const { proxy, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
    const raw = net.connect(port, '127.0.0.1');
    raw.write('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      raw.on('data', (data) => { text += data.toString(); });
      raw.on('end', () => resolve(text));
    });
    raw.destroy();
    t.match(reply, /^HTTP\/1\.1 426 /);
    t.match(reply, /\r\n\r\nnope$/);
  });
});
