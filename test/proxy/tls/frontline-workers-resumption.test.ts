/**
 * The production wiring: `FrontlineWorkers` (bin/) starts two Frontline worker threads on one
 * port; the main thread's ticket keys reach both through the worker data and every rotation
 * through the channel, so a client resumes on whichever thread the kernel picks.
 */
import t from 'tap';
import { FrontlineWorkers } from '../../../bin/frontline-workers.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';
import { handshake } from './resumption-client.ts';

const SERVERNAME = 'workers.example.test';
/** With two workers, 40 attempts all landing on one thread has probability 2^-39. */
const ATTEMPTS = 40;

t.test('a session resumes on either worker thread, across a rotation, and not two rotations later', async (t) => {
  const certificate = createTestCertificate({ hostnames: [SERVERNAME] });
  t.teardown(() => certificate.cleanup());
  const workers = await FrontlineWorkers.start({
    count: 2,
    worker: {
      config: {
        httpsPort: 0, httpPort: undefined, certificateDir: undefined, acmeChallengeDir: undefined,
        certificates: [{ certFile: certificate.certFile, keyFile: certificate.keyFile }], routes: [],
      },
      host: '127.0.0.1', httpsPort: 0, logLevel: 'silent', instanceId: 'ins_test', region: 'local', maxHops: 3,
      peerOptions: {}, trustedProxies: [], requestTimeoutMs: 10_000, drainTimeoutMs: 100, watch: false,
    },
  });
  t.teardown(() => workers.stop());
  const port = workers.addresses.https.port;
  // Until the listener calls `attachServer`, a worker takes on rotating keys on its first full
  // SNI handshake; these give each worker one (the kernel spreads them over both threads).
  const fresh = [];
  for (let index = 0; index < 20; index++) fresh.push(await handshake(port, { servername: SERVERNAME }));
  const session = fresh[0]!.session;
  if (session === undefined) throw new Error('no session ticket issued');

  let reused = 0;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) if ((await handshake(port, { servername: SERVERNAME, session })).reused) reused++;
  t.equal(reused, ATTEMPTS, 'every resumption attempt resumed, whichever worker accepted it');

  t.equal(await workers.rotateTicketKeys(), 2, 'both workers applied the first rotation');
  reused = 0;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) if ((await handshake(port, { servername: SERVERNAME, session })).reused) reused++;
  t.equal(reused, ATTEMPTS, 'a ticket from the previous interval still resumes everywhere');

  t.equal(await workers.rotateTicketKeys(), 2, 'both workers applied the second rotation');
  reused = 0;
  for (let attempt = 0; attempt < 10; attempt++) if ((await handshake(port, { servername: SERVERNAME, session })).reused) reused++;
  t.equal(reused, 0, 'a ticket older than two intervals gets a full handshake');
});
