/**
 * The proxy's HTTP/1.1 downstream reads every plain and TLS connection into one shared buffer
 * (`core/http/shared-read-buffer.ts`). Over real sockets, on both listeners: requests that wait
 * in a connection (pipelined behind one the origin holds, or a head arriving in pieces) come out
 * whole while other connections' reads go through the same buffer.
 */
import t from 'tap';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { Test } from 'tap';
import type { ProxyHooks } from '../../proxy/hooks.ts';
import { HttpPeer } from '../../proxy/http-peer.ts';
import { CertificateStore } from '../../proxy/tls/certificate-store.ts';
import { parseResponses } from '../core/http/raw-http1-client.ts';
import type { RawResponse } from '../core/http/raw-http1-client.ts';
import { createTestCertificate } from '../helpers/certificates.ts';
import { deferred } from '../core/http/helpers.ts';
import { startOrigin, startProxy } from './helpers.ts';

const certificate = createTestCertificate({ hostnames: ['app.example.com'] });
t.teardown(() => certificate.cleanup());

/** A client connection writing raw bytes (plain or TLS) and reading responses off it. */
class Client {
  readonly #socket: net.Socket;
  #received = Buffer.alloc(0);
  /** Responses parsed so far, and where the unparsed bytes start. */
  readonly #parsed: RawResponse[] = [];
  #consumed = 0;
  #taken = 0;
  #changed: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk]);
      this.#changed?.();
    });
    socket.on('error', () => {});
  }

  static async open(t: Test, port: number, secure: boolean): Promise<Client> {
    const socket = secure
      ? tls.connect({ host: '127.0.0.1', port, servername: 'app.example.com', ca: certificate.cert, ALPNProtocols: ['http/1.1'] })
      : net.connect(port, '127.0.0.1');
    await once(socket, secure ? 'secureConnect' : 'connect');
    (socket as net.Socket).setNoDelay(true);
    const client = new Client(socket);
    t.teardown(() => socket.destroy());
    return client;
  }

  write(bytes: string): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.write(bytes, 'latin1', (err) => (err ? reject(err) : resolve())));
  }

  /** The first `count` responses, waiting at most 5 s for them. */
  async responses(count: number): Promise<RawResponse[]> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const { responses, consumed } = parseResponses(this.#received.subarray(this.#consumed), { ended: false, answersHead: () => false });
      this.#parsed.push(...responses);
      this.#consumed += consumed;
      if (this.#parsed.length >= count) return this.#parsed.slice(0, count);
      if (Date.now() > deadline) throw new Error(`${this.#parsed.length} of ${count} responses: ${JSON.stringify(this.#received.toString('latin1').slice(-2000))}`);
      await new Promise<void>((resolve) => {
        this.#changed = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** The next response after those already taken. */
  async next(): Promise<RawResponse> {
    const all = await this.responses(this.#taken + 1);
    this.#taken++;
    return all.at(-1)!;
  }
}

for (const secure of [false, true]) {
  const name = secure ? 'https' : 'http';

  async function setUp(t: Test, hooks: Partial<ProxyHooks<object>> = {}) {
    const release = deferred();
    const held: string[] = [];
    const origin = await startOrigin((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', async () => {
        if (req.url === '/hold') {
          held.push(req.url);
          await release.promise;
        }
        const body = Buffer.concat(chunks);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, x: req.headers['x-value'] ?? null, body: body.toString('latin1'), sha256: createHash('sha256').update(body).digest('hex') }));
      });
    });
    t.teardown(() => origin.close());
    let certificates: CertificateStore | undefined;
    if (secure) {
      certificates = new CertificateStore();
      certificates.add({ cert: certificate.cert, key: certificate.key });
      t.teardown(() => certificates!.close());
    }
    const { proxy, port } = await startProxy({ hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url), ...hooks } }, secure ? { protocol: 'https', certificates } : {});
    t.teardown(() => proxy.close({ graceMs: 100 }));
    return { port, release, held };
  }

  t.test(`${name}: a request pipelined behind one the origin holds survives other connections' reads`, async (t) => {
    const { port, release, held } = await setUp(t);
    const a = await Client.open(t, port, secure);
    const body = 'a'.repeat(500);
    await a.write(`POST /hold HTTP/1.1\r\nhost: app.example.com\r\ncontent-length: ${body.length}\r\n\r\n${body}GET /second HTTP/1.1\r\nhost: app.example.com\r\nx-value: second\r\n\r\n`);
    while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    for (let index = 0; index < 3; index++) {
      const b = await Client.open(t, port, secure);
      await b.write(`GET /other?${'b'.repeat(600)} HTTP/1.1\r\nhost: app.example.com\r\nx-value: ${'B'.repeat(300)}\r\n\r\n`);
      t.equal((await b.next()).status, 200);
    }
    release.resolve();
    const first = JSON.parse((await a.next()).body.toString());
    t.equal(first.body, body, 'the body reached the origin intact');
    const second = JSON.parse((await a.next()).body.toString());
    t.same({ url: second.url, x: second.x }, { url: '/second', x: 'second' }, 'the pipelined request is intact');
  });

  t.test(`${name}: more pipelined requests than the connection buffers (it pauses reading and resumes) are all answered in order`, async (t) => {
    const { port, release } = await setUp(t);
    release.resolve();
    const a = await Client.open(t, port, secure);
    const count = 1500;
    let bytes = '';
    for (let index = 0; index < count; index++) bytes += `GET /n${index} HTTP/1.1\r\nhost: app.example.com\r\n\r\n`;
    t.ok(bytes.length > 64 * 1024, `${bytes.length} bytes pipelined`);
    await a.write(bytes);
    const responses = await a.responses(count);
    const urls = responses.map((response) => JSON.parse(response.body.toString()).url);
    t.equal(urls.filter((url, index) => url === `/n${index}`).length, count, 'every response, in order');
  });

  t.test(`${name}: a head and a body arriving in pieces, with other connections read in between, are intact`, async (t) => {
    const { port, release } = await setUp(t);
    release.resolve();
    const a = await Client.open(t, port, secure);
    const b = await Client.open(t, port, secure);
    const body = 'z'.repeat(120);
    const pieces = ['POST /pieces HTTP/1.1\r\nhost: app.exa', `mple.com\r\nx-value: v\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 50)}`, body.slice(50)];
    for (const piece of pieces) {
      await a.write(piece);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await b.write(`GET /between?${'q'.repeat(400)} HTTP/1.1\r\nhost: app.example.com\r\n\r\n`);
      t.equal((await b.next()).status, 200);
    }
    const answer = JSON.parse((await a.next()).body.toString());
    t.same({ url: answer.url, x: answer.x, body: answer.body }, { url: '/pieces', x: 'v', body });
  });
}

