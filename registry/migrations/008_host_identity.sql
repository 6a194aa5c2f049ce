-- A hypervisor is registered once: the host claims `hypervisor:<identity>` (its libvirt host
-- UUID, or its canonical URI where it reports none; a geats agent's real path or SSH address)
-- in the transaction that records it, and node_keys' primary key refuses a second host of
-- the same hypervisor under another name or spelling of its address. Only hosts hold such a
-- key, so no other node can take one and keep a hypervisor from being registered.
CREATE FUNCTION check_hypervisor_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM nodes WHERE id = NEW.node_id AND type = 'host') THEN
    RAISE EXCEPTION 'only a host holds a hypervisor: key (%)', NEW.key
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER node_keys_hypervisor BEFORE INSERT OR UPDATE ON node_keys
  FOR EACH ROW WHEN (NEW.key LIKE 'hypervisor:%') EXECUTE FUNCTION check_hypervisor_key();
