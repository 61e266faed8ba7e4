import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkGoals, ratioAgainst, renderTable, writeReport } from '../../../bench/harness/report.ts';
import type { BenchReport, CaseSummary } from '../../../bench/harness/report.ts';
import { median, percentile } from '../../../bench/harness/stats.ts';

function summary(caseName: string, peer: string, requestsPerSecond: number, reference: string, referenceRps: number, node?: [string, number]): CaseSummary {
  return {
    caseName, peer, requestsPerSecond, latencyMsP50: 1 + 1000 / requestsPerSecond, latencyMsP99: 5 + 10_000 / requestsPerSecond,
    cpuMicrosecondsPerRequest: peer === 'direct' ? Number.NaN : 1_000_000 / requestsPerSecond, runs: 3,
    ratio: requestsPerSecond / referenceRps, reference,
    ...(node === undefined ? {} : { ratioNode: requestsPerSecond / node[1], referenceNode: node[0] }),
  };
}

const CASE_NAMES = ['http1-keepalive', 'tls-keepalive', 'tls-new-handshakes', 'http2-downstream', 'routes-1-vs-1000'];

function sampleReport(): BenchReport {
  const summaries: CaseSummary[] = [
    summary('http1-keepalive', 'direct', 90_000, 'nginx', 58_000, ['http-proxy-3', 11_000]),
    summary('http1-keepalive', 'keygate-raw', 30_000, 'nginx', 58_000, ['http-proxy-3', 11_000]),
    summary('http1-keepalive', 'http-proxy-3', 11_000, 'nginx', 58_000, ['http-proxy-3', 11_000]),
    summary('http1-keepalive', 'nginx', 58_000, 'nginx', 58_000, ['http-proxy-3', 11_000]),
    summary('tls-keepalive', 'keygate-raw-tls', 21_000, 'nginx-tls', 41_000, ['http-proxy-3-tls', 9_000]),
    summary('tls-keepalive', 'http-proxy-3-tls', 9_000, 'nginx-tls', 41_000, ['http-proxy-3-tls', 9_000]),
    summary('tls-keepalive', 'nginx-tls', 41_000, 'nginx-tls', 41_000, ['http-proxy-3-tls', 9_000]),
    summary('tls-new-handshakes', 'keygate-raw-tls', 700, 'nginx-tls', 1_000, ['http-proxy-3-tls', 600]),
    summary('tls-new-handshakes', 'nginx-tls', 1_000, 'nginx-tls', 1_000, ['http-proxy-3-tls', 600]),
    summary('http2-downstream', 'keygate-raw-tls', 20_000, 'nginx-tls', 30_000, ['http-proxy-3-h2', 6_000]),
    summary('http2-downstream', 'nginx-tls', 30_000, 'nginx-tls', 30_000, ['http-proxy-3-h2', 6_000]),
    summary('routes-1-vs-1000', 'keygate-1-route', 29_000, 'nginx (http1-keepalive)', 58_000, ['http-proxy-3 (http1-keepalive)', 11_000]),
    summary('routes-1-vs-1000', 'keygate-1000-routes', 28_500, 'nginx (http1-keepalive)', 58_000, ['http-proxy-3 (http1-keepalive)', 11_000]),
  ];
  return {
    startedAt: '2026-11-22T09:00:00.000Z',
    machine: { cpus: 2, model: 'Test CPU <b>', node: 'v24.21.0', pinned: true, loadGenerator: 'wrk, h2load', loadAverage: [1, 2, 3] },
    settings: { durationSeconds: 5, repeats: 3 },
    skipped: ['caddy not installed <script>alert(1)</script>'],
    cases: CASE_NAMES.map((name) => ({ name, description: `what ${name} measures`, loadGenerator: name === 'http2-downstream' ? 'h2load' : 'wrk' })),
    summaries,
    runs: [],
    scripts: [{ script: 'ratelimit.ts', args: ['--seconds', '1'], exitCode: 0, durationMs: 2100, output: 'variant   decisions/s\nmemory    1234567 & <more>\n' }],
  };
}

