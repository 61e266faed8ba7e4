/**
 * The Vault's Connect server: `POST /vault.v1.VaultService/<Method>` in the Connect protocol's
 * unary form, with JSON (`application/json`, lowerCamelCase or original field names) or binary
 * protobuf (`application/proto`) bodies answered in the same codec, so any standard Connect
 * client can call it. Plus `GET /health/live|ready|startup`.
 *
 * Request flow: HttpServer (body read and bounded) → bearer-token check (all methods but
 * Liveness; before any decoding or work) → codec check → decode → `VaultClient` method →
 * encode. Faults become Connect error JSON through `connectErrorBody`.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { Fault } from '../../core/fault.ts';
import { HttpServer } from '../../core/http/http-server.ts';
import type { HttpReply, Middleware } from '../../core/http/interface.ts';
import type { RequestContext } from '../../core/http/request-context.ts';
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { VaultClient } from '../../core/vault-client.ts';
import { vaultProto } from '../proto/vault-proto.ts';
import { connectErrorBody } from './connect-error-body.ts';
import type protobuf from 'protobufjs';

/** Options of {@link createVaultHttpServer}. */
export interface VaultHttpServerOptions {
  /** Usually a `VaultService`; any `VaultClient` works (a proxy to another Vault, say). */
  service: VaultClient;
  /** The static token callers send as `Authorization: Bearer <token>`; must be non-empty. */
  bearerToken: string;
  logger?: Logger;
  metrics?: Metrics;
  /** Handler deadline in ms. Default 10 s. */
  requestTimeoutMs?: number;
  /** Request body limit in bytes (bulk calls are the large ones). Default 16 MiB. */
  maxBodyBytes?: number;
}

/** The path prefix of every Vault RPC. */
export const VAULT_SERVICE_PATH = '/vault.v1.VaultService/';

/** A server with the Vault's routes and Connect error bodies; `listen` it or `inject` into it. */
export function createVaultHttpServer(options: VaultHttpServerOptions): HttpServer {
  const server = new HttpServer({
    logger: options.logger,
    metrics: options.metrics,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    maxBodyBytes: options.maxBodyBytes ?? 16 * 1024 * 1024,
    errorBody: connectErrorBody,
  });
  registerVaultRoutes(server, options);
  return server;
}

/** Registers the Vault's routes on an existing server (one that uses `connectErrorBody`). */
export function registerVaultRoutes(server: HttpServer, options: Pick<VaultHttpServerOptions, 'service' | 'bearerToken'>): void {
  const service = options.service;
  const auth = bearerAuth(options.bearerToken);
  for (const method of METHODS) {
    server.route('POST', VAULT_SERVICE_PATH + method.name, (ctx) => handleUnary(ctx, method, service), {
      name: VAULT_SERVICE_PATH + method.name,
      middleware: method.name === 'Liveness' ? [] : [auth],
      accessLog: method.name !== 'Liveness',
    });
  }
  const healthy = (): HttpReply => ({ body: { status: 'ok' } });
  for (const probe of ['live', 'ready', 'startup']) server.route('GET', `/health/${probe}`, healthy, { accessLog: false });
}

/**
 * The bearer-token check. Both sides are hashed to fixed-length digests before the constant-time
 * comparison, so neither the token's content nor its length leaks through timing.
 */
export function bearerAuth(bearerToken: string): Middleware {
  if (typeof bearerToken !== 'string' || bearerToken.length === 0) {
    throw new Fault('err:keygate:config:invalid', { publicMessage: 'vault.bearerToken must be set to a non-empty token' });
  }
  const expected = hash('sha256', bearerToken, 'buffer');
  return (ctx, next) => {
    const header = ctx.headers.authorization;
    if (header === undefined || header === '') throw unauthenticated('missing Authorization header');
    if (!header.startsWith('Bearer ')) throw unauthenticated('invalid Authorization header');
    // One-shot hash: no Hash object per request.
    const presented = hash('sha256', header.slice('Bearer '.length), 'buffer');
    if (!timingSafeEqual(presented, expected)) throw unauthenticated('invalid bearer token');
    return next(ctx);
  };
}

interface UnaryMethod {
  name: string;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  /** Builds the call from a plain request object (proto3 JSON semantics: absent = default). */
  call(service: VaultClient, request: Record<string, unknown>): Promise<object>;
}

