/**
 * `FrontlineWorkers`: the main-thread side of `keygate frontline --workers N` (N > 1). It starts
 * N worker threads (`proxy/workers/worker-group.ts`) that each run the ingress Frontline of
 * `proxy/frontline/frontline-worker.ts` on the same ports with `SO_REUSEPORT`, and relays what
 * the process receives: SIGHUP becomes a `reload` for every worker, SIGTERM a drain of every
 * worker (`stop`), `/metrics` the sum of every worker's registry.
 *
 * It also owns the TLS session ticket keys of the group: made here, handed to every worker in
 * its worker data, and rotated here for all workers together (one `ticketKeys` message), so a
 * client resumes its session whichever worker accepts the connection. Workers accept the next
 * key before it is used, so the moment between two workers applying a rotation costs nothing.
 *
 * Port 0 ("any free port") would give each worker a different port, so the main thread first
 * reserves a concrete free port with a `SO_REUSEPORT` socket of its own, starts the workers on
 * it, and closes the reservation once they all listen, before the port is announced.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { BroadcastChannel } from 'node:worker_threads';
import { AggregatorRegistry } from 'prom-client';
import { Fault } from '../core/fault.ts';
import { FRONTLINE_WORKER_KIND } from '../proxy/frontline/frontline-worker.ts';
import { SESSION_TICKET_DEFAULTS, SessionTicketKeys } from '../proxy/tls/session-ticket-keys.ts';
import type { TicketKeySet } from '../proxy/tls/session-ticket-keys.ts';
import type { FrontlineWorkerData, FrontlineWorkerReport, FrontlineWorkerRequest } from '../proxy/frontline/frontline-worker.ts';
import { WorkerGroup } from '../proxy/workers/worker-group.ts';

/** Longest wait for every worker's metrics on one `/metrics` scrape, in ms. */
export const WORKER_METRICS_TIMEOUT_MS = 2_000;
/** Longest wait for every worker to confirm a ticket key rotation, in ms. */
export const WORKER_TICKET_KEYS_TIMEOUT_MS = 2_000;
/** Time a worker gets beyond its drain before it is terminated, in ms. */
export const WORKER_EXIT_MARGIN_MS = 5_000;

/** Options of {@link FrontlineWorkers.start}. */
export interface FrontlineWorkersOptions {
  /** Number of worker threads (at least 1). */
  count: number;
  /** What each worker runs with; ports may be 0 here (reserved before the workers start). */
  worker: Omit<FrontlineWorkerData, 'kind' | 'channelName' | 'ticketKeys'>;
  /** Session ticket keys shared by every worker (default: random for this process). Rotated by the group. */
  ticketKeys?: SessionTicketKeys;
  /** Ticket key rotation interval (default 1 h); the previous key is still accepted for one interval. */
  ticketKeyRotationMs?: number;
  /** Each worker's reload outcome (SIGHUP, or its own file watch). */
  onReload?: (report: Extract<FrontlineWorkerReport, { type: 'reloaded' }>) => void;
  /** A worker exited without being stopped (the others keep serving). */
  onUnexpectedExit?: (workerIndex: number, exitCode: number) => void;
}

/** N worker threads serving one ingress on shared ports. */
export class FrontlineWorkers {
  /** The bound addresses (the same for every worker). */
  readonly addresses: { https: AddressInfo; http: AddressInfo | undefined };
  readonly count: number;
  readonly #group: WorkerGroup;
  readonly #channel: BroadcastChannel;
  readonly #ticketKeys: SessionTicketKeys;
  #ticketKeyRotation = 0;
  readonly #ticketKeyWaiters = new Map<number, (report: Extract<FrontlineWorkerReport, { type: 'ticketKeysApplied' }>) => void>();
  #nextMetricsRequestId = 0;
  #stopping: Promise<void> | undefined;
  readonly #metricsWaiters = new Map<number, (report: Extract<FrontlineWorkerReport, { type: 'metrics' }>) => void>();

  private constructor(group: WorkerGroup, channel: BroadcastChannel, ticketKeys: SessionTicketKeys, count: number, addresses: FrontlineWorkers['addresses']) {
    this.#group = group;
    this.#channel = channel;
    this.#ticketKeys = ticketKeys;
    this.count = count;
    this.addresses = addresses;
  }

