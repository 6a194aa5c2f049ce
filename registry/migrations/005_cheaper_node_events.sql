-- The event log's helpers, cheaper: they run for every change to every node (a VM's create
-- and placement call them five times), and as SQL functions PostgreSQL planned their bodies
-- again on every call. Same results as migration 003's; now PL/pgSQL loops over a row's few
-- fields, with cached plans.

-- One field's change as { before, after }, or NULL when it did not change. jsonb objects
-- (definition, metadata, tags) keep only the keys that differ; a field empty ('null' or '{}')
-- on both sides is no change.
CREATE FUNCTION field_change(o jsonb, n jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  before jsonb := '{}';
  after jsonb := '{}';
  k text;
  v jsonb;
BEGIN
  IF o IS NOT DISTINCT FROM n
     OR (COALESCE(o, 'null') IN ('null', '{}') AND COALESCE(n, 'null') IN ('null', '{}')) THEN
    RETURN NULL;
  END IF;
  IF jsonb_typeof(o) = 'object' AND jsonb_typeof(n) = 'object' THEN
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(o) e LOOP
      IF n -> k IS DISTINCT FROM v THEN before := before || jsonb_build_object(k, v); END IF;
    END LOOP;
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(n) e LOOP
      IF o -> k IS DISTINCT FROM v THEN after := after || jsonb_build_object(k, v); END IF;
    END LOOP;
    RETURN jsonb_build_object('before', before, 'after', after);
  END IF;
  RETURN jsonb_build_object('before', COALESCE(o, 'null'), 'after', COALESCE(n, 'null'));
END $$;

CREATE OR REPLACE FUNCTION node_changes(old_row jsonb, new_row jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  changes jsonb := '{}';
  change jsonb;
  k text;
BEGIN
  FOR k IN SELECT jsonb_object_keys(COALESCE(old_row, '{}'))
           UNION SELECT jsonb_object_keys(COALESCE(new_row, '{}')) LOOP
    CONTINUE WHEN k IN ('id', 'created_at', 'updated_at');
    change := field_change(old_row -> k, new_row -> k);
    IF change IS NOT NULL THEN changes := changes || jsonb_build_object(k, change); END IF;
  END LOOP;
  RETURN changes;
END $$;

CREATE OR REPLACE FUNCTION record_node_event(node_id uuid, node_name text, action text, changes jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO node_events (node_id, node_name, actor, operation, action, changes)
  VALUES (node_id, node_name, vagoth_setting('vagoth.actor'), vagoth_setting('vagoth.operation'),
          action, changes);
END $$;
