import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { lintRepository, lintSource } from '../../scripts/lint.ts';
import type { LintContext, LintRule } from '../../scripts/lint.ts';

const LINT = fileURLToPath(new URL('../../scripts/lint.ts', import.meta.url));

const EXISTING_FILES = new Set([
  'core/fault.ts', 'core/config/field.ts', 'core/data.json', 'gossip/bus.ts', 'gossip/peer.ts', 'vault/keyring.ts',
  'bin/cli.ts', 'test/helpers/mysql.ts', 'bench/run.ts', 'proxy/hooks.ts',
]);
const context: LintContext = {
  fileExists: (path) => EXISTING_FILES.has(path),
  dependencies: new Set(['pino', '@libp2p/tcp', 'mysql2']),
  devDependencies: new Set(['tap', '@types/node', 'autocannon']),
};

function rulesOf(file: string, source: string): LintRule[] {
  return lintSource(file, source, context).map((violation) => violation.rule);
}

t.test('imports are allowed or rejected by folder, as ARCHITECTURE.md says', async (t) => {
  const table: [file: string, source: string, rules: LintRule[]][] = [
    // core/: only core, node: builtins and npm packages
    ['core/x.ts', "import { Fault } from './fault.ts';", []],
    ['core/config/x.ts', "import { field } from './field.ts';\nimport { readFileSync } from 'node:fs';\nimport pino from 'pino';", []],
    ['core/x.ts', "import { bus } from '../gossip/bus.ts';", ['layering']],
    ['core/x.ts', "import { run } from '../bin/cli.ts';", ['layering']],
    ['core/x.ts', "import data from './data.json' with { type: 'json' };", []],
    // roles: core and themselves, never each other
    ['gossip/x.ts', "import { Fault } from '../core/fault.ts';\nimport { peer } from './peer.ts';", []],
    ['vault/x.ts', "import { bus } from '../gossip/bus.ts';", ['layering']],
    ['proxy/x.ts', "export { keyring } from '../vault/keyring.ts';", ['layering']],
    ['gossip/x.ts', "const hooks = await import('../proxy/hooks.ts');", ['layering']],
    ['control/x.ts', "import type { Keyring } from '../vault/keyring.ts';", ['layering']],
    // bin/ and test/ are imported only by tests, benchmarks and fuzz targets
    ['bin/x.ts', "import { bus } from '../gossip/bus.ts';\nimport { run } from './cli.ts';", []],
    ['bin/x.ts', "import { helper } from '../test/helpers/mysql.ts';", ['layering']],
    ['test/x.test.ts', "import { run } from '../bin/cli.ts';\nimport { helper } from './helpers/mysql.ts';", []],
    ['bench/x.ts', "import { run } from '../bin/cli.ts';", []],
    ['scripts/x.ts', "import { run } from '../bin/cli.ts';", ['layering']],
    // relative imports end in .ts and exist
    ['core/x.ts', "import { Fault } from './fault';", ['import-extension']],
    ['core/x.ts', "import { Fault } from './fault.js';", ['import-extension']],
    ['core/x.ts', "import { gone } from './gone.ts';", ['missing-file']],
    ['core/x.ts', "import { gone } from '../../outside.ts';", ['layering']],
    ['core/x.ts', "import { x } from '/abs/path.ts';", ['layering']],
    // builtins with node:, packages declared, runtime code without dev dependencies
    ['core/x.ts', "import { readFileSync } from 'fs';", ['node-prefix']],
    ['core/x.ts', "import { join } from 'path/posix';", ['node-prefix']],
    ['core/x.ts', "import left from 'left-pad';", ['undeclared-package']],
    ['core/x.ts', "import { tcp } from '@libp2p/tcp';\nimport type { X } from '@libp2p/interface';", ['undeclared-package']],
    ['core/x.ts', "import t from 'tap';", ['dev-dependency']],
    ['core/x.ts', "import type { Test } from 'tap';", []],
    ['test/x.test.ts', "import t from 'tap';\nimport autocannon from 'autocannon';", []],
    ['core/x.ts', "import { createPool } from 'mysql2/promise';", []],
  ];
  for (const [file, source, rules] of table) t.same(rulesOf(file, source), rules, `${file}: ${source.replaceAll('\n', ' | ')}`);
});

