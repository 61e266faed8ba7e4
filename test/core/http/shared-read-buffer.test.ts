/**
 * Reads into the thread's shared buffer (`core/http/shared-read-buffer.ts`) and their use by
 * keygate's HTTP/1.1 path: the switch itself on real accepted sockets, and that every byte the
 * connection keeps past a read (a partial head, pipelined requests, a body an async handler
 * still holds) is a copy, so the next read of another socket cannot change it.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import t from 'tap';
import type { Test } from 'tap';
import { isSharedReadBytes, pushReadsToStream, readIntoSharedBuffer, sharedReadsSupported } from '../../../core/http/shared-read-buffer.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';
import { deferred, testServer } from './helpers.ts';
import { RawConnection } from './raw-http1-client.ts';

const HOST = '127.0.0.1';

/** A net server whose accepted sockets are handed to `accepted`; a client connected to it. */
async function acceptOne(t: Test): Promise<{ server: Server; client: Socket; accepted: Socket }> {
  const server = createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  t.teardown(() => server.close());
  const connection = once(server, 'connection');
  const client = connect((server.address() as { port: number }).port, HOST);
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  const [accepted] = (await connection) as [Socket];
  t.teardown(() => accepted.destroy());
  return { server, client, accepted };
}

function nextReads(t: Test, count: number, into: string[]): { done: Promise<void>; onBytes: (length: number, buffer: Buffer) => void } {
  const { promise, resolve } = deferred();
  return {
    done: promise,
    onBytes: (length, buffer) => {
      t.ok(isSharedReadBytes(buffer), 'the bytes are in the shared buffer');
      into.push(buffer.toString('latin1', 0, length));
      if (into.length === count) resolve();
    },
  };
}

t.test('this Node lets an accepted socket read into the shared buffer (the HTTP/1.1 path relies on it)', async (t) => {
  t.ok(sharedReadsSupported(), 'net.Socket has its onread fields');
  const { client, accepted } = await acceptOne(t);
  const reads: string[] = [];
  const { done, onBytes } = nextReads(t, 1, reads);
  const viaData: Buffer[] = [];
  t.ok(readIntoSharedBuffer(accepted, onBytes), 'switched');
  accepted.on('data', (chunk: Buffer) => viaData.push(chunk));
  client.write('hello');
  await done;
  t.same(reads, ['hello']);
  t.same(viaData, [], 'no data event: the stream is bypassed');
  t.notOk(readIntoSharedBuffer(accepted, onBytes), 'a socket switches once');
});

t.test('pause() stops the shared-buffer reads and resume() restarts them; the end still emits end', async (t) => {
  const { client, accepted } = await acceptOne(t);
  const reads: string[] = [];
  const first = nextReads(t, 1, reads);
  let onBytes = first.onBytes;
  t.ok(readIntoSharedBuffer(accepted, (length, buffer) => onBytes(length, buffer)));
  client.write('one');
  await first.done;
  accepted.pause();
  client.write('two');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.same(reads, ['one'], 'nothing is read while paused');
  const second = nextReads(t, 2, reads);
  onBytes = second.onBytes;
  reads.length = 0;
  reads.push('one');
  const ended = once(accepted, 'end');
  accepted.resume();
  await second.done;
  t.same(reads, ['one', 'two']);
  client.end();
  await ended;
  t.pass('end emitted');
});

t.test('a TLS socket reads its decrypted bytes into the shared buffer', async (t) => {
  const certificate = createTestCertificate({ hostnames: ['shared.example.com'] });
  t.teardown(() => certificate.cleanup());
  const server = createTlsServer({ cert: certificate.cert, key: certificate.key });
  server.listen(0, HOST);
  await once(server, 'listening');
  t.teardown(() => server.close());
  const secure = once(server, 'secureConnection');
  const client = tlsConnect({ host: HOST, port: (server.address() as { port: number }).port, servername: 'shared.example.com', ca: certificate.cert });
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  const [accepted] = (await secure) as [TLSSocket];
  t.teardown(() => accepted.destroy());
  const reads: string[] = [];
  const { done, onBytes } = nextReads(t, 2, reads);
  t.ok(readIntoSharedBuffer(accepted, onBytes), 'switched');
  client.write('first');
  await new Promise((resolve) => setTimeout(resolve, 50));
  client.write('second');
  await done;
  t.same(reads, ['first', 'second'], 'the cleartext, read by read');
});

