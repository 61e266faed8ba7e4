/**
 * `keygate vault`: runs the Vault service (envelope encryption over Connect), and its tools:
 * `vault keygen` prints a new master key, `vault roll <keyring>` gives a keyring a new data key,
 * `vault rewrap` re-wraps every stored data key with the current master key (KEK rotation).
 */
import type { KeygateConfig } from '../../core/config/schema.ts';
import { Fault } from '../../core/fault.ts';
import { EXIT_CODES, usageError } from '../command.ts';
import type { CliIo, Command, CommandArgs, CommandOption } from '../command.ts';
import { allConfigOptions, contractOptions, loadCommandConfig } from '../command-config.ts';
import { openVaultStorage } from '../open-vault.ts';
import { serveUntilSignal } from '../serve-until-signal.ts';

/** The `vault` flags: the contract flags a server needs plus every `vault.*` key. */
function vaultOptions(...contract: Array<'config' | 'data-dir' | 'port' | 'host' | 'log-level'>): Record<string, CommandOption> {
  const options: Record<string, CommandOption> = { ...contractOptions(...contract) };
  for (const [name, option] of Object.entries(allConfigOptions())) if (name.startsWith('vault-')) options[name] = option;
  return options;
}

const keygenCommand: Command = {
  name: 'keygen',
  summary: 'print a new master key for vault.masterKeys (keep it secret)',
  usage: 'keygate vault keygen',
  details: 'Prints base64 of a protobuf KeyEncryptionKey (a kek_ id and 32 random bytes), the format\n'
    + 'vault.masterKeys (KEYGATE_VAULT_MASTER_KEYS) expects. To rotate, put the new key first and\n'
    + 'keep the old one after it until "keygate vault rewrap" has run.',
  options: {},
  async run(_args, io) {
    const { generateMasterKey } = await import('../../vault/keyring/master-keys.ts');
    io.stdout(generateMasterKey() + '\n');
    return EXIT_CODES.success;
  },
};

const rollCommand: Command = {
  name: 'roll',
  summary: 'give a keyring a new data key; older payloads still decrypt',
  usage: 'keygate vault roll KEYRING [--config FILE] [--data-dir DIR] [--vault-…]',
  details: 'Running vault servers pick the new key up within vault.latestFreshMs; ReEncrypt moves\n'
    + 'old payloads to it.',
  options: vaultOptions('config', 'data-dir'),
  positionals: [{ name: 'KEYRING', description: 'the keyring to roll (a workspace or environment id)' }],
  async run(args, io) {
    const keyringName = args.positionals[0];
    if (keyringName === undefined || args.positionals.length > 1) throw usageError('vault roll needs exactly one KEYRING');
    const { keyring, storage } = await openKeyring(loadCommandConfig(args, io), io);
    try {
      io.stdout(`${keyringName}: new data key ${await keyring.rollDek(keyringName)}\n`);
    } finally {
      await storage.close();
    }
    return EXIT_CODES.success;
  },
};

const rewrapCommand: Command = {
  name: 'rewrap',
  summary: 're-wrap stored data keys with the current master key (after adding a new one)',
  usage: 'keygate vault rewrap [KEYRING] [--config FILE] [--data-dir DIR] [--vault-…]',
  details: 'Run it while no keyring is being rolled. Afterwards the previous master key can be removed.',
  options: vaultOptions('config', 'data-dir'),
  positionals: [{ name: 'KEYRING', description: 'only this keyring (default: all)' }],
  async run(args, io) {
    if (args.positionals.length > 1) throw usageError('vault rewrap takes at most one KEYRING');
    const { keyring, storage } = await openKeyring(loadCommandConfig(args, io), io);
    try {
      const report = await keyring.rewrapDeks(args.positionals[0]);
      io.stdout(`examined ${report.examined} data keys, re-wrapped ${report.rewrapped}\n`);
    } finally {
      await storage.close();
    }
    return EXIT_CODES.success;
  },
};

/** The `vault` command: serves the Vault; `vault keygen|roll|rewrap` are its tools. */
export const vaultCommand: Command = {
  name: 'vault',
  summary: 'run the vault (envelope encryption for keys, certificates and secrets)',
  usage: 'keygate vault [--port N] [--host ADDR] [--data-dir DIR] [--config FILE] [--vault-…]',
  details: 'Serves vault.v1.VaultService over the Connect protocol on vault.port (default 8060; --port\n'
    + 'overrides it). Needs vault.masterKeys (see "keygate vault keygen") and vault.bearerToken.\n'
    + 'Data keys live in vault.storage: <data-dir>/vault by default, or s3://bucket[/prefix].\n'
    + 'Stops gracefully on SIGINT or SIGTERM.',
  options: vaultOptions('config', 'data-dir', 'port', 'host', 'log-level'),
  subcommands: [keygenCommand, rollCommand, rewrapCommand],
  async run(args, io) {
    return serve(args, io);
  },
};

async function serve(args: CommandArgs, io: CliIo): Promise<number> {
  const config = loadCommandConfig(args, io);
  const bearerToken = config.vault.bearerToken;
  if (bearerToken === undefined) {
    throw new Fault('err:keygate:config:invalid', { publicMessage: 'vault.bearerToken is required (KEYGATE_VAULT_BEARER_TOKEN or --vault-bearer-token)' });
  }
  const { createLogger } = await import('../../core/log.ts');
  const { VaultService } = await import('../../vault/service/vault-service.ts');
  const { createVaultHttpServer } = await import('../../vault/service/vault-http-server.ts');
  const { defaultMetrics } = await import('../../core/metrics.ts');
  const logger = createLogger({ level: config.log.level, name: 'vault' });
  // --port (server.port) wins when given; otherwise the vault's own port.
  const port = args.values['port'] !== undefined ? config.server.port : config.vault.port;
  return serveUntilSignal(io, async (lifetime) => {
    const { keyring, storage } = await openKeyring(config, io);
    lifetime.defer(() => storage.close());
    const service = new VaultService({ keyring, metrics: defaultMetrics });
    const server = createVaultHttpServer({ service, bearerToken, logger, metrics: defaultMetrics, requestTimeoutMs: config.vault.requestTimeoutMs });
    server.route('GET', '/metrics', async () => ({ headers: { 'content-type': defaultMetrics.contentType }, body: await defaultMetrics.render() }), { accessLog: false });
    const address = await server.listen({ port, host: config.server.host });
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    io.stdout(`vault listening on http://${host}:${address.port} (storage: ${storage.kind})\n`);
    return { drain: () => server.close() };
  });
}

async function openKeyring(config: KeygateConfig, io: CliIo) {
  const masterKeys = config.vault.masterKeys;
  if (masterKeys === undefined || masterKeys.length === 0) {
    throw new Fault('err:keygate:config:invalid', {
      publicMessage: 'vault.masterKeys is required (KEYGATE_VAULT_MASTER_KEYS); make one with "keygate vault keygen"',
    });
  }
  const { MasterKeys } = await import('../../vault/keyring/master-keys.ts');
  const { Keyring } = await import('../../vault/keyring/keyring.ts');
  const parsedKeys = MasterKeys.parse(masterKeys);
  const storage = await openVaultStorage(config, io.cwd);
  const keyring = new Keyring({
    storage,
    masterKeys: parsedKeys,
    latestFreshMs: config.vault.latestFreshMs,
    maxCachedDeks: config.vault.maxCachedKeys,
  });
  return { keyring, storage };
}
