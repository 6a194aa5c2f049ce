-- The cloud layer's own tables, in its own schema: it never reads or writes the cluster's.
-- Users, the projects they belong to (with a role in each), their tokens, the clusters the
-- cloud places instances on, and the record of every change.

CREATE TABLE cloud.users (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  -- The whole cloud: clusters, users, projects, quotas, every project's instances.
  admin        boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now(),
  disabled_at  timestamptz
);

CREATE TABLE cloud.projects (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9-]{0,30}$'),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cloud.members (
  project_id  uuid NOT NULL REFERENCES cloud.projects (id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES cloud.users (id),
  role        text NOT NULL CHECK (role IN ('member', 'reader')),
  added_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, user_id)
);
CREATE INDEX members_user_idx ON cloud.members (user_id);

-- Only a token's SHA-256 is kept; the secret is shown once.
CREATE TABLE cloud.tokens (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     uuid NOT NULL REFERENCES cloud.users (id),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
  hash        bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
  -- Narrowed to one project (and to what its holder may do there); null: the user's projects.
  project_id  uuid REFERENCES cloud.projects (id) ON DELETE CASCADE,
  read_only   boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  uuid REFERENCES cloud.tokens (id) ON DELETE SET NULL,
  expires_at  timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX tokens_user_idx ON cloud.tokens (user_id, created_at);

CREATE TABLE cloud.clusters (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9-]{0,30}$'),
  driver      text NOT NULL CHECK (driver IN ('local', 'vagoth')),
  -- A vagoth cluster's tRPC API and the cluster token the cloud calls it with.
  url         text,
  token       text,
  region      text NOT NULL DEFAULT 'default' CHECK (region ~ '^[a-z][a-z0-9-]{0,30}$'),
  tags        jsonb NOT NULL DEFAULT '{}',
  -- No new instances there; those it has stay.
  draining    boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((driver = 'vagoth') = (url IS NOT NULL AND token IS NOT NULL))
);
-- One local cluster per cloud: the cluster controller of this deployment.
CREATE UNIQUE INDEX clusters_one_local ON cloud.clusters (driver) WHERE driver = 'local';

-- Every mutation, with who made it (user, token) and in which project.
CREATE TABLE cloud.events (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  user_id     uuid REFERENCES cloud.users (id),
  token_id    uuid,
  -- No reference: a project's history outlives it.
  project_id  uuid,
  action      text NOT NULL,
  target      text NOT NULL,
  detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_project_idx ON cloud.events (project_id, id);
