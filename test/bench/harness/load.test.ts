import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parseH2loadOutput, parseSTimeOutput, parseWrkOutput, runH2load, runSTime, runWrk } from '../../../bench/harness/load.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';

const WRK_OUTPUT = `Running 1s test @ http://127.0.0.1:40001/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  310.11us   9.80ms   99.99%
    Req/Sec    32.91k     1.02k   34.00k    76.50%
  Latency Distribution
     50%    1.48ms
     75%    1.60ms
     90%    1.75ms
     99%   12.30ms
  32770 requests in 1.00s, 4.88MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  32752.43
Transfer/sec:      4.88MB
`;

const H2LOAD_OUTPUT = `starting benchmark...
spawning thread #0: 5 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration for measurements.
TLS Protocol: TLSv1.3
Application protocol: h2
Main benchmark duration is started for client #0.

finished in 1.00s, 1206.58 req/s, 54.44KB/s
requests: 1210 total, 1215 started, 1206 done, 1200 succeeded, 6 failed, 2 errored, 1 timeout
status codes: 1200 2xx, 0 3xx, 1 4xx, 2 5xx
traffic: 90.24KB (92404) total, 15.93KB (16308) headers (space savings 89.93%), 21.48KB (22000) data
                     min         max         mean         sd        +/- sd
time for request:     3.57ms    337.71ms     32.60ms     45.96ms    88.35%
`;

t.test('reads req/s, p50, p99 (not the stdev percentages), requests and every kind of socket error from wrk --latency', async (t) => {
  const result = parseWrkOutput(WRK_OUTPUT);
  t.equal(result.requestsPerSecond, 32752.43);
  t.equal(result.latencyMsP50, 1.48);
  t.equal(result.latencyMsP99, 12.3);
  t.equal(result.requests, 32770);
  t.equal(result.errors, 6, 'connect + read + write + timeout');
  t.equal(result.non2xx, 7);
  t.equal(parseWrkOutput(WRK_OUTPUT.replace('99%   12.30ms', '99%  410.00us')).latencyMsP99, 0.41, 'microseconds become milliseconds');
  t.equal(parseWrkOutput(WRK_OUTPUT.replace('99%   12.30ms', '99%    1.20s')).latencyMsP99, 1200, 'seconds become milliseconds');
});

t.test('takes h2load counts from its summary and p50/p99 from its per-request log', async (t) => {
  // 100 responses of 1..100 ms, plus one request that never got a response (status -1).
  const lines = Array.from({ length: 100 }, (_, index) => `1795339280727${index}\t200\t${(index + 1) * 1000}`);
  lines.push('1795339280999999\t-1\t5000000');
  const result = parseH2loadOutput(H2LOAD_OUTPUT, `${lines.join('\n')}\n`);
  t.equal(result.requestsPerSecond, 1206.58);
  t.equal(result.requests, 1206, 'completed requests');
  t.equal(result.latencyMsP50, 50);
  t.equal(result.latencyMsP99, 99, 'the unanswered request is not a latency');
  t.equal(result.errors, 3, 'errored + timeout');
  t.equal(result.non2xx, 3, '4xx + 5xx');
  t.equal(parseH2loadOutput(H2LOAD_OUTPUT.replace('finished in 1.00s', 'finished in 410.83ms'), '').requestsPerSecond, 1206.58, 'a sub-second run');
  t.ok(Number.isNaN(parseH2loadOutput(H2LOAD_OUTPUT, '').latencyMsP99), 'no log, no percentile');
});

const S_TIME_OUTPUT = `Collecting connection statistics for 5 seconds
${'*'.repeat(684)}

684 connections in 0.79s; 865.82 connections/user sec, bytes read 0
684 connections in 5 real seconds, 0 bytes read per connection
`;

