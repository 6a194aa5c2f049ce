-- The service layer's records, in a schema of its own: what each service declares, the
-- instances it made (with the template revision each was made from), and its history. Its
-- instances themselves are the cloud's: the service layer reaches them through its API.

CREATE TABLE services.services (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- The cloud project it belongs to (its tokens, roles and quotas apply).
  project               text NOT NULL CHECK (project ~ '^[a-z][a-z0-9-]{0,30}$'),
  -- Short enough that `<name>-<n>` is an instance name of the cloud's (31 characters).
  name                  text NOT NULL CHECK (name ~ '^[a-z][a-z0-9-]{0,19}$'),
  template              jsonb NOT NULL,
  -- A digest of the template: an instance made from another one is outdated.
  revision              text NOT NULL,
  replicas              integer NOT NULL CHECK (replicas BETWEEN 0 AND 1000),
  spread                text CHECK (spread IN ('host', 'cluster')),
  max_unavailable       integer NOT NULL CHECK (max_unavailable >= 0),
  max_surge             integer NOT NULL CHECK (max_surge >= 0),
  every_seconds         integer NOT NULL CHECK (every_seconds BETWEEN 5 AND 86400),
  unknown_grace_seconds integer NOT NULL CHECK (unknown_grace_seconds >= 0),
  health                jsonb,
  unhealthy_after       integer NOT NULL CHECK (unhealthy_after >= 1),
  paused                boolean NOT NULL DEFAULT false,
  -- Set once its delete is asked: its reconciles delete every instance, then the service.
  deleting_at           timestamptz,
  -- The last reconcile's outcome: when, counts, what the cloud refused, an error.
  status                jsonb NOT NULL DEFAULT '{}',
  created_by            text NOT NULL,
  -- The cloud token the service acts with: its creator's, narrowed to the project. Never
  -- answered to a caller.
  token                 text NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project, name)
);

CREATE TABLE services.members (
  service_id   uuid NOT NULL REFERENCES services.services (id) ON DELETE CASCADE,
  idx          integer NOT NULL CHECK (idx >= 0),
  revision     text NOT NULL,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (service_id, idx)
);

CREATE TABLE services.events (
  id          bigserial PRIMARY KEY,
  service_id  uuid NOT NULL REFERENCES services.services (id) ON DELETE CASCADE,
  at          timestamptz NOT NULL DEFAULT now(),
  -- The cloud user who asked, or null for the service's own reconcile.
  actor       text,
  action      text NOT NULL,
  detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_service_idx ON services.events (service_id, id);
