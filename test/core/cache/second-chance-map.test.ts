import t from 'tap';
import { SecondChanceMap } from '../../../core/cache/second-chance-map.ts';

interface Value { id: string; referenced: boolean }
const value = (id: string): Value => ({ id, referenced: false });

function filled(max: number, ids: string[], onEvict?: () => void): SecondChanceMap<Value> {
  const map = new SecondChanceMap<Value>(max, onEvict);
  for (const id of ids) map.set(id, value(id));
  return map;
}

t.test('at the bound, the oldest entry not read since the clock last passed is evicted', async (t) => {
  let evicted = 0;
  const map = filled(3, ['a', 'b', 'c'], () => evicted++);
  t.equal(map.get('a')?.id, 'a');
  map.set('d', value('d'));
  t.equal(map.size, 3);
  t.equal(map.peek('b'), undefined, 'b (never read) went first');
  t.ok(map.peek('a') && map.peek('c') && map.peek('d'), 'a kept by its read');
  t.equal(map.peek('a')!.referenced, false, 'and its flag was used up');
  map.set('e', value('e'));
  t.equal(map.peek('c'), undefined, 'then c, the oldest unread');
  map.set('f', value('f'));
  t.equal(map.peek('a'), undefined, 'a, read only once, does not survive a second pass');
  t.equal(evicted, 3, 'each eviction counted once');
});

t.test('when every entry was read, one pass clears the flags and the oldest goes', async (t) => {
  const map = filled(3, ['a', 'b', 'c']);
  for (const id of ['c', 'b', 'a']) map.get(id);
  map.set('d', value('d'));
  t.same(['a', 'b', 'c', 'd'].filter((id) => map.peek(id) !== undefined), ['b', 'c', 'd']);
  t.ok(['b', 'c'].every((id) => map.peek(id)!.referenced === false));
});

t.test('peek does not protect an entry; a rewrite moves the key to the back without a count', async (t) => {
  let evicted = 0;
  const map = filled(2, ['a', 'b'], () => evicted++);
  map.peek('a');
  map.set('c', value('c'));
  t.equal(map.peek('a'), undefined, 'a was only peeked at');
  map.set('b', value('b2'));
  t.equal(map.size, 2, 'a rewrite is not a new key');
  map.set('d', value('d'));
  t.equal(map.peek('c'), undefined, 'c is now the oldest: the rewritten b moved behind it');
  t.equal(map.peek('b')?.id, 'b2');
  t.equal(evicted, 2, 'overwrites and deletes are not evictions');
  t.equal(map.delete('b'), true);
  t.equal(map.delete('b'), false);
  map.clear();
  t.equal(map.size, 0);
  t.equal(evicted, 2);
});

t.test('a bound of one keeps the newest entry; bad bounds are refused', async (t) => {
  const map = filled(1, ['a']);
  map.get('a');
  map.set('b', value('b'));
  t.same([map.size, map.peek('b')?.id, map.peek('a')], [1, 'b', undefined]);
  for (const bad of [0, -1, 1.5, Number.NaN]) t.throws(() => new SecondChanceMap<Value>(bad), RangeError, String(bad));
});

t.test('the bound holds under churn, and entries read on every round survive it', async (t) => {
  const map = new SecondChanceMap<Value>(100);
  let largest = 0;
  for (let index = 0; index < 10_000; index++) {
    map.set(`k${index}`, value(`k${index}`));
    for (let hot = 0; hot < 5; hot++) map.get(`hot${hot}`);
    if (index === 0) for (let hot = 0; hot < 5; hot++) map.set(`hot${hot}`, value(`hot${hot}`));
    largest = Math.max(largest, map.size);
  }
  t.equal(largest, 100, 'never above the bound');
  t.equal([0, 1, 2, 3, 4].filter((hot) => map.peek(`hot${hot}`) !== undefined).length, 5, 'every hot key is still there');
});
