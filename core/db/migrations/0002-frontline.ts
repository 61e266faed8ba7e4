/**
 * Migration 2: Frontline's routing data (dataplane.md §3.1, simplified to keygate's route model).
 * `frontline_routes`: one row per host (exact `app.example.com` or one-label wildcard
 * `*.example.com`, stored lower-cased) with its local upstreams and peer Frontlines as JSON
 * lists. `certificates`: one row per host name a certificate is served for, the chain in PEM and
 * the private key encrypted by the Vault under the workspace's keyring (never in clear).
 */
import { createTable, joinStatements, type Migration } from '../migration.ts';

const frontlineRoutes = createTable({
  name: 'frontline_routes',
  columns: [
    { name: 'pk', type: 'pk' },
    { name: 'id', type: 'id' },
    { name: 'host', type: 'varchar(256)' },
    // JSON lists of URLs: local upstreams (instances or the environment's gateway) and peers.
    { name: 'upstreams', type: 'json' },
    { name: 'peers', type: 'json' },
    { name: 'protocol', type: 'varchar(16)', default: 'http1' },
    { name: 'policies', type: 'json', nullable: true },
    { name: 'workspace_id', type: 'varchar(256)', nullable: true },
    { name: 'environment_id', type: 'varchar(256)', nullable: true },
    { name: 'deployment_id', type: 'varchar(256)', nullable: true },
    { name: 'created_at_m', type: 'bigint' },
    { name: 'updated_at_m', type: 'bigint', nullable: true },
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['host'], unique: true }, { columns: ['deployment_id'] }],
});

const certificates = createTable({
  name: 'certificates',
  columns: [
    { name: 'pk', type: 'pk' },
    { name: 'id', type: 'id' },
    { name: 'hostname', type: 'varchar(256)' },
    { name: 'workspace_id', type: 'varchar(256)' },
    { name: 'certificate', type: 'text' },
    { name: 'encrypted_private_key', type: 'text' },
    { name: 'created_at_m', type: 'bigint' },
    { name: 'updated_at_m', type: 'bigint', nullable: true },
  ],
  indexes: [{ columns: ['id'], unique: true }, { columns: ['hostname'], unique: true }],
});

/** Migration 2. */
export const migration0002: Migration = {
  version: 2,
  name: 'frontline',
  statements: joinStatements([frontlineRoutes, certificates]),
};
