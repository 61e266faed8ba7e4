/**
 * The published package works where it will really be used: under another project's node_modules,
 * where Node refuses to strip types. One test, because every step needs the one before it:
 * build (through `npm pack`'s prepack script) → pack → install the tarball offline into a temp
 * project → run a plain ESM consumer that proxies one request → type-check a TypeScript consumer
 * against the shipped `.d.ts`. Everything happens in a temp directory: the repository's dist/ and
 * node_modules are never written.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Each child process (npm pack, npm install, node, tsc) is killed after this long. */
const CHILD_TIMEOUT_MS = 90_000;
/** What the published surface needs at run time; every other dependency is replaced by an empty stub. */
const RUNTIME_DEPENDENCIES_OF_PROXY = ['undici'];
/** Files and folders of the repository that the build and `npm pack` read. */
const STAGED_ENTRIES = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'core', 'proxy', 'bin'];

interface ChildResult { stdout: string; stderr: string }

/** The environment for child processes, without tap's loader hooks (NODE_OPTIONS) and TAP variables. */
const CHILD_ENV: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !/^_?TAP/i.test(name)),
);

/**
 * Runs a command with a deadline; rejects with its output when it fails. tap's process-info hook
 * re-adds its loaders to NODE_OPTIONS of every child it sees, and those loaders break tsc's
 * launcher, so the command runs through `env -u NODE_OPTIONS`, which the hook cannot follow.
 */
