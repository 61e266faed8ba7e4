/**
 * The C and Go anchors of the benchmark (nginx, HAProxy, Caddy from Debian), configured as plain
 * keep-alive reverse proxies to the origin, plus TLS-terminating variants of nginx and HAProxy
 * (ALPN `h2` and `http/1.1` on one listener, like keygate's: h2load gets HTTP/2, wrk HTTP/1.1),
 * and nginx as the origin itself (a Node origin would saturate before the fastest proxies do).
 * Each is used only when its binary is installed; `bench/install-peers.sh` installs them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** How to launch one external peer: the command, or why it is skipped. */
export interface ExternalPeerPlan {
  name: string;
  /** Scheme the peer listens with. */
  scheme: 'http' | 'https';
  port: number;
  command?: string[];
  skipReason?: string;
}

/** Ports for each external peer (picked free by the caller). */
export interface ExternalPeerPorts {
  nginx: number;
  'nginx-tls': number;
  haproxy: number;
  'haproxy-tls': number;
  caddy: number;
}

/** Absolute path of `binary` on PATH (or in /usr/sbin), or undefined. */
export function which(binary: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `PATH="$PATH:/usr/sbin:/sbin" command -v ${binary}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const INSTALL_HINT = 'run bench/install-peers.sh (as root)';

/**
 * nginx as the benchmark origin: one worker answering every request with the same 11-byte body
 * as `origin.ts` (`hello world`, `text/plain`, Content-Length), keep-alive without a request cap.
 * Returns undefined when nginx is not installed.
 */
export function planNginxOrigin(dir: string, port: number): string[] | undefined {
  const nginx = which('nginx');
  if (nginx === undefined) return undefined;
  const config = join(dir, 'nginx-origin.conf');
  writeFileSync(config, `worker_processes 1; daemon off; pid ${join(dir, 'nginx-origin.pid')}; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 60s;
  server { listen 127.0.0.1:${port};
    location / { default_type text/plain; return 200 "hello world"; } } }\n`);
  return [nginx, '-c', config, '-p', dir];
}

/** Writes configs into `dir` and returns how to start the external peers (or why not). */
export function planExternalPeers(dir: string, originPort: number, ports: ExternalPeerPorts, certFile: string, keyFile: string): ExternalPeerPlan[] {
  const plans: ExternalPeerPlan[] = [];
  const nginx = which('nginx');
  const nginxConfig = (name: string, listen: string): string[] => {
    const config = join(dir, `${name}.conf`);
    writeFileSync(config, `worker_processes 1; daemon off; pid ${join(dir, `${name}.pid`)}; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; upstream origin { server 127.0.0.1:${originPort}; keepalive 128; }
  ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;
  server { listen ${listen}; keepalive_requests 10000000; keepalive_timeout 60s;
    ssl_certificate ${certFile}; ssl_certificate_key ${keyFile};
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } } }\n`);
    return [nginx!, '-c', config, '-p', dir];
  };
  for (const [name, scheme] of [['nginx', 'http'], ['nginx-tls', 'https']] as const) {
    const port = ports[name];
    if (nginx === undefined) plans.push({ name, scheme, port, skipReason: `nginx not installed (${INSTALL_HINT})` });
    else plans.push({ name, scheme, port, command: nginxConfig(name, `127.0.0.1:${port}${scheme === 'https' ? ' ssl http2' : ''}`) });
  }

  const haproxy = which('haproxy');
  // HAProxy wants the certificate and its key in one PEM file.
  const combinedPem = join(dir, 'haproxy-bench.pem');
  writeFileSync(combinedPem, Buffer.concat([readFileSync(certFile), readFileSync(keyFile)]));
  for (const [name, scheme] of [['haproxy', 'http'], ['haproxy-tls', 'https']] as const) {
    const port = ports[name];
    if (haproxy === undefined) { plans.push({ name, scheme, port, skipReason: `haproxy not installed (${INSTALL_HINT})` }); continue; }
    const config = join(dir, `${name}.cfg`);
    const bind = `127.0.0.1:${port}${scheme === 'https' ? ` ssl crt ${combinedPem} alpn h2,http/1.1` : ''}`;
    writeFileSync(config, `global\n  nbthread 1\n  tune.ssl.default-dh-param 2048\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\n`
      + `frontend f\n  bind ${bind}\n  default_backend b\nbackend b\n  http-reuse always\n  server o 127.0.0.1:${originPort}\n`);
    plans.push({ name, scheme, port, command: [haproxy, '-f', config, '-db'] });
  }

  const caddy = which('caddy');
  if (caddy === undefined) plans.push({ name: 'caddy', scheme: 'http', port: ports.caddy, skipReason: `caddy not installed (${INSTALL_HINT}; not every Debian release packages it)` });
  else {
    const config = join(dir, 'Caddyfile');
    writeFileSync(config, `{\n  admin off\n  auto_https off\n}\nhttp://127.0.0.1:${ports.caddy} {\n  reverse_proxy 127.0.0.1:${originPort}\n}\n`);
    plans.push({ name: 'caddy', scheme: 'http', port: ports.caddy, command: [caddy, 'run', '--config', config, '--adapter', 'caddyfile'] });
  }
  return plans;
}
