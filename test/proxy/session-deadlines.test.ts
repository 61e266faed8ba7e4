import t from 'tap';
import { SessionDeadlines } from '../../proxy/proxy-session.ts';
import type { ProxySession } from '../../proxy/proxy-session.ts';
import { waitFor } from './helpers.ts';

/** Stand-ins for sessions: the list only ever calls `totalTimeoutReached`. */
function fakeSessions(names: readonly string[], expired: string[]): ProxySession[] {
  return names.map((name) => ({ totalTimeoutReached: () => expired.push(name) }) as unknown as ProxySession);
}

t.test('sessions time out in the order they started; a removed one never does', async (t) => {
  const deadlines = new SessionDeadlines(40);
  const expired: string[] = [];
  const [first, middle, last] = fakeSessions(['first', 'middle', 'last'], expired);
  deadlines.add(first!);
  const middleEntry = deadlines.add(middle!);
  deadlines.add(last!);
  deadlines.remove(middleEntry);
  deadlines.remove(middleEntry); // a second remove (the session ended twice) changes nothing
  t.same(expired, [], 'nothing expires early');
  await waitFor(() => expired.length === 2, 2_000, 'both remaining sessions to time out');
  t.same(expired, ['first', 'last']);
});

t.test('removing the head and the tail leaves the list consistent, and it keeps working afterwards', async (t) => {
  const deadlines = new SessionDeadlines(30);
  const expired: string[] = [];
  const [a, b, c, d] = fakeSessions(['a', 'b', 'c', 'd'], expired);
  const entryA = deadlines.add(a!);
  deadlines.add(b!);
  const entryC = deadlines.add(c!);
  deadlines.remove(entryA);
  deadlines.remove(entryC);
  await waitFor(() => expired.length === 1, 2_000, 'b to time out');
  t.same(expired, ['b']);
  deadlines.add(d!);
  await waitFor(() => expired.length === 2, 2_000, 'a session added after the list emptied to time out');
  t.same(expired, ['b', 'd']);
});
