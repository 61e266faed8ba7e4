/**
 * Benchmark peer: the minimal `node:http` proxy: `http.request` with a keep-alive `Agent` per
 * request, bodies piped both ways. No hop-by-hop handling, no X-Forwarded-*, no error pages: the
 * floor of what `node:http` + agent costs (the engine option the issue asks to measure).
 * `node node-http-minimal.ts <originPort> <port>`; prints `ready <port>`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const [originPort, port] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const upstream = http.request({ host: '127.0.0.1', port: Number(originPort), method: req.method, path: req.url, headers: { host: req.headers.host ?? '' }, agent }, (response) => {
    res.writeHead(response.statusCode ?? 502, response.headers);
    response.pipe(res);
  });
  upstream.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
  req.pipe(upstream);
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
