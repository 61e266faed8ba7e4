/**
 * The one error of the query language: HTTP 400 `permissions_query_syntax_error`, with a public
 * message that names the 1-based position and repeats the query with a caret under it.
 */
import { Fault } from '../fault.ts';

/** Longest excerpt of the query repeated in the message, so huge queries do not bloat errors. */
export const SYNTAX_ERROR_EXCERPT_CHARACTERS = 120;

/**
 * Builds the syntax-error fault. `index` is 0-based (it may equal `query.length` for "unexpected
 * end"); the message shows it 1-based.
 */
export function permissionQuerySyntaxError(query: string, index: number, problem: string): Fault {
  const position = index + 1;
  // Show a window around the error so the caret stays meaningful in long queries.
  const half = Math.floor(SYNTAX_ERROR_EXCERPT_CHARACTERS / 2);
  const from = Math.max(0, Math.min(index - half, query.length - SYNTAX_ERROR_EXCERPT_CHARACTERS));
  const to = Math.min(query.length, from + SYNTAX_ERROR_EXCERPT_CHARACTERS);
  const excerpt = (from > 0 ? '…' : '') + query.slice(from, to).replace(/[\t\n\r]/g, ' ') + (to < query.length ? '…' : '');
  const caretColumn = index - from + (from > 0 ? 1 : 0);
  const message =
    `Syntax error in permission query at position ${position}: ${problem}.\n` + excerpt + '\n' + ' '.repeat(caretColumn) + '^';
  return Fault.expected('err:user:bad_request:permissions_query_syntax_error', { publicMessage: message });
}