t.test('the HTML report is self-contained and shows every case with req/s, latencies, CPU and both ratios', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const paths = writeReport(dir, sampleReport());
  const html = readFileSync(paths.html, 'utf8');
  t.notMatch(html, /<script|<link|<img|\bsrc=|\bhref=|url\(|https?:\/\//i, 'no scripts, no external assets');
  t.notMatch(html, /<b>|alert\(1\)<\/script>/, 'text from the run is escaped');
  for (const caseName of CASE_NAMES) {
    t.match(html, `<h3 id="case-${caseName}">`, `${caseName} has a chart`);
    t.match(html, `<td>${caseName}</td>`, `${caseName} is in the table`);
  }
  t.equal(html.match(/<svg /g)?.length, CASE_NAMES.length, 'one inline SVG chart per case');
  for (const column of ['req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'vs nginx', 'vs http-proxy-3']) t.match(html, `<th>${column}</th>`);
  t.match(html, '<td>0.52× nginx</td>', 'keygate-raw vs nginx');
  t.match(html, '<td>2.73× http-proxy-3</td>', 'keygate-raw vs http-proxy-3');
  t.match(html, '<td>0.50× nginx (http1-keepalive)</td>', 'routes borrow the plain case reference and say so');
  t.match(html, 'bench/ratelimit.ts --seconds 1', 'standalone script section');
  t.match(html, '1234567 &#38; &#60;more&#62;', 'script output is escaped, not dropped');
  const json = JSON.parse(readFileSync(paths.json, 'utf8')) as BenchReport & { goals: unknown[] };
  t.equal(json.summaries.length, 13);
  t.equal(json.scripts[0]!.script, 'ratelimit.ts');
  t.ok(json.goals.length > 0, 'goals are in the JSON');
});

t.test('the text table has one row per peer and case with both ratios', async (t) => {
  const lines = renderTable(sampleReport().summaries).split('\n');
  t.equal(lines.length, 2 + 13);
  t.match(lines[0]!, /case\s+peer\s+req\/s\s+p50 ms\s+p99 ms\s+CPU µs\/req\s+vs nginx\s+vs http-proxy-3/);
  const direct = lines.find((line) => line.includes(' direct '))!;
  t.match(direct, /\s-\s/, 'no CPU figure for the origin itself');
  const withoutNginx = renderTable([summary('routes-1-vs-1000', 'keygate-1-route', 29_000, 'keygate-1-route', 29_000)]).split('\n')[2]!;
  t.match(withoutNginx, '- (1.00× keygate-1-route)', 'a fallback reference is not presented as nginx');
});

t.test('goals are checked against the best keygate peer and the right direction', async (t) => {
  const goals = checkGoals(sampleReport().summaries);
  const byGoal = new Map(goals.map((goal) => [goal.goal, goal]));
  t.equal(byGoal.get('plain proxying ≥ 0.5× nginx')?.met, true);
  t.equal(byGoal.get('plain proxying ≥ 0.5× nginx')?.peer, 'keygate-raw');
  t.equal(byGoal.get('plain proxying ≥ 2× http-proxy-3')?.met, true);
  t.equal(byGoal.get('TLS termination ≥ 0.5× nginx (TLS)')?.met, true);
  t.equal(byGoal.get('new TLS connections (ticket-resumed handshakes) ≥ 0.75× nginx')?.met, false, '0.70× misses 0.75×');
  const p99 = goals.find((goal) => goal.goal.startsWith("p99 ≤ 2× nginx's p99 (http1-keepalive"));
  t.ok(p99 !== undefined && p99.measured > 1 && p99.met, 'lower is better for latency');
  const noNginx = checkGoals([summary('http1-keepalive', 'keygate-raw', 30_000, 'http-proxy-3', 11_000, ['http-proxy-3', 11_000])]);
  t.same(noNginx.map((goal) => goal.goal), ['plain proxying ≥ 2× http-proxy-3'], 'no nginx goal without nginx');
});

/** A median row of tls-full-handshakes: s_time gives no latency, and ratios compare CPU per handshake. */
function fullHandshakeRow(peer: string, cpuMicrosecondsPerHandshake: number, nginxCpuMicroseconds: number): CaseSummary {
  const row = {
    caseName: 'tls-full-handshakes', peer, requestsPerSecond: 1_100, latencyMsP50: Number.NaN, latencyMsP99: Number.NaN,
    cpuMicrosecondsPerRequest: cpuMicrosecondsPerHandshake, runs: 3, reference: 'nginx-tls', ratioMetric: 'cpu' as const,
  };
  return { ...row, ratio: ratioAgainst(row, { requestsPerSecond: 1_100, cpuMicrosecondsPerRequest: nginxCpuMicroseconds }, 'cpu') };
}

t.test('a CPU ratio is the reference CPU per request over the peer, so higher is better as for req/s', async (t) => {
  const peer = { requestsPerSecond: 1_000, cpuMicrosecondsPerRequest: 400 };
  const nginx = { requestsPerSecond: 1_200, cpuMicrosecondsPerRequest: 300 };
  t.equal(ratioAgainst(peer, nginx, 'cpu'), 0.75, '400 µs against 300 µs: 0.75×');
  t.equal(ratioAgainst(nginx, peer, 'cpu'), 400 / 300, 'the cheaper peer scores above 1');
  t.equal(ratioAgainst(peer, nginx), 1_000 / 1_200, 'without a metric, req/s');
  t.ok(Number.isNaN(ratioAgainst({ requestsPerSecond: 0, cpuMicrosecondsPerRequest: Number.NaN }, nginx, 'cpu')), 'no CPU figure, no ratio');
});

t.test('full handshakes are compared by CPU: the table says so and prints no made-up latency', async (t) => {
  const rows = [fullHandshakeRow('keygate-raw-tls', 375, 300), fullHandshakeRow('nginx-tls', 300, 300)];
  rows[0]!.ratioNode = 2;
  rows[0]!.referenceNode = 'http-proxy-3-tls';
  const keygate = renderTable(rows).split('\n').find((line) => line.includes('keygate-raw-tls'))!;
  t.match(keygate, /1100\s+-\s+-\s+375\.0\s+0\.80× nginx-tls \(CPU\/handshake\)\s+2\.00× http-proxy-3-tls \(CPU\/handshake\)/);
  t.notMatch(renderTable(rows), /NaN|Infinity/);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const report = { ...sampleReport(), summaries: rows, cases: [{ name: 'tls-full-handshakes', description: 'full handshakes', loadGenerator: 'openssl s_time -new × 4' }] };
  const html = readFileSync(writeReport(dir, report).html, 'utf8');
  t.match(html, '<td>0.80× nginx-tls (CPU/handshake)</td>');
  t.match(html, 'CPU µs/handshake (lower is better)', 'the chart shows CPU per handshake');
  t.notMatch(html, /p99 ms \(lower/, 'no latency panel without a latency');
  t.notMatch(html, /NaN|Infinity/);
});

t.test('the full-handshake goal takes the keygate peer with the least CPU per handshake against nginx', async (t) => {
  const goalOf = (rows: CaseSummary[]) => checkGoals(rows).find((goal) => goal.goal === 'full TLS handshakes ≥ 0.75× nginx (CPU per handshake)');
  const met = goalOf([fullHandshakeRow('keygate-undici-tls', 500, 300), fullHandshakeRow('keygate-raw-tls', 390, 300), fullHandshakeRow('nginx-tls', 300, 300)]);
  t.equal(met?.peer, 'keygate-raw-tls');
  t.equal(met?.measured, 300 / 390);
  t.equal(met?.target, 0.75);
  t.equal(met?.met, true, '0.77× meets 0.75×');
  const missed = goalOf([fullHandshakeRow('keygate-raw-tls', 430, 283), fullHandshakeRow('nginx-tls', 283, 283)]);
  t.equal(missed?.met, false, '0.66× misses 0.75×');
  t.equal(goalOf([{ ...fullHandshakeRow('keygate-raw-tls', 300, 300), reference: 'http-proxy-3-tls' }]), undefined, 'no goal without nginx');
  t.equal(goalOf([{ ...fullHandshakeRow('keygate-raw-tls', 300, 300), ratioMetric: undefined }]), undefined, 'no goal from a req/s ratio');
  const others = checkGoals(sampleReport().summaries).map((goal) => goal.goal);
  t.notOk(others.some((goal) => goal.startsWith('full TLS')), 'not checked when the case did not run');
});

t.test('median and nearest-rank percentile', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.ok(Number.isNaN(median([])));
  const sorted = Array.from({ length: 1000 }, (_, index) => index + 1);
  t.equal(percentile(sorted, 50), 500);
  t.equal(percentile(sorted, 99), 990);
  t.equal(percentile([7], 99), 7);
  t.equal(percentile(sorted, 0), 1);
  t.equal(percentile(sorted, 100), 1000);
  t.ok(Number.isNaN(percentile([], 50)));
});
