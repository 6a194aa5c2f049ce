-- A VM's claim (its name, an address from each NIC's pool, a MAC per NIC) as one server-side
-- call: one round trip and one commit instead of a conversation of seven, because a claim
-- is what every create waits on. All or nothing, like the transaction it replaces.
--
-- Refusals are raised with vagoth's own SQLSTATEs, which registry/claim-vm.ts turns back into
-- domain errors:
--   VG002  key conflict:     MESSAGE the key, DETAIL who holds it
--   VG003  invalid request:  MESSAGE the field, DETAIL the reason

-- The next address of the network that no node holds, searching from `start` and wrapping
-- around; NULL when the network is full. Only a candidate: the caller claims its `ip:` key.
CREATE FUNCTION next_free_address(net networks, start bigint, picked text[]) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  usable bigint := (2::bigint ^ (32 - masklen(net.cidr)))::bigint - 2;
  -- generate_series materialises its rows: look at this many offsets at a time.
  win constant bigint := 1024;
  hit text;
BEGIN
  FOR lo IN 0 .. usable - 1 BY win LOOP
    SELECT host(a) INTO hit FROM (
      SELECT set_masklen(net.cidr + ((start + i) % usable + 1), 32) AS a
      FROM generate_series(lo, least(lo + win, usable) - 1) i) s
    WHERE a IS DISTINCT FROM net.gateway AND host(a) <> ALL (picked)
      AND NOT EXISTS (SELECT 1 FROM node_keys k WHERE k.key = 'ip:' || host(a))
      AND NOT EXISTS (SELECT 1 FROM network_reserved r WHERE r.network_id = net.id
                      AND a BETWEEN r.first AND r.last)
    LIMIT 1;
    IF hit IS NOT NULL THEN RETURN hit; END IF;
  END LOOP;
  RETURN NULL;
END $$;

