import t from 'tap';
import net from 'node:net';
import { WorkerGroup } from '../../proxy/workers/worker-group.ts';
import { request, startOrigin } from './helpers.ts';

t.test('two worker threads share one port (reusePort) and both serve connections', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('ok'));
  t.teardown(() => origin.close());
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));

  const group = new WorkerGroup({ module: new URL('./fixtures/worker-proxy.ts', import.meta.url), count: 2, workerData: { originUrl: origin.url, port } });
  await group.start();
  t.teardown(() => group.stop());
  t.equal(group.size, 2);
  const workers = new Set<string>();
  for (let i = 0; i < 40 && workers.size < 2; i++) {
    const response = await request(`http://127.0.0.1:${port}/`);
    t.equal(response.body, 'ok');
    workers.add(String(response.headers['x-worker']));
  }
  t.equal(workers.size, 2, `connections reached both workers: ${[...workers].join(', ')}`);
  await group.stop();
  t.equal(group.size, 0);
  await t.rejects(request(`http://127.0.0.1:${port}/`), 'the port is closed after stop');
});
