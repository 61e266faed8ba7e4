import t from 'tap';
import { connectionTokens, copyRequestHeaders, hasToken, stripResponseHeaders } from '../../proxy/forward/hop-by-hop.ts';

t.test('copyRequestHeaders drops every hop-by-hop header, pseudo-headers, host and expect', async (t) => {
  const copied = copyRequestHeaders({
    connection: 'keep-alive, X-Foo', 'x-foo': '1', 'keep-alive': 'timeout=5', 'proxy-connection': 'x',
    'proxy-authenticate': 'x', 'proxy-authorization': 'x', te: 'gzip', trailer: 'x-t', 'transfer-encoding': 'chunked',
    upgrade: 'websocket', 'http2-settings': 'AAA', ':authority': 'a', ':path': '/', host: 'a', expect: '100-continue',
    'x-end': 'kept', authorization: 'Bearer k', cookie: 'a=b',
  });
  t.same(copied, { 'x-end': 'kept', authorization: 'Bearer k', cookie: 'a=b' });
});

t.test('copyRequestHeaders keeps te: trailers and only that token', async (t) => {
  t.same(copyRequestHeaders({ te: 'deflate, Trailers' }), { te: 'trailers' });
});

t.test('stripResponseHeaders removes hop-by-hop and Connection-named headers', async (t) => {
  const headers = { connection: ['close', 'X-A'], 'x-a': '1', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', upgrade: 'h2c', trailer: 'x', te: 'x', 'proxy-authenticate': 'x', 'proxy-connection': 'x', 'x-b': '2' };
  t.strictSame(stripResponseHeaders(headers), { 'x-b': '2' });
  t.strictSame(stripResponseHeaders({ connection: 'x-a', 'x-a': '1', 'x-b': '2' }), { 'x-b': '2' }, 'a single named token is removed too');
  t.strictSame(stripResponseHeaders({ connection: 'Keep-Alive', 'keep-alive': 'timeout=5', 'x-b': '2' }), { 'x-b': '2' }, 'the usual Connection value');
  const clean = { 'content-length': '2', 'x-b': '2' };
  t.equal(stripResponseHeaders(clean), clean, 'a head without hop-by-hop headers is returned as is');
});

t.test('token helpers are case-insensitive and comma aware', async (t) => {
  t.same([...connectionTokens(['Keep-Alive,  X-One', 'x-two'])], ['keep-alive', 'x-one', 'x-two']);
  t.ok(hasToken('a, Upgrade', 'upgrade'));
  t.notOk(hasToken('upgraded', 'upgrade'));
});
