/**
 * Helpers of the Frontline tests: an echo origin (JSON of what it received, raw WebSocket-style
 * echo on upgrade), ingress files in a temporary directory, TLS handshakes and HTTPS requests
 * with an explicit server name, and external clients (curl, openssl) run asynchronously, since
 * the server under test lives in the same event loop.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { startOrigin } from '../helpers.ts';
import type { TestOrigin } from '../helpers.ts';

/** What the echo origin saw. */
export interface EchoBody {
  origin: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** An origin that answers every request with the JSON of what it received and echoes upgraded sockets. */
export function startEchoOrigin(name: string): Promise<TestOrigin> {
  return startOrigin((req, res) => {
    req.resume();
    req.on('end', () => {
      const body: EchoBody = { origin: name, method: req.method ?? '', url: req.url ?? '', headers: req.headers };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    });
  }, (server) => server.on('upgrade', (_req, socket: Duplex) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([Buffer.from(`${name}:`), chunk])));
    socket.on('error', () => socket.destroy());
  }));
}

/** A temporary directory for ingress files and certificates. */
export function tempDir(): { dir: string; write(name: string, content: string | object): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-frontline-'));
  return {
    dir,
    write(name, content) {
      const path = join(dir, name);
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The result of a TLS handshake. */
export interface HandshakeResult {
  /** The served certificate's subjectAltName (e.g. `DNS:app.example.test`). */
  altNames: string;
  fingerprint: string;
  alpn: string | false | null;
}

/** Handshakes with `servername`; rejects when the server refuses (unknown SNI). */
export function handshake(port: number, servername: string | undefined, alpn: string[] = ['h2', 'http/1.1']): Promise<HandshakeResult> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', ALPNProtocols: alpn, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) });
    socket.once('secureConnect', () => {
      const certificate = socket.getPeerX509Certificate();
      resolve({ altNames: certificate?.subjectAltName ?? '', fingerprint: certificate?.fingerprint256 ?? '', alpn: socket.alpnProtocol });
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/** A response read to the end. */
export interface SecureResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTPS/1.1 request to 127.0.0.1:`port` with SNI and Host `host`, on a fresh connection. */
export function httpsRequest(port: number, host: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<SecureResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path, method: options.method ?? 'GET', servername: host, rejectUnauthorized: false, agent: false,
      headers: { host, ...options.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Runs an external program without blocking the event loop; resolves its output even on a non-zero exit. */
export function run(file: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: options.timeoutMs ?? 10_000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (error as unknown as { code: number }).code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end(options.input ?? '');
  });
}

/** Opens an upgraded raw tunnel through Frontline (HTTP/1.1 over TLS) and returns a line-based echo client. */
export function openTunnel(port: number, host: string): Promise<{ send(text: string): Promise<string>; close(): void; socket: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: host, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      socket.write(`GET /tunnel HTTP/1.1\r\nHost: ${host}\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n`);
      let buffered = '';
      const onHead = (chunk: Buffer): void => {
        buffered += chunk.toString('latin1');
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onHead);
        if (!buffered.startsWith('HTTP/1.1 101')) {
          reject(new Error(`upgrade refused: ${buffered.slice(0, 120)}`));
          socket.destroy();
          return;
        }
        resolve({
          socket,
          send: (text) => new Promise((resolveReply, rejectReply) => {
            socket.once('data', (reply: Buffer) => resolveReply(reply.toString('utf8')));
            socket.once('close', () => rejectReply(new Error('tunnel closed')));
            socket.write(text);
          }),
          close: () => socket.destroy(),
        });
      };
      socket.on('data', onHead);
    });
  });
}
