/**
 * Example: a header-based tenant router built on keygate's proxy framework.
 *
 * Each request names its tenant in `X-Tenant` (or as the first label of the Host, e.g.
 * `acme.api.example.com`); the router forwards it to that tenant's upstreams, trying the next one
 * only when a connection cannot be made. Unknown tenants get a 404 error page. The tenant header
 * is removed before the request goes upstream and the chosen tenant is echoed in a response header.
 *
 * Run it: `node examples/tenant-router.ts --port 8080 --tenant acme=http://127.0.0.1:9001,http://127.0.0.1:9002`
 * SIGTERM or SIGINT drain in-flight requests before exiting.
 */
import { parseArgs } from 'node:util';
import { Fault } from '../core/fault.ts';
import { HttpPeer, ProxyServer } from '../proxy/index.ts';
import type { ProxyHooks } from '../proxy/index.ts';

/** Per-request context of the tenant router. */
export interface TenantContext {
  tenant: string | undefined;
}

/** Builds the router's hooks from `tenant → upstream URLs`; peers are created once, here. */
export function createTenantRouter(tenants: Record<string, readonly string[]>): ProxyHooks<TenantContext> {
  const peersByTenant = new Map<string, readonly HttpPeer[]>();
  for (const [tenant, urls] of Object.entries(tenants)) {
    peersByTenant.set(tenant.toLowerCase(), urls.map((url) => new HttpPeer(url, { name: `${tenant}:${url}` })));
  }
  return {
    newCtx: () => ({ tenant: undefined }),
    requestFilter(session, ctx) {
      const header = session.headers['x-tenant'];
      const tenant = typeof header === 'string' && header !== '' ? header.toLowerCase() : session.host.split('.')[0];
      if (tenant === undefined || !peersByTenant.has(tenant)) {
        throw Fault.expected('err:frontline:routing:config_not_found', { publicMessage: 'Unknown tenant.' });
      }
      ctx.tenant = tenant;
      return 'continue';
    },
    upstreamPeer: (_session, ctx) => peersByTenant.get(ctx.tenant!)!,
    upstreamRequestFilter(_session, request) {
      delete request.headers['x-tenant'];
    },
    responseFilter(session, _response, ctx) {
      session.addResponseHeader('x-tenant', ctx.tenant!);
    },
  };
}

/** Command-line entry point: `--port`, `--host`, repeated `--tenant name=url[,url…]`. */
export async function main(argv: readonly string[]): Promise<ProxyServer<TenantContext>> {
  const { values } = parseArgs({
    args: [...argv],
    options: { port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' }, tenant: { type: 'string', multiple: true, default: [] } },
  });
  const tenants: Record<string, string[]> = {};
  for (const entry of values.tenant) {
    const [name, urls] = entry.split('=') as [string, string | undefined];
    tenants[name] = (urls ?? '').split(',').filter(Boolean);
  }
  const proxy = new ProxyServer({ hooks: createTenantRouter(tenants) });
  const address = await proxy.listen({ port: Number(values.port), host: values.host });
  process.stdout.write(`tenant-router listening on ${address.address}:${address.port}\n`);
  const stop = (): void => { proxy.close().then(() => process.exit(0), () => process.exit(1)); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return proxy;
}

if (import.meta.main) await main(process.argv.slice(2));
