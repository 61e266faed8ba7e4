/**
 * `serveUntilSignal`: the life of every long-running command (`api`, `dev`, `vault`,
 * `frontline`). It starts the service, waits for SIGINT or SIGTERM, drains it, then closes
 * everything the start-up opened in reverse order (the last opened closes first, so a server
 * stops before the database under it).
 *
 * Signals are caught from before the start-up on, so a SIGTERM during a slow start is not lost:
 * the service drains as soon as it is up. A second SIGINT/SIGTERM during the drain ends the
 * process at once (the default action). SIGHUP is handled only when the service can reload;
 * otherwise it keeps its default meaning (the process ends), as before.
 */
import { EXIT_CODES } from './command.ts';
import type { CliIo } from './command.ts';

/** What the start-up registers while it builds the service. */
export interface ServeLifetime {
  /**
   * Registers how to close something just opened. Steps run in reverse order of registration,
   * after the drain, and also when the start-up throws; a failing step is reported on stderr
   * and the others still run.
   */
  defer(step: () => Promise<void> | void): void;
  /**
   * Ends the service as a signal would, for a failure it cannot serve through (a worker thread
   * died): it drains, closes, and {@link serveUntilSignal} resolves to exit code 1.
   */
  abort(reason: string): void;
}

/** A started service. */
export interface RunningService {
  /** Stops accepting and lets in-flight work finish (bounded by the service's own grace period). */
  drain(): Promise<void>;
  /** Called on SIGHUP (re-read configuration, drop caches). Absent: SIGHUP is not caught. */
  reload?: () => Promise<void>;
}

/**
 * Runs `start`, then serves until SIGINT/SIGTERM (or `abort`), drains and closes. Resolves to
 * the exit code: 0 after a signal, 1 after `abort`. Rejects with the start-up's error (after
 * closing what it had opened), which the dispatcher reports with exit 1.
 */
export async function serveUntilSignal(io: CliIo, start: (lifetime: ServeLifetime) => Promise<RunningService>): Promise<number> {
  const events = new EventQueue();
  const onStopSignal = (signal: NodeJS.Signals): void => events.push({ signal });
  const onReloadSignal = (): void => events.push({ signal: 'SIGHUP' });
  process.on('SIGINT', onStopSignal);
  process.on('SIGTERM', onStopSignal);
  const steps: Array<() => Promise<void> | void> = [];
  let reloadHandled = false;
  try {
    const service = await start({
      defer: (step) => steps.push(step),
      abort: (reason) => events.push({ abort: reason }),
    });
    if (service.reload !== undefined) {
      process.on('SIGHUP', onReloadSignal);
      reloadHandled = true;
    }
    let exitCode: number = EXIT_CODES.success;
    for (;;) {
      const event = await events.next();
      if (event.signal === 'SIGHUP') {
        await service.reload?.();
        continue;
      }
      if (event.abort !== undefined) {
        io.stderr(`keygate: ${event.abort}; stopping\n`);
        exitCode = EXIT_CODES.failure;
      } else {
        io.stderr(`keygate: ${event.signal} received, draining\n`);
      }
      break;
    }
    // A second SIGINT/SIGTERM during the drain gets its default meaning back: end now.
    process.off('SIGINT', onStopSignal);
    process.off('SIGTERM', onStopSignal);
    await service.drain();
    return exitCode;
  } finally {
    process.off('SIGINT', onStopSignal);
    process.off('SIGTERM', onStopSignal);
    if (reloadHandled) process.off('SIGHUP', onReloadSignal);
    for (const step of steps.reverse()) {
      try {
        await step();
      } catch (err) {
        io.stderr(`keygate: shutdown step failed: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
  }
}

interface LifeEvent {
  signal?: NodeJS.Signals;
  abort?: string;
}

/** Signals and aborts in arrival order, so a reload signal never ends the process. */
class EventQueue {
  readonly #queued: LifeEvent[] = [];
  #wake: (() => void) | undefined;

  push(event: LifeEvent): void {
    this.#queued.push(event);
    this.#wake?.();
  }

  async next(): Promise<LifeEvent> {
    while (this.#queued.length === 0) await new Promise<void>((resolve) => { this.#wake = resolve; });
    this.#wake = undefined;
    return this.#queued.shift()!;
  }
}