t.test('reads the connection count from the real-seconds line of openssl s_time', async (t) => {
  const cases: [name: string, output: string, connections: number][] = [
    ['a whole run', S_TIME_OUTPUT, 684],
    ['no connection made in time', S_TIME_OUTPUT.replace(/684/g, '0'), 0],
    ['a larger count, a longer run', S_TIME_OUTPUT.replace('684 connections in 5 real', '12345 connections in 60 real'), 12345],
  ];
  for (const [name, output, connections] of cases) t.equal(parseSTimeOutput(output), connections, name);
});

t.test('refuses s_time output without the real-seconds line, and quotes it', async (t) => {
  const cases: [name: string, output: string, quoted: RegExp][] = [
    ['garbage', 'connect: Connection refused\nconnect:errno=111\n', /Connection refused/],
    ['empty', '', /""/],
    ['only the user-CPU line', S_TIME_OUTPUT.replace(/^684 connections in 5 real.*$/m, ''), /865\.82 connections\/user sec/],
  ];
  for (const [name, output, quoted] of cases) {
    t.throws(() => parseSTimeOutput(output), { message: /no "<n> connections in <s> real seconds" line/ }, name);
    t.throws(() => parseSTimeOutput(output), { message: quoted }, `${name}: the output is quoted`);
  }
});

