import t from 'tap';
import { formatHostPort, parseHostPort } from '../../gossip/host-port.ts';

t.test('parses host:port into multiaddrs', async (t) => {
  const cases: [string, string][] = [
    ['127.0.0.1:7001', '/ip4/127.0.0.1/tcp/7001'],
    ['[::1]:7002', '/ip6/::1/tcp/7002'],
    ['node-b.internal:7003', '/dns/node-b.internal/tcp/7003'],
    [' 10.0.0.5:65535 ', '/ip4/10.0.0.5/tcp/65535'],
  ];
  for (const [text, expected] of cases) {
    const parsed = parseHostPort(text, 'gossip.peers');
    t.equal(parsed.multiaddr.toString(), expected, text);
    t.equal(formatHostPort(parsed.multiaddr), text.trim());
  }
  t.equal(parseHostPort('0.0.0.0:0', 'gossip.listen', { allowPortZero: true }).port, 0);
});

t.test('refuses anything that is not host:port, naming the setting', async (t) => {
  for (const text of ['', '127.0.0.1', ':7001', '127.0.0.1:0', '127.0.0.1:65536', '::1:7001', '[10.0.0.1]:7001', 'a b:1', '/ip4/127.0.0.1/tcp/1']) {
    t.throws(() => parseHostPort(text, 'gossip.peers'), { code: 'err:keygate:config:invalid', message: /gossip\.peers/ }, JSON.stringify(text));
  }
});
