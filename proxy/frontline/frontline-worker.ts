/**
 * The worker-thread entry of a multi-core ingress (`keygate frontline --workers N`): each
 * thread started by `WorkerGroup` runs its own `IngressFrontline` from the same ingress file,
 * on the same ports with `SO_REUSEPORT`, so the kernel spreads connections over the threads.
 * Nothing is shared between threads: each has its own route table, certificate store, upstream
 * pools, file watch and metrics registry.
 *
 * The one exception is the TLS session ticket keys: the main thread makes them and hands them
 * over in the worker data, so a client resumes its session on whichever thread accepts it.
 *
 * Control flow (besides `WorkerGroup`'s ready/stop): a `BroadcastChannel` named in the worker
 * data carries `reload` (SIGHUP in the main thread), `metrics` requests and `ticketKeys`
 * rotations to every worker, and each worker's `reloaded`, `metrics` and `failed` reports back.
 * Stop drains with `graceMs`.
 * Importing this module in the main thread does nothing.
 */
import { BroadcastChannel, isMainThread, threadId, workerData } from 'node:worker_threads';
import { Fault } from '../../core/fault.ts';
import { createLogger } from '../../core/log.ts';
import { defaultMetrics } from '../../core/metrics.ts';
import type { ForwardingEngineName } from '../forward/create-forwarding-engine.ts';
import type { HttpPeerOptions } from '../http-peer.ts';
import { SessionTicketKeys } from '../tls/session-ticket-keys.ts';
import type { TicketKeySet } from '../tls/session-ticket-keys.ts';
import { signalWorkerReady } from '../workers/worker-group.ts';
import type { IngressConfig } from './ingress-config.ts';
import { IngressFrontline } from './ingress-frontline.ts';
import type { ReloadResult } from './ingress-frontline.ts';

/** Marks worker data meant for this module, so a stray import in another worker stays inert. */
export const FRONTLINE_WORKER_KIND = 'keygate-frontline-worker';

/** What every worker is started with (structured-cloned: plain data only). */
export interface FrontlineWorkerData {
  kind: typeof FRONTLINE_WORKER_KIND;
  /** Name of the `BroadcastChannel` shared by the main thread and the workers of one group. */
  channelName: string;
  /** The ingress file, re-read on reload; absent when the routes came from env and flags. */
  file?: string;
  /** The configuration the main thread validated; every worker starts from exactly this. */
  config: IngressConfig;
  host: string;
  /** Concrete ports (never 0: the main thread reserved them, so every worker binds the same). */
  httpsPort: number;
  httpPort?: number;
  /** pino level of this thread's logger. */
  logLevel: string;
  instanceId: string;
  region: string;
  maxHops: number;
  peerSecret?: string;
  peerOptions: HttpPeerOptions;
  redirectPort?: number;
  trustedProxies: readonly string[];
  requestTimeoutMs: number;
  /** The forwarding engine by name (`frontline.engine`); absent = the framework's default. */
  engine?: ForwardingEngineName;
  /** Who parses HTTP/1.1 on the HTTPS listener (`frontline.http1Parser`); absent = the framework's default. */
  http1Parser?: 'keygate' | 'node';
  /** Drain time on stop. */
  drainTimeoutMs: number;
  watch: boolean;
  /** The group's session ticket keys (secret: never logged); later rotations arrive on the channel. */
  ticketKeys: TicketKeySet;
}

/** Main thread → workers. */
export type FrontlineWorkerRequest =
  | { type: 'reload' }
  | { type: 'metrics'; requestId: number }
  /** The main thread rotated the ticket keys; every worker takes the same set. */
  | { type: 'ticketKeys'; rotation: number; keys: TicketKeySet };

/** Workers → main thread. `workerId` is the worker's thread id. */
export type FrontlineWorkerReport =
  | { type: 'reloaded'; workerId: number; applied: boolean; added: number; changed: number; removed: number; unchanged: number; error?: string }
  | { type: 'metrics'; workerId: number; requestId: number; metrics: unknown }
  | { type: 'failed'; workerId: number; message: string }
  /** This worker now uses the keys of rotation number `rotation` (`applied` false: it kept the previous ones). */
  | { type: 'ticketKeysApplied'; workerId: number; rotation: number; applied: boolean };

