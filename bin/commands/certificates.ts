/**
 * `keygate certificates import`: stores a TLS certificate for Frontline's database mode. The
 * chain goes into `certificates.certificate`; the private key is encrypted by the Vault under the
 * workspace's keyring and only the Vault payload is stored (`encrypted_private_key`). The
 * plaintext key is read from its file, checked, handed to the Vault, and never written, printed
 * or logged. Frontline (`keygate frontline --db …`) decrypts it through the same Vault.
 *
 * Flow: read and bound both files → parse (certificate blocks only; one private key) → key
 * matches the leaf, host name covered, not expired → Vault Encrypt (then Decrypt, so a
 * misconfigured Vault fails here rather than at the first handshake) → migrate → upsert the row.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { configKeys } from '../../core/config/config-keys.ts';
import { redactUrlPassword } from '../../core/config/field.ts';
import { Fault } from '../../core/fault.ts';
import { EXIT_CODES, usageError } from '../command.ts';
import type { CliIo, Command, CommandArgs, CommandOption } from '../command.ts';
import { allConfigOptions, contractOptions, loadCommandConfig } from '../command-config.ts';
import { openVault } from '../open-vault.ts';

/** Largest certificate or key file read, in bytes: a long chain is a few KiB. */
export const MAX_PEM_FILE_BYTES = 1024 * 1024;

/** Longest host name stored (the `certificates.hostname` column is varchar(256)); DNS allows 253. */
const MAX_HOSTNAME_LENGTH = 253;
const HOSTNAME_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Workspace ids are also Vault keyring names: keep them to id characters. */
const WORKSPACE_PATTERN = /^[A-Za-z0-9_]{1,255}$/;
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[\s\S]*?-----END CERTIFICATE-----/g;

const IMPORT_OPTIONS: Record<string, CommandOption> = {
  hostname: { type: 'string', valueName: 'H', description: 'host name to serve it for: app.example.com or one-label wildcard *.example.com' },
  cert: { type: 'string', valueName: 'FILE', description: 'PEM certificate chain, leaf first (other PEM blocks in the file are ignored)' },
  key: { type: 'string', valueName: 'FILE', description: 'PEM private key of the leaf (unencrypted); stored only encrypted by the Vault' },
  workspace: { type: 'string', valueName: 'WS', description: 'workspace id that owns the host name; also the Vault keyring' },
  ...contractOptions('config', 'data-dir', 'db'),
  ...vaultConfigOptions(),
};

const importCommand: Command = {
  name: 'import',
  summary: 'store a certificate and its Vault-encrypted private key for Frontline\'s database mode',
  usage: 'keygate certificates import --hostname H --cert FILE --key FILE --workspace WS [--db URL]\n'
    + '            [--config FILE] [--data-dir DIR] [--vault-url URL --vault-bearer-token T | --vault-master-keys K]',
  details: 'Encrypts the private key with the Vault (keyring = WS): a remote one with vault.url and\n'
    + 'vault.bearerToken, else in process with vault.masterKeys and vault.storage (the same storage\n'
    + 'the Frontline\'s Vault reads). The database (--db, default <data-dir>/keygate.db) is migrated\n'
    + 'first. Importing again for the same host name and workspace replaces the certificate (renewal);\n'
    + 'a host name another workspace holds is refused. Running Frontlines pick the change up on SIGHUP\n'
    + 'or when their cached entry expires. The private key is never printed or stored in clear.',
  options: IMPORT_OPTIONS,
  async run(args, io) {
    return importCertificate(args, io);
  },
};

/** The `certificates` command group: `certificates import`. */
export const certificatesCommand: Command = {
  name: 'certificates',
  summary: 'manage the TLS certificates Frontline serves from the database',
  usage: 'keygate certificates import --hostname H --cert FILE --key FILE --workspace WS [--db URL]',
  options: {},
  subcommands: [importCommand],
  async run() {
    throw usageError('certificates needs a subcommand: import. Run "keygate certificates --help".');
  },
};

