/**
 * The architecture lint (`make check` runs `node scripts/lint.ts`; use `npx node scripts/lint.ts`
 * where the system Node is older than 24). It reads every `.ts` file's imports and enforces
 * ARCHITECTURE.md and CONVENTIONS.md:
 * - `core/` imports only `node:` builtins, declared npm packages and other `core/` files;
 * - the roles (gossip, vault, proxy, control, krane) import `core/` and themselves, never each other;
 * - nothing but test/, bench/ and fuzz/ imports `bin/` or `test/` (bin/ may import itself);
 * - relative imports end in `.ts` (or `.json`) and name a file that exists;
 * - builtins are imported with the `node:` prefix; npm packages are declared in package.json, and
 *   runtime folders import runtime `dependencies` only (type-only imports may use dev ones);
 * - no `enum` and no `namespace` (Node's type stripping cannot run them).
 * Prints one `file:line: [rule] message` per violation and exits 1 when there is any.
 * Usage: `node scripts/lint.ts [ROOT_DIR]` (default: the repository this script is in).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One broken rule at one place. */
export interface LintViolation {
  /** Path relative to the repository root, with `/` separators. */
  readonly file: string;
  readonly line: number;
  readonly rule: LintRule;
  readonly message: string;
}

/** The rules, by name (printed in brackets). */
export type LintRule = 'layering' | 'import-extension' | 'missing-file' | 'node-prefix' | 'undeclared-package' | 'dev-dependency' | 'syntax';

/** What {@link lintSource} needs to know about the repository around one file. */
export interface LintContext {
  /** True when a repository-relative path (with `/`) is an existing file. */
  fileExists(relativePath: string): boolean;
  /** Packages in package.json `dependencies`. */
  readonly dependencies: ReadonlySet<string>;
  /** Packages in package.json `devDependencies`. */
  readonly devDependencies: ReadonlySet<string>;
}

/** The role folders; each may import core/ and itself only. */
export const ROLE_FOLDERS: readonly string[] = ['gossip', 'vault', 'proxy', 'control', 'krane'];

/** Folders that may import anything, including bin/ and test/. */
export const OPEN_FOLDERS: readonly string[] = ['test', 'bench', 'fuzz'];

/** Folders whose code ships and runs: they may import runtime dependencies only. */
export const RUNTIME_FOLDERS: readonly string[] = ['core', ...ROLE_FOLDERS, 'bin'];

/** Directory names never scanned. */
export const SKIPPED_DIRECTORIES: ReadonlySet<string> = new Set(['node_modules', 'dist', 'coverage', 'results']);

