/**
 * Root-key authentication (spec api.md §5.1, pitfalls §14.13–14). Runs after the body was
 * validated. A root key is an ordinary key with `forWorkspaceId` set; it is looked up through the
 * same cached query as verification.
 *
 * Answers: missing header → 400 `authentication:missing`; not `Bearer <token>` → 400
 * `authentication:malformed`; unknown key, or a normal (non-root) key → the SAME 401
 * `key_not_found`; disabled → 403 `key_disabled`; expired → 403 `forbidden`; disabled workspace
 * → 403 `workspace_disabled`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../../core/clock.ts';
import { Fault } from '../../core/fault.ts';
import { hashKey } from '../../core/keys/key-hash.ts';
import type { RootKeyPermissions } from '../../core/rbac/root-key-permissions.ts';
import { keyStatus, type KeyVerifier } from '../../core/verification/key-verifier.ts';
import type { VerificationKey } from '../../core/verification/verification-key.ts';

/** The authenticated caller of a protected route. */
export interface RootKeyPrincipal {
  /** The workspace the root key manages: every read and write is scoped to it. */
  readonly workspaceId: string;
  /** The root key's id (the audit log's actor). */
  readonly rootKeyId: string;
  readonly rootKeyName: string | undefined;
  readonly permissions: RootKeyPermissions;
}

/**
 * The last root key hash per connection: clients send the same root key on every request of a
 * keep-alive connection, so its SHA-256 is computed once per connection. Keyed weakly by the
 * connection, so the memo (and the header it came from) goes with it.
 */
const hashByConnection = new WeakMap<object, { header: string; hash: string }>();

/**
 * Authenticates the `authorization` header; throws the faults listed in the file comment. Called
 * per protected request. `connection` (the request's connection identity, if any) lets the key's
 * hash be reused across the requests of one connection.
 */
export function authenticateRootKey(headers: IncomingHttpHeaders, verifier: KeyVerifier, clock: Clock, connection?: object): RootKeyPrincipal | Promise<RootKeyPrincipal> {
  const header = headers.authorization;
  if (header === undefined || header === '') {
    throw Fault.expected('err:unkey:authentication:missing', {
      publicMessage: 'Authorization header is missing; send `Authorization: Bearer <root key>`.',
    });
  }
  if (!/^bearer /i.test(header) || header.slice(7).trim() === '') {
    throw Fault.expected('err:unkey:authentication:malformed', {
      publicMessage: 'Authorization header must use the Bearer scheme: `Authorization: Bearer <root key>`.',
    });
  }
  let hash: string;
  const memo = connection === undefined ? undefined : hashByConnection.get(connection);
  if (memo !== undefined && memo.header === header) {
    hash = memo.hash;
  } else {
    hash = hashKey(header.slice(7).trim());
    if (connection !== undefined) hashByConnection.set(connection, { header, hash });
  }
  // A cached root key (the common case) is answered without a promise.
  const entry = verifier.lookupNow(hash);
  if (entry instanceof Promise) return entry.then((loaded) => principalOf(loaded, clock));
  return principalOf(entry, clock);
}

/** The principal of a cached key entry, built once per entry (entries are replaced, never mutated, on reload). */
const principalByEntry = new WeakMap<VerificationKey, RootKeyPrincipal>();

/** Checks a looked-up entry as a root key; throws the faults of the file comment. */
function principalOf(entry: VerificationKey | undefined, clock: Clock): RootKeyPrincipal {
  // A normal key used as a bearer token gets exactly the answer of an unknown key.
  if (entry === undefined || entry.rootKeyPermissions === undefined || entry.forWorkspaceId === undefined) throw keyNotFound();
  const status = keyStatus(entry, clock.nowMs());
  switch (status) {
    case 'VALID':
      break;
    case 'NOT_FOUND':
      throw keyNotFound();
    case 'DISABLED':
      throw Fault.expected('err:unkey:authorization:key_disabled', { publicMessage: 'The root key is disabled.' });
    case 'EXPIRED':
      throw Fault.expected('err:unkey:authorization:forbidden', { publicMessage: 'The root key has expired.' });
    case 'FORBIDDEN':
      throw Fault.expected('err:unkey:authorization:workspace_disabled', { publicMessage: 'The workspace is disabled.' });
  }
  let principal = principalByEntry.get(entry);
  if (principal === undefined) {
    principal = {
      workspaceId: entry.forWorkspaceId,
      rootKeyId: entry.keyId,
      rootKeyName: entry.name,
      permissions: entry.rootKeyPermissions,
    };
    principalByEntry.set(entry, principal);
  }
  return principal;
}

function keyNotFound(): Fault {
  return Fault.expected('err:unkey:authentication:key_not_found', { publicMessage: 'The provided root key is invalid.' });
}
