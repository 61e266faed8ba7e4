/**
 * Benchmark: invalidation propagation across a three-node gossip cluster, one child process
 * per node on 127.0.0.1 (real libp2p: TCP, private network, Noise, yamux, gossipsub).
 *
 *   npx node bench/gossip-propagation.ts [--latency-messages 2000] [--interval-ms 2] [--flood-messages 15000]
 *
 * 1. Latency: node A publishes paced invalidations; B and C record publish→apply time. The
 *    send time travels in the key as high-resolution wall time (`performance.timeOrigin +
 *    performance.now()`, shared by processes of one machine), so sub-millisecond latencies are
 *    visible. As a cross-check that needs no shared clock, A also measures ping→pong round trips
 *    through B (RTT/2 is an upper bound of one hop).
 * 2. Throughput: all three nodes publish as fast as gossip accepts, and each node counts what
 *    it applied from the others; messages/s is distinct messages the cluster delivered to every
 *    node per second.
 * Goal (issue 6): p99 publish→apply under 50 ms on this machine.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ClusterKey } from '../gossip/cluster-key.ts';
import { Libp2pBus } from '../gossip/libp2p-bus.ts';

const NODE_COUNT = 3;
/** Whole-run deadline; the benchmark fails rather than hang. */
const RUN_DEADLINE_MS = 120_000;
const FLOOD_WINDOW = 200;

type ParentMessage =
  | { type: 'start'; index: number; peers: string[]; keyFile: string }
  | { type: 'latency'; count: number; intervalMs: number }
  | { type: 'pingpong'; count: number }
  | { type: 'flood'; count: number }
  | { type: 'report' }
  | { type: 'stop' };

type ChildMessage =
  | { type: 'listening'; address: string }
  | { type: 'meshed' }
  | { type: 'done'; phase: string; details?: unknown }
  | { type: 'report'; latenciesMs: number[]; roundTripsMs: number[]; floodReceived: number; floodFirstMs: number; floodLastMs: number; publishErrors: number; lastError: string | undefined };

const SELF = fileURLToPath(import.meta.url);

if (process.argv.includes('--child')) {
  await runChild();
} else {
  await runParent();
}

