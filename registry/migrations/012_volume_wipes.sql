-- How each volume vagoth deprovisioned was wiped, and what reading it back found: written by
-- the step that wiped it, before the volume is deleted. Like node_events it outlives the VM (no
-- foreign key: the VM's id and name are copied here) and cannot be edited. A step retried
-- after a crash that zeroed a volume but did not yet delete it checks it again, and writes a
-- second row: both are what happened.
CREATE TABLE volume_wipes (
  id            bigserial PRIMARY KEY,
  vm_id         uuid NOT NULL,
  vm_name       text NOT NULL,
  host          text NOT NULL,
  pool          text NOT NULL,
  volume        text NOT NULL,
  -- deprovision (decommission, reprovision, a failed create's undo), moved-away (a move's
  -- source), failed-move (what a failed move made on its target), rebuild (a volume a lost
  -- attempt of provision left half-made, wiped before it is made again)
  reason        text NOT NULL
                CHECK (reason IN ('deprovision', 'moved-away', 'failed-move', 'rebuild')),
  -- The VM's operation under way then (decommission, reprovision, create, migrate, ...).
  vm_operation  text,
  method        text NOT NULL
                CHECK (method IN ('stream', 'libvirt', 'check-only', 'agent', 'none')),
  size_bytes    bigint CHECK (size_bytes >= 0),
  bytes_written bigint CHECK (bytes_written >= 0),
  resumed_from  bigint NOT NULL CHECK (resumed_from >= 0),
  duration_ms   bigint NOT NULL CHECK (duration_ms >= 0),
  -- The read-back: NULL where there were no bytes vagoth could read (agent, none).
  check_blocks  integer CHECK (check_blocks >= 0),
  check_bytes   bigint CHECK (check_bytes >= 0),
  -- The first byte found not zero; NULL when the check found only zeros (or there was none).
  nonzero_at    bigint CHECK (nonzero_at >= 0),
  at            timestamptz NOT NULL DEFAULT now(),
  actor         text,
  -- `<workflowId>/<runId>` of the step that wiped it, as in node_events.
  operation     text,
  -- A check is whole or absent, and there is none where no bytes could be read.
  CHECK ((check_blocks IS NULL) = (check_bytes IS NULL)),
  CHECK (check_blocks IS NOT NULL OR nonzero_at IS NULL),
  CHECK (method NOT IN ('agent', 'none') OR check_blocks IS NULL),
  CHECK (bytes_written IS NULL OR size_bytes IS NULL OR bytes_written <= size_bytes)
);
CREATE INDEX volume_wipes_vm_idx ON volume_wipes (vm_id, id);
CREATE INDEX volume_wipes_name_idx ON volume_wipes (vm_name, id);

-- Any table's guard against edits: history that can be edited is not history.
CREATE FUNCTION refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER volume_wipes_append_only BEFORE UPDATE OR DELETE ON volume_wipes
  FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER volume_wipes_no_truncate BEFORE TRUNCATE ON volume_wipes
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
