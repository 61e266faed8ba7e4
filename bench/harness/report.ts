/**
 * Benchmark reports: a JSON file with every run, the medians and the standalone scripts' output,
 * and a self-contained HTML page (inline CSS and SVG bar charts, no scripts or external assets)
 * in `bench/results/`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The median figures of one peer in one case. */
export interface CaseSummary {
  caseName: string;
  peer: string;
  requestsPerSecond: number;
  latencyMsP50: number;
  latencyMsP99: number;
  /** The proxy process's user + system CPU time per completed request (NaN for `direct`). */
  cpuMicrosecondsPerRequest: number;
  runs: number;
  /**
   * This peer against the case's C reference (nginx; see `reference`), else the first peer: its
   * req/s ÷ the reference's, or with `ratioMetric` `cpu` the reference's CPU per request ÷ its
   * own (ratioAgainst). Higher is better either way.
   */
  ratio: number;
  reference: string;
  /** The same against the case's Node reference (http-proxy-3), when one ran. */
  ratioNode?: number;
  referenceNode?: string;
  /** What `ratio` and `ratioNode` compare: req/s when undefined, CPU time per request with `cpu`. */
  ratioMetric?: RatioMetric;
  /** Fixed-rate cases only (see compareAtFixedRate): the load, in req/s, every peer was offered. */
  offeredRequestsPerSecond?: number;
  /**
   * Fixed-rate cases: whether the median req/s reached FIXED_RATE_KEPT_UP_SHARE of the offered
   * rate. When not, the peer could not carry the load and its latencies are saturation figures.
   */
  keptUp?: boolean;
  /** Fixed-rate cases: p99 ÷ the p99 of nginx in the same case (the same offered load), when nginx ran. */
  latencyP99Ratio?: number;
  /**
   * Fixed-rate cases driven by autocannon: median req/s of the busiest 10 ms of each run (see
   * LoadResult.busiestRequestsPerSecond). Undefined under wrk, whose pacing script spreads the load.
   */
  busiestRequestsPerSecond?: number;
  /** Fixed-rate cases: what offered the rate (see compareAtFixedRate). */
  fixedRateLoadGenerator?: FixedRateLoadGenerator;
}

/**
 * A ratio of CPU time per request instead of req/s: for a case whose load generator cannot
 * saturate the peers (`tls-full-handshakes`, where each "request" is one full TLS handshake and
 * the client's share of a handshake costs more than the server's), so req/s measures the client.
 */
export type RatioMetric = 'cpu';

/**
 * What offers a fixed-rate case its load: `wrk` with a pacing script (requests spread evenly) or
 * `autocannon` with `overallRate` (each connection's per-second quota in one burst).
 */
export type FixedRateLoadGenerator = 'wrk' | 'autocannon';

/** What one case measures, for the report's captions. */
export interface CaseInfo {
  name: string;
  description: string;
  loadGenerator: string;
}

/** The captured output of one standalone `bench/<name>.ts` script. */
export interface ScriptResult {
  script: string;
  args: string[];
  /** Exit code; null when it was killed (signal or timeout). */
  exitCode: number | null;
  durationMs: number;
  /** stdout and stderr interleaved as printed, truncated to a bound by the runner. */
  output: string;
}

/** Everything a report shows. */
export interface BenchReport {
  startedAt: string;
  machine: { cpus: number; model: string; node: string; pinned: boolean; loadGenerator: string; loadAverage?: number[] };
  settings: Record<string, unknown>;
  skipped: string[];
  cases: CaseInfo[];
  summaries: CaseSummary[];
  runs: unknown[];
  scripts: ScriptResult[];
}

/** One of the issue's performance goals, checked against the best keygate peer of a case. */
export interface GoalCheck {
  goal: string;
  caseName: string;
  peer: string;
  measured: number;
  target: number;
  met: boolean;
}

/** Writes `<stamp>.json` and `<stamp>.html` into `dir`; returns both paths. */
export function writeReport(dir: string, report: BenchReport): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const json = join(dir, `${stamp}.json`);
  const html = join(dir, `${stamp}.html`);
  writeFileSync(json, JSON.stringify({ ...report, goals: checkGoals(report.summaries) }, null, 2));
  writeFileSync(html, renderHtml(report));
  return { json, html };
}

