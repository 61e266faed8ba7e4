/**
 * `VaultClient`: how every role encrypts and decrypts secrets (recoverable API keys,
 * certificate private keys, workload secrets) without holding key material. Two
 * implementations: the in-process `VaultService` in `vault/` (wired by `bin/`, since core may not
 * import vault) and {@link RemoteVaultClient} here, which calls a `keygate vault` server over the
 * Connect protocol (JSON unary, `POST /vault.v1.VaultService/<Method>`).
 *
 * Field names are the Connect JSON ones (lowerCamelCase). `keyring` is the caller's isolation
 * unit (the workspace id for recoverable keys and certificates, the environment id for
 * workload secrets); a payload decrypts only under the keyring it was encrypted with.
 * Every failure is a `Fault` with an `err:vault:*` code (or an `err:user:*` code for an
 * oversized request), the same codes from both implementations.
 */
import { Pool } from 'undici';
import { Fault, isFaultCode, type FaultCode } from './fault.ts';

/** Encrypt one UTF-8 string. */
export interface VaultEncryptRequest {
  keyring: string;
  data: string;
}

/** The payload to store (base64 of the protobuf `vault.v1.Encrypted`) and the id of the DEK used. */
export interface VaultEncryptResponse {
  encrypted: string;
  keyId: string;
}

/** Decrypt one payload under the keyring it was encrypted with. */
export interface VaultDecryptRequest {
  keyring: string;
  encrypted: string;
}

/** The decrypted string. */
export interface VaultDecryptResponse {
  plaintext: string;
}

/** Re-encrypt a payload with the keyring's current DEK. `keyId` is accepted and ignored. */
export interface VaultReEncryptRequest {
  keyring: string;
  encrypted: string;
  keyId?: string;
}

/** Encrypt many strings of one keyring; `items` maps caller ids to plaintexts. */
export interface VaultEncryptBulkRequest {
  keyring: string;
  items: Record<string, string>;
}

/** The results under the same ids as the request. */
export interface VaultEncryptBulkResponse {
  items: Record<string, VaultEncryptResponse>;
}

/** Decrypt many payloads of one keyring; `items` maps caller ids to payloads. */
export interface VaultDecryptBulkRequest {
  keyring: string;
  items: Record<string, string>;
}

/** The plaintexts under the same ids as the request. */
export interface VaultDecryptBulkResponse {
  items: Record<string, string>;
}

/** Per-call options. */
export interface VaultCallOptions {
  /** Aborts the call (remote: the request; in-process: ignored once crypto runs). */
  signal?: AbortSignal;
}

/**
 * The Vault contract. Called per request by the API (recoverable keys), the certificate store
 * and the workload agent. A bulk call fails as a whole on its first failing item, with that
 * item's code and its id in the message.
 */
export interface VaultClient {
  liveness(options?: VaultCallOptions): Promise<{ status: string }>;
  encrypt(request: VaultEncryptRequest, options?: VaultCallOptions): Promise<VaultEncryptResponse>;
  decrypt(request: VaultDecryptRequest, options?: VaultCallOptions): Promise<VaultDecryptResponse>;
  reEncrypt(request: VaultReEncryptRequest, options?: VaultCallOptions): Promise<VaultEncryptResponse>;
  encryptBulk(request: VaultEncryptBulkRequest, options?: VaultCallOptions): Promise<VaultEncryptBulkResponse>;
  decryptBulk(request: VaultDecryptBulkRequest, options?: VaultCallOptions): Promise<VaultDecryptBulkResponse>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

/** The response header that carries keygate's fault code next to the Connect error code. */
export const VAULT_FAULT_CODE_HEADER = 'keygate-fault-code';

/** Options of {@link RemoteVaultClient}. */
export interface RemoteVaultClientOptions {
  /** The Vault server's origin, e.g. `http://127.0.0.1:8060`. */
  baseUrl: string;
  /** The server's `vault.bearerToken`. */
  bearerToken: string;
  /** Deadline of one call in ms (sent as `connect-timeout-ms` too). Default 5000. */
  timeoutMs?: number;
  /** Largest response body accepted, in bytes. Default 64 MiB. */
  maxResponseBytes?: number;
  /** Keep-alive connections held to the server. Default 16. */
  maxConnections?: number;
}

const SERVICE_PATH = '/vault.v1.VaultService/';

/**
 * A `VaultClient` over the network: Connect JSON unary calls on a keep-alive undici pool.
 * Transport failures and timeouts are the retryable fault `err:vault:service:unavailable`;
 * server faults keep their code (carried in the `keygate-fault-code` header, or derived from the
 * Connect code when another Connect server answers).
 */
export class RemoteVaultClient implements VaultClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly #authorization: string;
  readonly #pool: Pool;

