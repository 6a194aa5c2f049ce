-- Bearer tokens of the API. Only a token's SHA-256 is kept: the secret is shown once, when it
-- is made, and a copy of this table lets no one call the API.
CREATE TABLE api_tokens (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
  role        text NOT NULL CHECK (role IN ('admin', 'operator', 'reader')),
  hash        bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- Which token made this one; null for the one the first API process makes.
  created_by  uuid REFERENCES api_tokens (id) ON DELETE SET NULL,
  expires_at  timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX api_tokens_created_at_idx ON api_tokens (created_at, id);