if (!isMainThread && (workerData as Partial<FrontlineWorkerData> | undefined)?.kind === FRONTLINE_WORKER_KIND) {
  void runFrontlineWorker(workerData as FrontlineWorkerData);
}

/**
 * Starts this thread's Frontline and serves until the group stops it. Exported for tests; in a
 * worker it runs on import. A start failure is reported on the channel (with its public
 * message, which survives the thread boundary better than the error) and rethrown, which ends
 * the thread and fails `WorkerGroup.start`.
 */
export async function runFrontlineWorker(data: FrontlineWorkerData): Promise<void> {
  const workerId = threadId;
  const channel = new BroadcastChannel(data.channelName);
  const report = (message: FrontlineWorkerReport): void => channel.postMessage(message);
  // Every log line says which thread wrote it, so an access log shows how load spreads.
  const logger = createLogger({ level: data.logLevel, name: 'frontline' }).child({ worker: workerId });
  let ingress: IngressFrontline;
  // Rotated by the main thread only (messages below), so every thread holds the same keys.
  const ticketKeys = new SessionTicketKeys(data.ticketKeys);
  try {
    ingress = await IngressFrontline.start({
      ...(data.file === undefined ? {} : { file: data.file }),
      config: data.config,
      host: data.host,
      httpsPort: data.httpsPort,
      ...(data.httpPort === undefined ? {} : { httpPort: data.httpPort }),
      reusePort: true,
      logger,
      metrics: defaultMetrics,
      instanceId: data.instanceId,
      region: data.region,
      maxHops: data.maxHops,
      ...(data.peerSecret === undefined ? {} : { peerSecret: data.peerSecret }),
      peerOptions: data.peerOptions,
      ...(data.redirectPort === undefined ? {} : { redirectPort: data.redirectPort }),
      ...(data.http1Parser === undefined ? {} : { http1Parser: data.http1Parser }),
      watch: data.watch,
      proxy: { trustedProxies: data.trustedProxies, totalTimeoutMs: data.requestTimeoutMs, ...(data.engine === undefined ? {} : { engine: data.engine }) },
      certificateStore: { ticketKeys },
      onReload: (result) => report(reloadReport(workerId, result)),
    });
  } catch (err) {
    report({ type: 'failed', workerId, message: Fault.from(err, 'err:keygate:config:invalid').publicMessage });
    channel.close();
    throw err;
  }
  channel.onmessage = (event) => {
    const request = (event as { data: FrontlineWorkerRequest | undefined }).data;
    if (request?.type === 'reload') void ingress.reload();
    else if (request?.type === 'ticketKeys') {
      let applied = true;
      try {
        ticketKeys.replace(request.keys);
      } catch (err) {
        // A malformed set keeps the previous keys; the fault names no key bytes.
        applied = false;
        logger.error({ code: Fault.from(err).code }, 'ticket keys not applied');
      }
      report({ type: 'ticketKeysApplied', workerId, rotation: request.rotation, applied });
    }
    else if (request?.type === 'metrics') {
      defaultMetrics.registry.getMetricsAsJSON().then(
        (metrics) => report({ type: 'metrics', workerId, requestId: request.requestId, metrics }),
        (err: unknown) => logger.error({ err }, 'metrics not collected'),
      );
    }
  };
  signalWorkerReady(async () => {
    try {
      await ingress.close({ graceMs: data.drainTimeoutMs });
    } finally {
      // The channel keeps the thread alive: closed last, so the thread can exit.
      channel.close();
    }
  });
}

function reloadReport(workerId: number, result: ReloadResult): FrontlineWorkerReport {
  return {
    type: 'reloaded', workerId, applied: result.applied,
    added: result.added.length, changed: result.changed.length, removed: result.removed.length, unchanged: result.unchanged,
    ...(result.error === undefined ? {} : { error: result.error.publicMessage }),
  };
}