  constructor(options: RemoteVaultClientOptions) {
    if (!options.bearerToken) throw new Fault('err:keygate:config:invalid', { publicMessage: 'RemoteVaultClient needs a bearer token' });
    const url = new URL(options.baseUrl);
    this.baseUrl = url.origin;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.maxResponseBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
    this.#authorization = 'Bearer ' + options.bearerToken;
    this.#pool = new Pool(url.origin, {
      connections: options.maxConnections ?? 16,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
  }

  liveness(options?: VaultCallOptions): Promise<{ status: string }> {
    return this.#call('Liveness', {}, options).then((body) => ({ status: stringField(body, 'status') }));
  }

  encrypt(request: VaultEncryptRequest, options?: VaultCallOptions): Promise<VaultEncryptResponse> {
    return this.#call('Encrypt', { keyring: request.keyring, data: request.data }, options).then(toEncryptResponse);
  }

  decrypt(request: VaultDecryptRequest, options?: VaultCallOptions): Promise<VaultDecryptResponse> {
    return this.#call('Decrypt', { keyring: request.keyring, encrypted: request.encrypted }, options).then((body) => ({
      plaintext: stringField(body, 'plaintext'),
    }));
  }

  reEncrypt(request: VaultReEncryptRequest, options?: VaultCallOptions): Promise<VaultEncryptResponse> {
    const body: Record<string, string> = { keyring: request.keyring, encrypted: request.encrypted };
    if (request.keyId !== undefined) body.keyId = request.keyId;
    return this.#call('ReEncrypt', body, options).then(toEncryptResponse);
  }

  async encryptBulk(request: VaultEncryptBulkRequest, options?: VaultCallOptions): Promise<VaultEncryptBulkResponse> {
    const body = await this.#call('EncryptBulk', { keyring: request.keyring, items: request.items }, options);
    // fromEntries defines own properties, so an id such as "__proto__" stays an ordinary key.
    return { items: Object.fromEntries(Object.entries(objectField(body, 'items')).map(([id, value]) => [id, toEncryptResponse(value)])) };
  }

  async decryptBulk(request: VaultDecryptBulkRequest, options?: VaultCallOptions): Promise<VaultDecryptBulkResponse> {
    const body = await this.#call('DecryptBulk', { keyring: request.keyring, items: request.items }, options);
    const entries = Object.entries(objectField(body, 'items'));
    for (const [, value] of entries) {
      if (typeof value !== 'string') throw unexpectedResponse('DecryptBulk item is not a string');
    }
    return { items: Object.fromEntries(entries) as Record<string, string> };
  }

  async close(): Promise<void> {
    if (!this.#pool.closed) await this.#pool.close();
  }

  async #call(method: string, message: unknown, options: VaultCallOptions | undefined): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options?.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let response;
    try {
      response = await this.#pool.request({
        method: 'POST',
        path: SERVICE_PATH + method,
        headers: {
          'content-type': 'application/json',
          'connect-protocol-version': '1',
          'connect-timeout-ms': String(this.timeoutMs),
          authorization: this.#authorization,
        },
        body: JSON.stringify(message),
        signal,
      });
    } catch (err) {
      throw unavailable(`${method}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    let text: string;
    try {
      text = await readBounded(response.body, this.maxResponseBytes);
    } catch (err) {
      throw err instanceof Fault ? err : unavailable(`${method}: reading the response failed`, err);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw unexpectedResponse(`${method} answered ${response.statusCode} with a body that is not JSON`);
    }
    if (response.statusCode === 200) return body;
    throw faultFromConnectError(body, response.headers[VAULT_FAULT_CODE_HEADER], response.statusCode);
  }
}

/** Maps a Connect error code to the keygate fault code a client raises when no code header came with it. */
export function faultCodeOfConnectCode(connectCode: string): FaultCode {
  switch (connectCode) {
    case 'unauthenticated':
    case 'permission_denied':
      return 'err:vault:auth:unauthenticated';
    case 'invalid_argument':
    case 'out_of_range':
      return 'err:vault:request:invalid_argument';
    case 'not_found':
      return 'err:vault:keyring:dek_not_found';
    case 'failed_precondition':
      return 'err:vault:keyring:kek_not_found';
    case 'data_loss':
      return 'err:vault:storage:corrupted';
    case 'unimplemented':
      return 'err:vault:request:unimplemented';
    default:
      return 'err:vault:service:unavailable';
  }
}

function faultFromConnectError(body: unknown, codeHeader: string | string[] | undefined, status: number): Fault {
  const connectCode = body !== null && typeof body === 'object' && 'code' in body && typeof body.code === 'string' ? body.code : 'unknown';
  const message = body !== null && typeof body === 'object' && 'message' in body && typeof body.message === 'string' ? body.message : undefined;
  const header = Array.isArray(codeHeader) ? codeHeader[0] : codeHeader;
  const code = header !== undefined && isFaultCode(header) ? header : faultCodeOfConnectCode(connectCode);
  const retryable = code === 'err:vault:service:unavailable' || code === 'err:vault:storage:unavailable';
  return new Fault(code, {
    source: 'upstream',
    retryable,
    publicMessage: message,
    internalMessage: `vault answered ${status} ${connectCode}${message ? ': ' + message : ''}`,
  });
}

async function readBounded(body: AsyncIterable<Buffer> & { destroy?: (err?: Error) => unknown }, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) {
      body.destroy?.();
      throw unexpectedResponse(`the response is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

function toEncryptResponse(body: unknown): VaultEncryptResponse {
  return { encrypted: stringField(body, 'encrypted'), keyId: stringField(body, 'keyId') };
}

// Proto3 JSON omits fields holding their default value, so an absent string field means "".
function stringField(body: unknown, name: string): string {
  if (body === null || typeof body !== 'object') throw unexpectedResponse('the response is not an object');
  const value = (body as Record<string, unknown>)[name];
  if (value === undefined) return '';
  if (typeof value !== 'string') throw unexpectedResponse(`${name} is not a string`);
  return value;
}

function objectField(body: unknown, name: string): Record<string, unknown> {
  if (body === null || typeof body !== 'object') throw unexpectedResponse('the response is not an object');
  const value = (body as Record<string, unknown>)[name];
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw unexpectedResponse(`${name} is not an object`);
  return value as Record<string, unknown>;
}

function unavailable(internalMessage: string, cause: unknown): Fault {
  return new Fault('err:vault:service:unavailable', {
    source: 'upstream',
    retryable: true,
    publicMessage: 'The vault service is unavailable.',
    internalMessage,
    cause,
  });
}

function unexpectedResponse(internalMessage: string): Fault {
  return new Fault('err:vault:service:unavailable', {
    source: 'upstream',
    retryable: false,
    publicMessage: 'The vault service sent an unexpected response.',
    internalMessage,
  });
}
