/**
 * ClickHouseRequestLogSink against a real (private) clickhouse-server: request-log rows land in
 * frontline_requests_raw_v1 with their values, in batches, bounded, and an outage drops and counts.
 */
import t from 'tap';
import { openClickHouseClient } from '../../../core/analytics/clickhouse-client.ts';
import { ClickHouseRequestLogSink } from '../../../core/analytics/clickhouse-request-log-sink.ts';
import type { GatewayRequestRow } from '../../../core/analytics/request-log-sink.ts';
import { Metrics } from '../../../core/metrics.ts';
import { startTestClickHouse } from '../../helpers/clickhouse.ts';

const clickhouse = await startTestClickHouse();
if (clickhouse === undefined) {
  t.plan(0, 'clickhouse-server is not installed (scripts/install-clickhouse.sh); ClickHouse request-log tests skipped');
} else {
  const server = clickhouse;
  t.teardown(() => server.stop());

  function row(requestId: string, timeMs: number, overrides: Partial<GatewayRequestRow> = {}): GatewayRequestRow {
    return {
      requestId, timeMs, workspaceId: 'ws_1', deploymentId: 'dep_1', instanceAddress: '127.0.0.1:9000', method: 'GET',
      host: 'api.example.test', path: '/v1/items', queryString: 'page=2&key=[REDACTED]',
      requestHeaders: ['authorization: [REDACTED]', 'accept: */*'], responseStatus: 200, responseHeaders: ['content-type: text/plain'],
      userAgent: 'curl/8', ipAddress: '203.0.113.9', totalLatencyMs: 12.6, ...overrides,
    };
  }

  t.test('rows land in frontline_requests_raw_v1 with their values, in one insert per batch', async (t) => {
    const client = openClickHouseClient({ url: server.url, username: server.username, password: server.password, database: server.database });
    t.teardown(() => client.close());
    const metrics = new Metrics();
    const sink = new ClickHouseRequestLogSink({ client, region: 'eu-test', flushIntervalMs: 0, batchSize: 100, maxBufferedRows: 3, metrics });
    t.equal(await sink.ready(), true);
    const now = Date.now();
    sink.record(row('req_1', now, { requestBody: '{"key":"[REDACTED]"}' }));
    sink.record(row('req_2', now + 1, { method: 'POST', responseStatus: 502 }));
    sink.record(row('req_3', now + 2));
    sink.record(row('req_4', now + 3));
    t.match(sink.stats, { recorded: 3, dropped: 1 }, 'bounded: the fourth row is dropped');
    t.match(await metrics.render(), /keygate_sentinel_request_log_dropped_total 1/);
    await sink.close();
    const body = await server.query(`SELECT * FROM ${server.database}.frontline_requests_raw_v1 ORDER BY time FORMAT JSONEachRow`);
    const rows = body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    t.equal(rows.length, 3);
    t.same(rows[0], {
      request_id: 'req_1', time: String(now), workspace_id: 'ws_1', deployment_id: 'dep_1', instance_address: '127.0.0.1:9000',
      region: 'eu-test', method: 'GET', host: 'api.example.test', path: '/v1/items', query_string: 'page=2&key=[REDACTED]',
      request_headers: ['authorization: [REDACTED]', 'accept: */*'], request_body: '{"key":"[REDACTED]"}', response_status: 200,
      response_headers: ['content-type: text/plain'], response_body: '', user_agent: 'curl/8', ip_address: '203.0.113.9', total_latency: '13',
    });
    t.match(rows[1], { method: 'POST', response_status: 502 });
    t.equal(sink.stats.written, 3);
  });

  t.test('an unreachable ClickHouse drops and counts rows and never throws', async (t) => {
    const client = openClickHouseClient({ url: 'http://127.0.0.1:1', requestTimeoutMs: 1_000 });
    t.teardown(() => client.close());
    const sink = new ClickHouseRequestLogSink({ client, flushIntervalMs: 0 });
    t.equal(await sink.ready(), false);
    t.doesNotThrow(() => sink.record(row('req_x', Date.now())));
    await sink.close();
    t.match(sink.stats, { recorded: 1, written: 0, dropped: 1, failedBatches: 1 });
  });
}
