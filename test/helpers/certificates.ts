/**
 * Test helper: self-signed certificates made on the spot with the machine's `openssl`
 * (ECDSA P-256 by default), written to a temporary directory the caller removes with `cleanup()`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One generated certificate: PEM strings and the files they were written to. */
export interface TestCertificate {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
  dir: string;
  /** Removes the temporary directory (only when this call created it). */
  cleanup(): void;
}

/** Options for {@link createTestCertificate}. */
export interface TestCertificateOptions {
  /** DNS names for the subjectAltName; the first is also the common name. */
  hostnames: readonly string[];
  /** `ec` (P-256, default) or `rsa` (2048 bits). */
  keyType?: 'ec' | 'rsa';
  /** Directory to write into; a new temporary one when absent. */
  dir?: string;
  /** File name stem inside `dir` (default: the first hostname with `*` replaced). */
  name?: string;
  /** Validity in days (default 2). */
  validDays?: number;
}

/** Generates a self-signed certificate for `hostnames` with openssl; runs in tens of milliseconds. */
export function createTestCertificate(options: TestCertificateOptions): TestCertificate {
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'keygate-cert-'));
  const stem = options.name ?? options.hostnames[0]!.replace('*', '_wildcard');
  const certFile = join(dir, `${stem}.pem`);
  const keyFile = join(dir, `${stem}.key`);
  const keyArgs = (options.keyType ?? 'ec') === 'ec'
    ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']
    : ['-newkey', 'rsa:2048'];
  const altNames = options.hostnames.map((hostname) => `DNS:${hostname}`).join(',');
  execFileSync('openssl', [
    'req', '-x509', ...keyArgs, '-nodes', '-sha256',
    '-days', String(options.validDays ?? 2),
    '-subj', `/CN=${options.hostnames[0]}`,
    '-addext', `subjectAltName=${altNames}`,
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'pipe' });
  return {
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
    certFile,
    keyFile,
    dir,
    cleanup: () => {
      if (ownsDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
