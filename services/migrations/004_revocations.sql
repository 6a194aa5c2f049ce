-- Tokens the service layer minted and no longer needs (a service's own once it is deleted, its
-- tokens in clouds it left, ones minted for a call that then failed), kept here from before
-- their first revoke until their cloud takes it, so that none is forgotten while a cloud is
-- down or a process stops halfway. The worker's sweep tries each again, later each time.

CREATE TABLE services.revocations (
  id          bigserial PRIMARY KEY,
  -- The other cloud, by the name the operator gave it; '': the service layer's own.
  cloud       text NOT NULL CHECK (cloud = '' OR cloud ~ '^[a-z][a-z0-9-]{0,30}$'),
  -- The token, revoked with itself, and its id there. Never answered.
  token       text NOT NULL,
  token_id    text NOT NULL,
  -- The service it was minted for (project/name), for the operator: the service may be gone.
  service     text NOT NULL,
  queued_at   timestamptz NOT NULL DEFAULT now(),
  next_at     timestamptz NOT NULL DEFAULT now(),
  attempts    integer NOT NULL DEFAULT 0,
  -- Why the last try failed, in vagoth's words (never the cloud's).
  last_error  text,
  UNIQUE (cloud, token_id)
);

CREATE INDEX revocations_due ON services.revocations (next_at);

-- Tokens of clouds a service left that an earlier version kept until revoked: queued now.
INSERT INTO services.revocations (cloud, token, token_id, service)
SELECT t.cloud, t.token, t.token_id, s.project || '/' || s.name
FROM services.cloud_tokens t JOIN services.services s ON s.id = t.service_id
WHERE t.retiring
ON CONFLICT DO NOTHING;
DELETE FROM services.cloud_tokens WHERE retiring;
-- A token is now taken from its service as it is queued: none is kept half-retired.
ALTER TABLE services.cloud_tokens DROP COLUMN retiring;
