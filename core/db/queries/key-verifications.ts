/**
 * Key-verification events in the local store: the analytics sink of a node without ClickHouse.
 * Events are stored packed (migration 6 says why): one `key_verification_batches` row per
 * workspace per written chunk, whose `payload` is a JSON array of events, each an array in the
 * order of {@link PACKED_EVENT_FIELDS}. Written in batches by the analytics buffer, read by the
 * analytics API and tests, which see plain {@link KeyVerificationEvent}s either way.
 */
import { Fault } from '../../fault.ts';
import type { Database, SqlParam, SqlRow } from '../database.ts';
import { insertMany, readNumber } from './row-values.ts';

/** One verification outcome, as the verification engine reports it (api.md §7.12). */
export interface KeyVerificationEvent {
  requestId: string;
  timeMs: number;
  workspaceId: string;
  keySpaceId: string;
  keyId: string;
  identityId?: string;
  externalId?: string;
  /** VALID, NOT_FOUND, RATE_LIMITED, … */
  outcome: string;
  tags: string[];
  /** Credits charged by this call (0 unless actually charged). */
  spentCredits: number;
  latencyMs: number;
  region: string;
}

/**
 * The fields of one packed event, in payload order (the workspace is the row's column). Migration
 * 6 writes the same order when it copies the old rows: never reorder, only append.
 */
export const PACKED_EVENT_FIELDS = [
  'requestId', 'timeMs', 'keySpaceId', 'keyId', 'identityId', 'externalId', 'outcome', 'tags', 'spentCredits', 'latencyMs', 'region',
] as const;

/**
 * Most events one `key_verification_batches` row holds: a bound on row size (a typical event
 * packs to ~250 characters, so ~250 KB a row) and on what one read decodes per row. Larger groups
 * are split into several rows.
 */
export const MAX_VERIFICATION_EVENTS_PER_ROW = 1_000;

/**
 * Most payload characters in one row and in one INSERT statement. A row whose payload is longer
 * (only with unusually many long tags: up to 20 tags of 512 characters an event) is split in
 * halves; statements carry several rows only while their payloads stay under it. 4M characters
 * are at most 12 MB of UTF-8: under MEDIUMTEXT's 16 MiB and MariaDB's default 16 MiB packet.
 */
export const MAX_VERIFICATION_PAYLOAD_CHARS = 4_000_000;

/** Default of {@link KeyVerificationQuery.limit}. */
export const DEFAULT_KEY_VERIFICATION_LIMIT = 1_000;
/** Largest {@link KeyVerificationQuery.limit}. */
export const MAX_KEY_VERIFICATION_LIMIT = 10_000;
/** Batch rows `listKeyVerifications` reads per query (keyset pagination on `(min_time, max_time, pk)`). */
export const VERIFICATION_BATCHES_PER_PAGE = 100;

const TABLE = 'key_verification_batches';
const INSERT_COLUMNS = ['`workspace_id`', '`min_time`', '`max_time`', '`events`', '`payload`'] as const;

/** One packed event: the fields of {@link PACKED_EVENT_FIELDS}, in that order. */
type PackedEvent = [
  requestId: string, timeMs: number, keySpaceId: string, keyId: string, identityId: string | null, externalId: string | null,
  outcome: string, tags: string[], spentCredits: number, latencyMs: number, region: string,
];

/** The events of one future row, while they are being grouped. */
interface OpenBatch {
  workspaceId: string;
  minTimeMs: number;
  maxTimeMs: number;
  events: PackedEvent[];
}

/** One row to insert: workspace, min time, max time, event count, payload. */
type BatchRow = [workspaceId: string, minTimeMs: number, maxTimeMs: number, events: number, payload: string];

/**
 * Writes events packed: grouped by workspace (each group in its given order), one row per group
 * per {@link MAX_VERIFICATION_EVENTS_PER_ROW} events, the rows in as few multi-row INSERTs as
 * {@link MAX_VERIFICATION_PAYLOAD_CHARS} allows. Called once per analytics batch (100 events by
 * default), so every verification pays its share: it builds one small array per event and little
 * else. Returns the number of events written; a failed statement throws (call it in a
 * transaction to write all or nothing).
 */
