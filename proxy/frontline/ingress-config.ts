/**
 * The ingress file: Frontline's drop-in configuration, a public contract (extend it only
 * compatibly). Shape (every key but `routes` is optional):
 * ```json
 * { "frontline": {
 *     "httpsPort": 8443, "httpPort": 8080,
 *     "certificates": [{ "certFile": "certs/app.pem", "keyFile": "certs/app.key" }],
 *     "routes": [{ "host": "app.example.com", "upstreams": ["http://127.0.0.1:9000"] }] } }
 * ```
 * Paths are relative to the file. `host` is exact or a one-label wildcard (`*.example.com`).
 * Validation collects every problem and names the path of each bad field
 * (`frontline.routes[1].upstreams[0]: …`). Parsed at load and on every reload, never per request.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Fault } from '../../core/fault.ts';
import type { FaultDetail } from '../../core/fault.ts';
import { parsePolicies } from '../sentinel/policy/parse-policies.ts';

/** A certificate chain and key given as files (absolute after loading). */
export interface IngressCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

/** One route: a host and where its requests go. */
export interface IngressRoute {
  /** Lower-cased host name, exact (`app.example.com`) or one-label wildcard (`*.example.com`). */
  readonly host: string;
  /** Local upstreams (`http://host:port`, `https://…`, or `host:port`), balanced round-robin. */
  readonly upstreams: readonly string[];
  /**
   * Peer Frontlines in other regions (`https://frontline.eu.example.com:8443`). With no
   * `upstreams` the route is served remotely; otherwise a peer is the fallback when every local
   * upstream refuses the connection.
   */
  readonly peers: readonly string[];
  /** `http1` (default) or `h2c` (prior-knowledge HTTP/2) towards plain-HTTP upstreams. */
  readonly protocol: 'http1' | 'h2c';
  /** Policies for the gateway (added by the Sentinel issue); kept verbatim, not interpreted here. */
  readonly policies: readonly unknown[];
}

/** The validated `frontline` section of an ingress file. */
export interface IngressConfig {
  /** HTTPS listener port (default 8443; 0 picks a free port). */
  readonly httpsPort: number;
  /** HTTP listener port for ACME and redirects (default 8080; `null` in the file disables it). */
  readonly httpPort: number | undefined;
  readonly certificates: readonly IngressCertificate[];
  /** A directory of PEM certificates (`name.pem` + `name.key`), watched for changes. */
  readonly certificateDir: string | undefined;
  /** A directory of ACME HTTP-01 key authorizations, one file per token (certbot's webroot layout). */
  readonly acmeChallengeDir: string | undefined;
  readonly routes: readonly IngressRoute[];
}

/** Defaults of the ingress file. */
export const INGRESS_DEFAULTS = {
  httpsPort: 8443,
  httpPort: 8080,
  /** Bound on routes in one file, so a runaway generator cannot exhaust memory at load. */
  maxRoutes: 100_000,
  /** Bound on upstreams or peers of one route. */
  maxUpstreamsPerRoute: 1_000,
} as const;

/** Options of {@link parseIngressConfig}. */
export interface ParseIngressOptions {
  /** Directory relative paths are resolved against (the file's directory). */
  baseDir: string;
  /** Named in error messages (the file path). */
  source?: string;
}

/**
 * Validates the `frontline` section (the value of the top-level key, not the whole file) and
 * resolves its paths. Throws a `Fault` `err:keygate:config:invalid` whose `errors` list every
 * problem, each with `location` the path of the bad field.
 */
export function parseIngressConfig(section: unknown, options: ParseIngressOptions): IngressConfig {
  const problems: FaultDetail[] = [];
  const config = readSection(section, 'frontline', options.baseDir, problems);
  if (problems.length > 0 || config === undefined) throw invalidIngress(problems, options.source);
  return config;
}

/**
 * Validates only the `routes` list (used by the config schema's custom field); returns the
 * problems instead of throwing. Paths in `problems` start at `frontline.routes`.
 */
