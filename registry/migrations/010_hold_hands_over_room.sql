-- A move's hold hands its room to the VM when the move is committed: the allocation row
-- changes owner from the hold (`<vm>:migration`) to its VM and nothing else, so the host's
-- counters stand as they are. The room was claimed under every rule when the hold took it;
-- a target that entered maintenance or went down since keeps that promise (the guest already
-- runs there), so the rules are not checked again, and the commit never fails on them.
CREATE OR REPLACE FUNCTION allocation_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.host_id, NEW.vcpus, NEW.memory_mib, NEW.disk_gib, NEW.anti_affinity, NEW.affinity)
       IS NOT DISTINCT FROM
     (OLD.host_id, OLD.vcpus, OLD.memory_mib, OLD.disk_gib, OLD.anti_affinity, OLD.affinity)
     AND EXISTS (SELECT 1 FROM nodes WHERE id = OLD.vm_id AND type = 'vm-migration')
     AND EXISTS (SELECT 1 FROM nodes WHERE id = NEW.vm_id AND type = 'vm') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'allocations are released and claimed again, never changed in place';
END $$;
