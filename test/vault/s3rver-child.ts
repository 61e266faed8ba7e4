/**
 * Runs s3rver in its own process (it needs `--openssl-legacy-provider` for paginated listings,
 * which a tap test process cannot set for itself). Prints `{"port":N}` once listening and exits
 * when its parent closes stdin, so it never outlives the test.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver');
const directory = process.argv[2];
if (!directory) throw new Error('usage: s3rver-child.ts <directory>');
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
const address = await server.run();
process.stdout.write(JSON.stringify({ port: address.port }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => {
  server.close().finally(() => process.exit(0));
});