const METHODS: readonly UnaryMethod[] = [
  {
    name: 'Liveness',
    requestType: vaultProto.LivenessRequest,
    responseType: vaultProto.LivenessResponse,
    call: (service) => service.liveness(),
  },
  {
    name: 'Encrypt',
    requestType: vaultProto.EncryptRequest,
    responseType: vaultProto.EncryptResponse,
    call: (service, request) => service.encrypt({ keyring: stringOf(request, 'keyring'), data: stringOf(request, 'data') }),
  },
  {
    name: 'Decrypt',
    requestType: vaultProto.DecryptRequest,
    responseType: vaultProto.DecryptResponse,
    call: (service, request) => service.decrypt({ keyring: stringOf(request, 'keyring'), encrypted: stringOf(request, 'encrypted') }),
  },
  {
    name: 'ReEncrypt',
    requestType: vaultProto.ReEncryptRequest,
    responseType: vaultProto.ReEncryptResponse,
    call: (service, request) =>
      service.reEncrypt({ keyring: stringOf(request, 'keyring'), encrypted: stringOf(request, 'encrypted'), keyId: stringOf(request, 'keyId', 'key_id') }),
  },
  {
    name: 'EncryptBulk',
    requestType: vaultProto.EncryptBulkRequest,
    responseType: vaultProto.EncryptBulkResponse,
    call: (service, request) => service.encryptBulk({ keyring: stringOf(request, 'keyring'), items: stringMapOf(request, 'items') }),
  },
  {
    name: 'DecryptBulk',
    requestType: vaultProto.DecryptBulkRequest,
    responseType: vaultProto.DecryptBulkResponse,
    call: (service, request) => service.decryptBulk({ keyring: stringOf(request, 'keyring'), items: stringMapOf(request, 'items') }),
  },
];

type Codec = 'json' | 'proto';

async function handleUnary(ctx: RequestContext, method: UnaryMethod, service: VaultClient): Promise<HttpReply> {
  const codec = codecOf(ctx);
  const request = codec === 'json' ? jsonRequest(ctx) : protoRequest(ctx, method.requestType);
  const response = await method.call(service, request);
  // An object body is sent as application/json by the kernel; leaving `headers` out keeps its
  // flat-header fast path.
  if (codec === 'json') return { body: response };
  const type = method.responseType;
  return { headers: { 'content-type': 'application/proto' }, body: type.encode(type.fromObject(response)).finish() };
}

function codecOf(ctx: RequestContext): Codec {
  const version = ctx.headers['connect-protocol-version'];
  if (version !== undefined && version !== '1') throw invalid('unsupported connect-protocol-version');
  const encoding = ctx.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    throw Fault.expected('err:vault:request:unimplemented', { publicMessage: `content-encoding ${encoding} is not supported` });
  }
  const contentType = (ctx.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (contentType === 'application/json') return 'json';
  if (contentType === 'application/proto') return 'proto';
  throw Fault.expected('err:vault:request:unsupported_media_type', {
    publicMessage: 'content-type must be application/json or application/proto',
  });
}

function jsonRequest(ctx: RequestContext): Record<string, unknown> {
  // An empty body is an empty message in Connect unary.
  if (ctx.rawBody.length === 0) return {};
  const body = ctx.json<unknown>();
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('the body must be a JSON object');
  return body as Record<string, unknown>;
}

function protoRequest(ctx: RequestContext, type: protobuf.Type): Record<string, unknown> {
  try {
    return type.toObject(type.decode(ctx.rawBody), { defaults: true }) as Record<string, unknown>;
  } catch {
    throw invalid(`the body is not a binary ${type.name}`);
  }
}

// Proto3 JSON accepts the lowerCamelCase name and the original field name; null means default.
function stringOf(request: Record<string, unknown>, name: string, originalName?: string): string {
  const value = request[name] ?? (originalName === undefined ? undefined : request[originalName]);
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw invalid(`${name} must be a string`);
  return value;
}

function stringMapOf(request: Record<string, unknown>, name: string): Record<string, string> {
  const value = request[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(`${name} must be an object of strings`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw invalid(`${name}.${key} must be a string`);
  }
  return value as Record<string, string>;
}

function unauthenticated(message: string): Fault {
  return Fault.expected('err:vault:auth:unauthenticated', { publicMessage: message });
}

function invalid(message: string): Fault {
  return Fault.expected('err:vault:request:invalid_argument', { publicMessage: message });
}