export async function insertKeyVerifications(db: Database, events: readonly KeyVerificationEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  const rows: BatchRow[] = [];
  for (const batch of groupByWorkspace(events)) pushRows(rows, batch.workspaceId, batch.events, batch.minTimeMs, batch.maxTimeMs);
  let written = 0;
  let start = 0;
  let payloadChars = 0;
  for (let index = 0; index < rows.length; index++) {
    const payloadLength = rows[index]![4].length;
    if (index > start && payloadChars + payloadLength > MAX_VERIFICATION_PAYLOAD_CHARS) {
      written += await insertRows(db, rows.slice(start, index));
      start = index;
      payloadChars = 0;
    }
    payloadChars += payloadLength;
  }
  return written + (await insertRows(db, start === 0 ? rows : rows.slice(start)));
}

/** Filters of {@link listKeyVerifications}; the time range is `[sinceMs, untilMs)`. */
export interface KeyVerificationQuery {
  workspaceId: string;
  keySpaceId?: string;
  keyId?: string;
  sinceMs?: number;
  untilMs?: number;
  /** Most events returned, oldest first; default 1000, at most 10000. */
  limit?: number;
}

/**
 * The workspace's events in a time range, oldest first (ties in the order they were written),
 * at most `limit`. Reads the batches that overlap the range a page at a time, in the index's own
 * order `(min_time, max_time, pk)` (keyset pagination, so neither engine sorts), and stops as
 * soon as no unread batch can hold an event among the first `limit`. Throws `assertion_failed`
 * naming the table and row when a stored payload is not a valid batch.
 */
export async function listKeyVerifications(db: Database, query: KeyVerificationQuery): Promise<KeyVerificationEvent[]> {
  const matches = new MatchSet(clampLimit(query.limit));
  let sql = `SELECT \`pk\`, \`min_time\`, \`max_time\`, \`events\`, \`payload\` FROM \`${TABLE}\` WHERE \`workspace_id\` = ?`;
  const params: SqlParam[] = [query.workspaceId];
  if (query.sinceMs !== undefined) (sql += ' AND `max_time` >= ?'), params.push(query.sinceMs);
  if (query.untilMs !== undefined) (sql += ' AND `min_time` < ?'), params.push(query.untilMs);
  const orderBy = ' ORDER BY `min_time`, `max_time`, `pk` LIMIT ?';
  // After the last row read: `min_time >= ?` gives both engines a range to seek to; the rest
  // skips the rows of that min_time already read.
  const nextPageSql = `${sql} AND \`min_time\` >= ? AND (\`min_time\` > ? OR \`max_time\` > ? OR (\`max_time\` = ? AND \`pk\` > ?))${orderBy}`;
  let page = await db.query(sql + orderBy, [...params, VERIFICATION_BATCHES_PER_PAGE]);
  for (;;) {
    let minTimeMs = 0;
    let maxTimeMs = 0;
    let pk = 0;
    for (const row of page) {
      pk = readNumber(row.pk, `${TABLE}.pk`);
      minTimeMs = readNumber(row.min_time, `${TABLE}.min_time`);
      maxTimeMs = readNumber(row.max_time, `${TABLE}.max_time`);
      // Batches come in min_time order, so once `limit` matches are held, a batch whose min_time
      // is after the limit-th match's time (and every batch after it) holds only later events.
      // Strictly after: a batch starting exactly at that time, read later, may still hold an
      // event at that time written before the limit-th match (a lower pk), which sorts first.
      if (minTimeMs > matches.cutoffTimeMs) return matches.sorted();
      collectMatches(matches, query, pk, decodeBatch(row, pk));
    }
    if (page.length < VERIFICATION_BATCHES_PER_PAGE) return matches.sorted();
    page = await db.query(nextPageSql, [...params, minTimeMs, minTimeMs, maxTimeMs, maxTimeMs, pk, VERIFICATION_BATCHES_PER_PAGE]);
  }
}