t.test('a socket with bytes already in its stream is left alone', async (t) => {
  const { accepted } = await acceptOne(t);
  accepted.unshift(Buffer.from('already read'));
  t.notOk(readIntoSharedBuffer(accepted, () => t.fail('not switched')));
});

t.test('pushReadsToStream: later reads reach data listeners as copies', async (t) => {
  const first = await acceptOne(t);
  const second = await acceptOne(t);
  const reads: string[] = [];
  const { done, onBytes } = nextReads(t, 1, reads);
  t.ok(readIntoSharedBuffer(first.accepted, () => t.fail('switched to the stream before any read')));
  t.ok(readIntoSharedBuffer(second.accepted, onBytes));
  pushReadsToStream(first.accepted);
  const chunk = once(first.accepted, 'data');
  first.client.write('kept');
  const [data] = (await chunk) as [Buffer];
  t.notOk(isSharedReadBytes(data), 'a copy');
  second.client.write('XXXX');
  await done;
  t.equal(data.toString(), 'kept', 'another socket reading into the shared buffer leaves the copy alone');
});

/** An HttpServer with a handler that holds its request until released, and an echo route. */
async function holdingServer(t: Test) {
  const made = testServer();
  const release = deferred();
  const held: string[] = [];
  made.server.route('POST', '/hold', async (ctx) => {
    held.push(ctx.exchange?.url ?? ctx.req?.url ?? '');
    await release.promise;
    return { body: { sha256: createHash('sha256').update(ctx.rawBody).digest('hex'), body: ctx.rawBody.toString('latin1') } };
  });
  made.server.route('GET', '/echo', (ctx) => ({ body: { url: ctx.exchange?.url ?? ctx.req?.url, x: ctx.headers['x-value'] ?? null } }));
  const { port } = await made.server.listen({ port: 0, host: HOST });
  t.teardown(() => made.server.close());
  return { port, release, held };
}

async function open(t: Test, port: number): Promise<RawConnection> {
  const connection = await RawConnection.open(port, HOST);
  t.teardown(() => connection.destroy());
  return connection;
}

t.test('a body held by an async handler and a pipelined request waiting behind it survive other connections\' reads', async (t) => {
  const { port, release, held } = await holdingServer(t);
  const a = await open(t, port);
  const body = 'a'.repeat(300);
  // One write: a request whose handler waits, and a second request pipelined behind it.
  await a.write(`POST /hold HTTP/1.1\r\nhost: a\r\ncontent-length: ${body.length}\r\n\r\n${body}GET /echo?n=2 HTTP/1.1\r\nhost: a\r\nx-value: second\r\n\r\n`);
  while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  // Other connections' reads land in the same buffer, over the bytes of A's read.
  for (let index = 0; index < 3; index++) {
    const b = await open(t, port);
    await b.write(`GET /echo?b=${'b'.repeat(400)} HTTP/1.1\r\nhost: b\r\nx-value: ${'B'.repeat(200)}\r\n\r\n`);
    t.equal((await b.response()).status, 200);
  }
  release.resolve();
  const first = JSON.parse((await a.response()).body.toString());
  t.equal(first.body, body, 'the held body is intact');
  t.equal(first.sha256, createHash('sha256').update(body).digest('hex'));
  const second = JSON.parse((await a.response()).body.toString());
  t.same(second, { url: '/echo?n=2', x: 'second' }, 'the pipelined request is intact');
});

t.test('a head and a body arriving over several reads, with another connection read in between each, are intact', async (t) => {
  const { port, release } = await holdingServer(t);
  release.resolve();
  const a = await open(t, port);
  const b = await open(t, port);
  const body = 'z'.repeat(100);
  const pieces = ['POST /hold HTTP/1.1\r\nhost: a\r\ncont', `ent-length: ${body.length}\r\n\r\n${body.slice(0, 40)}`, body.slice(40)];
  for (const piece of pieces) {
    await a.write(piece);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await b.write(`GET /echo?${'q'.repeat(200)} HTTP/1.1\r\nhost: b\r\n\r\n`);
    t.equal((await b.response()).status, 200);
  }
  const answer = JSON.parse((await a.response()).body.toString());
  t.equal(answer.body, body);
});
