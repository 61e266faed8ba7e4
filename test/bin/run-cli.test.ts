import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../bin/cli.ts';
import type { CliIo } from '../../bin/command.ts';
import { commands } from '../../bin/commands/registry.ts';

// The same CLI as cli.test.ts, run in this process (no spawn per case) for the exhaustive tables.

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (text) => { stdout += text; },
    stderr: (text) => { stderr += text; },
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

t.test('every command and subcommand answers --help and -h with its usage, exit 0', async (t) => {
  const paths: string[][] = [];
  for (const command of commands) {
    paths.push([command.name]);
    for (const sub of command.subcommands ?? []) paths.push([command.name, sub.name]);
  }
  t.ok(paths.length >= 6);
  for (const path of paths) {
    for (const flag of ['--help', '-h']) {
      const result = await run([...path, flag]);
      t.equal(result.code, 0, `${path.join(' ')} ${flag}`);
      t.match(result.stdout, new RegExp(`^Usage: keygate ${path.join(' ')}`), path.join(' '));
      t.match(result.stdout, /-h, --help\s+show this help/);
      t.equal(result.stderr, '');
    }
    const viaHelp = await run(['help', ...path]);
    t.equal(viaHelp.code, 0);
    t.match(viaHelp.stdout, new RegExp(`^Usage: keygate ${path.join(' ')}`), `help ${path.join(' ')}`);
  }
  t.match((await run(['help'])).stdout, /^keygate: /);
  t.match((await run(['-h'])).stdout, /Commands:/);
});

t.test('usage errors exit 2 and say what to do', async (t) => {
  const table: [args: string[], stderr: RegExp][] = [
    [[], /keygate: no command given/],
    [['migrat'], /^keygate: unknown command "migrat"; did you mean "migrate"\? Run "keygate --help" for the list\.\n$/],
    [['frobnicate'], /^keygate: unknown command "frobnicate"\. Run "keygate --help"/],
    [['help', 'frobnicate'], /unknown command "frobnicate"/],
    [['config'], /keygate: config needs a subcommand: validate or print/],
    [['config', 'valdate'], /unknown command "config valdate"; did you mean "validate"\? Run "keygate config --help"/],
    [['config', 'validate'], /^keygate: config validate needs --config FILE\n$/],
    [['config', 'print', '--server-prot', '1'], /unknown flag --server-prot for "config print"; did you mean --server-port\?/],
    [['migrate', '--dbb', 'x.db'], /^keygate: unknown flag --dbb for "migrate"; did you mean --db\? Run "keygate migrate --help" for its flags\.\n$/],
    [['migrate', '-x'], /^keygate: unknown flag -x for "migrate"\. Run/],
    [['migrate', '--db'], /^keygate: migrate: Option '--db <value>' argument missing/],
    [['migrate', 'extra'], /^keygate: migrate: Unexpected argument 'extra'/],
    [['migrate', '--port', '1'], /unknown flag --port for "migrate"/],
    [['--bogus'], /unknown flag --bogus before the command/],
    [['version', 'now'], /version: Unexpected argument 'now'/],
  ];
  for (const [args, stderr] of table) {
    const result = await run(args);
    t.equal(result.code, 2, `keygate ${args.join(' ')} exits 2`);
    t.match(result.stderr, stderr, `keygate ${args.join(' ')}`);
  }
});

t.test('config errors exit 1: from the file, the environment and flag values', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'keygate.json');
  writeFileSync(file, JSON.stringify({ db: { url: 'postgres://h/db' } }));
  const syntax = join(dir, 'syntax.json');
  writeFileSync(syntax, '{"server": ');
  const two = join(dir, 'two.json');
  writeFileSync(two, '{"log": {"level": "loud"}, "cache": {"maxEntries": 0}}');
  const table: [args: string[], env: Record<string, string>, stderr: RegExp][] = [
    [['config', 'validate', '--config', file], {}, /^keygate: db\.url: expected a SQLite file path.*got "postgres:\/\/h\/db" \(in /],
    [['config', 'validate', '--config', syntax], {}, /^keygate: config file .*syntax\.json is not valid JSON: /],
    [['config', 'validate', '--config', two], {}, /^keygate: invalid configuration \(2 problems\):\n  - log\.level: .*\n  - cache\.maxEntries: expected an integer of at least 1, got 0/],
    [['config', 'print'], { KEYGATE_CACHE_MAX_ENTRIES: '0' }, /cache\.maxEntries: expected an integer of at least 1, got "0" \(from environment variable KEYGATE_CACHE_MAX_ENTRIES\)/],
    [['config', 'print', '--port', 'http'], {}, /server\.port: expected an integer from 0 to 65535, got "http" \(from flag --port\)/],
    [['config', 'print', '--log-level', 'loud'], {}, /log\.level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"/],
    [['migrate', '--db', 'postgres://h/db'], {}, /db\.url: expected .*\(from flag --db\)/],
    [['migrate', '--config', join(dir, 'nope.json')], {}, /^keygate: config file not found: .*nope\.json\n$/],
  ];
  for (const [args, env, stderr] of table) {
    const result = await run(args, { env });
    t.equal(result.code, 1, args.join(' '));
    t.match(result.stderr, stderr, args.join(' '));
  }
});

t.test('config print accepts every config key as a flag and redacts secrets', async (t) => {
  const result = await run(
    ['config', 'print', '--server-host', '0.0.0.0', '--cache-max-entries', '5', '--redis', 'redis://:hunter2@127.0.0.1:6379/1', '--data-dir', '/srv/kg'],
    { env: { KEYGATE_DB_URL: 'mysql://kg:hunter2@db:3306/keygate' } },
  );
  t.equal(result.code, 0, result.stderr);
  const printed = JSON.parse(result.stdout) as Record<string, Record<string, unknown>>;
  t.equal(printed['server']?.['host'], '0.0.0.0');
  t.equal(printed['cache']?.['maxEntries'], 5);
  t.equal(printed['redis']?.['url'], 'redis://:***@127.0.0.1:6379/1');
  t.equal(printed['db']?.['url'], 'mysql://kg:***@db:3306/keygate');
  t.notMatch(result.stdout + result.stderr, /hunter2/);
});

t.test('migrate resolves a relative SQLite path against the working directory', async (t) => {
  const dir = t.testdir();
  const first = await run(['migrate', '--db', 'sqlite:nested/kg.db'], { cwd: dir });
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, `migrating sqlite:${join(dir, 'nested', 'kg.db')}\n`);
  t.ok(existsSync(join(dir, 'nested', 'kg.db')));
  const second = await run(['migrate'], { cwd: dir, env: { KEYGATE_DB_URL: 'nested/kg.db' } });
  t.match(second.stdout, /already up to date/);
});

t.test('an unexpected error (not a Fault) exits 1 as "unexpected error" without a stack', async (t) => {
  const dir = t.testdir({ 'a-directory': {} });
  // A directory where the SQLite file should be: the driver fails, the CLI reports it.
  const result = await run(['migrate', '--db', join(dir, 'a-directory')]);
  t.equal(result.code, 1);
  t.match(result.stderr, /^keygate: /);
  t.notMatch(result.stderr, /\n\s+at /);
});