function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile('env', ['-u', 'NODE_OPTIONS', command, ...args], { cwd: options.cwd, env: options.env ?? CHILD_ENV, timeout: CHILD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed (${err.message})\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Every relative specifier in `import`/`export … from` statements and `import()` calls of one file. */
function relativeSpecifiers(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/(?:from\s*|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) found.push(match[1]!);
  return found;
}

function listFiles(directory: string): string[] {
  return readdirSync(directory, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(directory, join(entry.parentPath, entry.name)).split(sep).join('/'));
}

const CONSUMER_MJS = `
import { createServer, get } from 'node:http';
import { HttpPeer, ProxyServer } from 'keygate/proxy';

const origin = createServer((req, res) => { res.setHeader('x-origin-path', req.url); res.end('hello from origin'); });
await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve));
const peer = new HttpPeer('http://127.0.0.1:' + origin.address().port);
const proxy = new ProxyServer({ hooks: { upstreamPeer: () => peer } });
const { port } = await proxy.listen({ port: 0, host: '127.0.0.1' });
try {
  const result = await new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/through-the-proxy' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, originPath: res.headers['x-origin-path'], body }));
    });
    req.setTimeout(10000, () => req.destroy(new Error('no answer from the proxy within 10 s')));
    req.on('error', reject);
  });
  process.stdout.write(JSON.stringify({ ...result, resolved: import.meta.resolve('keygate/proxy') }) + '\\n');
} finally {
  await proxy.close();
  await new Promise((resolve) => origin.close(resolve));
}
`;

// The @ts-expect-error line makes this check able to fail: if the shipped types were missing or
// resolved to \`any\`, the directive would be unused and tsc would report it.
const CONSUMER_TS = `
import { HttpPeer, ProxyServer } from 'keygate/proxy';
import type { FilterOutcome, ProxyHooks } from 'keygate/proxy';

interface TenantContext { tenant: string }

const hooks: ProxyHooks<TenantContext> = {
  newCtx: () => ({ tenant: 'acme' }),
  requestFilter: (): FilterOutcome => 'continue',
  upstreamPeer: () => new HttpPeer('http://127.0.0.1:9'),
};
export const proxy: ProxyServer<TenantContext> = new ProxyServer({ hooks });

export const wrong: ProxyHooks<TenantContext> = {
  // @ts-expect-error requestFilter returns 'continue' or 'responded', never a bare boolean
  requestFilter: () => true,
  upstreamPeer: () => new HttpPeer('http://127.0.0.1:9'),
};
`;

t.test('the packed tarball installs offline, runs as plain ESM under node_modules and type-checks', async (t) => {
  const workDir = mkdtempSync(join(tmpdir(), 'keygate-package-'));
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }));
  const stageDir = join(workDir, 'stage');
  const tarballDir = join(workDir, 'tarball');
  const consumerDir = join(workDir, 'consumer');
  const stubDir = join(workDir, 'unused-dependency-stub');
  for (const directory of [stageDir, tarballDir, consumerDir, stubDir]) mkdirSync(directory);
  // A private npm cache: proves nothing comes from the registry or from this machine's cache.
  const npmEnv = { ...CHILD_ENV, npm_config_cache: join(workDir, 'npm-cache'), npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

  // 1. A copy of what the build reads, with the repository's node_modules linked in for tsc and types.
  for (const entry of STAGED_ENTRIES) {
    if (existsSync(join(REPO_ROOT, entry))) cpSync(join(REPO_ROOT, entry), join(stageDir, entry), { recursive: true });
  }
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(stageDir, 'node_modules'), 'dir');

  // 2. npm pack runs the real prepack → build scripts from the real package.json.
  const packed = await run('npm', ['pack', '--json', '--pack-destination', tarballDir], { cwd: stageDir, env: npmEnv });
  const packReport = JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[/m))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const shipped = packReport[0]!.files.map((file) => file.path);
  const tarball = join(tarballDir, packReport[0]!.filename);
  t.ok(existsSync(tarball), 'npm pack wrote the tarball');
  t.ok(shipped.includes('dist/proxy/index.js') && shipped.includes('dist/proxy/index.d.ts'), 'the tarball ships the built entry point and its types');
  t.ok(shipped.includes('dist/core/fault.js'), 'the core files the framework imports are shipped too');
  t.same(shipped.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts') && !path.startsWith('bin/')), [], 'no TypeScript source ships (only the CLI bin, which npm always includes)');
  t.same(shipped.filter((path) => /(^|\/)(test|bench|fuzz|examples)\//.test(path) || path.includes('.test.')), [], 'no tests, benchmarks, fuzz targets or examples ship');
  const builtJs = listFiles(join(stageDir, 'dist')).filter((path) => path.endsWith('.js'));
  const tsSpecifiers = builtJs.flatMap((path) => relativeSpecifiers(readFileSync(join(stageDir, 'dist', path), 'utf8')).filter((specifier) => !specifier.endsWith('.js')).map((specifier) => `${path}: ${specifier}`));
  t.same(tsSpecifiers, [], 'every relative import in the emitted JS ends in .js');

  // 3. A fresh project installs the tarball with no network. The dependencies keygate/proxy does not
  //    use are overridden by one empty stub (which also proves it does not use them); the ones it
  //    does use are then linked from this repository's node_modules, never installed into it.
  writeFileSync(join(stubDir, 'package.json'), JSON.stringify({ name: 'keygate-unused-dependency-stub', version: '0.0.0' }));
  const dependencies = Object.keys((JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
  const overrides = Object.fromEntries(dependencies.map((name) => [name, `file:${stubDir}`]));
  writeFileSync(join(consumerDir, 'package.json'), JSON.stringify({ name: 'keygate-consumer', version: '1.0.0', private: true, type: 'module', overrides }, null, 2));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], { cwd: consumerDir, env: npmEnv });
  t.ok(existsSync(join(consumerDir, 'node_modules', 'keygate', 'dist', 'proxy', 'index.js')), 'npm install put the package under node_modules');
  for (const name of RUNTIME_DEPENDENCIES_OF_PROXY) {
    rmSync(join(consumerDir, 'node_modules', name), { recursive: true, force: true });
    symlinkSync(join(REPO_ROOT, 'node_modules', name), join(consumerDir, 'node_modules', name), 'dir');
  }
  mkdirSync(join(consumerDir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'node_modules', '@types', 'node'), join(consumerDir, 'node_modules', '@types', 'node'), 'dir');

  // 4. Plain ESM: import keygate/proxy from node_modules and serve one request on loopback.
  writeFileSync(join(consumerDir, 'consumer.mjs'), CONSUMER_MJS);
  const served = await run(process.execPath, ['consumer.mjs'], { cwd: consumerDir });
  const answer = JSON.parse(served.stdout.trim()) as { status: number; originPath: string; body: string; resolved: string };
  t.equal(answer.status, 200, 'the consumer proxied the request and got 200');
  t.equal(answer.body, 'hello from origin', 'the origin body came through the proxy');
  t.equal(answer.originPath, '/through-the-proxy', 'the origin saw the request path');
  t.match(answer.resolved, /\/node_modules\/keygate\/dist\/proxy\/index\.js$/, 'keygate/proxy resolves to the built JS under node_modules');

  // 5. TypeScript: a consumer type-checks against the shipped .d.ts, with library checking on, under
  //    both module resolutions a consumer may use.
  writeFileSync(join(consumerDir, 'consumer.ts'), CONSUMER_TS);
  const base = { target: 'es2024', lib: ['es2024'], types: ['node'], strict: true, noEmit: true, skipLibCheck: false };
  const configs = {
    'tsconfig.nodenext.json': { ...base, module: 'nodenext', moduleResolution: 'nodenext' },
    'tsconfig.bundler.json': { ...base, module: 'esnext', moduleResolution: 'bundler' },
  };
  for (const [file, compilerOptions] of Object.entries(configs)) {
    writeFileSync(join(consumerDir, file), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
    // Run from the repository so npx finds its TypeScript 7 without asking the registry.
    const checked = await run('npx', ['tsc', '--noEmit', '-p', join(consumerDir, file), '--listFiles'], { cwd: REPO_ROOT });
    t.match(checked.stdout, /node_modules\/keygate\/dist\/proxy\/index\.d\.ts/, `${file}: the types came from the shipped .d.ts`);
  }
});