/** What the import checked and is about to store; the key only as the Vault will see it. */
interface ParsedCertificate {
  hostname: string;
  /** The certificate blocks of the file, leaf first, joined by newlines. */
  chainPem: string;
  /** The private key re-exported as PKCS#8 PEM (one key, whatever form the file held). */
  keyPem: string;
  validToMs: number;
}

async function importCertificate(args: CommandArgs, io: CliIo): Promise<number> {
  const hostnameFlag = requiredFlag(args, 'hostname');
  const certFile = resolve(io.cwd, requiredFlag(args, 'cert'));
  const keyFile = resolve(io.cwd, requiredFlag(args, 'key'));
  const workspaceId = requiredFlag(args, 'workspace');
  if (!WORKSPACE_PATTERN.test(workspaceId)) throw usageError('--workspace must be a workspace id (letters, digits and _)');
  const config = loadCommandConfig(args, io);
  const { systemClock } = await import('../../core/clock.ts');
  const parsed = parseCertificate(normalizeHostname(hostnameFlag), readPem(certFile, 'certificate'), readPem(keyFile, 'private key'), systemClock.nowMs());

  const opened = await openVault(config, io.cwd, { requireDurableStorage: true });
  if (opened === undefined) {
    // Storing the key any other way would put it in clear.
    throw new Fault('err:keygate:config:invalid', {
      publicMessage: 'certificates import needs a Vault: vault.url + vault.bearerToken, or vault.masterKeys (with vault.storage)',
    });
  }
  const vault = opened.client;
  let encrypted: string;
  try {
    ({ encrypted } = await vault.encrypt({ keyring: workspaceId, data: parsed.keyPem }));
    // Read back before storing: a Vault that cannot decrypt what it just wrote (wrong storage, a
    // different master key than the Frontlines use) would otherwise fail only at the first handshake.
    const { plaintext } = await vault.decrypt({ keyring: workspaceId, encrypted });
    if (plaintext !== parsed.keyPem) throw new Fault('err:vault:crypto:decryption_failed', { publicMessage: 'the Vault did not return the key it encrypted' });
  } finally {
    await opened.close();
  }

  const dbUrl = configKeys().byKey.get('db.url')!.field.resolveRelative(config.db.url, io.cwd) as string;
  const { openDatabase } = await import('../../core/db/database.ts');
  const { migrate } = await import('../../core/db/migrate.ts');
  const { newId } = await import('../../core/id.ts');
  const db = await openDatabase(dbUrl, { dataDir: resolve(io.cwd, config.dataDir) });
  try {
    const { applied } = await migrate(db);
    for (const name of applied) io.stderr(`keygate: applied migration ${name}\n`);
    const nowMs = systemClock.nowMs();
    const outcome = await db.transaction(async (tx) => {
      const existing = await tx.query<{ id: string; workspace_id: string }>(
        'SELECT `id`, `workspace_id` FROM `certificates` WHERE `hostname` = ?', [parsed.hostname],
      );
      const row = existing[0];
      if (row !== undefined && row.workspace_id !== workspaceId) {
        throw Fault.expected('err:keygate:certificate:hostname_taken', { publicMessage: `${parsed.hostname} belongs to another workspace; its certificate was not replaced` });
      }
      if (row !== undefined) {
        await tx.execute(
          'UPDATE `certificates` SET `certificate` = ?, `encrypted_private_key` = ?, `updated_at_m` = ? WHERE `id` = ?',
          [parsed.chainPem, encrypted, nowMs, row.id],
        );
        return { id: row.id, replaced: true };
      }
      const id = newId('cert');
      await tx.execute(
        'INSERT INTO `certificates` (`id`, `hostname`, `workspace_id`, `certificate`, `encrypted_private_key`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?)',
        [id, parsed.hostname, workspaceId, parsed.chainPem, encrypted, nowMs],
      );
      return { id, replaced: false };
    });
    io.stdout(`${outcome.replaced ? 'replaced' : 'imported'} certificate ${outcome.id} for ${parsed.hostname} (workspace ${workspaceId}, `
      + `valid until ${new Date(parsed.validToMs).toISOString()}, database ${redactUrlPassword(dbUrl)})\n`);
  } finally {
    await db.close();
  }
  return EXIT_CODES.success;
}

