/**
 * The `frontline` section: keygate's TLS ingress (`keygate frontline`). Its `httpsPort`,
 * `httpPort`, `certificates` and `routes` keys are the ingress file's public shape
 * (`{"frontline": {"routes": [{"host", "upstreams"}]}}`); the file is validated field by field,
 * with precise paths, by `proxy/frontline/ingress-config.ts` before this loader sees it. The
 * two list keys are fields of their own kind here (lists of objects), accepting JSON text from
 * the environment and flags.
 */
import { isAbsolute, resolve } from 'node:path';
import { field } from '../field.ts';
import type { Field, ParseOutcome } from '../field.ts';

/** A certificate given as files (absolute once loaded from a file). */
export interface FrontlineCertificateConfig {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A route as written in the ingress file (checked in detail by the ingress loader). */
export interface FrontlineRouteConfig {
  readonly host: string;
  readonly upstreams?: readonly string[];
  readonly peers?: readonly string[];
  readonly protocol?: 'http1' | 'h2c';
  readonly policies?: readonly unknown[];
}

/** `frontline.*` keys. */
export const frontline = {
  httpsPort: field.integer({ description: 'HTTPS listener port of Frontline (0 picks a free port).', default: 8443, min: 0, max: 65535 }),
  httpPort: field.integer({ description: 'HTTP listener port for ACME HTTP-01 challenges and 308 redirects to HTTPS (0 picks a free port).', default: 8080, min: 0, max: 65535 }),
  certificates: objectListField<FrontlineCertificateConfig>({
    description: 'TLS certificates as [{"certFile": "certs/app.pem", "keyFile": "certs/app.key"}]; paths relative to the config file.',
    expected: 'a list of {"certFile", "keyFile"} objects',
    isItem: (item) => typeof item['certFile'] === 'string' && typeof item['keyFile'] === 'string',
    resolveItem: (item, baseDir) => ({ certFile: absolute(item.certFile, baseDir), keyFile: absolute(item.keyFile, baseDir) }),
  }),
  routes: objectListField<FrontlineRouteConfig>({
    description: 'Routes as [{"host": "app.example.com", "upstreams": ["http://127.0.0.1:9000"]}]; host may be "*.example.com".',
    expected: 'a list of {"host", "upstreams"} objects',
    isItem: (item) => typeof item['host'] === 'string',
  }),
  certificateDir: field.path({ description: 'A directory of PEM certificates (name.pem with name.key), watched for new and renewed files.' }),
  acmeChallengeDir: field.path({ description: 'A directory of ACME HTTP-01 answers, one file per token (certbot --webroot layout).' }),
  instanceId: field.string({ description: 'This instance\'s id, sent as X-Keygate-Frontline-Id (default: frontline_<random>).' }),
  region: field.string({ description: 'This instance\'s region, sent as X-Keygate-Region.', default: 'local' }),
  maxHops: field.integer({ description: 'Hops between Frontlines a request may take before it is refused with 508.', default: 10, min: 1, max: 100 }),
  peerSecret: field.secret({ description: 'Secret shared by the Frontline fleet to sign hop headers; without it, hop counts from peers are not trusted.' }),
  peerCaFile: field.path({ description: 'PEM CA bundle trusted for connections to peer Frontlines (default: the system CAs).' }),
  peerServername: field.string({ description: 'TLS server name used towards peer Frontlines (default: the peer URL\'s host).' }),
  trustedProxies: field.stringList({ description: 'IPs or CIDRs of load balancers in front of Frontline whose X-Forwarded-* are kept.', default: [] }),
  requestTimeoutMs: field.durationMs({ description: 'Total time for a proxied request (not upgrades) before a 504.', default: 15 * 60_000, min: 0 }),
  drainTimeoutMs: field.durationMs({ description: 'How long SIGTERM waits for in-flight requests and tunnels before closing them.', default: 30_000, min: 0 }),
  redirectPort: field.integer({ description: 'Port put into HTTP → HTTPS redirects (default: the HTTPS port; omitted when 443).', min: 1, max: 65535 }),
  metricsPort: field.integer({ description: 'Port of a /metrics listener on the bind address (unset: no metrics listener).', min: 0, max: 65535 }),
  watch: field.boolean({ description: 'Re-read the config file when it or a certificate file changes (SIGHUP always reloads).', default: true }),
  workers: field.integer({
    description: 'Worker threads serving the ingress file on the same ports (SO_REUSEPORT), so every core takes connections; 1 serves in the main thread. Default: one per core.',
    min: 1,
    max: 64,
    flagAliases: ['workers'],
  }),
  engine: field.oneOf(['raw', 'undici'], {
    description: 'How Frontline speaks HTTP/1.1 to upstreams: raw (keygate\'s own strict HTTP/1.1 client over pooled sockets) or undici (undici pools). h2c upstreams always use undici.',
    default: 'raw',
  }),
  http1Parser: field.oneOf(['keygate', 'node'], {
    description: 'Who parses HTTP/1.1 requests on Frontline\'s HTTPS listener (connections that negotiated http/1.1 or no ALPN): keygate (its own strict request path, which hands anything unusual, such as upgrades or chunked or large bodies, to node:http) or node (node:http for every request).',
    default: 'keygate',
  }),
  source: field.oneOf(['file', 'database'], { description: 'Where routes and certificates come from: the config file, or the database (--db).', default: 'file' }),
} as const;

function absolute(path: string, baseDir: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/**
 * A list of JSON objects (not one of `field`'s kinds): a JSON array in the file, JSON text in
 * the environment and flags. Only the outline is checked here; the ingress loader reports
 * problems field by field.
 */
function objectListField<T extends object>(options: {
  description: string;
  expected: string;
  isItem: (item: Record<string, unknown>) => boolean;
  resolveItem?: (item: T, baseDir: string) => T;
}): Field<readonly T[] | undefined> {
  const fromJson = (value: unknown): ParseOutcome<readonly T[] | undefined> => {
    if (!Array.isArray(value)) return { ok: false };
    const ok = value.every((item) => typeof item === 'object' && item !== null && !Array.isArray(item) && options.isItem(item as Record<string, unknown>));
    return ok ? { ok: true, value: value as T[] } : { ok: false };
  };
  const resolveItem = options.resolveItem;
  return Object.freeze({
    isConfigField: true as const,
    kind: 'string' as const,
    description: options.description,
    expected: `${options.expected} (JSON text in environment variables and flags)`,
    defaultValue: undefined,
    derivedDefault: undefined,
    secret: false,
    relativeToConfigFile: resolveItem !== undefined,
    flagAliases: Object.freeze([]),
    choices: Object.freeze([]),
    fromJson,
    fromText: (text: string) => {
      try {
        return fromJson(JSON.parse(text));
      } catch {
        return { ok: false } as const;
      }
    },
    resolveRelative: (value: readonly T[] | undefined, baseDir: string) => (value === undefined || resolveItem === undefined ? value : value.map((item) => resolveItem(item, baseDir))),
    redact: (value: readonly T[] | undefined) => value,
  });
}
