/**
 * `startKeygate`: runs the real `keygate` executable as a child process (Node 24 type stripping,
 * `process.execPath bin/keygate.ts …`) for end-to-end tests, and talks to it over HTTP. Output is
 * kept for failure messages; `stop()` sends SIGTERM and waits (SIGKILL after a deadline), and is
 * registered on the test's teardown so no child outlives its test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The CLI entry point. */
export const KEYGATE_BIN = join(import.meta.dirname, '../../bin/keygate.ts');
/** How long a child may take to print "api listening on" (a loaded 2-core machine: generous). */
export const START_DEADLINE_MS = 60_000;
/** How long a child may take to exit after SIGTERM before it is killed. */
export const STOP_DEADLINE_MS = 10_000;

/** A running `keygate` child. */
export interface KeygateProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** `http://127.0.0.1:<port>` of the API. */
  readonly baseUrl: string;
  /** Everything printed so far (stdout and stderr interleaved). */
  output(): string;
  /** POSTs a v2 operation with a bearer token; resolves to status and parsed body. */
  call(operationId: string, body: unknown, bearer: string): Promise<{ status: number; body: any }>;
  /** Current values of the metrics whose names start with `prefix` (labels kept in the name). */
  metrics(prefix: string): Promise<Map<string, number>>;
  /** SIGTERM, then SIGKILL after {@link STOP_DEADLINE_MS}; resolves to the exit code. Idempotent. */
  stop(): Promise<number | null>;
}

/** A child that has exited on its own: its code and output. */
export interface KeygateRun {
  code: number | null;
  output: string;
}

/** The teardown registration of a tap test. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/**
 * Starts `keygate <args>` and resolves once it prints `api listening on <url>`; rejects with its
 * output when it exits first or takes longer than {@link START_DEADLINE_MS}.
 */
export async function startKeygate(t: TeardownHost, name: string, args: readonly string[], env: Record<string, string> = {}): Promise<KeygateProcess> {
  const child = spawn(process.execPath, [KEYGATE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  const append = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopping: Promise<number | null> | undefined;
  const stop = (): Promise<number | null> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
      try {
        return await exited;
      } finally {
        clearTimeout(killer);
      }
    })();
    return stopping;
  };
  t.teardown(stop);
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${name} did not start within ${START_DEADLINE_MS} ms; output:\n${output}`));
    }, START_DEADLINE_MS);
    const check = (): void => {
      const match = /api listening on (http:\/\/\S+)/.exec(output);
      if (match === null) return;
      cleanup();
      resolve(match[1]!);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`${name} exited with ${code} before listening; output:\n${output}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', check);
    child.once('exit', onExit);
  });
  return {
    name,
    child,
    baseUrl,
    output: () => output,
    async call(operationId, body, bearer) {
      const response = await fetch(`${baseUrl}/v2/${operationId}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text.length === 0 ? undefined : JSON.parse(text) };
    },
    async metrics(prefix) {
      const response = await fetch(`${baseUrl}/metrics`);
      const text = await response.text();
      const values = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (!line.startsWith(prefix)) continue;
        const space = line.lastIndexOf(' ');
        values.set(line.slice(0, space), Number(line.slice(space + 1)));
      }
      return values;
    },
    stop,
  };
}

/** Runs `keygate <args>` to completion (bounded by {@link START_DEADLINE_MS}); resolves to its exit code and output. */
export async function runKeygate(args: readonly string[], env: Record<string, string> = {}): Promise<KeygateRun> {
  const child = spawn(process.execPath, [KEYGATE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), START_DEADLINE_MS);
  try {
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    return { code, output };
  } finally {
    clearTimeout(killer);
  }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (bound to 0, then released), for addresses
 * that must be known before the process that uses them starts (every node lists every other).
 */
export async function reserveLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Polls `probe` until it returns a value other than undefined, or throws after `deadlineMs` with `what`. */
export async function pollUntil<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>, intervalMs = 50): Promise<T> {
  const endMs = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= endMs) throw new Error(`${what}: not reached within ${deadlineMs} ms${last === undefined ? '' : ` (last error: ${String(last)})`}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
