import t from 'tap';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { Fault } from '../../../core/fault.ts';
import { CertificateStore } from '../../../proxy/tls/certificate-store.ts';
import { SessionTicketKeys, TICKET_KEY_BYTES } from '../../../proxy/tls/session-ticket-keys.ts';

const hex = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString('hex');

t.test('rotation moves every key one generation: previous ← current ← next ← new', async (t) => {
  const keys = SessionTicketKeys.generate();
  const before = keys.snapshot();
  t.equal(before.previous, undefined, 'no previous key before the first rotation');
  const after = keys.rotate();
  t.equal(hex(after.previous), hex(before.current));
  t.equal(hex(after.current), hex(before.next));
  t.not(hex(after.next), hex(before.next), 'a new next key');
  t.equal(after.next.byteLength, TICKET_KEY_BYTES);
  t.equal(hex(keys.currentKey), hex(after.current), 'the static key handed to listeners follows');
});

t.test('a worker copy made from a snapshot holds the same keys and follows replace()', async (t) => {
  const main = SessionTicketKeys.generate();
  const copy = new SessionTicketKeys(structuredClone(main.snapshot()));
  t.same(copy.snapshot(), main.snapshot());
  copy.replace(structuredClone(main.rotate()));
  t.same(copy.snapshot(), main.snapshot());
});

t.test('keys of the wrong length are refused, and a refused replace keeps the previous keys', async (t) => {
  t.throws(() => new SessionTicketKeys(randomBytes(32)), Fault);
  const keys = new SessionTicketKeys(randomBytes(TICKET_KEY_BYTES));
  const before = keys.snapshot();
  t.throws(() => keys.replace({ current: randomBytes(TICKET_KEY_BYTES), next: randomBytes(47) }), Fault);
  t.same(keys.snapshot(), before);
  t.throws(() => keys.startRotation(0), Fault);
});

t.test('a given 48-byte key is the first current key; snapshots are copies', async (t) => {
  const given = randomBytes(TICKET_KEY_BYTES);
  const keys = new SessionTicketKeys(given);
  t.equal(hex(keys.currentKey), hex(given));
  given.fill(0);
  t.not(hex(keys.currentKey), hex(given), 'changing the caller\'s buffer changes nothing');
});

t.test('keys never show in inspect or JSON output', async (t) => {
  const keys = SessionTicketKeys.generate();
  const secret = keys.snapshot();
  const shown = inspect(keys, { showHidden: true, depth: 5 }) + JSON.stringify({ keys });
  for (const key of [secret.current, secret.next]) {
    t.notOk(shown.includes(hex(key).slice(0, 16)), 'no key bytes in output');
  }
});

t.test('the ticket callback installs only on a native context that has it', async (t) => {
  const keys = SessionTicketKeys.generate();
  t.equal(keys.attachContext(undefined), false);
  t.equal(keys.attachContext({}), false, 'a Node without the callback: reported, nothing installed');
  let enabled = 0;
  const native: { enableTicketKeyCallback: () => void; onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => unknown[] } = { enableTicketKeyCallback: () => { enabled++; } };
  t.equal(keys.attachContext(native), true);
  t.equal(keys.attachContext(native), true, 'a second attach is a lookup');
  t.equal(enabled, 1);
  const snapshot = keys.snapshot();
  const name = (key: Uint8Array): Buffer => Buffer.from(key).subarray(0, 16);
  const encrypt = native.onticketkeycallback!(Buffer.alloc(16), Buffer.alloc(16), true);
  t.equal(encrypt[0], 1);
  t.equal(hex(encrypt[3] as Buffer), hex(name(snapshot.current)), 'new tickets carry the current key name');
  // Every accepted ticket is renewed, so a TLS 1.3 resumption gets a new ticket (see ticket-resumption.test.ts).
  t.equal(native.onticketkeycallback!(name(snapshot.current), Buffer.alloc(16), false)[0], 2, 'current: accepted and renewed');
  t.equal(hex(native.onticketkeycallback!(name(snapshot.current), Buffer.alloc(16), false)[3] as Buffer), hex(name(snapshot.current)), 'with the current key');
  t.equal(native.onticketkeycallback!(name(snapshot.next), Buffer.alloc(16), false)[0], 2, 'next: accepted and renewed');
  t.equal(hex(native.onticketkeycallback!(name(snapshot.next), Buffer.alloc(16), false)[3] as Buffer), hex(name(snapshot.next)), 'with the next key');
  t.equal(native.onticketkeycallback!(randomBytes(16), Buffer.alloc(16), false)[0], 0, 'unknown: full handshake');
  keys.rotate();
  t.equal(native.onticketkeycallback!(name(snapshot.current), Buffer.alloc(16), false)[0], 2, 'previous: accepted and renewed');
  keys.rotate();
  t.equal(native.onticketkeycallback!(name(snapshot.current), Buffer.alloc(16), false)[0], 0, 'two rotations old: refused');
});

/** Polls until `store` (rotating every few ms) has rotated `times` times: a clock for negative checks. */
async function waitForRotations(store: CertificateStore, times: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  let last = store.ticketKeys.currentKey;
  let seen = 0;
  while (seen < times) {
    if (Date.now() > deadline) throw new Error('the store never rotated its keys');
    await new Promise((resolve) => setTimeout(resolve, 2));
    if (!store.ticketKeys.currentKey.equals(last)) { seen++; last = store.ticketKeys.currentKey; }
  }
}

t.test('a store with its own keys rotates them once a listener uses it, and stops on close', async (t) => {
  const store = new CertificateStore({ ticketKeyRotationMs: 2 });
  const reference = new CertificateStore({ ticketKeyRotationMs: 2 });
  t.teardown(() => { store.close(); reference.close(); });
  const unused = store.ticketKeys.currentKey;
  reference.serverOptions();
  await waitForRotations(reference, 3);
  t.ok(store.ticketKeys.currentKey.equals(unused), 'no rotation before a listener uses the store');
  store.serverOptions();
  await waitForRotations(store, 1);
  store.close();
  const afterClose = store.ticketKeys.currentKey;
  await waitForRotations(reference, 3);
  t.ok(store.ticketKeys.currentKey.equals(afterClose), 'no rotation after close (while another store rotated 3 times)');
});

t.test('a store given shared keys never rotates them itself', async (t) => {
  const shared = SessionTicketKeys.generate();
  const store = new CertificateStore({ ticketKeys: shared, ticketKeyRotationMs: 2 });
  const reference = new CertificateStore({ ticketKeyRotationMs: 2 });
  t.teardown(() => { store.close(); reference.close(); });
  const before = shared.currentKey;
  store.serverOptions();
  reference.serverOptions();
  await waitForRotations(reference, 3);
  t.ok(shared.currentKey.equals(before), 'the owner (e.g. the main thread) rotates, not each store');
  t.equal(store.ticketKeys, shared);
});
