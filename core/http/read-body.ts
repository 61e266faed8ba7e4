/**
 * `readBody`: reads a request body into one Buffer, bounded. A declared `content-length` above
 * the limit is refused before a byte is read; a chunked body is refused as soon as the running
 * total passes the limit, and reading stops there (the socket is paused, not drained), so an
 * oversize upload costs the server at most the limit plus one socket read.
 */
import type { IncomingMessage } from 'node:http';
import { Fault } from '../fault.ts';

const EMPTY_BODY = Buffer.alloc(0);

/** True when the request carries a body (a non-zero `content-length` or `transfer-encoding`). */
export function hasBody(req: IncomingMessage): boolean {
  const contentLength = req.headers['content-length'];
  if (contentLength !== undefined) return contentLength !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads the whole body of `req`, at most `maxBodyBytes`. Called once per request with a body.
 * Rejects with `request_body_too_large` (413) past the limit, after which the caller must close
 * the connection (the rest of the body was not read), or `client_closed_request` (499) when the
 * client goes away first.
 */
export function readBody(req: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    stopReading(req);
    return Promise.reject(bodyTooLarge(maxBodyBytes));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let totalBytes = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAborted);
      req.off('close', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      totalBytes += chunk.length;
      if (totalBytes > maxBodyBytes) {
        cleanup();
        stopReading(req);
        reject(bodyTooLarge(maxBodyBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      if (chunks.length === 0) resolve(EMPTY_BODY);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, totalBytes));
    };
    const onAborted = (): void => {
      cleanup();
      reject(Fault.expected('err:user:bad_request:client_closed_request', { publicMessage: 'The client closed the request.' }));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAborted);
    req.on('close', onAborted);
  });
}

/** The 413 fault for a body over `maxBodyBytes`. */
export function bodyTooLarge(maxBodyBytes: number): Fault {
  return Fault.expected('err:user:bad_request:request_body_too_large', {
    publicMessage: `The request body exceeds the limit of ${maxBodyBytes} bytes.`,
  });
}

/**
 * Stops pulling the body off the socket. Pausing alone is not enough for a body that was never
 * touched: when the response ends, Node drains ("dumps") an unconsumed body to keep the
 * connection alive. Marking the stream as consumed (a resume followed by a pause) prevents that;
 * Node then stops reading once its small buffer is full, and the response's `connection: close`
 * ends the connection.
 */
function stopReading(req: IncomingMessage): void {
  req.resume();
  req.pause();
}
