import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const KEYGATE = join(import.meta.dirname, '../../../bin/keygate.ts');
const START_DEADLINE_MS = 20_000;

interface Started {
  child: ChildProcess;
  stdout: () => string;
  baseUrl: string;
  exited: Promise<number | null>;
}

async function start(dataDir: string): Promise<Started> {
  const child = spawn(process.execPath, [KEYGATE, 'api', '--port', '0', '--data-dir', dataDir, '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`keygate api did not start; output: ${stdout}`)), START_DEADLINE_MS);
    const check = (): void => {
      const match = /api listening on (http:\/\/\S+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`keygate api exited with ${code}: ${stdout}`));
    });
  });
  return { child, stdout: () => stdout, baseUrl, exited };
}

t.test('keygate api: prints the root key on the first start only, serves, drains on SIGTERM', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'keygate-api-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));

  const first = await start(dataDir);
  t.teardown(() => first.child.kill('SIGKILL'));
  const rootKey = /root key: (\S+)/.exec(first.stdout())?.[1];
  t.ok(rootKey, 'the first start prints a root key');
  const liveness = await fetch(`${first.baseUrl}/v2/liveness`);
  t.equal(liveness.status, 200);
  await liveness.body?.cancel();
  const created = await fetch(`${first.baseUrl}/v2/apis.createApi`, {
    method: 'POST', headers: { authorization: `Bearer ${rootKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'from-cli' }),
  });
  t.equal(created.status, 200, 'the printed root key works');
  await created.body?.cancel();
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0, 'SIGTERM drains and exits 0');

  const second = await start(dataDir);
  t.teardown(() => second.child.kill('SIGKILL'));
  t.notMatch(second.stdout(), /root key/, 'never printed again');
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
});
