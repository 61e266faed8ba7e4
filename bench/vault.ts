/**
 * Vault benchmark: encrypt+decrypt of 1 KiB payloads, in-process (the Keyring, and the
 * VaultService the API calls, with metrics as `bin/` wires it) and over the Connect RPC
 * (RemoteVaultClient → vault HTTP server on loopback, in this same process). Reports, per phase,
 * medians over several rounds of: ops/s by wall clock, ops per CPU-second of this process
 * (`process.cpuUsage`, i.e. per core, meaningful while other processes share the machine), p50
 * and p99 latency.
 *
 *   npx node bench/vault.ts [--seconds 1] [--rounds 5] [--payload-bytes 1024] [--concurrency 16]
 *                           [--phases keyring,service,rpc-encrypt,rpc-decrypt] [--baseline <tree>]
 *                           [--no-pin]
 *
 * `--baseline <tree>` runs the same phases against another checkout of keygate (say the previous
 * commit, copied to /tmp), interleaved round by round with this one in this process, and prints
 * the ratio: before/after numbers measured side by side. The process re-runs itself pinned to
 * one core with `taskset` when it exists (so "per core" is literal; `--no-pin` to skip).
 * For the RPC phases client and server share that core, so their CPU-second rate covers both.
 *
 * Goal (issue 7): in-process ≥ 50,000 encrypt+decrypt pairs per second on one core. Numbers
 * depend on the machine and on what else runs on it: report them with the machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const PHASES = ['keyring', 'service', 'rpc-encrypt', 'rpc-decrypt'] as const;
type Phase = (typeof PHASES)[number];
const PINNED_ENV = 'KEYGATE_BENCH_PINNED_CPU';
const TASKSET = '/usr/bin/taskset';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '5' },
    'payload-bytes': { type: 'string', default: '1024' },
    concurrency: { type: 'string', default: '16' },
    phases: { type: 'string', default: PHASES.join(',') },
    baseline: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
  },
});

if (!values['no-pin'] && process.env[PINNED_ENV] === undefined && existsSync(TASKSET)) {
  // Re-run this script pinned to the last core; the child inherits the terminal.
  const cpu = String(cpus().length - 1);
  const child = spawnSync(TASKSET, ['-c', cpu, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [PINNED_ENV]: cpu },
  });
  process.exit(child.status ?? 1);
}

const phaseDurationMs = Number(values.seconds) * 1000;
const rounds = Math.max(1, Number(values.rounds));
const payloadBytes = Number(values['payload-bytes']);
const concurrency = Number(values.concurrency);
const phases = values.phases.split(',').map((phase) => {
  if (!(PHASES as readonly string[]).includes(phase)) throw new Error(`unknown phase ${phase}; phases: ${PHASES.join(', ')}`);
  return phase as Phase;
});
const warmUpMs = Math.min(500, phaseDurationMs / 2);
const payload = 'k'.repeat(payloadBytes);
const payloadBuffer = Buffer.from(payload);
const keyringName = 'ws_bench';

/** One measured run of one phase. */
interface Sample {
  opsPerSecond: number;
  opsPerCpuSecond: number;
  latencyUsP50: number;
  latencyUsP99: number;
}

/** The tree under test: its phases, ready to run. */
interface Variant {
  name: string;
  run: Record<Phase, () => Promise<unknown>>;
  sequential: Record<Phase, boolean>;
  close(): Promise<void>;
}

console.log(
  `machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length}, load average ${loadavg().map((value) => value.toFixed(2)).join(' ')}, ` +
    `node ${process.version}, ${process.env[PINNED_ENV] === undefined ? 'not pinned' : `pinned to cpu ${process.env[PINNED_ENV]}`}`,
);
console.log(`payload ${payloadBytes} bytes; ${rounds} rounds of ${values.seconds}s per phase${values.baseline ? `; baseline ${values.baseline}` : ''}; RPC with ${concurrency} in flight`);

const variants: Variant[] = [await openVariant('current', resolve(import.meta.dirname, '..'))];
if (values.baseline !== undefined) variants.unshift(await openVariant('baseline', resolve(values.baseline)));

const samples = new Map<string, Sample[]>();
try {
  for (const phase of phases) for (const variant of variants) await measure(variant, phase, warmUpMs);
  for (let round = 0; round < rounds; round++) {
    for (const phase of phases) {
      // Interleaved, so a change in machine load hits both variants alike.
      for (const variant of variants) {
        const sample = await measure(variant, phase, phaseDurationMs);
        const key = `${phase}\u0000${variant.name}`;
        samples.set(key, [...(samples.get(key) ?? []), sample]);
      }
    }
  }
} finally {
  for (const variant of variants) await variant.close();
}
printSummary();