/**
 * Share of the offered rate a peer's median req/s must reach for its latencies to count as
 * measured at that rate (neither wrk's pacing nor autocannon exceeds the rate, and a peer that
 * keeps up lands within a fraction of a percent of it).
 */
export const FIXED_RATE_KEPT_UP_SHARE = 0.97;
/** The issue's latency goal: p99 at most this many times nginx's p99 at the same offered load. */
const MAX_P99_RATIO_TO_NGINX = 2;

const TABLE_HEADER = ['case', 'peer', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'vs nginx', 'vs http-proxy-3', 'note'];

/**
 * How `summary` compares with `reference` (higher is better): req/s ÷ the reference's req/s, or
 * with `metric` `cpu` the reference's CPU µs per request ÷ the summary's (0.8 means it uses 1.25×
 * the reference's CPU per request). NaN or Infinity when a figure is missing or zero; the table
 * prints those as `-`. Called by the runner once per peer and reference, after the medians.
 */
export function ratioAgainst(summary: Pick<CaseSummary, 'requestsPerSecond' | 'cpuMicrosecondsPerRequest'>, reference: Pick<CaseSummary, 'requestsPerSecond' | 'cpuMicrosecondsPerRequest'>, metric?: RatioMetric): number {
  return metric === 'cpu' ? reference.cpuMicrosecondsPerRequest / summary.cpuMicrosecondsPerRequest : summary.requestsPerSecond / reference.requestsPerSecond;
}