export function validateIngressRoutes(value: unknown): { routes: IngressRoute[]; problems: FaultDetail[] } {
  const problems: FaultDetail[] = [];
  const routes = readRoutes(value, 'frontline.routes', problems);
  return { routes, problems };
}

/** Validates only the `certificates` list; relative paths resolve against `baseDir`. */
export function validateIngressCertificates(value: unknown, baseDir: string): { certificates: IngressCertificate[]; problems: FaultDetail[] } {
  const problems: FaultDetail[] = [];
  const certificates = readCertificates(value, 'frontline.certificates', baseDir, problems);
  return { certificates, problems };
}

/**
 * Reads an ingress file: JSON with a top-level `frontline` object (other top-level keys are the
 * rest of keygate's configuration and are ignored here). Called at start and on every reload.
 * Throws `err:keygate:config:file_not_found` or `err:keygate:config:invalid`.
 */
export async function readIngressFile(path: string): Promise<IngressConfig> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Fault('err:keygate:config:file_not_found', { publicMessage: `ingress file not found: ${absolute}`, cause: err });
    }
    throw invalidIngress([{ location: absolute, message: `cannot read ${absolute}: ${(err as Error).message}` }], absolute);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalidIngress([{ location: absolute, message: `not valid JSON: ${(err as Error).message}` }], absolute);
  }
  if (!isPlainObject(parsed) || !isPlainObject(parsed['frontline'])) {
    throw invalidIngress([{ location: 'frontline', message: 'frontline: expected an object like {"frontline": {"routes": [...]}} at the top level' }], absolute);
  }
  return parseIngressConfig(parsed['frontline'], { baseDir: dirname(absolute), source: absolute });
}

// ---------------------------------------------------------------------------------------------

const ROUTE_KEYS = new Set(['host', 'upstreams', 'peers', 'protocol', 'policies']);
const CERTIFICATE_KEYS = new Set(['certFile', 'keyFile']);
/** One DNS label: letters, digits, hyphens (not at the ends), 1–63 characters. */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function readSection(value: unknown, path: string, baseDir: string, problems: FaultDetail[]): IngressConfig | undefined {
  if (!isPlainObject(value)) {
    problems.push({ location: path, message: `${path}: expected an object, got ${describe(value)}` });
    return undefined;
  }
  // Other keygate keys may live in the same section (region, maxHops, peerSecret, …): only the
  // keys this file format owns are checked here; the config loader checks the others.
  const httpsPort = readPort(value['httpsPort'], `${path}.httpsPort`, INGRESS_DEFAULTS.httpsPort, problems);
  const httpPort = value['httpPort'] === null ? undefined : readPort(value['httpPort'], `${path}.httpPort`, INGRESS_DEFAULTS.httpPort, problems);
  const certificates = readCertificates(value['certificates'] ?? [], `${path}.certificates`, baseDir, problems);
  const certificateDir = readOptionalPath(value['certificateDir'], `${path}.certificateDir`, baseDir, problems);
  const acmeChallengeDir = readOptionalPath(value['acmeChallengeDir'], `${path}.acmeChallengeDir`, baseDir, problems);
  const routes = readRoutes(value['routes'], `${path}.routes`, problems);
  return { httpsPort, httpPort, certificates, certificateDir, acmeChallengeDir, routes };
}

function readPort(value: unknown, path: string, fallback: number, problems: FaultDetail[]): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535) return value;
  problems.push({ location: path, message: `${path}: expected a port number from 0 to 65535, got ${describe(value)}` });
  return fallback;
}

function readOptionalPath(value: unknown, path: string, baseDir: string, problems: FaultDetail[]): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' && value.length > 0) return isAbsolute(value) ? value : resolve(baseDir, value);
  problems.push({ location: path, message: `${path}: expected a file-system path, got ${describe(value)}` });
  return undefined;
}

