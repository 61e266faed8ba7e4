/**
 * `S3Storage`: a `VaultStorage` on any S3-compatible store (AWS S3, R2, MinIO, Garage; tested
 * against s3rver), for clusters where several Vault nodes share DEKs.
 *
 * Every call has a deadline (`requestTimeoutMs`) and the SDK's standard retry (3 attempts).
 * Listing follows continuation tokens (the reference read one page and silently skipped the
 * rest). `putIfAbsent` is a conditional PUT (`If-None-Match: *`), preceded by a HEAD so that
 * stores which ignore the condition (s3rver) still rarely overwrite.
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { assertObjectKey, MAX_LISTED_KEYS, storageUnavailable, type VaultStorage } from './vault-storage.ts';

/** Connection settings for {@link S3Storage}. */
export interface S3StorageOptions {
  bucket: string;
  /** Prepended to every key (e.g. `vault/`), so one bucket can hold several things. Default ''. */
  keyPrefix?: string;
  /** Custom endpoint, e.g. `http://127.0.0.1:4568`; omit for AWS. */
  endpoint?: string;
  /** Default `auto` (R2, MinIO and s3rver accept it; AWS wants the bucket's region). */
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style URLs (`endpoint/bucket/key`); default true when an endpoint is given. */
  forcePathStyle?: boolean;
  /** Deadline of one S3 call including retries, in ms. Default 5000. */
  requestTimeoutMs?: number;
  /** Create the bucket on open if it does not exist. Default false. */
  createBucket?: boolean;
  /** Largest object accepted on read, in bytes; a wrapped DEK is ~100. Default 1 MiB. */
  maxObjectBytes?: number;
  /** Keys asked for per listing page (S3 caps it at 1000). Default 1000. */
  listPageSize?: number;
}

/** S3-backed storage. Build it with {@link S3Storage.open}. */
export class S3Storage implements VaultStorage {
  readonly kind = 's3';
  readonly bucket: string;
  readonly keyPrefix: string;
  readonly requestTimeoutMs: number;
  readonly maxObjectBytes: number;
  readonly listPageSize: number;
  readonly #client: S3Client;

  constructor(options: S3StorageOptions) {
    this.bucket = options.bucket;
    this.keyPrefix = options.keyPrefix ?? '';
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.maxObjectBytes = options.maxObjectBytes ?? 1024 * 1024;
    this.listPageSize = options.listPageSize ?? 1000;
    this.#client = new S3Client({
      region: options.region ?? 'auto',
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
      credentials:
        options.accessKeyId !== undefined && options.secretAccessKey !== undefined
          ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
          : undefined,
      maxAttempts: 3,
      retryMode: 'standard',
      // Without these, uploads are sent with aws-chunked framing that some stores keep verbatim.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: this.requestTimeoutMs, requestTimeout: this.requestTimeoutMs, throwOnRequestTimeout: true },
    });
  }

  /** Creates the storage and, with `createBucket`, the bucket (an existing one is fine). */
  static async open(options: S3StorageOptions): Promise<S3Storage> {
    const storage = new S3Storage(options);
    if (options.createBucket) await storage.#ensureBucket();
    return storage;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    assertObjectKey(key);
    try {
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key, Body: bytes, ContentLength: bytes.length }),
        { abortSignal: AbortSignal.timeout(this.requestTimeoutMs) },
      );
    } catch (err) {
      throw storageUnavailable('put', key, err);
    }
  }

  async putIfAbsent(key: string, bytes: Uint8Array): Promise<boolean> {
    assertObjectKey(key);
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key }), {
        abortSignal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      return false;
    } catch (err) {
      if (!isNotFound(err)) throw storageUnavailable('putIfAbsent', key, err);
    }
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.keyPrefix + key,
          Body: bytes,
          ContentLength: bytes.length,
          IfNoneMatch: '*',
        }),
        { abortSignal: AbortSignal.timeout(this.requestTimeoutMs) },
      );
      return true;
    } catch (err) {
      // 412: someone else created it first. 409: a concurrent conditional write is in flight.
      const status = httpStatusOf(err);
      if (status === 412 || status === 409) return false;
      throw storageUnavailable('putIfAbsent', key, err);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    assertObjectKey(key);
    try {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key }), {
        abortSignal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      if (response.ContentLength !== undefined && response.ContentLength > this.maxObjectBytes) {
        throw new Error(`object is larger than ${this.maxObjectBytes} bytes`);
      }
      if (response.Body === undefined) return new Uint8Array(0);
      return await response.Body.transformToByteArray();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw storageUnavailable('get', key, err);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let continuationToken: string | undefined;
    try {
      do {
        const page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keyPrefix + prefix, MaxKeys: this.listPageSize, ContinuationToken: continuationToken }),
          { abortSignal: AbortSignal.timeout(this.requestTimeoutMs) },
        );
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          if (keys.length === MAX_LISTED_KEYS) throw new Error(`more than ${MAX_LISTED_KEYS} keys`);
          keys.push(object.Key.slice(this.keyPrefix.length));
        }
        continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (continuationToken !== undefined);
    } catch (err) {
      throw storageUnavailable('list', prefix, err);
    }
    return keys.sort();
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  async #ensureBucket(): Promise<void> {
    try {
      await this.#client.send(new CreateBucketCommand({ Bucket: this.bucket }), {
        abortSignal: AbortSignal.timeout(this.requestTimeoutMs),
      });
    } catch (err) {
      const name = err instanceof Error ? err.name : '';
      if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return;
      throw storageUnavailable('createBucket', this.bucket, err);
    }
  }
}

function httpStatusOf(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object' || !('$metadata' in err)) return undefined;
  const metadata = err.$metadata as { httpStatusCode?: number } | undefined;
  return metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = err instanceof Error ? err.name : '';
  // A missing bucket is a configuration fault, not a missing object.
  if (name === 'NoSuchBucket') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatusOf(err) === 404;
}
