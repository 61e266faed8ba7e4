import t from 'tap';
import type { Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { which } from '../../../bench/harness/external-peers.ts';
import { BURST_WINDOW_MS, runAutocannon, runH2load, runWrk, wrkPacingScript } from '../../../bench/harness/load.ts';
import type { LoadResult } from '../../../bench/harness/load.ts';
import { checkGoals, compareAtFixedRate, FIXED_RATE_KEPT_UP_SHARE, renderTable, writeReport } from '../../../bench/harness/report.ts';
import type { BenchReport, CaseSummary, FixedRateLoadGenerator, GoalCheck } from '../../../bench/harness/report.ts';

const OFFERED = 10_000;

/** A median row of the fixed-rate case before compareAtFixedRate marks it. */
function row(peer: string, requestsPerSecond: number, latencyMsP99: number): CaseSummary {
  return {
    caseName: 'p99-fixed-rate', peer, requestsPerSecond, latencyMsP50: latencyMsP99 / 4, latencyMsP99,
    cpuMicrosecondsPerRequest: 40, runs: 3, ratio: requestsPerSecond / OFFERED, reference: 'nginx', busiestRequestsPerSecond: 26_000,
  };
}

function marked(rows: CaseSummary[], loadGenerator: FixedRateLoadGenerator = 'autocannon'): CaseSummary[] {
  compareAtFixedRate(rows, OFFERED, loadGenerator);
  return rows;
}

function fixedRateGoal(goals: GoalCheck[]): GoalCheck | undefined {
  return goals.find((goal) => goal.caseName === 'p99-fixed-rate');
}

t.test('compares p99 with nginx in the same case and flags a peer below 97 % of the offered rate', async (t) => {
  const [keygate, justEnough, justShort, slow, nginx] = marked([
    row('keygate-raw', 10_010, 3), row('haproxy', 9_700, 2.2), row('keygate-undici', 9_690, 2.5), row('http-proxy-3', 5_000, 30), row('nginx', 9_990, 2),
  ]);
  t.equal(keygate!.latencyP99Ratio, 1.5, 'p99 3 ms against nginx 2 ms');
  t.equal(nginx!.latencyP99Ratio, 1, 'nginx against itself');
  t.equal(keygate!.offeredRequestsPerSecond, OFFERED, 'every row carries the offered rate');
  t.same([keygate, justEnough, justShort, slow, nginx].map((s) => s!.keptUp), [true, true, false, false, true], '97 % of the rate is the line');
  const [alone] = marked([row('keygate-raw', 10_000, 3)]);
  t.equal(alone!.latencyP99Ratio, undefined, 'no ratio without an nginx in the case');
});

t.test('the table shows the p99 ratio instead of the req/s ratio, and says which rows missed the rate', async (t) => {
  const lines = renderTable(marked([row('keygate-raw', 10_010, 3), row('http-proxy-3', 5_000, 30), row('nginx', 9_990, 2)])).split('\n');
  t.match(lines[0]!, /vs nginx\s+vs http-proxy-3\s+note/);
  const keygate = lines.find((line) => line.includes('keygate-raw'))!;
  t.match(keygate, 'p99 1.50× nginx');
  t.notMatch(keygate, /1\.00× nginx/, 'the req/s ratio is not shown');
  t.match(keygate, 'kept up with 10000 req/s; busiest 10 ms at 2.6× the rate');
  t.match(lines.find((line) => line.startsWith('p99-fixed-rate  http-proxy-3'))!, 'BELOW the offered 10000 req/s (50 %): p99 is a saturation figure');
  const withoutNginx = renderTable(marked([row('keygate-raw', 10_000, 3)])).split('\n')[2]!;
  t.match(withoutNginx, 'p99 - (no nginx in this case)');
});

t.test('under wrk the note says the load was paced, and shows no burst figure', async (t) => {
  const paced = (peer: string, requestsPerSecond: number, latencyMsP99: number): CaseSummary => {
    const { busiestRequestsPerSecond: _unmeasured, ...rest } = row(peer, requestsPerSecond, latencyMsP99);
    return rest;
  };
  const [keygate, slow] = marked([paced('keygate-raw', 9_995, 0.3), paced('http-proxy-3', 6_000, 40), paced('nginx', 9_998, 0.2)], 'wrk');
  t.equal(keygate!.fixedRateLoadGenerator, 'wrk');
  t.equal(keygate!.keptUp, true);
  t.equal(slow!.keptUp, false, 'a peer below 97 % of the rate is flagged whatever offered it');
  const lines = renderTable([keygate!, slow!]).split('\n');
  t.match(lines[2]!, /kept up with 10000 req\/s; paced by wrk$/);
  t.notMatch(lines[2]!, 'busiest');
  t.match(lines[3]!, 'BELOW the offered 10000 req/s (60 %): p99 is a saturation figure; paced by wrk');
  const autocannonRows = marked([row('keygate-raw', 10_000, 3)], 'autocannon');
  t.equal(autocannonRows[0]!.fixedRateLoadGenerator, 'autocannon');
  t.notMatch(renderTable(autocannonRows), 'paced by wrk', 'autocannon rows are not said to be paced');
});

t.test('the p99 goal at the same offered load counts only when nginx kept up, and keygate must keep up too', async (t) => {
  const met = fixedRateGoal(checkGoals(marked([row('keygate-raw', 10_000, 3.5), row('keygate-undici', 10_000, 3), row('nginx', 10_000, 2)])));
  t.equal(met?.peer, 'keygate-undici', 'the keygate peer with the lowest p99');
  t.equal(met?.measured, 1.5);
  t.equal(met?.met, true);
  t.match(met?.goal ?? '', "p99 ≤ 2× nginx's p99 (p99-fixed-rate, same offered load: 10000 req/s)");
  const missedRate = fixedRateGoal(checkGoals(marked([row('keygate-raw', 8_000, 2.4), row('nginx', 10_000, 2)])));
  t.equal(missedRate?.met, false, 'a low p99 does not count when keygate could not carry the load');
  t.match(missedRate?.goal ?? '', 'keygate-raw fell below the rate');
  const tooSlow = fixedRateGoal(checkGoals(marked([row('keygate-raw', 10_000, 4.2), row('nginx', 10_000, 2)])));
  t.equal(tooSlow?.met, false, '2.1× misses 2×');
  t.equal(fixedRateGoal(checkGoals(marked([row('keygate-raw', 10_000, 3), row('nginx', 9_000, 2)]))), undefined, 'no goal when nginx itself fell below the rate');
});

t.test('the JSON and HTML reports carry the fixed-rate comparison', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-fixed-rate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const report: BenchReport = {
    startedAt: '2026-11-22T10:00:00.000Z',
    machine: { cpus: 2, model: 'Test CPU', node: 'v24.21.0', pinned: true, loadGenerator: 'autocannon' },
    settings: { fixedRateRequestsPerSecond: OFFERED },
    skipped: [],
    cases: [{ name: 'p99-fixed-rate', description: 'every peer offered 10000 req/s', loadGenerator: 'autocannon at 10000 req/s' }],
    summaries: marked([row('keygate-raw', 10_010, 3), row('http-proxy-3', 5_000, 30), row('nginx', 9_990, 2)]),
    runs: [],
    scripts: [],
  };
  const paths = writeReport(dir, report);
  const json = JSON.parse(readFileSync(paths.json, 'utf8')) as BenchReport & { goals: GoalCheck[] };
  const keygate = json.summaries.find((s) => s.peer === 'keygate-raw')!;
  t.same([keygate.offeredRequestsPerSecond, keygate.keptUp, keygate.latencyP99Ratio], [OFFERED, true, 1.5]);
  t.equal(json.summaries.find((s) => s.peer === 'http-proxy-3')!.keptUp, false);
  t.equal(fixedRateGoal(json.goals)?.met, true, 'the goal is in the JSON');
  const html = readFileSync(paths.html, 'utf8');
  t.match(html, '<td>p99 1.50× nginx</td>');
  t.match(html, 'BELOW the offered 10000 req/s (50 %)');
  t.match(html, 'autocannon at 10000 req/s', 'the case caption names the rate');
});

