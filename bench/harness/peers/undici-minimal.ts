/**
 * Benchmark peer: the minimal undici proxy most people would write: `pool.request()` per request,
 * response body piped to the client. No hop-by-hop handling, no X-Forwarded-*, no error pages.
 * `node undici-minimal.ts <originPort> <port>`; prints `ready <port>`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const [originPort, port] = process.argv.slice(2);
const pool = new Pool(`http://127.0.0.1:${originPort}`, { connections: 128 });
const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  pool.request({ path: req.url!, method: req.method as 'GET', headers: { host: req.headers.host ?? '' }, body: req.method === 'GET' || req.method === 'HEAD' ? null : req })
    .then(({ statusCode, headers, body }) => {
      delete headers.connection;
      delete headers['keep-alive'];
      delete headers['transfer-encoding'];
      res.writeHead(statusCode, headers as http.OutgoingHttpHeaders);
      body.pipe(res);
    }, () => { res.writeHead(502); res.end(); });
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
