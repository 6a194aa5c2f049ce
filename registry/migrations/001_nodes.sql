-- Vagoth's node model: hosts, VMs and whatever else a user registers are nodes.
CREATE TABLE nodes (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE,
  type        text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_-]*$'),
  tenant      text,
  -- RESTRICT: a host with VMs on it cannot be deleted from under them.
  parent_id   uuid REFERENCES nodes (id) ON DELETE RESTRICT,
  definition  jsonb NOT NULL DEFAULT '{}',
  metadata    jsonb NOT NULL DEFAULT '{}',
  tags        jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nodes_type_idx ON nodes (type);
CREATE INDEX nodes_parent_idx ON nodes (parent_id);

-- Unique keys (ip:10.0.0.5, mac:52:54:00:..., vol:pool/name): the primary key
-- is what guarantees that no two nodes ever hold the same one.
CREATE TABLE node_keys (
  key         text PRIMARY KEY,
  node_id     uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
  claimed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX node_keys_node_idx ON node_keys (node_id);
