-- A service's placements may name other vagoth clouds (the operator's allow-list,
-- VAGOTH_SERVICES_CLOUDS): in each, the service acts with a token of its own there, minted from
-- a member's and narrowed to the project named there.

CREATE TABLE services.cloud_tokens (
  service_id  uuid NOT NULL REFERENCES services.services (id) ON DELETE CASCADE,
  -- The other cloud, by the name the operator gave it here.
  cloud       text NOT NULL CHECK (cloud ~ '^[a-z][a-z0-9-]{0,30}$'),
  -- The project there its instances are in.
  project     text NOT NULL CHECK (project ~ '^[a-z][a-z0-9-]{0,30}$'),
  -- The minted token (never the caller's), and its id there to revoke it. Never answered.
  token       text NOT NULL,
  token_id    text NOT NULL,
  -- Set once no placement names the cloud and no member is left there: its token is being
  -- revoked, and a placement naming the cloud again needs credentials again.
  retiring    boolean NOT NULL DEFAULT false,
  PRIMARY KEY (service_id, cloud)
);

-- The cloud a member's instance is in: null for the service's own, else another's name.
ALTER TABLE services.members ADD COLUMN cloud text;