function readCertificates(value: unknown, path: string, baseDir: string, problems: FaultDetail[]): IngressCertificate[] {
  if (!Array.isArray(value)) {
    problems.push({ location: path, message: `${path}: expected a list of {"certFile", "keyFile"} objects, got ${describe(value)}` });
    return [];
  }
  const certificates: IngressCertificate[] = [];
  value.forEach((item: unknown, index) => {
    const itemPath = `${path}[${index}]`;
    if (!isPlainObject(item)) {
      problems.push({ location: itemPath, message: `${itemPath}: expected an object with certFile and keyFile, got ${describe(item)}` });
      return;
    }
    reportUnknownKeys(item, CERTIFICATE_KEYS, itemPath, problems);
    const certFile = readOptionalPath(item['certFile'], `${itemPath}.certFile`, baseDir, problems);
    const keyFile = readOptionalPath(item['keyFile'], `${itemPath}.keyFile`, baseDir, problems);
    if (item['certFile'] === undefined) problems.push({ location: `${itemPath}.certFile`, message: `${itemPath}.certFile: required (a PEM certificate chain file)` });
    if (item['keyFile'] === undefined) problems.push({ location: `${itemPath}.keyFile`, message: `${itemPath}.keyFile: required (the PEM private key file of certFile)` });
    if (certFile !== undefined && keyFile !== undefined) certificates.push({ certFile, keyFile });
  });
  return certificates;
}

function readRoutes(value: unknown, path: string, problems: FaultDetail[]): IngressRoute[] {
  if (!Array.isArray(value)) {
    problems.push({ location: path, message: `${path}: expected a list of routes like [{"host": "app.example.com", "upstreams": ["http://127.0.0.1:9000"]}], got ${describe(value)}` });
    return [];
  }
  if (value.length > INGRESS_DEFAULTS.maxRoutes) {
    problems.push({ location: path, message: `${path}: at most ${INGRESS_DEFAULTS.maxRoutes} routes, got ${value.length}` });
    return [];
  }
  const routes: IngressRoute[] = [];
  const seen = new Map<string, number>();
  value.forEach((item: unknown, index) => {
    const itemPath = `${path}[${index}]`;
    if (!isPlainObject(item)) {
      problems.push({ location: itemPath, message: `${itemPath}: expected an object with host and upstreams, got ${describe(item)}` });
      return;
    }
    reportUnknownKeys(item, ROUTE_KEYS, itemPath, problems);
    const before = problems.length;
    const host = readHost(item['host'], `${itemPath}.host`, problems);
    const upstreams = readUrlList(item['upstreams'], `${itemPath}.upstreams`, problems);
    const peers = readUrlList(item['peers'], `${itemPath}.peers`, problems);
    if (item['upstreams'] === undefined && item['peers'] === undefined) {
      problems.push({ location: `${itemPath}.upstreams`, message: `${itemPath}.upstreams: required (a list of upstream URLs like "http://127.0.0.1:9000")` });
    } else if (upstreams.length === 0 && peers.length === 0 && problems.length === before) {
      problems.push({ location: `${itemPath}.upstreams`, message: `${itemPath}.upstreams: needs at least one upstream (or a peer in "peers")` });
    }
    const protocol = item['protocol'] ?? 'http1';
    if (protocol !== 'http1' && protocol !== 'h2c') {
      problems.push({ location: `${itemPath}.protocol`, message: `${itemPath}.protocol: expected "http1" or "h2c", got ${describe(protocol)}` });
    }
    const policies = item['policies'] ?? [];
    if (!Array.isArray(policies)) {
      problems.push({ location: `${itemPath}.policies`, message: `${itemPath}.policies: expected a list of policy objects, got ${describe(policies)}` });
    } else if (policies.length > 0) {
      readPolicyProblems(policies, `${itemPath}.policies`, problems);
    }
    if (host !== undefined) {
      const first = seen.get(host);
      if (first !== undefined) problems.push({ location: `${itemPath}.host`, message: `${itemPath}.host: "${host}" is already routed by ${path}[${first}]` });
      else seen.set(host, index);
    }
    if (problems.length === before && host !== undefined) {
      routes.push({ host, upstreams, peers, protocol: protocol as 'http1' | 'h2c', policies: policies as unknown[] });
    }
  });
  return routes;
}

