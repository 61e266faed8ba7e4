import t from 'tap';
import { OverrideResolver } from '../../../core/ratelimit/override-resolver.ts';
import { literalCharacterCount, matchesWildcard } from '../../../core/ratelimit/wildcard-pattern.ts';

t.test('wildcards: * matches any run, anchored, every other character literal', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['premium_*', 'premium_alice', true],
    ['premium_*', 'premium_', true],
    ['premium_*', 'xpremium_alice', false],
    ['*_beta', 'user_beta', true],
    ['*_beta', 'user_beta_2', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['*', '', true],
    ['*', 'anything', true],
    ['**', 'x', true],
    ['user.*', 'userXname', false], // '.' is literal, not a regex dot
    ['a+b', 'aab', false],
    ['a+b', 'a+b', true],
    ['(x)|y', '(x)|y', true],
    ['[ab]', 'a', false],
    ['', '', true],
    ['', 'a', false],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
  ];
  for (const [pattern, text, expected] of cases) t.equal(matchesWildcard(pattern, text), expected, `${pattern} ~ ${text}`);
  t.equal(literalCharacterCount('a*b**'), 2);
});

t.test('wildcard matching stays fast on adversarial patterns', async (t) => {
  const pattern = '*a'.repeat(30) + 'b';
  const text = 'a'.repeat(500);
  t.equal(matchesWildcard(pattern, text), false);
});

t.test('override precedence: exact first, then most literal characters, longest, lexicographic', async (t) => {
  const overrides = [
    { identifier: '*', id: 'catch_all' },
    { identifier: 'premium_*', id: 'premium' },
    { identifier: 'premium_eu_*', id: 'premium_eu' },
    { identifier: 'premium_eu_alice', id: 'alice' },
    { identifier: '*_eu_*', id: 'eu' },
    { identifier: 'b*', id: 'b_star' },
    { identifier: 'a*', id: 'a_star' },
    { identifier: '*x*', id: 'x_inside' },
    { identifier: '**x', id: 'x_end_long' },
  ];
  // Any input order compiles to the same precedence.
  for (const order of [overrides, [...overrides].reverse()]) {
    const resolver = new OverrideResolver(order);
    const cases: Array<[string, string | undefined]> = [
      ['premium_eu_alice', 'alice'],
      ['premium_eu_bob', 'premium_eu'],
      ['premium_us_bob', 'premium'],
      ['free_eu_carol', 'eu'],
      ['ab', 'a_star'],
      ['ba', 'b_star'],
      // a*, *x* and **x all have 1 literal; the two longer ones tie on length, '**x' < '*x*'.
      ['abx', 'x_end_long'],
      ['zzx', 'x_end_long'],
      ['zxz', 'x_inside'],
      ['nothing', 'catch_all'],
    ];
    for (const [identifier, expected] of cases) t.equal(resolver.resolve(identifier)?.id, expected, identifier);
    t.equal(resolver.resolve('premium_eu_bob')?.id, 'premium_eu', 'memoized answer is the same');
    t.equal(resolver.size, overrides.length);
  }
});

t.test('no override applies when nothing matches; the memo stays bounded', async (t) => {
  const resolver = new OverrideResolver([{ identifier: 'vip_*' }], { maxMemoEntries: 10 });
  t.equal(resolver.resolve('regular'), undefined);
  for (let index = 0; index < 100; index++) resolver.resolve(`vip_${index}`);
  t.equal(resolver.resolve('vip_5')?.identifier, 'vip_*');
  t.equal(new OverrideResolver([]).resolve('x'), undefined);
});