/** The text table printed at the end of a run. */
export function renderTable(summaries: readonly CaseSummary[]): string {
  const rows = summaries.map(tableCells);
  const widths = TABLE_HEADER.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  return [line(TABLE_HEADER), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

/**
 * Marks the summaries of one case driven at `offeredRequestsPerSecond` by `loadGenerator`: whether
 * each peer kept up (FIXED_RATE_KEPT_UP_SHARE), and its p99 relative to the p99 of the case's own
 * nginx (a peer named `nginx…`; no ratio without one, since another case's nginx ran at another
 * load). Called once per fixed-rate case after the medians are taken; changes the summaries in place.
 */
export function compareAtFixedRate(caseSummaries: readonly CaseSummary[], offeredRequestsPerSecond: number, loadGenerator: FixedRateLoadGenerator): void {
  const nginx = caseSummaries.find((s) => s.peer.startsWith('nginx'));
  for (const summary of caseSummaries) {
    summary.offeredRequestsPerSecond = offeredRequestsPerSecond;
    summary.fixedRateLoadGenerator = loadGenerator;
    summary.keptUp = summary.requestsPerSecond >= offeredRequestsPerSecond * FIXED_RATE_KEPT_UP_SHARE;
    if (nginx !== undefined) summary.latencyP99Ratio = summary.latencyMsP99 / nginx.latencyMsP99;
  }
}

/**
 * The issue's goals (plain ≥ 0.5× nginx and ≥ 2× http-proxy-3, TLS ≥ 0.5× nginx, resumed and full
 * handshakes ≥ 0.75× nginx, p99 ≤ 2× nginx's), each for the best keygate peer of its case (the
 * highest req/s; for full handshakes, compared by CPU time per handshake, the lowest CPU per
 * handshake); goals whose case or reference did not run are left out. The p99 goal is checked twice: at the same concurrency
 * (closed loop, indicative), and at the same offered load in each fixed-rate case where nginx
 * kept up; there the keygate peer with the lowest p99 counts, and missing the rate misses the goal.
 */
export function checkGoals(summaries: readonly CaseSummary[]): GoalCheck[] {
  const checks: GoalCheck[] = [];
  const best = (caseName: string): CaseSummary | undefined => summaries
    .filter((s) => s.caseName === caseName && s.peer.startsWith('keygate'))
    .sort((a, b) => b.requestsPerSecond - a.requestsPerSecond)[0];
  const add = (goal: string, summary: CaseSummary | undefined, measured: number | undefined, target: number, lowerIsBetter = false): void => {
    if (summary === undefined || measured === undefined || !Number.isFinite(measured)) return;
    checks.push({ goal, caseName: summary.caseName, peer: summary.peer, measured, target, met: lowerIsBetter ? measured <= target : measured >= target });
  };
  const nginxRatio = (summary: CaseSummary | undefined): number | undefined => summary?.reference.startsWith('nginx') ? summary.ratio : undefined;
  const plain = best('http1-keepalive');
  add('plain proxying ≥ 0.5× nginx', plain, nginxRatio(plain), 0.5);
  add('plain proxying ≥ 2× http-proxy-3', plain, plain?.ratioNode, 2);
  const tls = best('tls-keepalive');
  add('TLS termination ≥ 0.5× nginx (TLS)', tls, nginxRatio(tls), 0.5);
  const handshakes = best('tls-new-handshakes');
  // wrk resumes every new connection with a ticket: these are resumed handshakes (see the harness README).
  add('new TLS connections (ticket-resumed handshakes) ≥ 0.75× nginx', handshakes, nginxRatio(handshakes), 0.75);
  // s_time cannot saturate a server, so the peers are compared by CPU per handshake, not by req/s.
  const fullHandshakes = summaries
    .filter((s) => s.caseName === 'tls-full-handshakes' && s.peer.startsWith('keygate') && Number.isFinite(s.cpuMicrosecondsPerRequest))
    .sort((a, b) => a.cpuMicrosecondsPerRequest - b.cpuMicrosecondsPerRequest)[0];
  add('full TLS handshakes ≥ 0.75× nginx (CPU per handshake)', fullHandshakes, fullHandshakes?.ratioMetric === 'cpu' ? nginxRatio(fullHandshakes) : undefined, 0.75);
  for (const summary of [plain, tls]) {
    const nginx = summaries.find((s) => s.caseName === summary?.caseName && s.peer === summary?.reference && s.peer.startsWith('nginx'));
    // Closed-loop load (same concurrency), not the same offered load: indicative only.
    add(`p99 ≤ 2× nginx's p99 (${summary?.caseName}, same concurrency)`, summary, nginx === undefined ? undefined : summary!.latencyMsP99 / nginx.latencyMsP99, MAX_P99_RATIO_TO_NGINX, true);
  }
  for (const caseName of new Set(summaries.filter((s) => s.offeredRequestsPerSecond !== undefined).map((s) => s.caseName))) {
    const rows = summaries.filter((s) => s.caseName === caseName);
    if (rows.find((s) => s.peer.startsWith('nginx'))?.keptUp !== true) continue;
    const keygate = rows.filter((s) => s.peer.startsWith('keygate')).sort((a, b) => a.latencyMsP99 - b.latencyMsP99)[0];
    if (keygate?.latencyP99Ratio === undefined || !Number.isFinite(keygate.latencyP99Ratio)) continue;
    const goal = `p99 ≤ 2× nginx's p99 (${caseName}, same offered load: ${keygate.offeredRequestsPerSecond} req/s)`;
    checks.push({
      goal: keygate.keptUp === true ? goal : `${goal}; ${keygate.peer} fell below the rate`,
      caseName, peer: keygate.peer, measured: keygate.latencyP99Ratio, target: MAX_P99_RATIO_TO_NGINX,
      met: keygate.keptUp === true && keygate.latencyP99Ratio <= MAX_P99_RATIO_TO_NGINX,
    });
  }
  return checks;
}

function tableCells(s: CaseSummary): string[] {
  const common = [
    s.caseName, s.peer, figure(s.requestsPerSecond, 0), figure(s.latencyMsP50, 2), figure(s.latencyMsP99, 2), figure(s.cpuMicrosecondsPerRequest, 1),
  ];
  // At a fixed rate every peer that keeps up serves the same req/s: latency is the comparison.
  if (s.offeredRequestsPerSecond !== undefined) {
    return [...common, s.latencyP99Ratio === undefined ? 'p99 - (no nginx in this case)' : `p99 ${s.latencyP99Ratio.toFixed(2)}× nginx`, '-', fixedRateNote(s)];
  }
  const metric = s.ratioMetric === 'cpu' ? ' (CPU/handshake)' : '';
  const ratio = `${figure(s.ratio, 2)}× ${s.reference}${metric}`;
  return [
    ...common,
    s.reference.startsWith('nginx') ? ratio : `- (${ratio})`,
    s.ratioNode === undefined ? '-' : `${figure(s.ratioNode, 2)}× ${s.referenceNode}${metric}`,
    s.ratioMetric === 'cpu' ? 'req/s = handshakes/s, bounded by the client' : '',
  ];
}

/** A number with `digits` decimals, or `-` when it is NaN or infinite (no latency from s_time, no CPU for `direct`). */
function figure(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

/** Whether a fixed-rate row was measured at the offered rate, and whether wrk paced it or how bursty autocannon's load was. */
function fixedRateNote(s: CaseSummary): string {
  const offered = s.offeredRequestsPerSecond!;
  const rate = s.keptUp === true
    ? `kept up with ${offered} req/s`
    : `BELOW the offered ${offered} req/s (${((100 * s.requestsPerSecond) / offered).toFixed(0)} %): p99 is a saturation figure`;
  if (s.fixedRateLoadGenerator === 'wrk') return `${rate}; paced by wrk`;
  const busiest = s.busiestRequestsPerSecond === undefined || !Number.isFinite(s.busiestRequestsPerSecond) ? '' : `; busiest 10 ms at ${(s.busiestRequestsPerSecond / offered).toFixed(1)}× the rate`;
  return rate + busiest;
}

const CHART_LABEL_WIDTH = 170;
const CHART_PANEL_WIDTH = 240;
const CHART_ROW_HEIGHT = 24;

/**
 * One case as an SVG: a bar panel each for req/s, p99 and CPU µs per request, leaving out a panel
 * no row has a figure for (s_time measures no latency); a case compared by CPU shows it first.
 */
function renderCaseChart(rows: readonly CaseSummary[]): string {
  type Panel = [title: string, value: (s: CaseSummary) => number, digits: number];
  const byCpu = rows.some((s) => s.ratioMetric === 'cpu');
  const cpu: Panel = byCpu ? ['CPU µs/handshake (lower is better)', (s) => s.cpuMicrosecondsPerRequest, 1] : ['CPU µs/request (lower is better)', (s) => s.cpuMicrosecondsPerRequest, 1];
  const rate: Panel = byCpu ? ['handshakes/s (bounded by the client)', (s) => s.requestsPerSecond, 0] : ['req/s (higher is better)', (s) => s.requestsPerSecond, 0];
  const latency: Panel = ['p99 ms (lower is better)', (s) => s.latencyMsP99, 2];
  const panels = (byCpu ? [cpu, rate, latency] : [rate, latency, cpu]).filter(([, value]) => rows.some((s) => Number.isFinite(value(s))));
  const top = 22;
  const height = top + rows.length * CHART_ROW_HEIGHT + 6;
  let svg = '';
  rows.forEach((s, index) => {
    svg += `<text x="0" y="${top + index * CHART_ROW_HEIGHT + 16}">${escape(s.peer)}</text>`;
  });
  panels.forEach(([title, value, digits], panel) => {
    const x0 = CHART_LABEL_WIDTH + panel * (CHART_PANEL_WIDTH + 20);
    const barMax = CHART_PANEL_WIDTH - 70;
    const max = Math.max(...rows.map((s) => (Number.isFinite(value(s)) ? value(s) : 0)), Number.MIN_VALUE);
    svg += `<text x="${x0}" y="14" font-weight="600">${escape(title)}</text>`;
    rows.forEach((s, index) => {
      const y = top + index * CHART_ROW_HEIGHT;
      const figure = value(s);
      if (!Number.isFinite(figure)) { svg += `<text x="${x0}" y="${y + 16}" fill="#718096">n/a</text>`; return; }
      const width = Math.max(1, Math.round((figure / max) * barMax));
      svg += `<rect x="${x0}" y="${y + 4}" width="${width}" height="${CHART_ROW_HEIGHT - 8}" fill="${barColour(s.peer)}"/>`
        + `<text x="${x0 + width + 4}" y="${y + 16}">${figure.toFixed(digits)}</text>`;
    });
  });
  const width = CHART_LABEL_WIDTH + panels.length * (CHART_PANEL_WIDTH + 20);
  return `<svg width="${width}" height="${height}" font-size="12" font-family="system-ui,sans-serif" role="img">${svg}</svg>`;
}

function barColour(peer: string): string {
  if (peer.startsWith('keygate')) return '#2b6cb0';
  if (peer.startsWith('nginx') || peer.startsWith('haproxy')) return '#718096';
  if (peer === 'direct') return '#cbd5e0';
  return '#a0aec0';
}

function renderHtml(report: BenchReport): string {
  const caseNames = [...new Set(report.summaries.map((s) => s.caseName))];
  const info = new Map(report.cases.map((c) => [c.name, c]));
  const charts = caseNames.map((caseName) => {
    const rows = report.summaries.filter((s) => s.caseName === caseName);
    const caseInfo = info.get(caseName);
    const caption = caseInfo === undefined ? '' : `<p>${escape(caseInfo.description)} · load: ${escape(caseInfo.loadGenerator)}</p>`;
    return `<section><h3 id="case-${escape(caseName)}">${escape(caseName)}</h3>${caption}${renderCaseChart(rows)}</section>`;
  }).join('\n');
  const table = `<table><tr>${TABLE_HEADER.map((title) => `<th>${escape(title)}</th>`).join('')}</tr>${
    report.summaries.map((s) => `<tr class="${s.peer.startsWith('keygate') ? 'mine' : ''}">${tableCells(s).map((cell) => `<td>${escape(cell)}</td>`).join('')}</tr>`).join('')}</table>`;
  const goals = checkGoals(report.summaries);
  const goalTable = goals.length === 0 ? '<p>No goal could be checked (its case or nginx did not run).</p>'
    : `<table><tr><th>goal</th><th>case</th><th>best keygate peer</th><th>measured</th><th>target</th><th>met</th></tr>${goals.map((g) => `<tr><td>${escape(g.goal)}</td><td>${escape(g.caseName)}</td><td>${escape(g.peer)}</td><td>${g.measured.toFixed(2)}×</td><td>${g.target}×</td><td class="${g.met ? 'met' : 'missed'}">${g.met ? 'yes' : 'no'}</td></tr>`).join('')}</table>`;
  const scripts = report.scripts.length === 0 ? ''
    : `<h2>Standalone benchmarks</h2>${report.scripts.map((s) => `<section><h3>bench/${escape(s.script)} ${escape(s.args.join(' '))}</h3><p>exit ${s.exitCode ?? 'killed'} · ${(s.durationMs / 1000).toFixed(1)} s</p><pre>${escape(s.output)}</pre></section>`).join('\n')}`;
  const { machine } = report;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>keygate benchmarks ${escape(report.startedAt)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:right;font-size:.9rem;white-space:nowrap}td:nth-child(-n+2),th{text-align:left}tr.mine td{background:#ebf4ff}.met{color:#276749;font-weight:600}.missed{color:#c53030;font-weight:600}pre{background:#f7fafc;border:1px solid #e2e8f0;padding:.5rem;overflow-x:auto;font-size:.8rem}</style></head><body>
<h1>keygate benchmarks</h1>
<p>${escape(report.startedAt)} · ${machine.cpus} CPUs (${escape(machine.model)}) · Node ${escape(machine.node)} · proxy pinned to one core: ${machine.pinned} · load: ${escape(machine.loadGenerator)}${machine.loadAverage === undefined ? '' : ` · load average at start: ${machine.loadAverage.map((load) => load.toFixed(2)).join(' ')}`}</p>
${report.summaries.length === 0 ? '<p>No proxy case ran.</p>' : `<p>Medians of interleaved, repeated runs. "vs nginx" is req/s against nginx in the same case (or, for cases nginx does not run, nginx in the case named in brackets); "vs http-proxy-3" likewise against http-proxy-3. CPU µs/request is the proxy's own user + system time, the steadier figure on a noisy machine. In a case marked "CPU/handshake" (full TLS handshakes: the client cannot saturate a server from one core) "vs nginx" is nginx's CPU time per handshake ÷ the peer's, so 0.80× means 1.25× nginx's CPU per handshake, and req/s there is handshakes/s, the client's limit. In a fixed-rate case every peer is offered the same req/s, so "vs nginx" is p99 against nginx's p99 in that case, and the note says whether the peer kept up (if not, its latencies are saturation figures) and whether wrk paced the load evenly or how bursty autocannon's was.</p>
<h2>Goals</h2>${goalTable}
<h2>Results</h2>${table}
<h2>Charts</h2>${charts}`}
${scripts}
${report.skipped.length > 0 ? `<h2>Skipped</h2><ul>${report.skipped.map((reason) => `<li>${escape(reason)}</li>`).join('')}</ul>` : ''}
<h2>Settings</h2><pre>${escape(JSON.stringify(report.settings, null, 2))}</pre></body></html>\n`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
