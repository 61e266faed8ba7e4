import t from 'tap';
import { TestClock } from '../../core/clock.ts';
import { newId, newRequestId, randomAlphanumeric } from '../../core/id.ts';

t.test('the test clock moves only when told and never backwards', async (t) => {
  const clock = new TestClock(1000);
  t.equal(clock.nowMs(), 1000);
  t.equal(clock.advance(500), 1500);
  t.throws(() => clock.advance(-1), RangeError);
  t.throws(() => clock.set(1499), RangeError);
  clock.set(2000);
  t.equal(clock.nowMs(), 2000);
});

t.test('ids have the <prefix>_<alphanumeric> shape and request ids 9 characters', async (t) => {
  t.match(newId('key'), /^key_[A-Za-z0-9]{16}$/);
  t.match(newRequestId(), /^req_[A-Za-z0-9]{9}$/);
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) seen.add(newId('api'));
  t.equal(seen.size, 10_000, 'no collisions in 10k ids');
});

t.test('random characters are spread over the whole alphabet', async (t) => {
  const counts = new Map<string, number>();
  const sample = randomAlphanumeric(62_000);
  for (const ch of sample) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  t.equal(counts.size, 62);
  for (const [ch, n] of counts) t.ok(n > 700 && n < 1300, `${ch} appears ${n} times`);
});

t.test('request ids draw every character from the whole alphabet, evenly, and do not repeat', async (t) => {
  const counts = new Map<string, number>();
  const seen = new Set<string>();
  for (let i = 0; i < 7_000; i++) {
    const id = newRequestId();
    seen.add(id);
    for (const ch of id.slice(4)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  t.equal(seen.size, 7_000, 'no collisions in 7k request ids');
  t.equal(counts.size, 62);
  // 63,000 characters: about 1,016 per character.
  const outliers = [...counts].filter(([, n]) => n < 700 || n > 1300);
  t.same(outliers, [], 'every character appears 700–1300 times');
});
