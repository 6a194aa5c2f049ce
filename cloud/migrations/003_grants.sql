-- What a project may use of a cluster's, networks and images alike: granted to one project,
-- or published to every project (project_id null). Replaces network_grants, whose rows move.

CREATE TABLE cloud.grants (
  id          bigserial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('network', 'image')),
  cluster_id  uuid NOT NULL REFERENCES cloud.clusters (id) ON DELETE CASCADE,
  -- The network's or image's name in its cluster.
  name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
  -- null: public, every project's.
  project_id  uuid REFERENCES cloud.projects (id) ON DELETE CASCADE,
  granted_at  timestamptz NOT NULL DEFAULT now()
);
-- Once per owner: granting again changes nothing.
CREATE UNIQUE INDEX grants_once ON cloud.grants
  (kind, cluster_id, name, COALESCE(project_id, '00000000-0000-0000-0000-000000000000'));
CREATE INDEX grants_project ON cloud.grants (project_id, kind);

INSERT INTO cloud.grants (kind, cluster_id, name, project_id, granted_at)
SELECT 'network', cluster_id, network, project_id, granted_at FROM cloud.network_grants;
DROP TABLE cloud.network_grants;
