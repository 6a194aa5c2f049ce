-- A project's instances, each a VM of one cluster, and what each project may use.

CREATE TABLE cloud.instances (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- A project or cluster goes only once it has no live instances; the deleted ones go with it
  -- (the project's events keep their history).
  project_id  uuid NOT NULL REFERENCES cloud.projects (id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9-]{0,30}$'),
  cluster_id  uuid NOT NULL REFERENCES cloud.clusters (id) ON DELETE CASCADE,
  -- The VM's name in its cluster: `<project>.<name>`, which no other project's can be.
  vm_name     text NOT NULL,
  -- What it counts against its project's quota.
  vcpus       integer NOT NULL CHECK (vcpus > 0),
  memory_mib  bigint NOT NULL CHECK (memory_mib > 0),
  disk_gib    bigint NOT NULL CHECK (disk_gib >= 0),
  ips         integer NOT NULL CHECK (ips >= 0),
  image       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  uuid REFERENCES cloud.users (id),
  -- Set once its delete is accepted: it no longer counts, and its name is free again.
  deleted_at  timestamptz
);
CREATE UNIQUE INDEX instances_name ON cloud.instances (project_id, name) WHERE deleted_at IS NULL;
CREATE INDEX instances_cluster ON cloud.instances (cluster_id) WHERE deleted_at IS NULL;

-- Limits per project; null: no limit on that resource.
CREATE TABLE cloud.quotas (
  project_id  uuid PRIMARY KEY REFERENCES cloud.projects (id) ON DELETE CASCADE,
  instances   integer CHECK (instances >= 0),
  vcpus       integer CHECK (vcpus >= 0),
  memory_mib  bigint CHECK (memory_mib >= 0),
  disk_gib    bigint CHECK (disk_gib >= 0),
  ips         integer CHECK (ips >= 0)
);

-- Which project may attach instances to which network of which cluster.
CREATE TABLE cloud.network_grants (
  cluster_id  uuid NOT NULL REFERENCES cloud.clusters (id) ON DELETE CASCADE,
  network     text NOT NULL,
  project_id  uuid NOT NULL REFERENCES cloud.projects (id) ON DELETE CASCADE,
  granted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, cluster_id, network)
);