  /**
   * Reserves the ports, starts the workers and resolves once all listen. Rejects with the first
   * worker's start failure (a bad certificate, a port in use), after stopping the others.
   */
  static async start(options: FrontlineWorkersOptions): Promise<FrontlineWorkers> {
    const worker = options.worker;
    const ticketKeys = options.ticketKeys ?? SessionTicketKeys.generate();
    const channelName = `keygate-frontline-${randomUUID()}`;
    const channel = new BroadcastChannel(channelName);
    const reservations: net.Server[] = [];
    let firstFailure: string | undefined;
    const handlers = new Set<(report: FrontlineWorkerReport) => void>();
    channel.onmessage = (event) => {
      const report = (event as { data: FrontlineWorkerReport }).data;
      if (report.type === 'failed') firstFailure ??= report.message;
      else if (report.type === 'reloaded') options.onReload?.(report);
      for (const handler of handlers) handler(report);
    };
    try {
      const httpsPort = await reserve(worker.host, worker.httpsPort, reservations);
      const httpPort = worker.httpPort === undefined ? undefined : await reserve(worker.host, worker.httpPort, reservations);
      const group = new WorkerGroup({
        module: new URL('../proxy/frontline/frontline-worker.ts', import.meta.url),
        count: options.count,
        workerData: { ...worker, kind: FRONTLINE_WORKER_KIND, channelName, httpsPort, ...(httpPort === undefined ? {} : { httpPort }), ticketKeys: ticketKeys.snapshot() } satisfies FrontlineWorkerData,
        stopTimeoutMs: worker.drainTimeoutMs + WORKER_EXIT_MARGIN_MS,
        ...(options.onUnexpectedExit === undefined ? {} : { onUnexpectedExit: options.onUnexpectedExit }),
      });
      try {
        await group.start();
      } catch (err) {
        throw firstFailure === undefined ? err : new Fault('err:keygate:config:invalid', { publicMessage: firstFailure, cause: err });
      }
      const family = net.isIPv6(worker.host) ? 'IPv6' : 'IPv4';
      const workers = new FrontlineWorkers(group, channel, ticketKeys, options.count, {
        https: { address: worker.host, family, port: httpsPort },
        http: httpPort === undefined ? undefined : { address: worker.host, family, port: httpPort },
      });
      handlers.add((report) => {
        if (report.type === 'metrics') workers.#metricsWaiters.get(report.requestId)?.(report);
        else if (report.type === 'ticketKeysApplied') workers.#ticketKeyWaiters.get(report.rotation)?.(report);
      });
      // Started only once every worker listens on the channel, so no rotation is missed.
      ticketKeys.startRotation(options.ticketKeyRotationMs ?? SESSION_TICKET_DEFAULTS.rotationIntervalMs, (keys) => { void workers.#publishTicketKeys(keys); });
      return workers;
    } catch (err) {
      channel.close();
      throw err;
    } finally {
      // The workers hold the ports now (or failed): the reservations must not take connections.
      await Promise.all(reservations.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    }
  }

  /**
   * Rotates the session ticket keys of every worker now (the timer does this every interval):
   * tickets under the key before are still accepted for one interval, older ones are not.
   * Resolves with the number of workers that applied the new keys, waiting at most
   * {@link WORKER_TICKET_KEYS_TIMEOUT_MS}.
   */
  rotateTicketKeys(): Promise<number> {
    return this.#publishTicketKeys(this.#ticketKeys.rotate());
  }

  #publishTicketKeys(keys: TicketKeySet): Promise<number> {
    const rotation = ++this.#ticketKeyRotation;
    return new Promise<number>((resolve) => {
      let applied = 0;
      const finish = (): void => {
        clearTimeout(timer);
        this.#ticketKeyWaiters.delete(rotation);
        resolve(applied);
      };
      const timer = setTimeout(finish, WORKER_TICKET_KEYS_TIMEOUT_MS);
      let answered = 0;
      this.#ticketKeyWaiters.set(rotation, (report) => {
        answered++;
        if (report.applied) applied++;
        if (answered === this.count) finish();
      });
      this.#channel.postMessage({ type: 'ticketKeys', rotation, keys } satisfies FrontlineWorkerRequest);
    });
  }

  /** Asks every worker to re-read the ingress file (SIGHUP). Outcomes arrive through `onReload`. */
  reload(): void {
    this.#channel.postMessage({ type: 'reload' } satisfies FrontlineWorkerRequest);
  }

  /**
   * The Prometheus text of every worker's registry, summed (counters, histograms and gauges per
   * label set). Per scrape; waits at most {@link WORKER_METRICS_TIMEOUT_MS} and sums the workers
   * that answered.
   */
  async renderMetrics(): Promise<{ contentType: string; text: string }> {
    const requestId = this.#nextMetricsRequestId++;
    const collected: Parameters<typeof AggregatorRegistry.aggregate>[0] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, WORKER_METRICS_TIMEOUT_MS);
      this.#metricsWaiters.set(requestId, (report) => {
        collected.push(report.metrics as (typeof collected)[number]);
        if (collected.length === this.count) {
          clearTimeout(timer);
          resolve();
        }
      });
      this.#channel.postMessage({ type: 'metrics', requestId } satisfies FrontlineWorkerRequest);
    });
    this.#metricsWaiters.delete(requestId);
    const registry = AggregatorRegistry.aggregate(collected);
    return { contentType: registry.contentType, text: await registry.metrics() };
  }

  /** Drains every worker (their `drainTimeoutMs`), terminates stragglers, closes the channel. Idempotent. */
  stop(): Promise<void> {
    this.#ticketKeys.stopRotation();
    this.#stopping ??= this.#group.stop().finally(() => this.#channel.close());
    return this.#stopping;
  }
}

/** `port` itself, or for 0 a free port held open by a `SO_REUSEPORT` socket in `reservations`. */
async function reserve(host: string, port: number, reservations: net.Server[]): Promise<number> {
  if (port !== 0) return port;
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host, reusePort: true }, () => resolve());
  });
  reservations.push(server);
  return (server.address() as AddressInfo).port;
}
