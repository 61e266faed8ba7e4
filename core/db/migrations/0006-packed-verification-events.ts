/**
 * Migration 6: key-verification events are stored packed, one row per written batch, in
 * `key_verification_batches`; the one-row-per-event `key_verifications` table (migration 1) is
 * copied over and dropped.
 *
 * Why: every verification (`keys.verifyKey`, and Sentinel's KeyAuth on every request) ends as an
 * event in the local table, and a row costs far more than its bytes: the B-tree inserts of the
 * clustered key and the index, and binding a dozen parameters. With one row per event the write
 * was ~2.2 µs per gateway request, the biggest single item of KeyAuth's cost; in an in-memory
 * SQLite a row per event cost ~1.8 µs an event, one row per batch of 100 whose payload is
 * `JSON.stringify` of the events as arrays ~0.42 µs (with the grouping and a transaction per
 * batch, side by side on a 2-vCPU machine: ~0.7 µs against ~1.8 µs; `JSON.stringify` is most of
 * what is left, ~0.3 µs an event). Reads (`listKeyVerifications`) always name
 * a workspace and usually a time range, which `(workspace_id, min_time, max_time)` serves; the
 * events inside a batch are filtered after decoding. Analytics at scale belongs to ClickHouse.
 *
 * Payload: a JSON array of events, each an array in the order of `PACKED_EVENT_FIELDS` in
 * `queries/key-verifications.ts`: request id, time (ms), key space id, key id, identity id or
 * null, external id or null, outcome, tags (a JSON array), spent credits, latency (ms), region.
 * The workspace is the row's column.
 *
 * The copy makes one batch per old row (events = 1), in `pk` order, so events that tied on time
 * keep their order. `tags` is embedded as JSON, not as a string: `json(tags)` on SQLite,
 * `JSON_EXTRACT(tags, '$')` on MySQL/MariaDB (a JSON-typed value, which `JSON_ARRAY` embeds as
 * is); NULL ids become JSON null and doubles keep their full precision on both engines.
 *
 * MySQL commits each statement on its own, so these are written to be run again after an
 * interruption: the copy skips when the new table already holds rows (the copy is one statement,
 * committed whole or not at all), and `key_verifications` is created, empty, when it is missing,
 * so a run interrupted after the DROP copies nothing instead of failing. Events an older keygate
 * node writes between the copy and the DROP during a rolling upgrade are lost (analytics only).
 */
import { createTable, type ColumnDefinition, type Migration } from '../migration.ts';

const workspaceId: ColumnDefinition = { name: 'workspace_id', type: 'id' };

const keyVerificationBatches = createTable({
  name: 'key_verification_batches',
  columns: [
    { name: 'pk', type: 'pk' },
    workspaceId,
    // Smallest and largest event time in the payload, in Unix ms.
    { name: 'min_time', type: 'bigint' },
    { name: 'max_time', type: 'bigint' },
    // Number of events in the payload.
    { name: 'events', type: 'int' },
    { name: 'payload', type: 'json' },
  ],
  indexes: [{ columns: ['workspace_id', 'min_time', 'max_time'] }],
});

/**
 * The legacy table's columns the copy reads, without indexes: created when missing, so a re-run
 * after the DROP copies nothing instead of failing (MySQL; SQLite's transaction makes a partial
 * run impossible, and the statements are the same there to keep the two alike).
 */
const legacyKeyVerifications = createTable({
  name: 'key_verifications',
  columns: [
    { name: 'pk', type: 'pk' },
    { name: 'request_id', type: 'varchar(64)' },
    { name: 'time', type: 'bigint' },
    workspaceId,
    { name: 'key_space_id', type: 'id' },
    { name: 'key_id', type: 'id' },
    { name: 'identity_id', type: 'id', nullable: true },
    { name: 'external_id', type: 'varchar(255)', nullable: true },
    { name: 'outcome', type: 'varchar(32)' },
    { name: 'tags', type: 'json' },
    { name: 'spent_credits', type: 'bigint', default: 0 },
    { name: 'latency_ms', type: 'double' },
    { name: 'region', type: 'varchar(64)' },
  ],
});

/** One old row as a packed batch of one event; `tagsJson` embeds the tags text as JSON. */
function copySql(arrayFunction: string, tagsJson: string): string {
  const fields = ['`request_id`', '`time`', '`key_space_id`', '`key_id`', '`identity_id`', '`external_id`', '`outcome`', tagsJson,
    '`spent_credits`', '`latency_ms`', '`region`'];
  const event = `${arrayFunction}(${fields.join(', ')})`;
  return (
    'INSERT INTO `key_verification_batches` (`workspace_id`, `min_time`, `max_time`, `events`, `payload`) ' +
    `SELECT \`workspace_id\`, \`time\`, \`time\`, 1, ${arrayFunction}(${event}) FROM \`key_verifications\` ` +
    'WHERE NOT EXISTS (SELECT 1 FROM `key_verification_batches`) ORDER BY `pk`'
  );
}

/** Migration 6. */
export const migration0006: Migration = {
  version: 6,
  name: 'packed-verification-events',
  statements: {
    mysql: [
      ...keyVerificationBatches.mysql,
      ...legacyKeyVerifications.mysql,
      copySql('JSON_ARRAY', "JSON_EXTRACT(`tags`, '$')"),
      'DROP TABLE IF EXISTS `key_verifications`',
    ],
    sqlite: [
      ...keyVerificationBatches.sqlite,
      ...legacyKeyVerifications.sqlite,
      copySql('json_array', 'json(`tags`)'),
      'DROP TABLE IF EXISTS `key_verifications`',
    ],
  },
};
