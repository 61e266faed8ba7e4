/**
 * Example: a proxy that adds authentication in front of an unauthenticated service, built on
 * keygate's proxy framework.
 *
 * Clients send `Authorization: Bearer <token>`. A missing token is answered with 401, an unknown
 * one with 403, without ever reaching the upstream. For a valid token, the proxy removes the
 * credential, tells the upstream who the caller is in `X-Authenticated-User`, and logs one line
 * per request (never the token). Tokens are compared by SHA-256 digest in constant time.
 *
 * Run it: `AUTH_TOKENS=alice:s3cret node examples/auth-proxy.ts --port 8080 --upstream http://127.0.0.1:9000`
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { parseArgs } from 'node:util';
import { HttpPeer, ProxyServer } from '../proxy/index.ts';
import type { ProxyHooks } from '../proxy/index.ts';

/** Per-request context of the auth proxy. */
export interface AuthContext {
  user: string | undefined;
}

/** Options of {@link createAuthProxy}. */
export interface AuthProxyOptions {
  upstream: string;
  /** `user → token`. */
  tokens: Record<string, string>;
  /** One line per finished request (default: none). */
  log?: (line: string) => void;
}

/** Builds the hooks; token digests and the peer are prepared once. */
export function createAuthProxy(options: AuthProxyOptions): ProxyHooks<AuthContext> {
  const peer = new HttpPeer(options.upstream);
  const digests = Object.entries(options.tokens).map(([user, token]) => ({ user, digest: sha256(token) }));
  const findUser = (token: string): string | undefined => {
    const digest = sha256(token);
    let found: string | undefined;
    for (const entry of digests) if (timingSafeEqual(entry.digest, digest)) found = entry.user;
    return found;
  };
  return {
    newCtx: () => ({ user: undefined }),
    requestFilter(session, ctx) {
      const header = session.headers.authorization;
      if (header === undefined || !header.toLowerCase().startsWith('bearer ')) {
        return session.respond(401, JSON.stringify({ error: 'missing bearer token' }), { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      }
      ctx.user = findUser(header.slice(7).trim());
      if (ctx.user === undefined) return session.respond(403, JSON.stringify({ error: 'invalid token' }), { 'content-type': 'application/json' });
      return 'continue';
    },
    upstreamPeer: () => peer,
    upstreamRequestFilter(_session, request, ctx) {
      // The credential stops here: the upstream trusts the proxy, not the client's token.
      delete request.headers.authorization;
      request.headers['x-authenticated-user'] = ctx.user!;
    },
    logging(session, fault, ctx) {
      options.log?.(`${session.requestId} ${session.method} ${session.path} user=${ctx.user ?? '-'} status=${fault?.status ?? session.responseStatus}`);
    },
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Command-line entry point: `--port`, `--upstream`; tokens from `AUTH_TOKENS=user:token,…`. */
export async function main(argv: readonly string[]): Promise<ProxyServer<AuthContext>> {
  const { values } = parseArgs({ args: [...argv], options: { port: { type: 'string', default: '8080' }, upstream: { type: 'string' } } });
  if (values.upstream === undefined) throw new Error('--upstream is required');
  const tokens = Object.fromEntries((process.env.AUTH_TOKENS ?? '').split(',').filter(Boolean).map((pair) => pair.split(':') as [string, string]));
  const proxy = new ProxyServer({ hooks: createAuthProxy({ upstream: values.upstream, tokens, log: (line) => process.stdout.write(line + '\n') }) });
  await proxy.listen({ port: Number(values.port) });
  process.once('SIGTERM', () => { proxy.close().then(() => process.exit(0), () => process.exit(1)); });
  return proxy;
}

if (import.meta.main) await main(process.argv.slice(2));
