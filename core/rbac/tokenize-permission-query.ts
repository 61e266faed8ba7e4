/**
 * Lexer of the permission query language (spec api.md §7 step 9, pitfall §14.6): permission
 * tokens of `[A-Za-z0-9._\-*:/]`, the case-insensitive whole words AND / OR, parentheses, and
 * ignored whitespace. Anything else is a syntax error that points at its position.
 */
import { permissionQuerySyntaxError } from './permission-query-syntax-error.ts';

/** One lexical token. `position` is the 0-based index of its first character in the query. */
export interface PermissionQueryToken {
  readonly kind: 'permission' | 'and' | 'or' | 'open' | 'close';
  readonly text: string;
  readonly position: number;
}

/**
 * Splits a query into tokens. Called once per verifyKey request that carries a query.
 * Throws `Fault(permissions_query_syntax_error)` on a character outside the language.
 */
export function tokenizePermissionQuery(query: string): PermissionQueryToken[] {
  const tokens: PermissionQueryToken[] = [];
  let index = 0;
  while (index < query.length) {
    const code = query.charCodeAt(index);
    if (isWhitespace(code)) {
      index++;
    } else if (code === 0x28 /* ( */) {
      tokens.push({ kind: 'open', text: '(', position: index++ });
    } else if (code === 0x29 /* ) */) {
      tokens.push({ kind: 'close', text: ')', position: index++ });
    } else if (isPermissionCharacter(code)) {
      const start = index;
      while (index < query.length && isPermissionCharacter(query.charCodeAt(index))) index++;
      const text = query.slice(start, index);
      const upper = text.length <= 3 ? text.toUpperCase() : '';
      const kind = upper === 'AND' ? 'and' : upper === 'OR' ? 'or' : 'permission';
      tokens.push({ kind, text, position: start });
    } else {
      throw permissionQuerySyntaxError(query, index, `unexpected character ${JSON.stringify(query[index])}`);
    }
  }
  return tokens;
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/** `[A-Za-z0-9._\-*:/]` */
function isPermissionCharacter(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x30 && code <= 0x3a) || // 0-9 and ':'
    code === 0x2e || code === 0x5f || code === 0x2d || code === 0x2a || code === 0x2f // . _ - * /
  );
}
