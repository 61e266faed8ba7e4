/**
 * `serveUntilSignal`: the life cycle every server command shares. Close steps run in reverse
 * order after the drain and also when the start-up fails; SIGHUP reaches `reload` only for a
 * service that has one; a stop signal drains once and resolves 0; `abort` resolves 1.
 */
import t from 'tap';
import type { CliIo } from '../../bin/command.ts';
import { serveUntilSignal } from '../../bin/serve-until-signal.ts';

function capture(): { io: CliIo; stderr: () => string } {
  let stderr = '';
  return { io: { stdout: () => {}, stderr: (text) => { stderr += text; }, env: {}, cwd: process.cwd() }, stderr: () => stderr };
}

/** Delivers `signal` to the JS listeners only (no real signal reaches the test process). */
function emitSignal(signal: NodeJS.Signals): void {
  process.emit(signal as 'SIGTERM', signal);
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

t.test('a failed start-up closes what it had opened, last first, and rethrows', async (t) => {
  const { io } = capture();
  const closed: string[] = [];
  const listenersBefore = process.listenerCount('SIGTERM');
  await t.rejects(serveUntilSignal(io, async (lifetime) => {
    lifetime.defer(() => { closed.push('database'); });
    lifetime.defer(async () => { closed.push('vault'); });
    throw new Error('port in use');
  }), /port in use/);
  t.same(closed, ['vault', 'database']);
  t.equal(process.listenerCount('SIGTERM'), listenersBefore, 'no signal listener is left behind');
});

t.test('SIGHUP reloads, SIGTERM drains once and then closes in reverse order; exit code 0', async (t) => {
  const { io, stderr } = capture();
  const events: string[] = [];
  const hupBefore = process.listenerCount('SIGHUP');
  const running = serveUntilSignal(io, async (lifetime) => {
    lifetime.defer(() => { events.push('close database'); });
    lifetime.defer(() => { throw new Error('metrics listener already gone'); });
    lifetime.defer(() => { events.push('close server'); });
    return {
      drain: async () => { events.push('drain'); },
      reload: async () => { events.push('reload'); },
    };
  });
  await until(() => process.listenerCount('SIGHUP') === hupBefore + 1, 'the SIGHUP listener');
  emitSignal('SIGHUP');
  await until(() => events.includes('reload'), 'the reload');
  emitSignal('SIGTERM');
  t.equal(await running, 0);
  t.same(events, ['reload', 'drain', 'close server', 'close database'], 'a failing step does not stop the others');
  t.match(stderr(), /SIGTERM received, draining/);
  t.match(stderr(), /shutdown step failed: metrics listener already gone/);
  t.equal(process.listenerCount('SIGHUP'), hupBefore);
});

t.test('without reload, SIGHUP is not caught (its default stays)', async (t) => {
  const { io } = capture();
  const hupBefore = process.listenerCount('SIGHUP');
  let started = false;
  const running = serveUntilSignal(io, async () => {
    started = true;
    return { drain: async () => {} };
  });
  await until(() => started && process.listenerCount('SIGINT') > 0, 'the start');
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(process.listenerCount('SIGHUP'), hupBefore);
  emitSignal('SIGINT');
  t.equal(await running, 0);
});

t.test('abort drains and closes like a signal, and resolves to exit code 1', async (t) => {
  const { io, stderr } = capture();
  const events: string[] = [];
  const code = await serveUntilSignal(io, async (lifetime) => {
    lifetime.defer(() => { events.push('close'); });
    setImmediate(() => lifetime.abort('frontline worker 1 exited with code 1'));
    return { drain: async () => { events.push('drain'); } };
  });
  t.equal(code, 1);
  t.same(events, ['drain', 'close']);
  t.match(stderr(), /frontline worker 1 exited with code 1; stopping/);
});
