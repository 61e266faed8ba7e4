/**
 * `WorkerGroup`: runs the same proxy module on N worker threads that share one port through
 * `SO_REUSEPORT` (`listen({ reusePort: true })`), so the kernel spreads connections over every
 * core. Each worker is an independent event loop with its own pools; nothing is shared.
 *
 * Life cycle: `start()` launches N workers and resolves once each has called
 * {@link signalWorkerReady}; `stop()` asks each to drain (its `onStop`) and terminates any that
 * has not exited within `stopTimeoutMs`. A worker that dies unexpectedly is reported, not
 * restarted (the supervisor, e.g. systemd or Kubernetes, restarts the process).
 */
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { Fault } from '../../core/fault.ts';

/** Options of {@link WorkerGroup}. */
export interface WorkerGroupOptions {
  /** The worker module (absolute path or file URL). It must call `signalWorkerReady` once listening. */
  module: string | URL;
  /** Number of workers (default: one per core, `os.availableParallelism()`). */
  count?: number;
  /** Passed to every worker as `workerData`. */
  workerData?: unknown;
  /** Longest wait for a worker to become ready (default 30 000 ms). */
  startTimeoutMs?: number;
  /** Longest wait for a worker to drain and exit on `stop()` (default 30 000 ms). */
  stopTimeoutMs?: number;
  /** Called when a worker exits without being asked to. */
  onUnexpectedExit?: (workerIndex: number, exitCode: number) => void;
}

/** Defaults of {@link WorkerGroupOptions}. */
export const WORKER_GROUP_DEFAULTS = { startTimeoutMs: 30_000, stopTimeoutMs: 30_000 } as const;

interface ControlMessage { type: 'ready' | 'stop' }

/** N worker threads running one proxy module on a shared port. */
export class WorkerGroup {
  readonly #options: WorkerGroupOptions;
  readonly #workers: Worker[] = [];
  #stopping = false;

  constructor(options: WorkerGroupOptions) {
    this.#options = options;
  }

  /** Number of running workers. */
  get size(): number {
    return this.#workers.length;
  }

  /** Starts the workers; resolves when all are ready, rejects (after stopping the others) if one fails. */
  async start(): Promise<void> {
    const count = this.#options.count ?? availableParallelism();
    const startTimeoutMs = this.#options.startTimeoutMs ?? WORKER_GROUP_DEFAULTS.startTimeoutMs;
    const ready: Promise<void>[] = [];
    for (let index = 0; index < count; index++) {
      const worker = new Worker(this.#options.module, { workerData: this.#options.workerData });
      this.#workers.push(worker);
      ready.push(new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Fault('err:keygate:config:invalid', { internalMessage: `worker ${index} not ready after ${startTimeoutMs} ms` })), startTimeoutMs);
        worker.on('message', (message: ControlMessage) => {
          if (message?.type === 'ready') { clearTimeout(timer); resolve(); }
        });
        worker.once('error', (err) => { clearTimeout(timer); reject(Fault.from(err, 'err:keygate:config:invalid')); });
        worker.once('exit', (exitCode) => {
          clearTimeout(timer);
          if (!this.#stopping) {
            this.#options.onUnexpectedExit?.(index, exitCode);
            reject(new Fault('err:keygate:config:invalid', { internalMessage: `worker ${index} exited with code ${exitCode}` }));
          }
        });
      }));
    }
    try {
      await Promise.all(ready);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Asks every worker to drain and exit; terminates stragglers after `stopTimeoutMs`. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const stopTimeoutMs = this.#options.stopTimeoutMs ?? WORKER_GROUP_DEFAULTS.stopTimeoutMs;
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map((worker) => new Promise<void>((resolve) => {
      if (worker.threadId === -1) { resolve(); return; }
      const timer = setTimeout(() => { void worker.terminate(); }, stopTimeoutMs);
      worker.once('exit', () => { clearTimeout(timer); resolve(); });
      worker.postMessage({ type: 'stop' } satisfies ControlMessage);
    })));
  }
}

/**
 * Called inside a worker once its listeners are up. `onStop` drains (e.g. `proxy.close()`); the
 * worker's port is closed afterwards so the thread can exit. Outside a worker it does nothing.
 */
export function signalWorkerReady(onStop: () => Promise<void>): void {
  if (isMainThread || parentPort === null) return;
  const port = parentPort;
  port.on('message', (message: ControlMessage) => {
    if (message?.type !== 'stop') return;
    onStop().finally(() => port.close());
  });
  port.postMessage({ type: 'ready' } satisfies ControlMessage);
}