/** The `vault-*` config flags (url, bearer token, master keys, storage, s3): where the Vault is. */
function vaultConfigOptions(): Record<string, CommandOption> {
  const options: Record<string, CommandOption> = {};
  for (const [name, option] of Object.entries(allConfigOptions())) if (name.startsWith('vault-')) options[name] = option;
  return options;
}

function requiredFlag(args: CommandArgs, name: string): string {
  const value = args.values[name];
  if (typeof value !== 'string' || value === '') throw usageError(`certificates import needs --${name}`);
  return value;
}

/** Lower-cases and checks a host name: DNS labels, optionally `*.` before at least two more. */
function normalizeHostname(input: string): string {
  const hostname = input.toLowerCase().replace(/\.$/, '');
  const labels = hostname.split('.');
  const rest = labels[0] === '*' ? labels.slice(1) : labels;
  const valid = hostname.length <= MAX_HOSTNAME_LENGTH && rest.length >= (labels[0] === '*' ? 2 : 1) && rest.every((label) => HOSTNAME_LABEL.test(label));
  if (!valid) throw usageError(`--hostname ${JSON.stringify(input)} is not a host name or a one-label wildcard (*.example.com)`);
  return hostname;
}

function readPem(path: string, what: string): string {
  try {
    const size = statSync(path).size;
    if (size > MAX_PEM_FILE_BYTES) throw invalid(`the ${what} file ${path} is larger than ${MAX_PEM_FILE_BYTES} bytes`);
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof Fault) throw err;
    throw invalid(`cannot read the ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

/**
 * Checks the pair and the host name. Error messages name the problem, never the key's content
 * (Node's parse errors are replaced, not passed on).
 */
function parseCertificate(hostname: string, certText: string, keyText: string, nowMs: number): ParsedCertificate {
  const blocks = certText.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) throw invalid('the certificate file holds no PEM CERTIFICATE block');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(blocks[0]!);
    for (const block of blocks.slice(1)) new X509Certificate(block);
  } catch {
    throw invalid('the certificate file holds a CERTIFICATE block that does not parse');
  }
  let keyPem: string;
  let key;
  try {
    key = createPrivateKey({ key: keyText, format: 'pem' });
    keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch {
    throw invalid('the key file is not an unencrypted PEM private key');
  }
  if (!leaf.checkPrivateKey(key)) throw invalid('the private key does not belong to the certificate (the first block of the chain)');
  const validToMs = Date.parse(leaf.validTo);
  if (!(validToMs > nowMs)) throw invalid(`the certificate expired on ${leaf.validTo}`);
  if (!covers(leaf, hostname)) throw invalid(`the certificate does not cover ${hostname} (it names ${leaf.subjectAltName ?? leaf.subject})`);
  return { hostname, chainPem: blocks.join('\n') + '\n', keyPem, validToMs };
}

/** An exact name by the usual rules (SAN, wildcards); a wildcard only when the SAN lists exactly it. */
function covers(leaf: X509Certificate, hostname: string): boolean {
  if (!hostname.startsWith('*.')) return leaf.checkHost(hostname) !== undefined;
  const names = (leaf.subjectAltName ?? '').split(',').map((entry) => entry.trim().toLowerCase());
  return names.includes(`dns:${hostname}`);
}

function invalid(publicMessage: string): Fault {
  return Fault.expected('err:keygate:certificate:invalid', { publicMessage });
}
