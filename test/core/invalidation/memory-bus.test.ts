import t from 'tap';
import { MemoryBus, MemoryBusHub } from '../../../core/invalidation/memory-bus.ts';
import { invalidationBusSuite } from '../../helpers/invalidation-bus-suite.ts';

t.test('MemoryBus passes the InvalidationBus compliance suite', async (t) => {
  invalidationBusSuite(t, {
    startCluster: async (clocks) => {
      const hub = new MemoryBusHub();
      return clocks.map((clock, index) => new MemoryBus({ hub, clock, nodeId: `memory-${index}` }));
    },
  });
});

t.test('a lone memory bus applies its publishes locally and has nobody to fall back from', async (t) => {
  const bus = new MemoryBus();
  t.teardown(() => bus.close());
  const seen: string[] = [];
  bus.subscribe((invalidation) => { seen.push(...invalidation.keys); });
  await bus.publish({ cache: 'c', keys: ['a'] });
  t.same(seen, ['a']);
  t.match(bus.nodeId, /^memory-[A-Za-z0-9]{12}$/);
  t.same({ peers: bus.status().peerCount, fallback: bus.status().fallbackToExpiry, published: bus.status().publishedCount }, { peers: 0, fallback: false, published: 1 });
});

t.test('closing a bus drops deliveries it has not made yet', async (t) => {
  const hub = new MemoryBusHub();
  const sender = new MemoryBus({ hub });
  const receiver = new MemoryBus({ hub });
  t.teardown(() => sender.close());
  let delivered = 0;
  receiver.subscribe(() => { delivered += 1; });
  await sender.publish({ cache: 'c', keys: ['a'] });
  await receiver.close();
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(delivered, 0);
});
