-- Nodes that lifecycles own: VMs (their workflow, vms.*), hosts (hosts.*) and migration holds
-- (`<vm>:migration`, a VM's move). Those workflows keep room, keys, domains and the tree in
-- step; the generic node functions (nodes.*) must not change them behind their backs. The
-- registry checks it first (registry/node-guard.ts); these triggers hold whatever code runs.
-- Refusals use SQLSTATE VG004: MESSAGE says why, DETAIL names the node's type.

CREATE FUNCTION lifecycle_type(t text) RETURNS boolean LANGUAGE sql IMMUTABLE
  AS $$ SELECT t IN ('vm', 'host', 'vm-migration') $$;

CREATE FUNCTION refuse_lifecycle(t text, node_name text, wanted text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% % is owned by %; nodes.* cannot %', t, node_name,
    CASE t WHEN 'vm' THEN 'its workflow (vms.*)'
           WHEN 'host' THEN 'its workflows (hosts.*)'
           ELSE 'its VM''s move (vms.migrate)' END,
    wanted
    USING ERRCODE = 'VG004', DETAIL = t;
END $$;

-- Shapes no writer may make. A lifecycle node's name is (or derives from) its workflow's id
-- and its type says who owns it: neither changes. A VM or a hold is nobody's parent (the VM
-- could then never be removed, nor a move committed: ON DELETE RESTRICT); a host or a hold
-- has no parent, and a VM's only parent is its host.
CREATE FUNCTION check_lifecycle_shape() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  parent record;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.type <> NEW.type AND (lifecycle_type(OLD.type) OR lifecycle_type(NEW.type)) THEN
      PERFORM refuse_lifecycle(OLD.type, OLD.name, 'change its type to ' || NEW.type);
    END IF;
    IF lifecycle_type(OLD.type) AND OLD.name <> NEW.name THEN
      PERFORM refuse_lifecycle(OLD.type, OLD.name, 'rename it');
    END IF;
  END IF;
  IF NEW.parent_id IS NOT NULL
     AND (TG_OP = 'INSERT' OR NEW.parent_id IS DISTINCT FROM OLD.parent_id) THEN
    SELECT p.name, p.type INTO parent FROM nodes p WHERE p.id = NEW.parent_id;
    IF FOUND AND parent.type IN ('vm', 'vm-migration') THEN
      PERFORM refuse_lifecycle(parent.type, parent.name,
                               'make it the parent of ' || NEW.type || ' ' || NEW.name);
    END IF;
    IF FOUND AND lifecycle_type(NEW.type) AND NOT (NEW.type = 'vm' AND parent.type = 'host') THEN
      PERFORM refuse_lifecycle(NEW.type, NEW.name,
                               'put it under ' || parent.type || ' ' || parent.name);
    END IF;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER nodes_lifecycle_shape BEFORE INSERT OR UPDATE OF name, type, parent_id ON nodes
  FOR EACH ROW EXECUTE FUNCTION check_lifecycle_shape();

-- The generic node functions mark their transaction (vagoth.generic = 'on'). Such a
-- transaction creates, deletes and changes no lifecycle node, and claims or releases none of
-- their keys; the tags of VMs and hosts are the one thing it may change (an operator's labels,
-- which placement reads).
CREATE FUNCTION refuse_generic_lifecycle_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM refuse_lifecycle(NEW.type, NEW.name, 'create it');
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM refuse_lifecycle(OLD.type, OLD.name, 'delete it');
  ELSIF OLD.type IN ('vm', 'host')
        AND (NEW.name, NEW.type, NEW.tenant, NEW.parent_id, NEW.definition, NEW.metadata)
            IS NOT DISTINCT FROM
            (OLD.name, OLD.type, OLD.tenant, OLD.parent_id, OLD.definition, OLD.metadata) THEN
    RETURN NEW;
  ELSE
    PERFORM refuse_lifecycle(OLD.type, OLD.name, 'change it');
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER nodes_generic_insert BEFORE INSERT ON nodes FOR EACH ROW
  WHEN (current_setting('vagoth.generic', true) = 'on' AND lifecycle_type(NEW.type))
  EXECUTE FUNCTION refuse_generic_lifecycle_write();
CREATE TRIGGER nodes_generic_write BEFORE UPDATE OR DELETE ON nodes FOR EACH ROW
  WHEN (current_setting('vagoth.generic', true) = 'on' AND lifecycle_type(OLD.type))
  EXECUTE FUNCTION refuse_generic_lifecycle_write();

CREATE FUNCTION refuse_generic_lifecycle_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  owner record;
BEGIN
  SELECT n.name, n.type INTO owner FROM nodes n
  WHERE n.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.node_id ELSE NEW.node_id END;
  IF FOUND AND lifecycle_type(owner.type) THEN
    PERFORM refuse_lifecycle(owner.type, owner.name, 'change its keys');
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER node_keys_generic_write BEFORE INSERT OR UPDATE OR DELETE ON node_keys
  FOR EACH ROW WHEN (current_setting('vagoth.generic', true) = 'on')
  EXECUTE FUNCTION refuse_generic_lifecycle_keys();
