import t from 'tap';
import { Metrics } from '../../../core/metrics.ts';
import { IngressFrontline } from '../../../proxy/frontline/ingress-frontline.ts';
import { HOP_HEADERS, PeerHopAuthenticator } from '../../../proxy/frontline/peer-hop.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';
import type { EchoBody } from './helpers.ts';
import { httpsRequest, startEchoOrigin, tempDir } from './helpers.ts';

t.test('hop headers verify only with the shared secret, the same values and the same host', async (t) => {
  const fleet = new PeerHopAuthenticator('a shared fleet secret');
  const signed = fleet.sign(2, 'req_abc', 'fl_a', 'app.example.test');
  t.same(fleet.read(signed, 'app.example.test'), { hops: 2, parentRequestId: 'req_abc', rejected: false });
  t.equal(fleet.read(signed, 'other.example.test').rejected, true, 'bound to the host');
  t.equal(fleet.read({ ...signed, [HOP_HEADERS.hops]: '1' }, 'app.example.test').rejected, true, 'a lowered count breaks the signature');
  t.equal(new PeerHopAuthenticator('another secret').read(signed, 'app.example.test').rejected, true, 'another fleet cannot vouch');
  t.equal(new PeerHopAuthenticator(undefined).read(signed, 'app.example.test').rejected, true, 'without a secret nothing is trusted');
  t.equal(fleet.read({ [HOP_HEADERS.hops]: '5' }, 'app.example.test').hops, 0, 'an unsigned count counts as zero');
  t.equal(fleet.read({ ...signed, [HOP_HEADERS.hops]: ['2', '2'] as unknown as string }, 'app.example.test').rejected, true, 'duplicated headers are refused');
  t.same(fleet.read({}, 'app.example.test'), { hops: 0, parentRequestId: undefined, rejected: false });
});

const files = tempDir();
const cert = createTestCertificate({ hostnames: ['loop.example.test', 'via-peer.example.test', 'frontline.peer.test'], dir: files.dir, name: 'fleet' });
const origin = await startEchoOrigin('origin');
const secret = 'fleet secret for the hop test';
const peerOptions = { servername: 'frontline.peer.test', ca: cert.cert };
const certificates = [{ certFile: 'fleet.pem', keyFile: 'fleet.key' }];
const metricsA = new Metrics();
const metricsB = new Metrics();

// A starts with a placeholder; once B (which points at A) has a port, A is pointed at B.
const fileA = files.write('a.json', { frontline: { httpsPort: 0, httpPort: null, certificates, routes: [{ host: 'loop.example.test', upstreams: [origin.url] }] } });
const frontlineA = await IngressFrontline.start({ file: fileA, metrics: metricsA, instanceId: 'fl_a', region: 'a', peerSecret: secret, maxHops: 3, peerOptions });
const portA = frontlineA.addresses.https.port;
const fileB = files.write('b.json', {
  frontline: {
    httpsPort: 0, httpPort: null, certificates,
    routes: [
      { host: 'loop.example.test', peers: [`https://127.0.0.1:${portA}`] },
      { host: 'via-peer.example.test', upstreams: [origin.url] },
    ],
  },
});
const frontlineB = await IngressFrontline.start({ file: fileB, metrics: metricsB, instanceId: 'fl_b', region: 'b', peerSecret: secret, maxHops: 3, peerOptions });
const portB = frontlineB.addresses.https.port;
files.write('a.json', {
  frontline: {
    httpsPort: 0, httpPort: null, certificates,
    routes: [
      { host: 'loop.example.test', peers: [`https://127.0.0.1:${portB}`] },
      { host: 'via-peer.example.test', peers: [`https://127.0.0.1:${portB}`] },
    ],
  },
});
const reloaded = await frontlineA.reload();
t.teardown(async () => {
  await frontlineA.close({ graceMs: 100 });
  await frontlineB.close({ graceMs: 100 });
  await origin.close();
  files.cleanup();
});

t.test('a routing loop between two regions stops at the hop limit with 508', async (t) => {
  t.ok(reloaded.applied, 'A points at B');
  const response = await httpsRequest(portA, 'loop.example.test', '/loop', { headers: { accept: 'application/json' } });
  t.equal(response.status, 508);
  t.equal((JSON.parse(response.body) as { error: { code: string } }).error.code, 'err:frontline:platform:hop_limit_exceeded');
  // A (0 hops) → B (1) → A (2) → B (3 ≥ limit): B refuses; each relaying hop adds its id.
  t.same(response.headers['x-keygate-frontline-id'], 'fl_a, fl_b, fl_a', 'the 508 came back through three forwarding hops');
  t.match(await metricsB.render(), /keygate_frontline_hop_limit_rejections_total 1/);
  t.match(await metricsA.render(), /keygate_frontline_hop_limit_rejections_total 0/);
});

t.test('a client cannot lower the count or trip the limit by sending hop headers', async (t) => {
  const response = await httpsRequest(portB, 'via-peer.example.test', '/direct', {
    headers: { [HOP_HEADERS.hops]: '99', [HOP_HEADERS.signature]: 'v1=nope', [HOP_HEADERS.parentRequestId]: 'req_x', [HOP_HEADERS.parentFrontlineId]: 'fl_x' },
  });
  t.equal(response.status, 200, 'a forged high count is ignored, not trusted');
  t.match(await metricsB.render(), /keygate_frontline_hop_headers_rejected_total [1-9]/);
});

t.test('a request forwarded to a peer region is served there, and hop headers never reach the app', async (t) => {
  const response = await httpsRequest(portA, 'via-peer.example.test', '/remote?q=1');
  t.equal(response.status, 200);
  const echo = JSON.parse(response.body) as EchoBody;
  t.equal(echo.url, '/remote?q=1');
  t.equal(echo.headers.host, 'via-peer.example.test', 'the customer Host travels across the hop');
  t.equal(echo.headers['x-keygate-frontline-id'], 'fl_b', 'the serving region is the peer');
  t.notOk(echo.headers[HOP_HEADERS.hops], 'the hop count is stripped at the peer edge');
  t.notOk(echo.headers[HOP_HEADERS.signature]);
  t.match(await metricsB.render(), /keygate_frontline_hops_count_bucket\{le="1"\} [1-9]/, 'B saw an authenticated hop of 1');
});
