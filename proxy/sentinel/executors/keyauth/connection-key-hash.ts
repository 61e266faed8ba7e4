/**
 * `connectionKeyHash`: the hash of a request's key (`hashKey`), remembered per downstream
 * connection. A keep-alive client nearly always sends the same key on every request of a
 * connection, so the SHA-256 runs once per connection and key instead of once per request.
 *
 * One entry per connection (the last key it sent), held in a `WeakMap` keyed by the connection
 * object: it goes with the connection, and a connection that changes keys just replaces it. The
 * raw key is held for the connection's life (with the request head it was sliced from, at most
 * the listener's header limit); it is never logged or shared between connections.
 */
import { hashKey } from '../../../../core/keys/key-hash.ts';

interface LastKey {
  key: string;
  hash: string;
}

const lastKeyOf = new WeakMap<object, LastKey>();

/** `hashKey(key)`, computed at most once per connection while the key stays the same. Per request. */
export function connectionKeyHash(key: string, connection: object | undefined): string {
  if (connection === undefined) return hashKey(key);
  const last = lastKeyOf.get(connection);
  if (last !== undefined && last.key === key) return last.hash;
  const hash = hashKey(key);
  if (last === undefined) lastKeyOf.set(connection, { key, hash });
  else {
    last.key = key;
    last.hash = hash;
  }
  return hash;
}
