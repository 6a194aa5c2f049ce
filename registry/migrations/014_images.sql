-- Images VMs boot from: imported by a workflow (workflows/image-import.ts) into the workers'
-- image store, each file named for its id, and recorded here once its digest and format are
-- known. A name is taken while its image exists, whatever its status: a failed import keeps it
-- until the image is deleted, so its reason can be read.
CREATE TABLE images (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  -- What the caller named: a URL, or a path under one of VAGOTH_IMAGE_DIRS.
  source text NOT NULL,
  -- Asked for by the caller: the import fails unless the image is so.
  format_asked text CHECK (format_asked IN ('raw', 'qcow2')),
  sha256_asked text CHECK (sha256_asked ~ '^[0-9a-f]{64}$'),
  status text NOT NULL DEFAULT 'importing'
    CHECK (status IN ('importing', 'ready', 'failed', 'deleting')),
  -- Once ready: what the import found.
  format text CHECK (format IN ('raw', 'qcow2')),
  sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes bigint CHECK (size_bytes >= 0),
  virtual_size bigint CHECK (virtual_size >= 0),
  -- Once failed: why, in vagoth's words (never what a program printed).
  error text,
  -- The import workflow's run, for operations.get and the Temporal UI.
  workflow_id text NOT NULL,
  run_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  ready_at timestamptz,
  CHECK (status <> 'ready' OR (format IS NOT NULL AND sha256 IS NOT NULL
                                AND size_bytes IS NOT NULL AND virtual_size IS NOT NULL)),
  CHECK (status <> 'failed' OR error IS NOT NULL)
);