/** Groups events by workspace in first-seen order, a group at most MAX_VERIFICATION_EVENTS_PER_ROW. */
function groupByWorkspace(events: readonly KeyVerificationEvent[]): OpenBatch[] {
  const done: OpenBatch[] = [];
  const open = new Map<string, OpenBatch>();
  let current: OpenBatch | undefined;
  for (let index = 0; index < events.length; index++) {
    const event = events[index]!;
    const timeMs = event.timeMs;
    // Batches usually hold one workspace: the map is consulted only when it changes.
    if (current === undefined || current.workspaceId !== event.workspaceId) {
      current = open.get(event.workspaceId);
      if (current === undefined) {
        current = { workspaceId: event.workspaceId, minTimeMs: timeMs, maxTimeMs: timeMs, events: [] };
        open.set(event.workspaceId, current);
      }
    }
    if (timeMs < current.minTimeMs) current.minTimeMs = timeMs;
    if (timeMs > current.maxTimeMs) current.maxTimeMs = timeMs;
    current.events.push([
      event.requestId, timeMs, event.keySpaceId, event.keyId, event.identityId ?? null, event.externalId ?? null,
      event.outcome, event.tags, event.spentCredits, event.latencyMs, event.region,
    ]);
    if (current.events.length === MAX_VERIFICATION_EVENTS_PER_ROW) {
      // A full group is done before its workspace's next one starts, so a workspace's rows keep
      // their order (pk order breaks ties between equal times).
      done.push(current);
      open.delete(current.workspaceId);
      current = undefined;
    }
  }
  for (const batch of open.values()) done.push(batch);
  return done;
}

/** Appends the rows of one group: one, or halves while the payload exceeds the character bound. */
function pushRows(rows: BatchRow[], workspaceId: string, events: PackedEvent[], minTimeMs: number, maxTimeMs: number): void {
  const payload = JSON.stringify(events);
  if (payload.length <= MAX_VERIFICATION_PAYLOAD_CHARS || events.length === 1) {
    rows.push([workspaceId, minTimeMs, maxTimeMs, events.length, payload]);
    return;
  }
  const half = events.length >> 1;
  for (const part of [events.slice(0, half), events.slice(half)]) {
    let partMinTimeMs = part[0]![1];
    let partMaxTimeMs = partMinTimeMs;
    for (const event of part) {
      if (event[1] < partMinTimeMs) partMinTimeMs = event[1];
      if (event[1] > partMaxTimeMs) partMaxTimeMs = event[1];
    }
    pushRows(rows, workspaceId, part, partMinTimeMs, partMaxTimeMs);
  }
}

/** One multi-row INSERT (insertMany splits beyond its row bound); returns the events written. */
async function insertRows(db: Database, rows: readonly BatchRow[]): Promise<number> {
  await insertMany(db, `\`${TABLE}\``, INSERT_COLUMNS, rows, rowParams);
  let events = 0;
  for (const row of rows) events += row[3];
  return events;
}

function rowParams(row: BatchRow): BatchRow {
  return row;
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_KEY_VERIFICATION_LIMIT;
  return Math.min(MAX_KEY_VERIFICATION_LIMIT, Math.max(1, Math.trunc(limit)));
}

/** A batch row's payload, checked to be an array of `events` packed events. */
function decodeBatch(row: SqlRow, pk: number): PackedEvent[] {
  let payload: unknown;
  try {
    payload = JSON.parse(String(row.payload));
  } catch {
    throw corruptBatch(pk, 'its payload is not valid JSON');
  }
  if (!Array.isArray(payload)) throw corruptBatch(pk, 'its payload is not a JSON array');
  const count = readNumber(row.events, `${TABLE}.events`);
  if (payload.length !== count) throw corruptBatch(pk, `its payload holds ${payload.length} events, its events column says ${count}`);
  for (let index = 0; index < payload.length; index++) {
    if (!isPackedEvent(payload[index])) throw corruptBatch(pk, `event ${index} of its payload is not a packed verification event`);
  }
  return payload as PackedEvent[];
}

