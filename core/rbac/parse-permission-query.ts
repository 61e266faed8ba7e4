/**
 * Parser of the permission query language (spec api.md §7 step 9):
 *   expr    := and ('OR' and)*
 *   and     := primary ('AND' primary)*
 *   primary := permission | '(' expr ')'
 * AND binds tighter than OR; operators are case-insensitive. Every error is a
 * `Fault(permissions_query_syntax_error)` (HTTP 400, never `valid:false`) pointing at a position.
 */
import type { PermissionQuery } from './permission-query.ts';
import { permissionQuerySyntaxError } from './permission-query-syntax-error.ts';
import { tokenizePermissionQuery, type PermissionQueryToken } from './tokenize-permission-query.ts';

/** Longest query accepted, in characters (the verifyKey schema's bound). */
export const DEFAULT_MAX_QUERY_CHARACTERS = 1000;
/** Deepest parenthesis nesting accepted; bounds the parser's recursion. */
export const DEFAULT_MAX_QUERY_DEPTH = 32;

/** Bounds for {@link parsePermissionQuery}. */
export interface ParsePermissionQueryOptions {
  maxQueryCharacters?: number;
  maxQueryDepth?: number;
}

/**
 * Parses a query into a {@link PermissionQuery}. Called once per verifyKey request that carries
 * `permissions`; cost is linear in the query length. Throws the syntax-error fault on bad input.
 */
export function parsePermissionQuery(query: string, options: ParsePermissionQueryOptions = {}): PermissionQuery {
  const maxQueryCharacters = options.maxQueryCharacters ?? DEFAULT_MAX_QUERY_CHARACTERS;
  if (query.length > maxQueryCharacters) {
    throw permissionQuerySyntaxError(query, maxQueryCharacters, `the query is longer than ${maxQueryCharacters} characters`);
  }
  const parser = new Parser(query, tokenizePermissionQuery(query), options.maxQueryDepth ?? DEFAULT_MAX_QUERY_DEPTH);
  return parser.parseQuery();
}

class Parser {
  readonly #query: string;
  readonly #tokens: PermissionQueryToken[];
  readonly #maxDepth: number;
  #next = 0;

  constructor(query: string, tokens: PermissionQueryToken[], maxDepth: number) {
    this.#query = query;
    this.#tokens = tokens;
    this.#maxDepth = maxDepth;
  }

  parseQuery(): PermissionQuery {
    if (this.#tokens.length === 0) throw this.#error(this.#query.length, 'the query is empty');
    const query = this.#parseOr(0);
    const stray = this.#tokens[this.#next];
    if (stray !== undefined) {
      const problem = stray.kind === 'close' ? "unexpected ')' without a matching '('" : `expected AND or OR before ${describe(stray)}`;
      throw this.#error(stray.position, problem);
    }
    return query;
  }

  #parseOr(depth: number): PermissionQuery {
    const operands = [this.#parseAnd(depth)];
    while (this.#peek()?.kind === 'or') {
      this.#next++;
      operands.push(this.#parseAnd(depth));
    }
    return operands.length === 1 ? operands[0]! : { type: 'or', operands };
  }

  #parseAnd(depth: number): PermissionQuery {
    const operands = [this.#parsePrimary(depth)];
    while (this.#peek()?.kind === 'and') {
      this.#next++;
      operands.push(this.#parsePrimary(depth));
    }
    return operands.length === 1 ? operands[0]! : { type: 'and', operands };
  }

  #parsePrimary(depth: number): PermissionQuery {
    const token = this.#tokens[this.#next];
    if (token === undefined) {
      const previous = this.#tokens[this.#next - 1];
      const after = previous === undefined ? '' : ` after ${describe(previous)}`;
      throw this.#error(this.#query.length, `unexpected end of query${after}, expected a permission or '('`);
    }
    if (token.kind === 'permission') {
      this.#next++;
      return { type: 'permission', name: token.text };
    }
    if (token.kind === 'open') {
      if (depth >= this.#maxDepth) throw this.#error(token.position, `parentheses are nested deeper than ${this.#maxDepth} levels`);
      this.#next++;
      const inner = this.#parseOr(depth + 1);
      const close = this.#tokens[this.#next];
      if (close === undefined || close.kind !== 'close') {
        const where = close === undefined ? this.#query.length : close.position;
        const found = close === undefined ? 'the end of the query' : describe(close);
        throw this.#error(where, `expected ')' to close the '(' at position ${token.position + 1}, found ${found}`);
      }
      this.#next++;
      return inner;
    }
    throw this.#error(token.position, `expected a permission or '(', found ${describe(token)}`);
  }

  #peek(): PermissionQueryToken | undefined {
    return this.#tokens[this.#next];
  }

  #error(index: number, problem: string) {
    return permissionQuerySyntaxError(this.#query, index, problem);
  }
}

function describe(token: PermissionQueryToken): string {
  if (token.kind === 'permission') return `permission '${token.text}'`;
  if (token.kind === 'open' || token.kind === 'close') return `'${token.text}'`;
  return token.text.toUpperCase();
}