async function runParent(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'latency-messages': { type: 'string', default: '2000' },
      'interval-ms': { type: 'string', default: '2' },
      'flood-messages': { type: 'string', default: '15000' },
    },
  });
  const latencyMessages = Number(values['latency-messages']);
  const intervalMs = Number(values['interval-ms']);
  const floodMessages = Number(values['flood-messages']);
  const directory = await mkdtemp(join(tmpdir(), 'keygate-bench-gossip-'));
  const keyFile = join(directory, 'cluster.key');
  await ClusterKey.generate().writeFile(keyFile);
  const children: ChildProcess[] = [];
  const deadline = setTimeout(() => {
    console.error('gossip-propagation: deadline exceeded');
    for (const child of children) child.kill('SIGKILL');
    process.exit(1);
  }, RUN_DEADLINE_MS);
  try {
    const addresses: string[] = [];
    for (let index = 0; index < NODE_COUNT; index += 1) {
      const child = fork(SELF, ['--child'], { execPath: process.execPath, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      send(child, { type: 'start', index, peers: [...addresses], keyFile });
      const listening = await next(child, 'listening');
      addresses.push((listening as { address: string }).address);
    }
    await Promise.all(children.map((child) => next(child, 'meshed')));
    const [a, b, c] = children as [ChildProcess, ChildProcess, ChildProcess];

    send(a, { type: 'latency', count: latencyMessages, intervalMs });
    await next(a, 'done');
    send(a, { type: 'pingpong', count: Math.min(500, latencyMessages) });
    await next(a, 'done');

    const floodStart = performance.now();
    for (const child of children) send(child, { type: 'flood', count: Math.ceil(floodMessages / NODE_COUNT) });
    await Promise.all(children.map((child) => next(child, 'done')));
    const floodPublishMs = performance.now() - floodStart;

    const reports = [];
    for (const child of children) {
      send(child, { type: 'report' });
      reports.push((await next(child, 'report')) as Extract<ChildMessage, { type: 'report' }>);
    }
    const latencies = [...reports[1]!.latenciesMs, ...reports[2]!.latenciesMs].sort((x, y) => x - y);
    const roundTrips = [...reports[0]!.roundTripsMs].sort((x, y) => x - y);
    const perNodeFloodRates = reports.map((report) => report.floodReceived / ((report.floodLastMs - report.floodFirstMs) / 1000));
    const expectedPerNode = Math.ceil(floodMessages / NODE_COUNT) * (NODE_COUNT - 1);
    const delivered = reports.map((report) => report.floodReceived);
    const floodSpanMs = Math.max(...reports.map((report) => report.floodLastMs)) - Math.min(...reports.map((report) => report.floodFirstMs));
    const result = {
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version}`,
      latency: {
        messages: latencyMessages,
        samples: latencies.length,
        lost: latencyMessages * 2 - latencies.length,
        p50Ms: round(quantile(latencies, 0.5)),
        p90Ms: round(quantile(latencies, 0.9)),
        p99Ms: round(quantile(latencies, 0.99)),
        maxMs: round(latencies.at(-1) ?? Number.NaN),
      },
      roundTrip: { samples: roundTrips.length, p50Ms: round(quantile(roundTrips, 0.5)), p99Ms: round(quantile(roundTrips, 0.99)) },
      throughput: {
        publishedTotal: Math.ceil(floodMessages / NODE_COUNT) * NODE_COUNT,
        deliveredPerNode: delivered,
        expectedPerNode,
        publishErrors: reports.reduce((sum, report) => sum + report.publishErrors, 0),
        lastErrors: reports.map((report) => report.lastError ?? null),
        clusterMessagesPerSecond: Math.round(delivered.reduce((sum, count) => sum + count, 0) / (NODE_COUNT - 1) / (floodSpanMs / 1000)),
        perNodeAppliedPerSecond: perNodeFloodRates.map((rate) => Math.round(rate)),
        wallMs: Math.round(floodPublishMs),
      },
    };
    console.log(JSON.stringify(result, null, 2));
    console.log(
      `\npublish→apply over ${result.latency.samples} deliveries: p50 ${result.latency.p50Ms} ms, p99 ${result.latency.p99Ms} ms`
      + ` (goal p99 < 50 ms: ${result.latency.p99Ms < 50 ? 'met' : 'NOT met'}); round trip p50 ${result.roundTrip.p50Ms} ms;`
      + ` cluster carries ${result.throughput.clusterMessagesPerSecond} messages/s`,
    );
  } finally {
    clearTimeout(deadline);
    for (const child of children) {
      if (child.connected) send(child, { type: 'stop' });
    }
    await Promise.all(children.map((child) => (child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : undefined)));
    await rm(directory, { recursive: true, force: true });
  }
}

async function runChild(): Promise<void> {
  const start = (await new Promise((resolve) => process.once('message', resolve))) as Extract<ParentMessage, { type: 'start' }>;
  const clusterKey = await ClusterKey.readFile(start.keyFile);
  const bus = await Libp2pBus.start({ listen: '127.0.0.1:0', peers: start.peers, clusterKey });
  const latenciesMs: number[] = [];
  const roundTripsMs: number[] = [];
  const pongWaiters = new Map<number, () => void>();
  let floodReceived = 0;
  let floodFirstMs = 0;
  let floodLastMs = 0;
  let publishErrors = 0;
  const wallNowMs = () => performance.timeOrigin + performance.now();

  bus.subscribe((invalidation) => {
    if (invalidation.originNode === bus.nodeId) return;
    const key = invalidation.keys[0] ?? '';
    if (invalidation.cache === 'bench_latency') {
      latenciesMs.push(wallNowMs() - Number(key.split(':')[1]));
    } else if (invalidation.cache === 'bench_ping' && start.index === 1) {
      void bus.publish({ cache: 'bench_pong', keys: [key] });
    } else if (invalidation.cache === 'bench_pong') {
      pongWaiters.get(Number(key))?.();
    } else if (invalidation.cache === 'bench_flood') {
      const nowMs = performance.now();
      if (floodReceived === 0) floodFirstMs = nowMs;
      floodLastMs = nowMs;
      floodReceived += invalidation.keys.length;
    }
  });
  reply({ type: 'listening', address: bus.listenAddresses()[0]! });
  const meshedBy = performance.now() + 30_000;
  while (!(bus.status().peerCount === NODE_COUNT - 1 && bus.meshPeerCount() === NODE_COUNT - 1)) {
    if (performance.now() > meshedBy) throw new Error('the cluster did not mesh within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  reply({ type: 'meshed' });

  process.on('message', (message: ParentMessage) => {
    void handle(message).catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  });

  async function handle(message: ParentMessage): Promise<void> {
    switch (message.type) {
      case 'latency': {
        for (let sequence = 0; sequence < message.count; sequence += 1) {
          await bus.publish({ cache: 'bench_latency', keys: [`${sequence}:${wallNowMs()}`] });
          await new Promise((resolve) => setTimeout(resolve, message.intervalMs));
        }
        // Let the last deliveries land before the parent asks for reports.
        await new Promise((resolve) => setTimeout(resolve, 200));
        reply({ type: 'done', phase: 'latency' });
        return;
      }
      case 'pingpong': {
        for (let sequence = 0; sequence < message.count; sequence += 1) {
          const startedMs = performance.now();
          const pong = new Promise<void>((resolve) => pongWaiters.set(sequence, resolve));
          await bus.publish({ cache: 'bench_ping', keys: [String(sequence)] });
          await Promise.race([pong, new Promise((resolve) => setTimeout(resolve, 1000))]);
          pongWaiters.delete(sequence);
          roundTripsMs.push(performance.now() - startedMs);
        }
        reply({ type: 'done', phase: 'pingpong' });
        return;
      }
      case 'flood': {
        const pending: Promise<unknown>[] = [];
        for (let sequence = 0; sequence < message.count; sequence += 1) {
          pending.push(bus.publish({ cache: 'bench_flood', keys: [`${start.index}:${sequence}`] }).catch(() => { publishErrors += 1; }));
          if (pending.length >= FLOOD_WINDOW) await Promise.all(pending.splice(0));
        }
        await Promise.all(pending);
        const expected = message.count * (NODE_COUNT - 1);
        const giveUpAt = performance.now() + 20_000;
        while (floodReceived < expected && performance.now() < giveUpAt) await new Promise((resolve) => setTimeout(resolve, 10));
        reply({ type: 'done', phase: 'flood' });
        return;
      }
      case 'report':
        reply({ type: 'report', latenciesMs, roundTripsMs, floodReceived, floodFirstMs, floodLastMs, publishErrors, lastError: bus.status().lastError?.message });
        return;
      case 'stop':
        await bus.close();
        process.disconnect();
        return;
      default:
        return;
    }
  }
}

function send(child: ChildProcess, message: ParentMessage): void {
  child.send(message);
}

function reply(message: ChildMessage): void {
  process.send?.(message);
}

function next(child: ChildProcess, type: ChildMessage['type']): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ChildMessage) => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message);
    };
    const onExit = (code: number | null) => reject(new Error(`a node exited with code ${code} while waiting for "${type}"`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
