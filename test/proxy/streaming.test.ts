import t from 'tap';
import http from 'node:http';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { HttpPeer } from '../../proxy/http-peer.ts';
import { forEachEngine, startOrigin, startProxy } from './helpers.ts';

forEachEngine(t, (t, engine) => {
  t.test('full duplex: the response streams back while the request body is still being sent', async (t) => {
    const origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      req.on('data', (chunk: Buffer) => res.write(`ack:${chunk.toString().trim()}\n`));
      req.on('end', () => res.end('done\n'));
    });
    const { proxy, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });

    const client = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/duplex', agent: false, headers: { 'transfer-encoding': 'chunked' } });
    client.flushHeaders();
    const response = await new Promise<http.IncomingMessage>((resolve) => {
      client.once('response', resolve);
      client.write('first\n');
    });
    response.setEncoding('utf8');
    const lines: string[] = [];
    let notify: (() => void) | undefined;
    response.on('data', (text: string) => { lines.push(...text.split('\n').filter(Boolean)); notify?.(); });
    const waitForLine = (line: string): Promise<void> => new Promise((resolve) => {
      const check = (): void => { if (lines.includes(line)) resolve(); };
      notify = check;
      check();
    });
    await waitForLine('ack:first');
    t.pass('ack:first arrived before the request body was finished');
    client.write('second\n');
    await waitForLine('ack:second');
    client.end();
    await waitForLine('done');
    t.same(lines, ['ack:first', 'ack:second', 'done']);
  });

  t.test('server-sent events are flushed one by one', async (t) => {
    let sendNext: ((event: string) => void) | undefined;
    const origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      sendNext = (event) => { if (event === 'end') res.end(); else res.write(`data: ${event}\n\n`); };
    });
    const { proxy, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });

    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/events', agent: false, headers: { accept: 'text/event-stream' } }, resolve).on('error', reject);
    });
    t.equal(response.headers['content-type'], 'text/event-stream');
    response.setEncoding('utf8');
    const received: string[] = [];
    for (const event of ['one', 'two', 'three']) {
      // The next event is only sent once the previous one reached the client: a buffering proxy hangs here.
      const arrived = new Promise<void>((resolve) => response.once('data', (text: string) => { received.push(text); resolve(); }));
      sendNext!(event);
      await arrived;
    }
    sendNext!('end');
    t.same(received, ['data: one\n\n', 'data: two\n\n', 'data: three\n\n']);
  });

  t.test('100 MB up and 100 MB down stream through with flat memory', async (t) => {
    const totalBytes = 100 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const origin = await startOrigin((req, res) => {
      let received = 0;
      req.on('data', (data: Buffer) => { received += data.length; });
      req.on('end', () => {
        res.writeHead(200, { 'x-received': String(received) });
        let sent = 0;
        const pump = (): void => {
          while (sent < totalBytes) {
            sent += chunk.length;
            if (!res.write(chunk)) { res.once('drain', pump); return; }
          }
          res.end();
        };
        pump();
      });
    });
    const { proxy, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } });
    t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });

    // Live memory (after a forced collection) is what buffering would grow; garbage is not.
    setFlagsFromString('--expose-gc');
    const collect = runInNewContext('gc') as () => void;
    const liveBytes = (): number => { collect(); const usage = process.memoryUsage(); return usage.heapUsed + usage.arrayBuffers; };
    const baselineBytes = liveBytes();
    let peakBytes = baselineBytes;
    const sampler = setInterval(() => { peakBytes = Math.max(peakBytes, liveBytes()); }, 150);
    t.teardown(() => clearInterval(sampler));

    let produced = 0;
    const upload = new Readable({
      read() {
        if (produced >= totalBytes) { this.push(null); return; }
        produced += chunk.length;
        this.push(chunk);
      },
    });
    const { received, downloaded } = await new Promise<{ received: string; downloaded: number }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/big', agent: false, headers: { 'content-length': String(totalBytes) } }, (res) => {
        let bytes = 0;
        res.on('data', (data: Buffer) => { bytes += data.length; });
        res.on('end', () => resolve({ received: String(res.headers['x-received']), downloaded: bytes }));
        res.on('error', reject);
      });
      req.on('error', reject);
      upload.pipe(req);
    });
    clearInterval(sampler);
    t.equal(received, String(totalBytes), 'the origin received every uploaded byte');
    t.equal(downloaded, totalBytes, 'the client received every downloaded byte');
    const growthMb = (peakBytes - baselineBytes) / 1024 / 1024;
    // Buffering either direction whole would hold 100 MB; streaming holds what the socket and stream
    // buffers of three parties (client, proxy, origin, all in this process) have in flight, which
    // was measured between 0.3 and 48 MB depending on scheduling. 64 MB separates the two.
    t.ok(growthMb < 64, `live memory grew by at most ${growthMb.toFixed(1)} MB while 200 MB passed (no buffering)`);
  });

  t.test('a client that stops reading holds the upstream back (back-pressure, not buffering)', async (t) => {
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    let sentBytes = 0;
    let stop = false;
    const origin = await startOrigin((_req, res) => {
      res.writeHead(200);
      const pump = (): void => {
        while (!stop) {
          sentBytes += chunk.length;
          if (!res.write(chunk)) { res.once('drain', pump); return; }
        }
        res.end();
      };
      pump();
    });
    const { proxy, port } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } });
    t.teardown(async () => { stop = true; await proxy.close({ graceMs: 100 }); await origin.close(); });

    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/endless', agent: false }, resolve).on('error', reject);
    });
    response.pause();
    // Poll until the origin has been stalled for 300 ms (bounded by a 10 s deadline).
    const deadline = Date.now() + 10_000;
    let last = -1;
    let stableSince = Date.now();
    while (Date.now() - stableSince < 300) {
      if (Date.now() > deadline) break;
      if (sentBytes !== last) { last = sentBytes; stableSince = Date.now(); }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    t.ok(sentBytes < 32 * 1024 * 1024, `the origin stalled after ${(sentBytes / 1048576).toFixed(1)} MB while the client read nothing`);
    response.destroy();
  });
});
