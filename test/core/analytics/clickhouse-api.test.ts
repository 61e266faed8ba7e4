/**
 * `keygate api` configured with ClickHouse (analytics.* from the environment) records every
 * verification there: the real CLI process, a real private clickhouse-server, SIGTERM drains
 * and flushes. The ClickHouse password is never printed.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startTestClickHouse } from '../../helpers/clickhouse.ts';

const KEYGATE = join(import.meta.dirname, '../../../bin/keygate.ts');
const START_DEADLINE_MS = 20_000;

const clickhouse = await startTestClickHouse();
if (clickhouse === undefined) {
  t.plan(0, 'clickhouse-server is not installed (scripts/install-clickhouse.sh); ClickHouse API test skipped');
} else {
  const server = clickhouse;
  t.teardown(() => server.stop());

  t.test('an API server configured with ClickHouse records verifications there', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'keygate-api-clickhouse-'));
    t.teardown(() => rm(dataDir, { recursive: true, force: true }));
    const child = spawn(process.execPath, [KEYGATE, 'api', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        KEYGATE_ANALYTICS_CLICKHOUSE_URL: server.url,
        KEYGATE_ANALYTICS_CLICKHOUSE_USER: server.username,
        KEYGATE_ANALYTICS_CLICKHOUSE_PASSWORD: server.password,
        KEYGATE_ANALYTICS_CLICKHOUSE_DATABASE: server.database,
      },
    });
    t.teardown(() => void child.kill('SIGKILL'));
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const baseUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`keygate api did not start: ${output}`)), START_DEADLINE_MS);
      const check = (): void => {
        const match = /api listening on (http:\/\/\S+)/.exec(output);
        if (match === null) return;
        clearTimeout(timer);
        resolve(match[1]!);
      };
      child.stdout!.on('data', check);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`keygate api exited with ${code}: ${output}`));
      });
    });
    const rootKey = /root key: (\S+)/.exec(output)?.[1];
    const call = async (operation: string, body: unknown, bearer = rootKey): Promise<Record<string, unknown>> => {
      const response = await fetch(`${baseUrl}/v2/${operation}`, {
        method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      const json = (await response.json()) as { data: Record<string, unknown> };
      t.equal(response.status, 200, `${operation} answers 200`);
      return json.data;
    };
    const { apiId } = await call('apis.createApi', { name: 'clickhouse-analytics' });
    const { key, keyId } = await call('keys.createKey', { apiId, prefix: 'ch', externalId: 'user_7' });
    t.match(await call('keys.verifyKey', { key, tags: ['plan=pro'] }), { valid: true, code: 'VALID' });
    t.match(await call('keys.verifyKey', { key, permissions: 'missing.permission' }), { valid: false, code: 'INSUFFICIENT_PERMISSIONS' });

    child.kill('SIGTERM');
    t.equal(await exited, 0, 'SIGTERM drains and exits 0 (flushing analytics)');
    const body = await server.query(
      `SELECT key_id, outcome, tags, source, external_id FROM ${server.database}.key_verifications_raw_v2 WHERE key_id = '${String(keyId)}' ORDER BY time FORMAT JSONEachRow`,
    );
    const rows = body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    t.same(rows.map((row) => row.outcome).sort(), ['INSUFFICIENT_PERMISSIONS', 'VALID']);
    t.match(rows.find((row) => row.outcome === 'VALID'), { key_id: keyId, tags: ['plan=pro'], source: 'api' });
    t.notOk(output.includes(server.password), 'the ClickHouse password is never printed');
  });
}
