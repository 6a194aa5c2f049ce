-- The node event log: every change to a node or to its unique keys, recorded by triggers so
-- that no writer (API, activity, an operator's psql session) can change a node unrecorded.
-- Who and which operation come from transaction-local settings (registry/context.ts sets them):
--   SELECT set_config('vagoth.actor', 'api', true), set_config('vagoth.operation', '...', true);
-- A change made without them is recorded with actor and operation NULL.
CREATE TABLE node_events (
  id          bigserial PRIMARY KEY,
  -- No foreign key: a node's history outlives the node, so its id and name are copied here.
  node_id     uuid NOT NULL,
  node_name   text NOT NULL,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text,
  operation   text,
  action      text NOT NULL
              CHECK (action IN ('create', 'update', 'rename', 'delete', 'claim', 'release')),
  -- Only what changed, as { field: { before, after } }; for jsonb objects (definition,
  -- metadata, tags) before and after hold only the keys that differ.
  changes     jsonb NOT NULL,
  -- Groups the events of one transaction (a create and its key claims, a changeKeys call).
  xact        bigint NOT NULL DEFAULT txid_current()
);
CREATE INDEX node_events_node_idx ON node_events (node_id, id DESC);

-- Look-ups the API offers (by tenant, by tag) besides the existing name, type and parent ones.
CREATE INDEX nodes_tenant_idx ON nodes (tenant, name);
CREATE INDEX nodes_tags_idx ON nodes USING gin (tags jsonb_path_ops);

-- '' and not NULL once a pooled session has used the setting in an earlier transaction: both
-- mean "not set".
CREATE FUNCTION vagoth_setting(name text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting(name, true), '') $$;

-- The fields that differ between two versions of a row (either may be NULL: created, deleted).
-- updated_at is bookkeeping, not a change; fields empty on both sides are left out.
CREATE FUNCTION node_changes(old_row jsonb, new_row jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT COALESCE(jsonb_object_agg(f.field, f.change), '{}')
  FROM (
    SELECT k.field,
      CASE WHEN jsonb_typeof(v.o) = 'object' AND jsonb_typeof(v.n) = 'object' THEN
        jsonb_build_object(
          'before', (SELECT COALESCE(jsonb_object_agg(e.key, e.value), '{}')
                     FROM jsonb_each(v.o) e WHERE v.n -> e.key IS DISTINCT FROM e.value),
          'after',  (SELECT COALESCE(jsonb_object_agg(e.key, e.value), '{}')
                     FROM jsonb_each(v.n) e WHERE v.o -> e.key IS DISTINCT FROM e.value))
      ELSE jsonb_build_object('before', COALESCE(v.o, 'null'), 'after', COALESCE(v.n, 'null'))
      END AS change
    FROM (SELECT jsonb_object_keys(COALESCE(old_row, '{}'))
          UNION SELECT jsonb_object_keys(COALESCE(new_row, '{}'))) AS k(field),
      LATERAL (SELECT old_row -> k.field AS o, new_row -> k.field AS n) AS v
    WHERE k.field NOT IN ('id', 'created_at', 'updated_at')
      AND v.o IS DISTINCT FROM v.n
      AND NOT (COALESCE(v.o, 'null') IN ('null', '{}') AND COALESCE(v.n, 'null') IN ('null', '{}'))
  ) AS f
$$;

CREATE FUNCTION record_node_event(node_id uuid, node_name text, action text, changes jsonb)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO node_events (node_id, node_name, actor, operation, action, changes)
  VALUES (node_id, node_name, vagoth_setting('vagoth.actor'), vagoth_setting('vagoth.operation'),
          action, changes)
$$;

CREATE FUNCTION log_node_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  diff jsonb;
BEGIN
  CASE TG_OP
    WHEN 'INSERT' THEN
      PERFORM record_node_event(NEW.id, NEW.name, 'create', node_changes(NULL, to_jsonb(NEW)));
    WHEN 'UPDATE' THEN
      diff := node_changes(to_jsonb(OLD), to_jsonb(NEW));
      -- Nothing but updated_at moved (an empty merge, a rename to the same name): no event.
      IF diff <> '{}' THEN
        PERFORM record_node_event(NEW.id, NEW.name,
                                  CASE WHEN diff ? 'name' THEN 'rename' ELSE 'update' END, diff);
      END IF;
    WHEN 'DELETE' THEN
      PERFORM record_node_event(OLD.id, OLD.name, 'delete', node_changes(to_jsonb(OLD), NULL));
  END CASE;
  RETURN NULL;
END $$;

CREATE TRIGGER nodes_log AFTER INSERT OR UPDATE OR DELETE ON nodes
  FOR EACH ROW EXECUTE FUNCTION log_node_change();

-- A node's keys are released before the node row goes, while its name can still be read, so
-- each release is logged under the node. ON DELETE CASCADE stays as the backstop; if the
-- delete fails (a child still points at the node) the releases roll back with it.
CREATE FUNCTION release_keys_of_deleted_node() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM node_keys WHERE node_id = OLD.id;
  RETURN OLD;
END $$;

CREATE TRIGGER nodes_release_keys BEFORE DELETE ON nodes
  FOR EACH ROW EXECUTE FUNCTION release_keys_of_deleted_node();

CREATE FUNCTION log_node_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- An UPDATE (a key handed to another node, or renamed) is a release and a claim.
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    PERFORM record_node_event(OLD.node_id, n.name, 'release',
                              jsonb_build_object('key', jsonb_build_object('before', OLD.key, 'after', NULL)))
    FROM nodes n WHERE n.id = OLD.node_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM record_node_event(NEW.node_id, n.name, 'claim',
                              jsonb_build_object('key', jsonb_build_object('before', NULL, 'after', NEW.key)))
    FROM nodes n WHERE n.id = NEW.node_id;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER node_keys_log AFTER INSERT OR UPDATE OR DELETE ON node_keys
  FOR EACH ROW EXECUTE FUNCTION log_node_key_change();

-- The log is append-only: history that can be edited is not history. (Pruning old events is
-- an operator's deliberate act: ALTER TABLE node_events DISABLE TRIGGER node_events_append_only.)
CREATE FUNCTION refuse_node_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'node_events is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER node_events_append_only BEFORE UPDATE OR DELETE ON node_events
  FOR EACH ROW EXECUTE FUNCTION refuse_node_event_change();