function toolPath(name: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const h2load = toolPath('h2load');
const skipH2 = h2load === undefined ? 'h2load not installed (nghttp2-client; bench/install-peers.sh installs it)' : false;
const wrk = toolPath('wrk');
const skipWrk = wrk === undefined ? 'wrk not installed (bench/install-peers.sh installs it)' : false;

t.test('runs wrk with the Lua script it is given, and counts the non-2xx answers its requests get', { skip: skipWrk }, async (t) => {
  const scriptDir = mkdtempSync(join(tmpdir(), 'keygate-wrk-test-'));
  t.teardown(() => rmSync(scriptDir, { recursive: true, force: true }));
  const script = join(scriptDir, 'rotate.lua');
  // Alternates a good and a bad credential on a Host the URL does not name: only the script can send these.
  writeFileSync(script, `local requests = {}
local next_index = 0
init = function(args)
  requests[1] = wrk.format("GET", "/resource", { ["Host"] = "scripted.test", ["Authorization"] = "Bearer good" })
  requests[2] = wrk.format("GET", "/resource", { ["Host"] = "scripted.test", ["Authorization"] = "Bearer bad" })
end
request = function()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
`);
  const seen = { good: 0, bad: 0, other: 0 };
  const server = http.createServer((req, res) => {
    const scripted = req.headers.host === 'scripted.test' && req.url === '/resource';
    if (scripted && req.headers.authorization === 'Bearer good') { seen.good++; res.end('ok'); return; }
    if (scripted && req.headers.authorization === 'Bearer bad') seen.bad++;
    else seen.other++;
    res.writeHead(401).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const { port } = server.address() as AddressInfo;
  const result = await runWrk({ url: `http://127.0.0.1:${port}/`, connections: 2, durationSeconds: 1, script }, wrk!);
  t.equal(seen.other, 0, 'every request came from the script');
  t.ok(seen.good > 0 && seen.bad > 0, `both credentials were sent (good ${seen.good}, bad ${seen.bad})`);
  t.ok(result.requests > 0 && result.requests <= seen.good + seen.bad, `completed ${result.requests} requests`);
  t.ok(result.non2xx > 0 && result.non2xx <= seen.bad, `the 401s are counted as non-2xx (${result.non2xx})`);
  t.ok(result.non2xx < result.requests, 'the good requests are not');
});

t.test('drives a real HTTP/2 server with h2load and measures what it served', { skip: skipH2 }, async (t) => {
  const certificate = createTestCertificate({ hostnames: ['localhost'] });
  t.teardown(() => certificate.cleanup());
  let served = 0;
  const protocols = new Set<string>();
  const server = http2.createSecureServer({ cert: certificate.cert, key: certificate.key }, (req, res) => {
    served++;
    protocols.add(req.httpVersion);
    res.end('hello world');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  const result = await runH2load({ url: `https://127.0.0.1:${port}/`, connections: 4, durationSeconds: 0.3, insecure: true }, h2load!);
  t.same([...protocols], ['2.0'], 'every request came over HTTP/2');
  t.ok(result.requests > 0, `completed ${result.requests} requests`);
  t.ok(result.requests <= served, 'no more completions than the server answered');
  t.ok(result.requestsPerSecond > 0);
  t.ok(result.latencyMsP50 > 0 && result.latencyMsP99 >= result.latencyMsP50, `p50 ${result.latencyMsP50} ms ≤ p99 ${result.latencyMsP99} ms`);
  t.equal(result.errors, 0);
  t.equal(result.non2xx, 0);
});

t.test('refuses to report a peer that does not negotiate h2 as an HTTP/2 result', { skip: skipH2 }, async (t) => {
  const certificate = createTestCertificate({ hostnames: ['localhost'] });
  t.teardown(() => certificate.cleanup());
  const server = https.createServer({ cert: certificate.cert, key: certificate.key }, (_req, res) => res.end('hello world'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const { port } = server.address() as AddressInfo;
  await t.rejects(runH2load({ url: `https://127.0.0.1:${port}/`, connections: 2, durationSeconds: 0.2, insecure: true }, h2load!), /did not negotiate h2/);
});

const openssl = toolPath('openssl');
const skipOpenssl = openssl === undefined ? 'openssl not installed' : false;

t.test('s_time makes full handshakes from every process, with no request and no latency', { skip: skipOpenssl }, async (t) => {
  const certificate = createTestCertificate({ hostnames: ['localhost'] });
  t.teardown(() => certificate.cleanup());
  const handshakes = { full: 0, resumed: 0, bytesReceived: 0 };
  const server = tls.createServer({ cert: certificate.cert, key: certificate.key }, (socket) => {
    if (socket.isSessionReused()) handshakes.resumed++;
    else handshakes.full++;
    socket.on('data', (data) => { handshakes.bytesReceived += data.length; });
    socket.on('error', () => { /* s_time closes without a close_notify read: resets are expected */ });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  const result = await runSTime({ host: '127.0.0.1', port, durationSeconds: 1, processes: 2 }, openssl!);
  t.ok(result.requests > 1, `${result.requests} connections`);
  t.equal(result.requestsPerSecond, result.requests / 1, 'connections over the seconds asked');
  t.equal(handshakes.resumed, 0, 'no connection resumed a session');
  t.ok(handshakes.full >= result.requests * 0.9, `the server completed the handshakes (${handshakes.full} of ${result.requests})`);
  t.equal(handshakes.bytesReceived, 0, 'no request was sent');
  t.ok(Number.isNaN(result.latencyMsP50) && Number.isNaN(result.latencyMsP99), 'no latency is made up');
  t.equal(result.errors, 0);
  t.equal(result.non2xx, 0);
});

t.test('a failing s_time process rejects the run and stops the others before it settles', { skip: skipOpenssl }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-s-time-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A server that accepts and never answers: a real s_time against it waits in its handshake until killed.
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => { sockets.add(socket); socket.on('error', () => {}); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { for (const socket of sockets) socket.destroy(); silent.close(() => resolve()); }));
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  // The first process started connects to a closed port and fails; the others run the real command and hang.
  const wrapper = join(dir, 'openssl');
  writeFileSync(wrapper, `#!/bin/sh
echo $$ >> '${join(dir, 'pids')}'
if mkdir '${join(dir, 'first')}' 2>/dev/null; then exec '${openssl}' s_time -connect 127.0.0.1:${closedPort} -new -time 1; fi
exec '${openssl}' "$@"
`);
  chmodSync(wrapper, 0o755);
  const { port } = silent.address() as AddressInfo;
  await t.rejects(runSTime({ host: '127.0.0.1', port, durationSeconds: 1, processes: 3 }, wrapper), { message: /openssl s_time \(process \d of 3\) against 127\.0\.0\.1:\d+ exited with 1/ });
  const pids = readFileSync(join(dir, 'pids'), 'utf8').trim().split('\n').map(Number);
  t.equal(pids.length, 3, 'three processes ran');
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is gone`);
});
