/**
 * Benchmark peer: http-proxy-3 with a keep-alive agent (without it, it opens a connection per
 * request and is about 4× slower). `node http-proxy-3.ts <originPort> <port> [--tls certFile keyFile] [--h2]`;
 * prints `ready <port>`. With `--tls` it terminates TLS (`node:https`) in front of the same proxy;
 * with `--h2` as well, the server is `node:http2`'s secure server in compatibility mode (ALPN `h2`,
 * HTTP/1.1 allowed), the usual way to put http-proxy-3 behind HTTP/2 clients.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createProxyServer } from 'http-proxy-3';

const [originPort, port, ...rest] = process.argv.slice(2);
const tlsAt = rest.indexOf('--tls');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = createProxyServer({ target: `http://127.0.0.1:${originPort}`, agent });
proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) { res.writeHead(502); res.end(); }
});
const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => proxy.web(req, res);
const tls = tlsAt === -1 ? undefined : { cert: readFileSync(rest[tlsAt + 1]!), key: readFileSync(rest[tlsAt + 2]!) };
const server = tls === undefined
  ? http.createServer({ keepAliveTimeout: 60_000 }, handler)
  : rest.includes('--h2')
    // http-proxy-3 reads and writes through the compatibility request/response objects.
    ? http2.createSecureServer({ ...tls, allowHTTP1: true }, handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void)
    : https.createServer({ keepAliveTimeout: 60_000, ...tls }, handler);
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