/**
 * Validates a route's policies with the gateway's own parser (the JSON form of `PolicySet`), so a
 * bad policy fails when the file is read, with the path of the field
 * (`frontline.routes[0].policies[1].ratelimit.limit`). The route keeps the raw list; the gateway
 * parses it again when it compiles the policies.
 */
function readPolicyProblems(policies: readonly unknown[], path: string, problems: FaultDetail[]): void {
  try {
    parsePolicies(policies, path);
  } catch (err) {
    const fault = Fault.from(err, 'err:frontline:config:invalid_configuration');
    const details = fault.errors ?? [{ location: path, message: fault.publicMessage }];
    for (const detail of details) problems.push({ location: detail.location, message: `${detail.location}: ${detail.message}` });
  }
}

function readHost(value: unknown, path: string, problems: FaultDetail[]): string | undefined {
  if (typeof value !== 'string' || value.length === 0) {
    problems.push({ location: path, message: `${path}: expected a host name like "app.example.com" or "*.example.com", got ${describe(value)}` });
    return undefined;
  }
  let host = value.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  const labels = host.split('.');
  const wildcard = labels[0] === '*';
  const checked = wildcard ? labels.slice(1) : labels;
  const valid = host.length <= 253 && checked.length >= (wildcard ? 2 : 1) && checked.every((label) => LABEL.test(label));
  if (!valid) {
    const hint = value.includes(':') ? ' (no port or scheme: the host alone)' : wildcard || !value.includes('*') ? '' : ' (a wildcard may only be the whole first label: "*.example.com")';
    problems.push({ location: path, message: `${path}: invalid host name ${JSON.stringify(value)}${hint}` });
    return undefined;
  }
  return host;
}

function readUrlList(value: unknown, path: string, problems: FaultDetail[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push({ location: path, message: `${path}: expected a list of URLs like ["http://127.0.0.1:9000"], got ${describe(value)}` });
    return [];
  }
  if (value.length > INGRESS_DEFAULTS.maxUpstreamsPerRoute) {
    problems.push({ location: path, message: `${path}: at most ${INGRESS_DEFAULTS.maxUpstreamsPerRoute} entries, got ${value.length}` });
    return [];
  }
  const urls: string[] = [];
  value.forEach((item: unknown, index) => {
    const itemPath = `${path}[${index}]`;
    const problem = checkUpstreamUrl(item);
    if (problem === undefined) urls.push(item as string);
    else problems.push({ location: itemPath, message: `${itemPath}: ${problem}, got ${describe(item)}` });
  });
  return urls;
}

/** Undefined when `value` is a usable upstream URL; otherwise what is wrong with it. */
function checkUpstreamUrl(value: unknown): string | undefined {
  const expected = 'expected an upstream URL like "http://127.0.0.1:9000" or "https://host:443"';
  if (typeof value !== 'string' || value.length === 0) return expected;
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    return expected;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${expected} (only http and https)`;
  if (url.hostname === '') return expected;
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') return `${expected} (no path or query: the request's own path is forwarded)`;
  if (url.username !== '' || url.password !== '') return `${expected} (no credentials in the URL)`;
  return undefined;
}

function reportUnknownKeys(item: Record<string, unknown>, known: ReadonlySet<string>, path: string, problems: FaultDetail[]): void {
  for (const key of Object.keys(item)) {
    if (!known.has(key)) problems.push({ location: `${path}.${key}`, message: `${path}.${key}: unknown key (known: ${[...known].join(', ')})` });
  }
}

function invalidIngress(problems: readonly FaultDetail[], source: string | undefined): Fault {
  const where = source === undefined ? '' : ` in ${source}`;
  const lines = problems.map((problem) => problem.message).join('; ');
  return new Fault('err:keygate:config:invalid', { publicMessage: `invalid ingress configuration${where}: ${lines}`, errors: problems });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
