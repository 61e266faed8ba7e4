import t from 'tap';
import { Fault } from '../../../core/fault.ts';
import { evaluatePermissionQuery } from '../../../core/rbac/evaluate-permission-query.ts';
import { parsePermissionQuery } from '../../../core/rbac/parse-permission-query.ts';
import { allOf, anyOf, formatPermissionQuery, perm, type PermissionQuery } from '../../../core/rbac/permission-query.ts';
import { tokenizePermissionQuery } from '../../../core/rbac/tokenize-permission-query.ts';

const SYNTAX = 'err:user:bad_request:permissions_query_syntax_error';

t.test('tokenizes permissions with : / * . - _ and case-insensitive whole-word operators', async (t) => {
  const tokens = tokenizePermissionQuery(' (unkey:v1:ws/keys/*.read-x_y and B) Or android.OR ');
  t.same(
    tokens.map((token) => [token.kind, token.text, token.position]),
    [
      ['open', '(', 1],
      ['permission', 'unkey:v1:ws/keys/*.read-x_y', 2],
      ['and', 'and', 30],
      ['permission', 'B', 34],
      ['close', ')', 35],
      ['or', 'Or', 37],
      ['permission', 'android.OR', 40],
    ],
  );
});

t.test('parses with AND binding tighter than OR, in a table', async (t) => {
  const cases: Array<[string, PermissionQuery]> = [
    ['a', perm('a')],
    ['a AND b', allOf(perm('a'), perm('b'))],
    ['a OR b AND c', anyOf(perm('a'), allOf(perm('b'), perm('c')))],
    ['a AND b OR c', anyOf(allOf(perm('a'), perm('b')), perm('c'))],
    ['(a OR b) AND c', allOf(anyOf(perm('a'), perm('b')), perm('c'))],
    ['a and b or c AND d', anyOf(allOf(perm('a'), perm('b')), allOf(perm('c'), perm('d')))],
    ['((a))', perm('a')],
    ['a OR b OR c', anyOf(perm('a'), perm('b'), perm('c'))],
    ['\ta\nAND\r\nb ', allOf(perm('a'), perm('b'))],
    ['api.*.read_key', perm('api.*.read_key')],
  ];
  for (const [query, expected] of cases) t.same(parsePermissionQuery(query), expected, query);
});

t.test('syntax errors are 400 faults that point at the 1-based position with a caret', async (t) => {
  const cases: Array<[string, number, RegExp]> = [
    ['', 1, /empty/],
    ['   ', 4, /empty/],
    ['()', 2, /expected a permission or '\(', found '\)'/],
    ['a AND', 6, /unexpected end of query after AND/],
    ['a OR OR b', 6, /found OR/],
    ['AND a', 1, /found AND/],
    ['(a OR b', 8, /expected '\)' to close the '\(' at position 1/],
    ['a OR b)', 7, /unexpected '\)'/],
    ['a b', 3, /expected AND or OR before permission 'b'/],
    ['a AND b$', 8, /unexpected character "\$"/],
    ['a.read && b', 8, /unexpected character "&"/],
    ['a # b', 3, /unexpected character "#"/],
  ];
  for (const [query, position, problem] of cases) {
    try {
      parsePermissionQuery(query);
      t.fail(`no error for ${JSON.stringify(query)}`);
    } catch (err) {
      t.ok(err instanceof Fault, `${JSON.stringify(query)} throws a Fault`);
      const fault = err as Fault;
      t.equal(fault.code, SYNTAX);
      t.equal(fault.status, 400);
      t.match(fault.publicMessage, new RegExp(`at position ${position}:`), `${JSON.stringify(query)} position`);
      t.match(fault.publicMessage, problem, `${JSON.stringify(query)} problem`);
      const lines = fault.publicMessage.split('\n');
      t.equal(lines[1], query.replace(/[\t\n\r]/g, ' '), 'repeats the query');
      t.equal(lines[2]!.indexOf('^'), position - 1, 'caret under the position');
    }
  }
});

t.test('the caret stays right in a long query shown as an excerpt', async (t) => {
  const query = 'a OR '.repeat(150) + ')';
  const err = t.throws(() => parsePermissionQuery(query)) as unknown as Fault;
  const [, excerpt, caret] = err.publicMessage.split('\n');
  t.ok(excerpt!.length <= 122);
  t.equal(excerpt![caret!.indexOf('^')], ')');
});

t.test('bounds: query length and nesting depth are limited', async (t) => {
  t.throws(() => parsePermissionQuery('a'.repeat(1001)), { code: SYNTAX });
  t.same(parsePermissionQuery('a'.repeat(1000)), perm('a'.repeat(1000)));
  t.throws(() => parsePermissionQuery('('.repeat(33) + 'a' + ')'.repeat(33)), { code: SYNTAX });
  t.same(parsePermissionQuery('('.repeat(32) + 'a' + ')'.repeat(32)), perm('a'));
  t.throws(() => parsePermissionQuery('('.repeat(5000) + 'a' + ')'.repeat(5000), { maxQueryCharacters: 20000 }), { code: SYNTAX }, 'no stack overflow');
});

t.test('evaluation is exact string match: asterisks are NOT wildcards', async (t) => {
  const granted = new Set(['documents.*', 'api.*.read_key', 'billing:invoices:read', 'a', 'b']);
  const cases: Array<[string, boolean]> = [
    ['documents.read', false],
    ['documents.*', true],
    ['api.*.read_key', true],
    ['api.api_1.read_key', false],
    ['billing:invoices:read', true],
    ['a AND b', true],
    ['a AND c', false],
    ['c OR a', true],
    ['c OR d', false],
    ['(c OR a) AND (b OR d)', true],
    ['c OR a AND d', false],
    ['A', false],
  ];
  for (const [query, expected] of cases) t.equal(evaluatePermissionQuery(parsePermissionQuery(query), granted), expected, query);
});

t.test('handles 20+ terms and formats queries back with minimal parentheses', async (t) => {
  const terms = Array.from({ length: 25 }, (_, index) => `perm.${index}`);
  const query = parsePermissionQuery(terms.join(' AND '));
  t.equal(evaluatePermissionQuery(query, new Set(terms)), true);
  t.equal(evaluatePermissionQuery(query, new Set(terms.slice(1))), false);
  const text = '(a OR b) AND c OR d AND e';
  t.equal(formatPermissionQuery(parsePermissionQuery(text)), text);
  t.same(parsePermissionQuery(formatPermissionQuery(parsePermissionQuery(text))), parsePermissionQuery(text));
});

t.test('builders flatten and refuse to be empty', async (t) => {
  t.same(anyOf(perm('a'), anyOf(perm('b'), perm('c'))), { type: 'or', operands: [perm('a'), perm('b'), perm('c')] });
  t.same(allOf(perm('a')), perm('a'));
  t.throws(() => anyOf());
});