t.test('https: a hook writing to the TLS socket while a pipelined request waits in the shared buffer does not corrupt it', async (t) => {
  // An empty write to a TLS socket makes Node read its next records at once, into the shared
  // buffer, while the connection is still dispatching the first request of the last read.
  const origin = await startOrigin((req, res) => {
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ url: req.url, x: req.headers['x-value'] ?? null })));
  });
  t.teardown(() => origin.close());
  const certificates = new CertificateStore();
  certificates.add({ cert: certificate.cert, key: certificate.key });
  t.teardown(() => certificates.close());
  let emptyWrites = 0;
  const { proxy, port } = await startProxy({
    hooks: {
      newCtx: () => ({}),
      earlyRequestFilter: (session) => {
        if (session.path === '/first') {
          emptyWrites++;
          session.req.socket!.write(Buffer.alloc(0));
        }
      },
      upstreamPeer: () => new HttpPeer(origin.url),
    },
  }, { protocol: 'https', certificates });
  t.teardown(() => proxy.close({ graceMs: 100 }));
  const a = await Client.open(t, port, true);
  // Two TLS records in one turn (they reach the proxy together): the first holds the first
  // request and the start of the second, the second record the rest of it.
  const second = `GET /second?${'s'.repeat(300)} HTTP/1.1\r\nhost: app.example.com\r\nx-value: second\r\n\r\n`;
  void a.write(`GET /first HTTP/1.1\r\nhost: app.example.com\r\n\r\n${second.slice(0, 100)}`);
  void a.write(`${second.slice(100)}${'GET /third HTTP/1.1\r\nhost: app.example.com\r\nx-value: third\r\n\r\n'.repeat(1)}`);
  const [one, two, three] = (await a.responses(3)).map((response) => JSON.parse(response.body.toString()));
  t.equal(emptyWrites, 1);
  t.same(one, { url: '/first', x: null });
  t.same(two, { url: `/second?${'s'.repeat(300)}`, x: 'second' }, 'the pipelined request is intact');
  t.same(three, { url: '/third', x: 'third' });
});