t.test('autocannon holds the offered rate and times each response below a millisecond', async (t) => {
  let served = 0;
  const server = http.createServer((_req, res) => { served++; res.end('hello world'); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const { port } = server.address() as AddressInfo;
  const rate = 400;
  const result = await runAutocannon({ url: `http://127.0.0.1:${port}/`, connections: 4, durationSeconds: 1, rate });
  // Unpaced, a loopback node:http server answers thousands of requests in a second.
  t.ok(served >= rate * 0.9 && served <= rate * 2, `the server saw about one second's quota (${served})`);
  t.ok(result.requests >= rate * 0.9 && result.requests <= served, `completed ${result.requests} requests`);
  t.ok(result.requestsPerSecond >= rate * 0.9 && result.requestsPerSecond <= rate * 1.1, `achieved ${result.requestsPerSecond} req/s`);
  // autocannon's own histogram counts whole milliseconds; a per-response figure almost never is one.
  t.ok(result.latencyMsP50 > 0 && !Number.isInteger(result.latencyMsP50), `p50 ${result.latencyMsP50} ms has sub-millisecond resolution`);
  t.ok(result.latencyMsP99 >= result.latencyMsP50);
  t.ok(result.busiestRequestsPerSecond !== undefined && result.busiestRequestsPerSecond >= rate * 2,
    `the busiest 10 ms (${result.busiestRequestsPerSecond} req/s) shows autocannon sending each second's quota in a burst`);
  t.equal(result.errors + result.non2xx, 0);
});

t.test('h2load refuses a fixed rate, and wrk a rate it cannot pace, instead of silently running closed loop', async (t) => {
  const options = { url: 'http://127.0.0.1:9/', connections: 1, durationSeconds: 1, rate: 100 };
  // The binaries are never started: the refusal comes first.
  await t.rejects(runH2load(options, '/nonexistent/h2load'), /h2load has no fixed-rate mode/);
  await t.rejects(runWrk({ ...options, script: '/tmp/rotate.lua' }, '/nonexistent/wrk'), /wrk paces a fixed rate .* cannot also run \/tmp\/rotate\.lua/,
    'the pacing is wrk\'s one script');
  for (const rate of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
    await t.rejects(runWrk({ ...options, rate }, '/nonexistent/wrk'), /rate must be a positive number/, `rate ${rate}`);
  }
  // Without a rate the same options get as far as starting the binary.
  await t.rejects(runWrk({ ...options, rate: undefined }, '/nonexistent/wrk'), /\/nonexistent\/wrk failed/);
});

const wrk = which('wrk');
const skipWrk = wrk === undefined ? 'wrk not installed (bench/install-peers.sh installs it)' : false;

/** A loopback node:http server answering `hello world` after `answerAfterMs` (0: at once), noting when each request arrived. */
async function startTimedServer(t: Test, answerAfterMs: number): Promise<{ url: string; arrivalsMs: number[] }> {
  const arrivalsMs: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((_req, res) => {
    arrivalsMs.push(performance.now());
    if (answerAfterMs === 0) { res.end('hello world'); return; }
    const timer = setTimeout(() => { timers.delete(timer); res.end('hello world'); }, answerAfterMs);
    timers.add(timer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const timer of timers) clearTimeout(timer);
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, arrivalsMs };
}

/** The most requests that arrived in one BURST_WINDOW_MS window, and the mean over the whole windows from the first arrival. */
function windowCounts(arrivalsMs: readonly number[]): { busiest: number; mean: number } {
  const firstMs = arrivalsMs[0]!;
  const counts: number[] = [];
  for (const arrivalMs of arrivalsMs) {
    const window = Math.floor((arrivalMs - firstMs) / BURST_WINDOW_MS);
    counts[window] = (counts[window] ?? 0) + 1;
  }
  // The last window is cut short by the end of the run.
  const whole = Array.from(counts.slice(0, -1), (count) => count ?? 0);
  return { busiest: Math.max(...whole), mean: whole.reduce((sum, count) => sum + count, 0) / whole.length };
}

t.test('wrk with its pacing script offers the rate evenly spread, and a peer that keeps up is marked so', { skip: skipWrk }, async (t) => {
  const server = await startTimedServer(t, 0);
  const rate = 400;
  const durationSeconds = 2;
  const result = await runWrk({ url: server.url, connections: 10, durationSeconds, rate }, wrk!);
  // Unpaced, wrk gets tens of thousands of answers a second from a loopback node:http server.
  const servedPerSecond = server.arrivalsMs.length / durationSeconds;
  t.ok(servedPerSecond >= rate * 0.85 && servedPerSecond <= rate * 1.1, `the server saw ${servedPerSecond} req/s for ${rate} offered`);
  t.ok(result.requestsPerSecond >= rate * 0.85 && result.requestsPerSecond <= rate * 1.1, `wrk reports ${result.requestsPerSecond} req/s`);
  t.ok(result.requests <= server.arrivalsMs.length, `completed ${result.requests} of ${server.arrivalsMs.length} requests`);
  const { busiest, mean } = windowCounts(server.arrivalsMs);
  // autocannon's bursts put 2–3× the mean into its busiest window at this rate (see the autocannon test).
  t.ok(busiest <= mean * 4, `busiest ${BURST_WINDOW_MS} ms held ${busiest} requests, the mean ${mean.toFixed(1)}`);
  t.ok(result.latencyMsP50 > 0 && result.latencyMsP99 >= result.latencyMsP50, `p50 ${result.latencyMsP50} ms ≤ p99 ${result.latencyMsP99} ms`);
  t.equal(result.errors + result.non2xx, 0, 'no errors');
  // The schedule is absolute, so a peer answering in well under a slot loses no slots to its latency.
  t.ok(result.requestsPerSecond >= rate * FIXED_RATE_KEPT_UP_SHARE, `wrk achieved ${FIXED_RATE_KEPT_UP_SHARE * 100} % of the rate or more`);
  t.equal(summarizedAtRate(result, rate).keptUp, true, 'marked as kept up');
});

t.test('a peer that cannot keep up with the rate wrk paces is flagged', { skip: skipWrk }, async (t) => {
  // Two connections to a server answering after 20 ms carry at most 100 req/s.
  const server = await startTimedServer(t, 20);
  const rate = 400;
  const result = await runWrk({ url: server.url, connections: 2, durationSeconds: 1, rate }, wrk!);
  t.ok(result.requestsPerSecond > 0 && result.requestsPerSecond <= 110, `achieved ${result.requestsPerSecond} req/s`);
  t.ok(result.latencyMsP50 >= 20, `p50 ${result.latencyMsP50} ms is the peer's own answer time`);
  const summary = summarizedAtRate(result, rate);
  t.equal(summary.keptUp, false, 'marked as not kept up');
  t.match(renderTable([summary]), /BELOW the offered 400 req\/s \(\d+ %\): p99 is a saturation figure; paced by wrk/);
});

/** One wrk run as the median row of a fixed-rate case at `rate`, marked by compareAtFixedRate. */
function summarizedAtRate(result: LoadResult, rate: number): CaseSummary {
  const summary: CaseSummary = {
    caseName: 'p99-fixed-rate', peer: 'peer', requestsPerSecond: result.requestsPerSecond, latencyMsP50: result.latencyMsP50,
    latencyMsP99: result.latencyMsP99, cpuMicrosecondsPerRequest: Number.NaN, runs: 1, ratio: 1, reference: 'peer',
  };
  compareAtFixedRate([summary], rate, 'wrk');
  return summary;
}

t.test('a request script with the pacing script appended (bench/gateway.ts --rate) sends its own requests at the paced rate', { skip: skipWrk }, async (t) => {
  const seen = { scripted: 0, other: 0 };
  const server = http.createServer((req, res) => {
    if (req.headers.host === 'paced.test' && req.headers.authorization === 'Bearer paced') seen.scripted++;
    else seen.other++;
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const scriptDir = mkdtempSync(join(tmpdir(), 'keygate-paced-script-'));
  t.teardown(() => rmSync(scriptDir, { recursive: true, force: true }));
  const script = join(scriptDir, 'case.lua');
  const rate = 300;
  const durationSeconds = 2;
  // The shape of gateway.ts's case scripts: `init` builds the requests, `request` hands them out; then the pacing `delay`.
  writeFileSync(script, `local requests = {}
init = function(args)
  requests[1] = wrk.format("GET", "/resource", { ["Host"] = "paced.test", ["Authorization"] = "Bearer paced" })
end
request = function()
  return requests[1]
end
\n${wrkPacingScript(rate)}`);
  const result = await runWrk({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, connections: 10, durationSeconds, script }, wrk!);
  t.equal(seen.other, 0, 'every request came from the case script');
  const servedPerSecond = seen.scripted / durationSeconds;
  // Unpaced, wrk sends tens of thousands a second to a loopback node:http server.
  t.ok(servedPerSecond >= rate * 0.85 && servedPerSecond <= rate * 1.1, `the server saw ${servedPerSecond} req/s for ${rate} offered`);
  t.ok(result.requestsPerSecond >= rate * 0.85 && result.requestsPerSecond <= rate * 1.1, `wrk reports ${result.requestsPerSecond} req/s`);
});