function isPackedEvent(value: unknown): value is PackedEvent {
  if (!Array.isArray(value) || value.length !== PACKED_EVENT_FIELDS.length) return false;
  const [requestId, timeMs, keySpaceId, keyId, identityId, externalId, outcome, tags, spentCredits, latencyMs, region] = value as unknown[];
  return (
    typeof requestId === 'string' && Number.isFinite(timeMs) && typeof keySpaceId === 'string' && typeof keyId === 'string' &&
    (identityId === null || typeof identityId === 'string') && (externalId === null || typeof externalId === 'string') &&
    typeof outcome === 'string' && Array.isArray(tags) && tags.every((tag) => typeof tag === 'string') &&
    Number.isFinite(spentCredits) && Number.isFinite(latencyMs) && typeof region === 'string'
  );
}

function corruptBatch(pk: number, what: string): Fault {
  return new Fault('err:unkey:application:assertion_failed', {
    internalMessage: `${TABLE} row pk ${pk} is not a valid batch of verification events: ${what}`,
  });
}

/** Adds the batch's events that pass the query's filters (and can still be among the first `limit`). */
function collectMatches(matches: MatchSet, query: KeyVerificationQuery, pk: number, events: readonly PackedEvent[]): void {
  const { keySpaceId, keyId, sinceMs, untilMs } = query;
  for (let index = 0; index < events.length; index++) {
    const event = events[index]!;
    const timeMs = event[1];
    if (keyId !== undefined && event[3] !== keyId) continue;
    if (keySpaceId !== undefined && event[2] !== keySpaceId) continue;
    if ((sinceMs !== undefined && timeMs < sinceMs) || (untilMs !== undefined && timeMs >= untilMs)) continue;
    // An event after the cutoff cannot be among the first `limit`; one at it still can (lower pk).
    if (timeMs > matches.cutoffTimeMs) continue;
    matches.add({ event: toEvent(query.workspaceId, event), pk, index });
  }
}

function toEvent(workspaceId: string, event: PackedEvent): KeyVerificationEvent {
  return {
    requestId: event[0],
    timeMs: event[1],
    workspaceId,
    keySpaceId: event[2],
    keyId: event[3],
    identityId: event[4] ?? undefined,
    externalId: event[5] ?? undefined,
    outcome: event[6],
    tags: event[7],
    spentCredits: event[8],
    latencyMs: event[9],
    region: event[10],
  };
}

/** One matching event and where it is stored, which orders ties: batch pk, then position. */
interface Match {
  event: KeyVerificationEvent;
  pk: number;
  index: number;
}

function compareMatches(a: Match, b: Match): number {
  return a.event.timeMs - b.event.timeMs || a.pk - b.pk || a.index - b.index;
}

/**
 * The best `limit` matches seen so far, kept cheaply: matches are appended, and sorted and cut
 * back to `limit` when `limit` is first reached and then whenever twice as many are held, so
 * memory stays within 2 × limit and sorting is amortised. `cutoffTimeMs` is the time of the
 * limit-th match at the last cut (Infinity before): it only ever falls, and a stale value is
 * higher than the true one, so the reader's early stop is late at worst, never wrong.
 */
class MatchSet {
  readonly #limit: number;
  #matches: Match[] = [];
  cutoffTimeMs = Number.POSITIVE_INFINITY;

  constructor(limit: number) {
    this.#limit = limit;
  }

  add(match: Match): void {
    this.#matches.push(match);
    const held = this.#matches.length;
    if (held === this.#limit || held >= 2 * this.#limit) this.#cut();
  }

  /** The first `limit` matches in order, as events. */
  sorted(): KeyVerificationEvent[] {
    this.#cut();
    return this.#matches.map((match) => match.event);
  }

  #cut(): void {
    this.#matches.sort(compareMatches);
    if (this.#matches.length > this.#limit) this.#matches.length = this.#limit;
    if (this.#matches.length === this.#limit) this.cutoffTimeMs = this.#matches[this.#limit - 1]!.event.timeMs;
  }
}
