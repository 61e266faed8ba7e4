/**
 * `createLogger`: keygate's structured JSON logger (pino). Secrets are redacted at the logger,
 * so a careless `log.info({ body })` cannot leak a key, a root key, a plaintext, a password or a
 * certificate private key: the value is replaced by `[redacted]` before the line is serialized.
 */
import { pino } from 'pino';
import type { DestinationStream, Logger, LoggerOptions as PinoOptions } from 'pino';

export type { Logger };

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** pino level (`trace`…`fatal`, or `silent`). Default `info`. */
  level?: string;
  /** Added to every line as `name` (the role or component, e.g. `api`, `frontline`). */
  name?: string;
  /**
   * Where lines go. Default: stdout through a buffer of {@link LOG_BUFFER_BYTES}, flushed every
   * `flushIntervalMs` and at exit, so a busy server does not pay one write system call per line.
   * Tests pass a memory stream.
   */
  destination?: DestinationStream;
  /** How long a line may wait in the stdout buffer, in ms. Default 1000; 0 writes every line at once. */
  flushIntervalMs?: number;
}

/** Bytes the default stdout destination collects before writing (one write per ~20 access-log lines). */
export const LOG_BUFFER_BYTES = 4096;

/** What a redacted value is replaced with. */
export const REDACTED = '[redacted]';

/**
 * Field names whose values are secrets wherever they appear at the top level of a log object or
 * one level under a {@link SECRET_CONTAINERS} entry.
 */
export const SECRET_FIELDS = [
  'key',
  'rootKey',
  'plaintext',
  'password',
  'secret',
  'secrets',
  'token',
  'accessToken',
  'refreshToken',
  'bearerToken',
  'apiKey',
  'clientSecret',
  'masterKey',
  'masterKeys',
  'privateKey',
  'privateKeyPem',
  'keyPem',
  'authorization',
  'cookie',
] as const;

/** Objects that commonly wrap request or configuration data in a log call (`log.info({ body })`). */
export const SECRET_CONTAINERS = ['body', 'data', 'config', 'params', 'request', 'options'] as const;

/** Header names that carry credentials, redacted under `headers`, `req.headers` and `res.headers`. */
const SECRET_HEADERS = ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'x-api-key'] as const;

/**
 * Every redaction path, built once at module load. Explicit paths rather than wildcards
 * (`*.key`) because pino compiles explicit paths into straight-line property checks, which keeps
 * the per-line cost low on the access log; a wildcard would also redact unrelated fields that
 * happen to be called `key` under any object.
 */
export const REDACT_PATHS: readonly string[] = buildRedactPaths();

/**
 * A pino logger with keygate's defaults: JSON lines, level labels (`"level":"info"`), epoch-ms
 * `time`, and redaction of {@link REDACT_PATHS}. Called once per process (or per test); use
 * `logger.child({ requestId })` for per-request loggers, which inherit the redaction.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pinoOptions: PinoOptions = {
    level: options.level ?? 'info',
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    formatters: { level: levelAsLabel },
    // No pid/hostname on every line: the process supervisor knows them, and they cost bytes.
    base: options.name === undefined ? null : { name: options.name },
  };
  return pino(pinoOptions, options.destination ?? bufferedStdout(options.flushIntervalMs ?? 1000));
}

/**
 * Stdout with a small write buffer. The periodic flush bounds how late a line can appear when
 * traffic is low; pino's destination flushes what is left when the process exits normally (a
 * SIGKILL can lose at most one buffer, about a second of lines).
 */
function bufferedStdout(flushIntervalMs: number): DestinationStream {
  if (flushIntervalMs <= 0) return pino.destination({ dest: 1, sync: true });
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  const timer = setInterval(() => {
    destination.flush((err) => {
      // A flush can fail only while stdout is closed or broken; there is nowhere to report it.
      void err;
    });
  }, flushIntervalMs);
  timer.unref();
  destination.on('close', () => clearInterval(timer));
  return destination;
}

function levelAsLabel(label: string): { level: string } {
  return { level: label };
}

function buildRedactPaths(): string[] {
  const paths: string[] = [];
  for (const field of SECRET_FIELDS) {
    paths.push(field);
    for (const container of SECRET_CONTAINERS) paths.push(`${container}.${field}`);
  }
  for (const header of SECRET_HEADERS) {
    const segment = header.includes('-') ? `["${header}"]` : `.${header}`;
    paths.push(`headers${segment}`, `req.headers${segment}`, `res.headers${segment}`, `request.headers${segment}`);
  }
  // Certificate material is often logged as a nested object ({ certificate: { privateKey } }).
  paths.push('certificate.privateKey', 'certificate.keyPem', 'tls.key', 'tls.privateKey');
  return [...new Set(paths)];
}
