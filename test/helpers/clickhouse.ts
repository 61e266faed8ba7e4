/**
 * A private ClickHouse server for one test file: Debian's `clickhouse-server` binary (installed
 * by scripts/install-clickhouse.sh), started on free loopback ports with a temporary data
 * directory and a minimal config written here (no system service, nothing shared with other
 * test files). It has a password-protected user so tests exercise credentials. When the binary
 * is missing: `undefined` (the caller skips with a message), except with CI=true, where this
 * throws so the test FAILS instead of skipping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the helper looks for the server binary; override with KEYGATE_TEST_CLICKHOUSE_BINARY. */
export const CLICKHOUSE_SERVER_BINARY = process.env.KEYGATE_TEST_CLICKHOUSE_BINARY ?? '/usr/sbin/clickhouse-server';
/** Longest wait for a started server to answer /ping. */
const START_TIMEOUT_MS = 20_000;
/** Longest wait for the killed process to be reaped. */
const STOP_TIMEOUT_MS = 10_000;
/** Time between /ping probes while starting. */
const PROBE_INTERVAL_MS = 50;

/** A running private server. */
export interface TestClickHouse {
  /** HTTP interface, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The user with a password (`keygate_test`) and its password. */
  username: string;
  password: string;
  /** A database created for this test file. */
  database: string;
  /** Runs one statement as the test user and returns the response body (for assertions). */
  query(sql: string): Promise<string>;
  /** Stops the server (SIGSTOP) so requests hang, as in a network partition. */
  pause(): void;
  /** Resumes a paused server. */
  resume(): void;
  /** Stops the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a private server, or returns undefined (skip) when the binary is missing outside CI. */
export async function startTestClickHouse(): Promise<TestClickHouse | undefined> {
  if (!existsSync(CLICKHOUSE_SERVER_BINARY)) {
    const message = `clickhouse-server is not installed at ${CLICKHOUSE_SERVER_BINARY} (run scripts/install-clickhouse.sh or make services)`;
    if (process.env.CI === 'true') throw new Error(`${message} (CI=true: ClickHouse tests must run)`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'keygate-clickhouse-'));
  const httpPort = await freePort();
  const tcpPort = await freePort();
  const username = 'keygate_test';
  const password = randomBytes(12).toString('hex');
  writeFileSync(join(dir, 'config.xml'), serverConfig(dir, httpPort, tcpPort));
  writeFileSync(join(dir, 'users.xml'), usersConfig(username, password));

  const child = spawn(CLICKHOUSE_SERVER_BINARY, [`--config-file=${join(dir, 'config.xml')}`], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderrTail = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${httpPort}`;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await terminate(child, exited);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitUntilAnswering(url, child, () => stderrTail);
    const database = `keygate_test_${randomBytes(6).toString('hex')}`;
    const query = (sql: string) => runStatement(url, username, password, sql);
    await query(`CREATE DATABASE ${database}`);
    return {
      url, username, password, database, query, stop,
      pause: () => void child.kill('SIGSTOP'),
      resume: () => void child.kill('SIGCONT'),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function runStatement(url: string, username: string, password: string, sql: string): Promise<string> {
  const response = await fetch(url + '/', {
    method: 'POST',
    body: sql,
    headers: { 'X-ClickHouse-User': username, 'X-ClickHouse-Key': password },
    signal: AbortSignal.timeout(10_000),
  });
  const body = await response.text();
  if (!response.ok) throw new Error(`ClickHouse answered ${response.status} to ${sql.slice(0, 80)}: ${body.slice(0, 500)}`);
  return body;
}

async function waitUntilAnswering(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`clickhouse-server exited during start-up (${child.exitCode ?? child.signalCode}): ${stderr().slice(-1_000)}`);
    }
    try {
      const response = await fetch(url + '/ping', { signal: AbortSignal.timeout(1_000) });
      if (response.ok && (await response.text()).startsWith('Ok')) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
  }
  throw new Error(`clickhouse-server did not answer on ${url} within ${START_TIMEOUT_MS} ms: ${stderr().slice(-1_000)}`);
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  // SIGKILL, not SIGTERM: a graceful 18.16 shutdown takes about 8 s, and the data directory is
  // thrown away anyway, so there is nothing to save.
  child.kill('SIGKILL');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, STOP_TIMEOUT_MS);
  });
  await Promise.race([exited, timedOut]);
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function serverConfig(dir: string, httpPort: number, tcpPort: number): string {
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/server.log</log>
    <errorlog>${dir}/server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <max_connections>256</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>8388608</uncompressed_cache_size>
  <mark_cache_size>16777216</mark_cache_size>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
`;
}

function usersConfig(username: string, password: string): string {
  return `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>1000000000</max_memory_usage>
      <max_threads>2</max_threads>
    </default>
  </profiles>
  <users>
    <${username}>
      <password>${password}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${username}>
  </users>
  <quotas>
    <default>
      <interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
    </default>
  </quotas>
</yandex>
`;
}