/** Every violation in the `.ts` files under `rootDir`, sorted by file and line. */
export function lintRepository(rootDir: string): LintViolation[] {
  const manifest = JSON.parse(readFileSync(join(rootDir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const context: LintContext = {
    fileExists: (path) => existsSync(join(rootDir, path)) && statSync(join(rootDir, path)).isFile(),
    dependencies: new Set(Object.keys(manifest.dependencies ?? {})),
    devDependencies: new Set(Object.keys(manifest.devDependencies ?? {})),
  };
  const violations: LintViolation[] = [];
  for (const path of listTypeScriptFiles(rootDir)) {
    violations.push(...lintSource(path, readFileSync(join(rootDir, path), 'utf8'), context));
  }
  return violations.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

/** The violations in one file's source; `file` is its repository-relative path with `/`. */
export function lintSource(file: string, source: string, context: LintContext): LintViolation[] {
  const views = scanSource(source);
  const violations: LintViolation[] = [];
  const report = (index: number, rule: LintRule, message: string): void => {
    violations.push({ file, line: lineAt(source, index), rule, message });
  };
  for (const found of findImports(views)) checkImport(file, found, context, report);
  if (!file.endsWith('.d.ts')) {
    for (const match of views.blank.matchAll(ENUM_DECLARATION)) {
      report(match.index, 'syntax', 'enum: use an `as const` object and a string-literal union (Node cannot strip enums)');
    }
    for (const match of views.blank.matchAll(NAMESPACE_DECLARATION)) {
      const declared = /declare\s+$/.test(views.blank.slice(Math.max(0, match.index - 16), match.index));
      report(match.index, 'syntax', declared
        ? `declare ${match[1]}: conventions allow no namespaces; use a type alias or an interface`
        : `${match[1]}: use a module (a file) instead (Node cannot strip namespaces)`);
    }
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------

const ENUM_DECLARATION = /(?<![\w$.])enum\s+[A-Za-z_$][\w$]*\s*\{/g;
const NAMESPACE_DECLARATION = /(?<![\w$.])(namespace|module)\s+[A-Za-z_$][\w$.]*\s*\{/g;
const STATIC_IMPORT = /import\s+(type\s+)?(?:[\w$*{}\s,]+?\s*from\s*)?(['"])([^'"\n]*)\2/y;
const DYNAMIC_IMPORT = /import\s*\(\s*(['"])([^'"\n]*)\1/y;
const EXPORT_FROM = /export\s+(type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*(['"])([^'"\n]*)\2/y;
const BUILTINS = new Set(builtinModules.filter((name) => !name.startsWith('_')));

interface FoundImport {
  readonly specifier: string;
  /** Offset of the specifier in the source, for the line number. */
  readonly index: number;
  readonly typeOnly: boolean;
}

function checkImport(file: string, found: FoundImport, context: LintContext, report: (index: number, rule: LintRule, message: string) => void): void {
  const { specifier, index } = found;
  const folder = topFolder(file);
  if (specifier.startsWith('./') || specifier.startsWith('../')) {
    if (!specifier.endsWith('.ts') && !specifier.endsWith('.json')) {
      report(index, 'import-extension', `relative import "${specifier}" must end in .ts (Node runs the .ts files as they are)`);
      return;
    }
    const target = posix.normalize(posix.join(posix.dirname(file), specifier));
    if (target.startsWith('../')) {
      report(index, 'layering', `import "${specifier}" leaves the repository`);
      return;
    }
    if (!context.fileExists(target)) report(index, 'missing-file', `import "${specifier}" names a file that does not exist (${target})`);
    const problem = layeringProblem(folder, topFolder(target));
    if (problem !== undefined) report(index, 'layering', `${problem} (imports ${target})`);
    return;
  }
  if (specifier.startsWith('/') || specifier.startsWith('file:')) {
    report(index, 'layering', `import "${specifier}" is absolute; use a relative import ending in .ts`);
    return;
  }
  if (specifier.startsWith('node:')) return;
  const packageName = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
  if (BUILTINS.has(packageName)) {
    report(index, 'node-prefix', `import the builtin as "node:${specifier}"`);
    return;
  }
  const isRuntime = RUNTIME_FOLDERS.includes(folder);
  if (context.dependencies.has(packageName)) return;
  if (context.devDependencies.has(packageName)) {
    if (isRuntime && !found.typeOnly) {
      report(index, 'dev-dependency', `${folder}/ ships, so it may not import the devDependency "${packageName}" at run time`);
    }
    return;
  }
  report(index, 'undeclared-package', `package "${packageName}" is not declared in package.json`);
}

/** Why a file in `from` may not import a file in `to`, or undefined when it may. */
function layeringProblem(from: string, to: string): string | undefined {
  if (OPEN_FOLDERS.includes(from)) return undefined;
  if (to === 'test' || (to === 'bin' && from !== 'bin')) return `only test/, bench/ and fuzz/ may import ${to}/`;
  if (from === 'core' && to !== 'core') return `core/ may import only core/, node: builtins and npm packages, not ${to}/`;
  if (ROLE_FOLDERS.includes(from) && to !== 'core' && to !== from) {
    return `${from}/ may import only core/ and itself, not ${to}/ (roles meet through interfaces in core/, wired in bin/)`;
  }
  return undefined;
}

function topFolder(path: string): string {
  const slash = path.indexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}

function findImports(views: SourceViews): FoundImport[] {
  const found: FoundImport[] = [];
  // Keywords are looked for in the view without strings and comments, so an "import" inside a
  // string or comment never counts; the specifier is then read from the view that keeps strings.
  for (const keyword of views.blank.matchAll(/(?<![\w$.])(import|export)\b/g)) {
    const patterns = keyword[1] === 'import' ? [STATIC_IMPORT, DYNAMIC_IMPORT] : [EXPORT_FROM];
    for (const pattern of patterns) {
      pattern.lastIndex = keyword.index;
      const match = pattern.exec(views.code);
      if (match === null) continue;
      const specifier = pattern === DYNAMIC_IMPORT ? match[2]! : match[3]!;
      const index = match.index + match[0].length - specifier.length - 1;
      found.push({ specifier, index, typeOnly: pattern !== DYNAMIC_IMPORT && match[1] !== undefined });
      break;
    }
  }
  return found;
}

/** Two same-length views of a source: `code` without comments; `blank` also without string and regex contents. */
interface SourceViews {
  readonly code: string;
  readonly blank: string;
}

const REGEX_AFTER_WORDS = new Set(['return', 'typeof', 'instanceof', 'case', 'in', 'of', 'delete', 'void', 'throw', 'new', 'else', 'yield', 'await', 'do']);

/**
 * A small lexer: enough of JavaScript to tell code from comments, strings, template literals
 * (with nested `${…}`) and regular-expression literals. Every removed character becomes a space
 * (newlines stay), so offsets and line numbers match the source.
 */
function scanSource(source: string): SourceViews {
  const code = source.split('');
  const blank = source.split('');
  const erase = (from: number, to: number, inCode: boolean): void => {
    for (let position = from; position < to; position++) {
      if (source[position] === '\n') continue;
      blank[position] = ' ';
      if (inCode) code[position] = ' ';
    }
  };
  // Each entry is the brace depth inside one `${` of a template literal we are nested in.
  const templateDepths: number[] = [];
  let position = 0;
  const scanTemplate = (): void => {
    // Called just after a backtick or a closing `}` of a substitution; stops after the closing backtick or at `${`.
    const start = position;
    while (position < source.length) {
      const char = source[position]!;
      if (char === '\\') position += 2;
      else if (char === '`') { erase(start, position, false); position++; return; }
      else if (char === '$' && source[position + 1] === '{') { erase(start, position, false); position += 2; templateDepths.push(0); return; }
      else position++;
    }
    erase(start, position, false);
  };
  while (position < source.length) {
    const char = source[position]!;
    const next = source[position + 1];
    if (char === '/' && next === '/') {
      const end = source.indexOf('\n', position);
      const stop = end === -1 ? source.length : end;
      erase(position, stop, true);
      position = stop;
    } else if (char === '/' && next === '*') {
      const end = source.indexOf('*/', position + 2);
      const stop = end === -1 ? source.length : end + 2;
      erase(position, stop, true);
      position = stop;
    } else if (char === '"' || char === "'") {
      const start = ++position;
      while (position < source.length && source[position] !== char && source[position] !== '\n') position += source[position] === '\\' ? 2 : 1;
      erase(start, position, false);
      position++;
    } else if (char === '`') {
      position++;
      scanTemplate();
    } else if (char === '{' && templateDepths.length > 0) {
      templateDepths[templateDepths.length - 1]!++;
      position++;
    } else if (char === '}' && templateDepths.length > 0) {
      position++;
      if (templateDepths[templateDepths.length - 1] === 0) {
        templateDepths.pop();
        scanTemplate();
      } else {
        templateDepths[templateDepths.length - 1]!--;
      }
    } else if (char === '/' && startsRegex(blank, position)) {
      const start = ++position;
      let inClass = false;
      while (position < source.length && source[position] !== '\n') {
        const current = source[position]!;
        if (current === '\\') { position += 2; continue; }
        if (current === '[') inClass = true;
        else if (current === ']') inClass = false;
        else if (current === '/' && !inClass) break;
        position++;
      }
      erase(start, position, true);
      position++;
    } else {
      position++;
    }
  }
  return { code: code.join(''), blank: blank.join('') };
}

/** A `/` starts a regular expression when what precedes it cannot end an operand. */
function startsRegex(blank: readonly string[], slashAt: number): boolean {
  let position = slashAt - 1;
  while (position >= 0 && /\s/.test(blank[position]!)) position--;
  if (position < 0) return true;
  const previous = blank[position]!;
  if ('(,=:[!&|?{};+-*%<>~^'.includes(previous)) return true;
  if (!/[\w$]/.test(previous)) return false;
  let wordStart = position;
  while (wordStart > 0 && /[\w$]/.test(blank[wordStart - 1]!)) wordStart--;
  return REGEX_AFTER_WORDS.has(blank.slice(wordStart, position + 1).join(''));
}

function lineAt(source: string, index: number): number {
  let line = 1;
  for (let position = source.indexOf('\n'); position !== -1 && position < index; position = source.indexOf('\n', position + 1)) line++;
  return line;
}

function listTypeScriptFiles(rootDir: string): string[] {
  const files: string[] = [];
  const walk = (directory: string): void => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || SKIPPED_DIRECTORIES.has(entry.name)) continue;
      const path = join(directory, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.ts')) files.push(relative(rootDir, path).split(sep).join('/'));
    }
  };
  walk(rootDir);
  return files.sort();
}

if (import.meta.main) {
  // The repository root is this script's parent directory, unless another is given (tests do).
  const rootDir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..');
  const violations = lintRepository(rootDir);
  for (const violation of violations) {
    process.stdout.write(`${violation.file}:${violation.line}: [${violation.rule}] ${violation.message}\n`);
  }
  const files = new Set(violations.map((violation) => violation.file)).size;
  process.stdout.write(violations.length === 0 ? 'lint: no violations\n' : `lint: ${violations.length} violation(s) in ${files} file(s)\n`);
  process.exitCode = violations.length === 0 ? 0 : 1;
}
