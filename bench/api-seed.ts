// bench/api's data, written in bulk with SQL as the create paths would have left it: each
// cluster's registry (hosts, the `default` network, an image, running VMs with their keys and
// their room on a host) and the cloud's tables (projects, instances, their events).
//
// Instance k (0 <= k < instances) is `i-<k % per>` of project `p-<k / per>`, per = the
// instances of a project; even k live on the local cluster, odd k on the remote one. Its VM
// is named `<project>.<instance>` there (cloud/store/instances.ts's vmNameOf).
import type { Sql } from '../registry/db.ts';
import { createNetwork } from '../registry/networks.ts';
import { seedHosts } from './support.ts';

export interface Scale {
  instances: number;
  projects: number;
}

/** Instances of one project (the last projects may hold fewer, or none). */
export const perProject = (s: Scale) => Math.ceil(s.instances / s.projects);

const pad = (n: number) => String(n).padStart(5, '0');
export const projectName = (p: number) => `p-${pad(p)}`;
export const instanceName = (j: number) => `i-${pad(j)}`;
/** Whether instance k lives on the local cluster (else the remote one). */
export const onLocal = (k: number) => k % 2 === 0;

/** Instance k's project and name, in SQL (the same rule as projectName and instanceName). */
const names = (sql: Sql, per: number) => sql`
  format('p-%s', lpad((k / ${per})::text, 5, '0')) AS project,
  format('i-%s', lpad((k % ${per})::text, 5, '0')) AS instance`;

const CHUNK = 20_000;
/** Runs `write(lo, hi)` over 0..total-1 in chunks, so no one statement holds every row. */
async function inChunks(total: number, write: (lo: number, hi: number) => Promise<unknown>) {
  for (let lo = 0; lo < total; lo += CHUNK) await write(lo, Math.min(total, lo + CHUNK) - 1);
}

const VM = { vcpus: 1, memoryMiB: 1024, diskGiB: 10 };
const VMS_PER_HOST = 400;
const HOST_SIZE = { cpus: 128, memoryMiB: 512 * 1024, cpuRatio: 4 };
const IMAGE = {
  name: 'debian-12',
  format: 'qcow2',
  sha256: 'a'.repeat(64),
  sizeBytes: 400 * 1024 ** 2,
  virtualSize: 2 * 1024 ** 3,
};

/**
 * One cluster's registry: hosts enough for its VMs, the `default` network, a ready image and
 * the VMs of the instances `side` holds, running, each placed on a host, with an address, a
 * MAC, its root disk and seed volumes claimed as keys, as a finished create leaves them.
 */
