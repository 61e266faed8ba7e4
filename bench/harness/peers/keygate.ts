/**
 * Benchmark peer: keygate's proxy framework, `ProxyServer` + a forwarding engine by name (`--engine raw`
 * for `RawHttp1Engine`, `--engine undici` for `UndiciEngine`; default: the framework's default, raw).
 * `node keygate.ts <originPort> <port> [--tls certFile keyFile] [--routes N] [--engine raw|undici]`; prints `ready <port>`.
 * With `--routes N`, requests are routed by Host through a table of N hosts (`r0.bench` …), as a
 * real ingress would; without it, every request goes to the origin.
 */
import { readFileSync } from 'node:fs';
import { HttpPeer, ProxyServer, CertificateStore } from '../../../proxy/index.ts';
import type { ForwardingEngineName } from '../../../proxy/index.ts';
import { Fault } from '../../../core/fault.ts';

const [originPort, port, ...rest] = process.argv.slice(2);
const tlsAt = rest.indexOf('--tls');
const routesAt = rest.indexOf('--routes');
const routeCount = routesAt === -1 ? 0 : Number(rest[routesAt + 1]);
const engineAt = rest.indexOf('--engine');
const engineName = engineAt === -1 ? undefined : rest[engineAt + 1];
const engine = engineName === undefined ? undefined : engineName as ForwardingEngineName;
const peer = new HttpPeer(`http://127.0.0.1:${originPort}`);
const routes = new Map<string, HttpPeer>();
for (let i = 0; i < routeCount; i++) routes.set(`r${i}.bench`, peer);
const notFound = Fault.expected('err:frontline:routing:config_not_found');

const proxy = new ProxyServer({
  requestIdHeader: null,
  engine,
  hooks: {
    newCtx: () => null,
    upstreamPeer: routeCount === 0 ? () => peer : (session) => {
      const found = routes.get(session.host);
      if (found === undefined) throw notFound;
      return found;
    },
  },
});
let certificates: CertificateStore | undefined;
if (tlsAt !== -1) {
  certificates = new CertificateStore({ defaultCertificate: { cert: readFileSync(rest[tlsAt + 1]!), key: readFileSync(rest[tlsAt + 2]!) } });
}
const address = await proxy.listen({ port: Number(port), protocol: certificates === undefined ? 'http' : 'https', certificates });
process.stdout.write(`ready ${address.port}\n`);
process.on('SIGTERM', () => { proxy.close({ graceMs: 500 }).then(() => process.exit(0)); });