t.test('every import form is found, with its line number', async (t) => {
  const source = [
    "import './side-effect.ts';",
    "import def, { a, type B } from './named.ts';",
    'import * as all from',
    "  './star.ts';",
    "export * from './reexport.ts';",
    "export { c as d } from './reexport-named.ts';",
    "export type { E } from './reexport-type.ts';",
    "const lazy = await import('./lazy.ts');",
    'import {',
    '  multi,',
    '  line,',
    "} from './multi-line.ts';",
  ].join('\n');
  const violations = lintSource('core/x.ts', source, context);
  t.same(
    violations.map((violation) => [violation.line, violation.message.match(/"([^"]+)"/)?.[1]]),
    [
      [1, './side-effect.ts'], [2, './named.ts'], [4, './star.ts'], [5, './reexport.ts'], [6, './reexport-named.ts'],
      [7, './reexport-type.ts'], [8, './lazy.ts'], [12, './multi-line.ts'],
    ],
  );
  t.ok(violations.every((violation) => violation.rule === 'missing-file'));
});

t.test('imports and keywords inside comments, strings, templates and regexes do not count', async (t) => {
  const source = [
    "// import { bus } from '../gossip/bus.ts';",
    "/* import x from 'fs'; enum A { B } */",
    "const text = \"import y from '../vault/keyring.ts'\";",
    "const template = `import z from 'fs' ${'nested'} namespace N { }`;",
    'const pattern = /import\\s+x from [\'"]fs[\'"]/;',
    "const divided = 4 / 2; const again = divided / 2; // import q from 'fs'",
    "const url = 'https://example.com/enum Foo {';",
    'const meta = import.meta.url;',
    "const config = { enum: ['a'], namespace: 'x' };",
  ].join('\n');
  t.same(lintSource('core/x.ts', source, context), []);
});

t.test('enum and namespace declarations are reported; .d.ts files may declare namespaces', async (t) => {
  t.same(rulesOf('core/x.ts', 'export enum Color { Red }'), ['syntax']);
  t.same(rulesOf('core/x.ts', 'const enum Color { Red }'), ['syntax']);
  t.same(rulesOf('core/x.ts', 'namespace Util { export const x = 1; }'), ['syntax']);
  t.same(rulesOf('test/x.test.ts', 'declare namespace Tap { type Test = 1; }'), ['syntax']);
  t.same(rulesOf('core/types.d.ts', 'declare namespace Tap { type Test = 1; }'), []);
  t.same(rulesOf('core/x.ts', "declare module 'pino' { interface X {} }\ndeclare global { interface Y {} }"), []);
});

t.test('the lint script prints file:line for each violation and exits 1; 0 on a clean tree', async (t) => {
  const dirty = t.testdir({
    'package.json': JSON.stringify({ dependencies: { pino: '10' } }),
    core: { 'a.ts': "import pino from 'pino';\nimport { b } from './b';\n", 'b.ts': 'export const b = 1;\n' },
    gossip: { 'g.ts': "import { v } from '../vault/v.ts';\n" },
    vault: { 'v.ts': 'export enum V { A }\n' },
    node_modules: { 'ignored.ts': "import x from 'fs';\n" },
  });
  t.same(lintRepository(dirty).map((violation) => `${violation.file}:${violation.line}:${violation.rule}`), [
    'core/a.ts:2:import-extension',
    'gossip/g.ts:1:layering',
    'vault/v.ts:1:syntax',
  ]);
  const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, [LINT, dirty], { timeout: 30_000 }, (err, stdout) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout });
    });
  });
  t.equal(result.code, 1);
  t.match(result.stdout, /^core\/a\.ts:2: \[import-extension\] relative import "\.\/b" must end in \.ts/m);
  t.match(result.stdout, /^gossip\/g\.ts:1: \[layering\] gossip\/ may import only core\/ and itself, not vault\//m);
  t.match(result.stdout, /lint: 3 violation\(s\) in 3 file\(s\)/);

  const clean = t.testdir({
    'package.json': JSON.stringify({ dependencies: {} }),
    core: { 'a.ts': "import { b } from './b.ts';\n", 'b.ts': 'export const b = 1;\n' },
  });
  const cleanResult = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, [LINT, clean], { timeout: 30_000 }, (err, stdout) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout });
    });
  });
  t.equal(cleanResult.code, 0);
  t.equal(cleanResult.stdout, 'lint: no violations\n');
});
