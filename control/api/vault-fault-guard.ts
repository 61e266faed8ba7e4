/**
 * `guardVaultFaults`: wraps the API's Vault client so a Vault failure is never mistaken for the
 * caller's mistake. The Vault's own faults carry statuses about the API's request to the Vault
 * (401 when it refuses the API's bearer token, 404 for an unknown data key, 400 for a corrupted
 * payload); passed through, an SDK would read "your root key is wrong" or "no such key". Every
 * `err:vault:*` fault becomes a server error: 500 `service_unavailable` (retryable) when the
 * Vault said retrying can help, 500 `unexpected_error` otherwise, with the Vault fault as cause
 * and its code in the internal message. Other errors (our own faults, aborts) pass unchanged.
 */
import { Fault } from '../../core/fault.ts';
import type { VaultClient } from '../../core/vault-client.ts';

/** A VaultClient whose failures are API server errors; see the file comment. Built once at boot. */
export function guardVaultFaults(vault: VaultClient): VaultClient {
  return {
    liveness: (options) => vault.liveness(options).catch(rethrowAsApiFault),
    encrypt: (request, options) => vault.encrypt(request, options).catch(rethrowAsApiFault),
    decrypt: (request, options) => vault.decrypt(request, options).catch(rethrowAsApiFault),
    reEncrypt: (request, options) => vault.reEncrypt(request, options).catch(rethrowAsApiFault),
    encryptBulk: (request, options) => vault.encryptBulk(request, options).catch(rethrowAsApiFault),
    decryptBulk: (request, options) => vault.decryptBulk(request, options).catch(rethrowAsApiFault),
    close: () => vault.close(),
  };
}

/** The API-side fault for an error thrown by the Vault client; see the file comment. */
export function apiFaultOfVaultError(err: unknown): unknown {
  if (!(err instanceof Fault) || !err.code.startsWith('err:vault:')) return err;
  return new Fault(err.retryable ? 'err:unkey:application:service_unavailable' : 'err:unkey:application:unexpected_error', {
    publicMessage: err.retryable ? 'The key vault is temporarily unavailable; retry later.' : 'The key vault failed to process the request.',
    internalMessage: `vault call failed: ${err.code}: ${err.internalMessage}`,
    source: 'upstream',
    retryable: err.retryable,
    cause: err,
  });
}

function rethrowAsApiFault(err: unknown): never {
  throw apiFaultOfVaultError(err);
}