async function openVariant(name: string, root: string): Promise<Variant> {
  const load = (path: string) => import(pathToFileURL(resolve(root, path)).href);
  const [{ createInProcessVault }, { createVaultHttpServer }, { RemoteVaultClient }, { createLogger }, { Metrics }] = await Promise.all([
    load('vault/in-process-vault.ts'),
    load('vault/service/vault-http-server.ts'),
    load('core/vault-client.ts'),
    load('core/log.ts'),
    load('core/metrics.ts'),
  ]);
  // The service gets a metrics registry, as `keygate vault` wires it.
  const metrics = new Metrics();
  const vault = createInProcessVault({ metrics });
  const keyring = vault.keyring;
  await keyring.encrypt(keyringName, payloadBuffer);
  const bearerToken = 'bench-token';
  const server = createVaultHttpServer({ service: vault, bearerToken, logger: createLogger({ level: 'silent' }), metrics });
  const address = await server.listen({ port: 0, host: '127.0.0.1' });
  const client = new RemoteVaultClient({ baseUrl: `http://127.0.0.1:${address.port}`, bearerToken, maxConnections: concurrency });
  const sample = await client.encrypt({ keyring: keyringName, data: payload });
  return {
    name,
    run: {
      keyring: async () => {
        const { encrypted } = await keyring.encrypt(keyringName, payloadBuffer);
        await keyring.decrypt(keyringName, encrypted);
      },
      service: async () => {
        const { encrypted } = await vault.encrypt({ keyring: keyringName, data: payload });
        await vault.decrypt({ keyring: keyringName, encrypted });
      },
      'rpc-encrypt': () => client.encrypt({ keyring: keyringName, data: payload }),
      'rpc-decrypt': () => client.decrypt({ keyring: keyringName, encrypted: sample.encrypted }),
    },
    sequential: { keyring: true, service: true, 'rpc-encrypt': false, 'rpc-decrypt': false },
    async close() {
      await client.close();
      await server.close();
    },
  };
}

/** Runs one phase for `durationMs`: one operation at a time in-process, `concurrency` in flight over RPC. */
async function measure(variant: Variant, phase: Phase, durationMs: number): Promise<Sample> {
  const operation = variant.run[phase];
  const latenciesMs: number[] = [];
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const endAt = startedAt + durationMs;
  const worker = async () => {
    let before = performance.now();
    while (before < endAt) {
      await operation();
      const after = performance.now();
      latenciesMs.push(after - before);
      before = after;
    }
  };
  if (variant.sequential[phase]) await worker();
  else await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  latenciesMs.sort((left, right) => left - right);
  const at = (quantile: number) => latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(quantile * latenciesMs.length))]!;
  return {
    opsPerSecond: (latenciesMs.length / elapsedMs) * 1000,
    opsPerCpuSecond: latenciesMs.length / ((cpu.user + cpu.system) / 1e6),
    latencyUsP50: at(0.5) * 1000,
    latencyUsP99: at(0.99) * 1000,
  };
}

function printSummary(): void {
  const label: Record<Phase, string> = {
    keyring: 'in-process Keyring encrypt+decrypt pair',
    service: 'in-process VaultService encrypt+decrypt pair (strings)',
    'rpc-encrypt': `RPC Encrypt (JSON, ${concurrency} in flight)`,
    'rpc-decrypt': `RPC Decrypt (JSON, ${concurrency} in flight)`,
  };
  console.log(`\nmedians of ${rounds} rounds (ops per CPU-second = per core):`);
  for (const phase of phases) {
    console.log(label[phase]);
    const medians = new Map<string, Sample>();
    for (const variant of variants) {
      const list = samples.get(`${phase}\u0000${variant.name}`) ?? [];
      const median: Sample = {
        opsPerSecond: medianOf(list.map((sample) => sample.opsPerSecond)),
        opsPerCpuSecond: medianOf(list.map((sample) => sample.opsPerCpuSecond)),
        latencyUsP50: medianOf(list.map((sample) => sample.latencyUsP50)),
        latencyUsP99: medianOf(list.map((sample) => sample.latencyUsP99)),
      };
      medians.set(variant.name, median);
      console.log(
        `  ${variant.name.padEnd(8)} ${Math.round(median.opsPerSecond).toString().padStart(7)} ops/s wall, ` +
          `${Math.round(median.opsPerCpuSecond).toString().padStart(7)} ops/CPU-s, p50 ${median.latencyUsP50.toFixed(1)} µs, p99 ${median.latencyUsP99.toFixed(1)} µs` +
          `  (CPU-s per round: ${list.map((sample) => Math.round(sample.opsPerCpuSecond)).join(' ')})`,
      );
    }
    const before = medians.get('baseline');
    const after = medians.get('current');
    if (before !== undefined && after !== undefined) {
      console.log(
        `  ratio current/baseline: ${(after.opsPerCpuSecond / before.opsPerCpuSecond).toFixed(2)}x ops/CPU-s, ` +
          `${(after.opsPerSecond / before.opsPerSecond).toFixed(2)}x ops/s wall, p99 ${(after.latencyUsP99 / before.latencyUsP99).toFixed(2)}x`,
      );
    }
  }
}

function medianOf(list: number[]): number {
  if (list.length === 0) return Number.NaN;
  const sorted = [...list].sort((left, right) => left - right);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