export async function seedRegistry(sql: Sql, scale: Scale, side: 'local' | 'remote') {
  const parity = side === 'local' ? 0 : 1;
  const count = Math.floor((scale.instances + 1 - parity) / 2);
  await seedHosts(sql, Math.max(1, Math.ceil(count / VMS_PER_HOST)), HOST_SIZE);
  await sql`UPDATE host_capacity SET disk_gib = ${VMS_PER_HOST * VM.diskGiB}`;
  await createNetwork(sql, { name: 'default', cidr: '10.0.0.0/8' });
  const [image] = await sql<{ id: string }[]>`
    INSERT INTO images (name, source, status, format, sha256, size_bytes, virtual_size,
                        workflow_id, ready_at)
    VALUES (${IMAGE.name}, ${`https://images.example/${IMAGE.name}.qcow2`}, 'ready',
            ${IMAGE.format}, ${IMAGE.sha256}, ${IMAGE.sizeBytes}, ${IMAGE.virtualSize},
            ${`image:${IMAGE.name}`}, now())
    RETURNING id`;
  const definition = { ...VM, placement: {}, image: { id: image!.id, ...IMAGE } };
  const per = perProject(scale);
  await inChunks(
    scale.instances,
    (lo, hi) => sql`
    WITH h AS (SELECT array_agg(id ORDER BY name) AS ids FROM nodes WHERE type = 'host'),
    s AS (
      SELECT k, ${names(sql, per)}, h.ids[1 + (k / 2) % cardinality(h.ids)] AS host,
             gen_random_uuid()::text AS run,
             '52:54:00:' || substr(x, 1, 2) || ':' || substr(x, 3, 2) || ':' || substr(x, 5, 2) AS mac
      FROM generate_series(${lo}::int, ${hi}::int) k, h, LATERAL (SELECT lpad(to_hex(k), 6, '0')) m(x)
      WHERE k % 2 = ${parity}),
    v AS (
      INSERT INTO nodes (name, type, parent_id, definition, metadata, tags)
      SELECT project || '.' || instance, 'vm', host,
        ${sql.json(definition)}::jsonb || jsonb_build_object(
          'guest', jsonb_build_object('sshAuthorizedKeys', '[]'::jsonb),
          'nics', jsonb_build_array(jsonb_build_object(
            'network', 'default', 'ip', host('10.0.0.0'::inet + (k + 1)), 'mac', mac))),
        jsonb_build_object('state', 'running',
          'operation', jsonb_build_object('kind', 'create', 'workflowId',
            'vm:' || project || '.' || instance, 'runId', run, 'updateId', 'create'),
          'at', jsonb_build_object('run', run, 'generation', 0, 'at', 40)),
        jsonb_build_object('vagoth.cloud/project', project, 'vagoth.cloud/instance', instance)
      FROM s
      RETURNING id, parent_id, definition->'nics'->0 AS nic),
    keys AS (
      INSERT INTO node_keys (key, node_id)
      SELECT x, v.id FROM v JOIN nodes hn ON hn.id = v.parent_id,
        LATERAL (VALUES ('ip:' || (v.nic->>'ip')), ('mac:' || (v.nic->>'mac')),
                        ('vol:' || hn.name || ':vagoth/vagoth-' || v.id || '-disk0.img'),
                        ('vol:' || hn.name || ':vagoth/vagoth-' || v.id || '-seed.iso')) t(x))
    INSERT INTO allocations (vm_id, host_id, vcpus, memory_mib, disk_gib)
    SELECT id, parent_id, ${VM.vcpus}, ${VM.memoryMiB}, ${VM.diskGiB} FROM v`,
  );
  await sql`ANALYZE`;
}

/**
 * The cloud's projects and instances (with the events their creates record), as made by the
 * cloud's admin: instance k on `clusters.local` or `clusters.remote` as onLocal says.
 */
export async function seedCloud(
  sql: Sql,
  scale: Scale,
  clusters: { local: string; remote: string },
) {
  const [admin] = await sql<{ user_id: string; token_id: string }[]>`
    SELECT u.id AS user_id, t.id AS token_id FROM cloud.users u
    JOIN cloud.tokens t ON t.user_id = u.id WHERE u.name = 'admin' LIMIT 1`;
  const { user_id: userId, token_id: tokenId } = admin!;
  await sql`
    WITH p AS (
      INSERT INTO cloud.projects (name)
      SELECT format('p-%s', lpad(p::text, 5, '0')) FROM generate_series(0, ${scale.projects - 1}::int) p
      RETURNING id, name)
    INSERT INTO cloud.events (user_id, token_id, project_id, action, target)
    SELECT ${userId}, ${tokenId}, id, 'projects.create', name FROM p`;
  await inChunks(
    scale.instances,
    (lo, hi) => sql`
    WITH s AS (SELECT k, ${names(sql, perProject(scale))} FROM generate_series(${lo}::int, ${hi}::int) k),
    i AS (
      INSERT INTO cloud.instances (project_id, name, cluster_id, vm_name, vcpus, memory_mib,
                                   disk_gib, ips, image, created_by, accepted_at)
      SELECT p.id, s.instance, CASE WHEN k % 2 = 0 THEN ${clusters.local}::uuid
                                    ELSE ${clusters.remote}::uuid END,
             s.project || '.' || s.instance, ${VM.vcpus}, ${VM.memoryMiB}, ${VM.diskGiB}, 1,
             ${IMAGE.name}, ${userId}, now()
      FROM s JOIN cloud.projects p ON p.name = s.project
      RETURNING id, project_id, name, cluster_id)
    INSERT INTO cloud.events (user_id, token_id, project_id, action, target, detail)
    SELECT ${userId}, ${tokenId}, project_id, 'instances.create', name,
           jsonb_build_object('instance', id, 'clusterId', cluster_id)
    FROM i`,
  );
  await sql`ANALYZE`;
}
