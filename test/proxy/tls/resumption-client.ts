/**
 * Test helper: one TLS client handshake against 127.0.0.1 that reports whether the session was
 * resumed and returns the ticket the server issued (TLS 1.3 tickets arrive after the handshake,
 * so the connection is read to its end before resolving). Bounded by a timeout.
 */
import tls from 'node:tls';

/** Outcome of one handshake. */
export interface HandshakeResult {
  reused: boolean;
  /** The last session the server handed out on this connection (undefined when none). */
  session: Buffer | undefined;
}

/** Longest time one handshake + response may take before the helper fails (ms). */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/** Connects, sends one HTTP/1.1 request with `Connection: close`, and reads until the server closes. */
export function handshake(port: number, options: { servername?: string; session?: Buffer; maxVersion?: 'TLSv1.2' | 'TLSv1.3' } = {}): Promise<HandshakeResult> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'],
      ...(options.servername === undefined ? {} : { servername: options.servername }),
      ...(options.session === undefined ? {} : { session: options.session }),
      ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
    });
    const timer = setTimeout(() => socket.destroy(new Error(`handshake to port ${port} timed out`)), HANDSHAKE_TIMEOUT_MS);
    let session: Buffer | undefined;
    let reused = false;
    socket.on('session', (value: Buffer) => { session = value; });
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.write(`GET / HTTP/1.1\r\nHost: ${options.servername ?? 'localhost'}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', () => {});
    socket.once('error', (err) => { clearTimeout(timer); reject(err); });
    socket.once('close', () => { clearTimeout(timer); resolve({ reused, session }); });
  });
}
