import t from 'tap';
import { BatchBuffer } from '../../../core/analytics/batch-buffer.ts';

/** A writer that records every batch it is given and can be told to fail or skip. */
function recordingWriter() {
  const batches: number[][] = [];
  let outcome: 'write' | 'fail' | 'skip' = 'write';
  return {
    batches,
    setOutcome(next: 'write' | 'fail' | 'skip') {
      outcome = next;
    },
    async writeBatch(batch: number[]): Promise<boolean> {
      batches.push([...batch]);
      if (outcome === 'fail') throw new Error('write failed');
      return outcome === 'write';
    },
  };
}

function counter() {
  let total = 0;
  return { inc: (value = 1) => void (total += value), get total() { return total; } };
}

t.test('writes in batches of batchSize on flush, in order', async (t) => {
  const writer = recordingWriter();
  const buffer = new BatchBuffer<number>({ maxBufferedItems: 100, batchSize: 50, flushIntervalMs: 0, writeBatch: writer.writeBatch });
  t.teardown(() => buffer.close());
  for (let item = 0; item < 7; item++) buffer.record(item);
  t.equal(buffer.buffered, 7);
  t.same(writer.batches, [], 'nothing written before a flush');
  await buffer.flush();
  t.same(writer.batches, [[0, 1, 2, 3, 4, 5, 6]]);
  t.same(buffer.stats, { recorded: 7, written: 7, dropped: 0, failedBatches: 0 });
});

t.test('reaching batchSize starts a flush without the timer', async (t) => {
  const writer = recordingWriter();
  const buffer = new BatchBuffer<number>({ maxBufferedItems: 100, batchSize: 3, flushIntervalMs: 0, writeBatch: writer.writeBatch });
  t.teardown(() => buffer.close());
  buffer.record(1);
  buffer.record(2);
  t.equal(buffer.buffered, 2);
  buffer.record(3);
  await buffer.flush();
  t.same(writer.batches, [[1, 2, 3]]);
});

t.test('a full buffer drops new items and counts them', async (t) => {
  const writer = recordingWriter();
  const dropped = counter();
  const buffer = new BatchBuffer<number>({ maxBufferedItems: 3, batchSize: 10, flushIntervalMs: 0, writeBatch: writer.writeBatch, droppedCounter: dropped });
  t.teardown(() => buffer.close());
  // Recorded synchronously: the flush the third record starts has not taken anything out yet.
  for (let item = 0; item < 5; item++) buffer.record(item);
  await buffer.flush();
  t.same(writer.batches, [[0, 1, 2]], 'batchSize is clamped to maxBufferedItems, and 3 and 4 never entered');
  t.same(buffer.stats, { recorded: 3, written: 3, dropped: 2, failedBatches: 0 });
  t.equal(dropped.total, 2);
  const tight = new BatchBuffer<number>({ maxBufferedItems: 0, batchSize: 10, flushIntervalMs: 0, writeBatch: writer.writeBatch, droppedCounter: dropped });
  tight.record(1);
  tight.record(2);
  t.same(tight.stats, { recorded: 0, written: 0, dropped: 2, failedBatches: 0 }, 'a zero bound drops everything');
  t.equal(dropped.total, 4);
  await tight.close();
});

t.test('a failed batch is dropped, counted and reported, and later batches still write', async (t) => {
  const writer = recordingWriter();
  const dropped = counter();
  const failures: Array<{ err: unknown; size: number }> = [];
  const buffer = new BatchBuffer<number>({
    maxBufferedItems: 100, batchSize: 2, flushIntervalMs: 0, writeBatch: writer.writeBatch, droppedCounter: dropped,
    onBatchFailed: (err, batch) => failures.push({ err, size: batch.length }),
  });
  t.teardown(() => buffer.close());
  writer.setOutcome('fail');
  buffer.record(1);
  buffer.record(2);
  await buffer.flush();
  t.equal(failures.length, 1);
  t.equal((failures[0]!.err as Error).message, 'write failed');
  t.equal(failures[0]!.size, 2);
  writer.setOutcome('write');
  buffer.record(3);
  await buffer.flush();
  t.same(buffer.stats, { recorded: 3, written: 1, dropped: 2, failedBatches: 1 });
  t.equal(dropped.total, 2);
  t.equal(buffer.buffered, 0, 'nothing is kept for a retry');
});

t.test('a batch the writer skips is dropped without counting a failure', async (t) => {
  const writer = recordingWriter();
  let reported = 0;
  const buffer = new BatchBuffer<number>({ maxBufferedItems: 100, batchSize: 10, flushIntervalMs: 0, writeBatch: writer.writeBatch, onBatchFailed: () => reported++ });
  t.teardown(() => buffer.close());
  writer.setOutcome('skip');
  buffer.record(1);
  await buffer.flush();
  t.same(buffer.stats, { recorded: 1, written: 0, dropped: 1, failedBatches: 0 });
  t.equal(reported, 0);
});

t.test('one writer at a time: a flush asked for during a write runs after it', async (t) => {
  const events: string[] = [];
  let release: () => void = () => {};
  const firstWriteBlocked = new Promise<void>((resolve) => (release = resolve));
  let started: () => void = () => {};
  const firstWriteStarted = new Promise<void>((resolve) => (started = resolve));
  let writes = 0;
  const buffer = new BatchBuffer<number>({
    maxBufferedItems: 100, batchSize: 10, flushIntervalMs: 0,
    writeBatch: async (batch) => {
      const index = ++writes;
      events.push(`start ${index} [${batch.join(',')}]`);
      if (index === 1) {
        started();
        await firstWriteBlocked;
      }
      events.push(`end ${index}`);
      return true;
    },
  });
  buffer.record(1);
  const first = buffer.flush();
  await firstWriteStarted;
  buffer.record(2);
  const second = buffer.flush();
  release();
  await Promise.all([first, second]);
  t.same(events, ['start 1 [1]', 'end 1', 'start 2 [2]', 'end 2']);
  await buffer.close();
});

t.test('close writes the rest, drops later records and is idempotent', async (t) => {
  const writer = recordingWriter();
  const buffer = new BatchBuffer<number>({ maxBufferedItems: 100, batchSize: 10, flushIntervalMs: 60_000, writeBatch: writer.writeBatch });
  buffer.record(1);
  buffer.record(2);
  t.equal(buffer.closed, false);
  await buffer.close();
  t.equal(buffer.closed, true);
  t.same(writer.batches, [[1, 2]]);
  buffer.record(3);
  await buffer.close();
  t.same(buffer.stats, { recorded: 2, written: 2, dropped: 1, failedBatches: 0 });
  t.same(writer.batches, [[1, 2]], 'a second close writes nothing new');
});

t.test('the interval timer flushes on its own', async (t) => {
  // The buffer's timer is unref'd; this deadline keeps the loop alive and bounds the wait.
  let deadline: NodeJS.Timeout | undefined;
  const written = new Promise<number[]>((resolve, reject) => {
    deadline = setTimeout(() => reject(new Error('the timer never flushed')), 5_000);
    const buffer = new BatchBuffer<number>({
      maxBufferedItems: 100, batchSize: 10, flushIntervalMs: 5,
      writeBatch: async (batch) => {
        resolve([...batch]);
        return true;
      },
    });
    t.teardown(() => buffer.close());
    buffer.record(42);
  });
  t.teardown(() => clearTimeout(deadline));
  t.same(await written, [42]);
});
