/**
 * Migration 3: the gateway's local request log (dataplane.md §7.3), the sink of a node without
 * ClickHouse. One row per proxied request that reached an instance (none for routing errors or
 * policy rejections), written in batches by Sentinel's `LocalRequestLogSink`. Headers are JSON
 * lists of `Name: value` lines, already redacted (authorization, KeyAuth locations). Latencies
 * in ms; `time` is the unix ms at which the request arrived.
 */
import { createTable, joinStatements, type Migration } from '../migration.ts';

const gatewayRequests = createTable({
  name: 'gateway_requests',
  columns: [
    { name: 'pk', type: 'pk' },
    { name: 'request_id', type: 'varchar(64)' },
    { name: 'time', type: 'bigint' },
    { name: 'workspace_id', type: 'varchar(256)' },
    { name: 'deployment_id', type: 'varchar(256)' },
    { name: 'instance_address', type: 'varchar(300)' },
    { name: 'region', type: 'varchar(64)' },
    { name: 'method', type: 'varchar(16)' },
    { name: 'host', type: 'varchar(256)' },
    { name: 'path', type: 'text' },
    { name: 'query_string', type: 'text' },
    { name: 'request_headers', type: 'json' },
    { name: 'response_status', type: 'int' },
    { name: 'response_headers', type: 'json' },
    { name: 'user_agent', type: 'text' },
    { name: 'ip_address', type: 'varchar(64)' },
    { name: 'total_latency_ms', type: 'bigint' },
  ],
  indexes: [{ columns: ['workspace_id', 'time'] }, { columns: ['deployment_id', 'time'] }, { columns: ['request_id'] }],
});

/** Migration 3. */
export const migration0003: Migration = {
  version: 3,
  name: 'gateway',
  statements: joinStatements([gatewayRequests]),
};
