import t from 'tap';
import { ClusterKey } from '../../gossip/cluster-key.ts';
import { Libp2pBus } from '../../gossip/libp2p-bus.ts';
import { invalidationBusSuite, waitUntil } from '../helpers/invalidation-bus-suite.ts';

t.test('Libp2pBus passes the InvalidationBus compliance suite', async (t) => {
  invalidationBusSuite(t, {
    startCluster: async (clocks) => {
      const clusterKey = ClusterKey.generate();
      const buses: Libp2pBus[] = [];
      for (const clock of clocks) {
        // Each node dials the ones started before it: a full mesh on loopback.
        const peers = buses.flatMap((bus) => bus.listenAddresses());
        buses.push(await Libp2pBus.start({ listen: '127.0.0.1:0', peers, clusterKey, clock }));
      }
      await waitUntil(() => buses.every((bus) => bus.status().peerCount === clocks.length - 1), 'every node sees the others subscribed');
      return buses;
    },
  });
});