-- Why a given address cannot be handed out, or NULL when it can.
CREATE FUNCTION address_problem(net networks, ip text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  a inet;
BEGIN
  BEGIN
    a := ip::inet;
  EXCEPTION WHEN invalid_text_representation THEN
    RETURN 'not an IPv4 address';
  END;
  IF family(a) <> 4 OR masklen(a) <> 32 THEN RETURN 'not an IPv4 address'; END IF;
  IF NOT a << net.cidr THEN RETURN format('not in %s', net.cidr); END IF;
  IF host(a) = host(network(net.cidr)) THEN RETURN 'is the network address'; END IF;
  IF host(a) = host(broadcast(net.cidr)) THEN RETURN 'is the broadcast address'; END IF;
  IF a = net.gateway THEN RETURN 'is the gateway'; END IF;
  IF EXISTS (SELECT 1 FROM network_reserved r WHERE r.network_id = net.id
             AND a BETWEEN r.first AND r.last) THEN
    RETURN 'is in a reserved range';
  END IF;
  RETURN NULL;
END $$;

-- A MAC in QEMU's locally administered range 52:54:00:xx:xx:xx.
CREATE FUNCTION random_mac() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT '52:54:00:' || substr(h, 1, 2) || ':' || substr(h, 3, 2) || ':' || substr(h, 5, 2)
  FROM (SELECT lpad(to_hex((random() * 16777215)::int), 6, '0') AS h) r
$$;

-- Records the VM and claims its name and keys. `vm` is the definition without its NICs;
-- `nics` the asked ones ({network, ip?, mac?}). Returns the VM's id, when it was created and
-- its full definition. A retry by the same run (`run_id`) gets the VM it created before.
CREATE FUNCTION claim_vm(
  vm_name text, vm jsonb, nics jsonb, metadata jsonb, tags jsonb, run_id text,
  actor text, operation text)
RETURNS TABLE (id uuid, created_at timestamptz, definition jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  attempts constant int := 8;
  n int := jsonb_array_length(nics);
  nets networks[] := '{}';
  net networks;
  given text[] := '{}';
  picked text[];
  out_nics jsonb;
  nic jsonb;
  ip text;
  problem text;
  vm_id uuid;
  created timestamptz;
  holder record;
  lost text;
BEGIN
  PERFORM set_config('vagoth.actor', COALESCE(actor, ''), true),
          set_config('vagoth.operation', COALESCE(operation, ''), true);
  FOR i IN 0 .. n - 1 LOOP
    nic := nics -> i;
    SELECT * INTO net FROM networks w WHERE w.name = nic ->> 'network';
    IF NOT FOUND THEN
      RAISE EXCEPTION 'nics.%.network', i USING ERRCODE = 'VG003',
        DETAIL = format('no network named %s', nic ->> 'network');
    END IF;
    nets := nets || net;
    IF nic ? 'ip' THEN
      problem := address_problem(net, nic ->> 'ip');
      IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'nics.%.ip', i USING ERRCODE = 'VG003', DETAIL = problem;
      END IF;
      given := given || ('ip:' || (nic ->> 'ip'));
    END IF;
    IF nic ? 'mac' THEN given := given || ('mac:' || lower(nic ->> 'mac')); END IF;
  END LOOP;

  FOR attempt IN 1 .. attempts LOOP
    -- Addresses and MACs for the NICs that did not bring their own.
    out_nics := '[]';
    picked := ARRAY(SELECT x ->> 'ip' FROM jsonb_array_elements(nics) x WHERE x ? 'ip');
    FOR i IN 0 .. n - 1 LOOP
      nic := nics -> i;
      ip := nic ->> 'ip';
      IF ip IS NULL THEN
        net := nets[i + 1];
        -- The network's sequence neither locks nor waits: concurrent claims start apart.
        ip := next_free_address(net,
          nextval(format('network_cursor_%s', replace(net.id::text, '-', ''))::regclass)
            % ((2::bigint ^ (32 - masklen(net.cidr)))::bigint - 2),
          picked);
        IF ip IS NULL THEN
          RAISE EXCEPTION 'nics.%.network', i USING ERRCODE = 'VG003',
            DETAIL = format('network %s is full', net.name);
        END IF;
        picked := picked || ip;
      END IF;
      out_nics := out_nics || jsonb_build_object(
        'network', nic -> 'network', 'ip', ip, 'mac', lower(COALESCE(nic ->> 'mac', random_mac())));
    END LOOP;

    IF vm_id IS NULL THEN
      INSERT INTO nodes AS v (name, type, definition, metadata, tags)
      VALUES (vm_name, 'vm', vm || jsonb_build_object('nics', out_nics), metadata, tags)
      ON CONFLICT (name) DO NOTHING RETURNING v.id, v.created_at INTO vm_id, created;
      IF vm_id IS NULL THEN
        SELECT h.id, h.type, h.created_at, h.definition, h.metadata -> 'operation' ->> 'runId' AS run
          INTO holder FROM nodes h WHERE h.name = vm_name;
        IF holder.type = 'vm' AND holder.run = run_id THEN
          RETURN QUERY SELECT holder.id, holder.created_at, holder.definition;
          RETURN;
        END IF;
        RAISE EXCEPTION 'name:%', vm_name USING ERRCODE = 'VG002',
          DETAIL = format('%s %s', COALESCE(holder.type, 'node'), vm_name);
      END IF;
    ELSE
      -- A picked key was lost to a concurrent claim: the definition follows the new picks.
      UPDATE nodes v SET definition = v.definition || jsonb_build_object('nics', out_nics)
      WHERE v.id = vm_id;
    END IF;

    WITH wanted AS (
      SELECT k FROM jsonb_array_elements(out_nics) x,
        LATERAL (VALUES ('ip:' || (x ->> 'ip')), ('mac:' || (x ->> 'mac'))) AS keys(k)
      WHERE k IS NOT NULL),
    won AS (
      INSERT INTO node_keys (key, node_id) SELECT k, vm_id FROM wanted
      ON CONFLICT (key) DO NOTHING RETURNING key)
    SELECT k INTO lost FROM wanted WHERE k NOT IN (SELECT key FROM won)
    ORDER BY k = ANY (given) DESC LIMIT 1;

    IF lost IS NULL THEN
      RETURN QUERY SELECT vm_id, created, vm || jsonb_build_object('nics', out_nics);
      RETURN;
    END IF;
    IF lost = ANY (given) THEN
      SELECT hn.type || ' ' || hn.name INTO problem
      FROM node_keys k JOIN nodes hn ON hn.id = k.node_id WHERE k.key = lost;
      RAISE EXCEPTION '%', lost USING ERRCODE = 'VG002', DETAIL = COALESCE(problem, 'another node');
    END IF;
    -- Keys of this attempt that were won are given back before picking again.
    DELETE FROM node_keys k WHERE k.node_id = vm_id;
  END LOOP;
  RAISE EXCEPTION '%: lost % races for free keys', vm_name, attempts;
END $$;

-- Claims room for a claimed VM on the first of `hosts` (in the allocator's order) that takes
-- it, and makes that host the VM's parent: one round trip for all the candidates. A host whose
-- row another claim holds is passed over at first (SKIP LOCKED) instead of queued behind, and
-- waited for only once every other candidate has refused. allocation_claim (migration 002)
-- re-checks every rule under the host's lock; its refusals (VG001) become reasons. Returns the
-- host, or NULL and why each host refused. Idempotent: a placed VM stays put.
CREATE FUNCTION place_vm(
  vm uuid, hosts text[], vcpus int, memory_mib bigint, disk_gib bigint,
  anti text[], aff text[], actor text, operation text)
RETURNS TABLE (host text, reasons jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  why jsonb := '{}';
  target uuid;
  placed text;
  h text;
BEGIN
  PERFORM set_config('vagoth.actor', COALESCE(actor, ''), true),
          set_config('vagoth.operation', COALESCE(operation, ''), true);
  SELECT n.name INTO placed FROM allocations a JOIN nodes n ON n.id = a.host_id WHERE a.vm_id = vm;
  IF FOUND THEN
    RETURN QUERY SELECT placed, why;
    RETURN;
  END IF;
  FOR pass IN 1 .. 2 LOOP
    FOREACH h IN ARRAY hosts LOOP
      CONTINUE WHEN why ? h;
      BEGIN
        IF pass = 1 THEN
          SELECT c.host_id INTO target FROM host_capacity c JOIN nodes n ON n.id = c.host_id
          WHERE n.name = h AND n.type = 'host' FOR UPDATE OF c SKIP LOCKED;
          CONTINUE WHEN NOT FOUND;
        ELSE
          SELECT c.host_id INTO target FROM host_capacity c JOIN nodes n ON n.id = c.host_id
          WHERE n.name = h AND n.type = 'host' FOR UPDATE OF c;
          IF NOT FOUND THEN
            why := why || jsonb_build_object(h, 'host no longer registered');
            CONTINUE;
          END IF;
        END IF;
        INSERT INTO allocations (vm_id, host_id, vcpus, memory_mib, disk_gib, anti_affinity, affinity)
        VALUES (vm, target, vcpus, memory_mib, disk_gib, anti, aff);
        UPDATE nodes SET parent_id = target, updated_at = now() WHERE id = vm AND type = 'vm';
        RETURN QUERY SELECT h, why;
        RETURN;
      EXCEPTION WHEN SQLSTATE 'VG001' THEN
        why := why || jsonb_build_object(h, SQLERRM);
      END;
    END LOOP;
  END LOOP;
  RETURN QUERY SELECT NULL::text, why;
END $$;
