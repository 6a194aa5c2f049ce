-- Capacity lives in one row per host, with what is allocated on it, so that a placement is
-- one short transaction and candidate hosts come from an index however many hosts there are.
CREATE TABLE host_capacity (
  host_id           uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
  state             text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'maintenance', 'down')),
  vcpus             integer NOT NULL CHECK (vcpus >= 0),
  memory_mib        bigint NOT NULL CHECK (memory_mib >= 0),
  disk_gib          bigint NOT NULL DEFAULT 0 CHECK (disk_gib >= 0),
  cpu_ratio         numeric(6, 2) NOT NULL DEFAULT 1 CHECK (cpu_ratio > 0),
  memory_ratio      numeric(6, 2) NOT NULL DEFAULT 1 CHECK (memory_ratio > 0),
  alloc_vcpus       integer NOT NULL DEFAULT 0,
  alloc_memory_mib  bigint NOT NULL DEFAULT 0,
  alloc_disk_gib    bigint NOT NULL DEFAULT 0,
  free_vcpus        integer GENERATED ALWAYS AS (floor(vcpus * cpu_ratio)::integer - alloc_vcpus) STORED,
  free_memory_mib   bigint GENERATED ALWAYS AS (floor(memory_mib * memory_ratio)::bigint - alloc_memory_mib) STORED,
  free_disk_gib     bigint GENERATED ALWAYS AS (disk_gib - alloc_disk_gib) STORED,
  -- The last line of defence: whatever the code does, a host is never over-committed.
  CONSTRAINT host_not_overcommitted CHECK (
    alloc_vcpus >= 0 AND alloc_memory_mib >= 0 AND alloc_disk_gib >= 0
    AND alloc_vcpus <= floor(vcpus * cpu_ratio)
    AND alloc_memory_mib <= floor(memory_mib * memory_ratio)
    AND alloc_disk_gib <= disk_gib)
);
-- Candidates are read in free-memory order (descending to spread, ascending to pack), so a
-- placement reads a few index entries whatever the number of hosts.
CREATE INDEX host_capacity_free_idx ON host_capacity (free_memory_mib, host_id) WHERE state = 'active';

-- What one VM holds on its host. Claimed by inserting a row, released by deleting it (or its
-- VM): triggers keep host_capacity's counters equal to the sum of these rows.
CREATE TABLE allocations (
  vm_id            uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
  host_id          uuid NOT NULL REFERENCES host_capacity (host_id) ON DELETE RESTRICT,
  vcpus            integer NOT NULL CHECK (vcpus >= 0),
  memory_mib       bigint NOT NULL CHECK (memory_mib >= 0),
  disk_gib         bigint NOT NULL CHECK (disk_gib >= 0),
  anti_affinity    text[] NOT NULL DEFAULT '{}',
  affinity         text[] NOT NULL DEFAULT '{}',
  claimed_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX allocations_host_idx ON allocations (host_id);
CREATE INDEX allocations_anti_idx ON allocations USING gin (anti_affinity);
CREATE INDEX allocations_affinity_idx ON allocations USING gin (affinity);

-- Every rule a placement must satisfy, checked under the host's row lock (and, for affinity,
-- a lock per group), so two concurrent claims can never both pass on stale information.
-- Refusals use SQLSTATE VG001 and say why in the message.
CREATE FUNCTION allocation_claim() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  h host_capacity%ROWTYPE;
  g text;
BEGIN
  SELECT * INTO h FROM host_capacity WHERE host_id = NEW.host_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'host is not registered' USING ERRCODE = 'VG001';
  END IF;
  IF h.state <> 'active' THEN
    RAISE EXCEPTION 'host is %', h.state USING ERRCODE = 'VG001';
  END IF;
  IF NEW.memory_mib > h.free_memory_mib THEN
    RAISE EXCEPTION 'not enough memory (% MiB free)', h.free_memory_mib USING ERRCODE = 'VG001';
  END IF;
  IF NEW.vcpus > h.free_vcpus THEN
    RAISE EXCEPTION 'not enough vCPUs (% free at ratio %)', h.free_vcpus, h.cpu_ratio USING ERRCODE = 'VG001';
  END IF;
  IF NEW.disk_gib > h.free_disk_gib THEN
    RAISE EXCEPTION 'not enough disk (% GiB free)', h.free_disk_gib USING ERRCODE = 'VG001';
  END IF;
  SELECT g2 INTO g FROM allocations a, unnest(a.anti_affinity) g2
    WHERE a.host_id = NEW.host_id AND g2 = ANY (NEW.anti_affinity) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'anti-affinity group % already on this host', g USING ERRCODE = 'VG001';
  END IF;
  FOREACH g IN ARRAY NEW.affinity LOOP
    PERFORM pg_advisory_xact_lock(hashtext('vagoth-affinity:' || g));
    IF EXISTS (SELECT 1 FROM allocations a WHERE g = ANY (a.affinity) AND a.host_id <> NEW.host_id) THEN
      RAISE EXCEPTION 'affinity group % is on another host', g USING ERRCODE = 'VG001';
    END IF;
  END LOOP;
  UPDATE host_capacity SET
    alloc_vcpus = alloc_vcpus + NEW.vcpus,
    alloc_memory_mib = alloc_memory_mib + NEW.memory_mib,
    alloc_disk_gib = alloc_disk_gib + NEW.disk_gib
  WHERE host_id = NEW.host_id;
  RETURN NEW;
END $$;

CREATE FUNCTION allocation_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE host_capacity SET
    alloc_vcpus = alloc_vcpus - OLD.vcpus,
    alloc_memory_mib = alloc_memory_mib - OLD.memory_mib,
    alloc_disk_gib = alloc_disk_gib - OLD.disk_gib
  WHERE host_id = OLD.host_id;
  RETURN OLD;
END $$;

CREATE FUNCTION allocation_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'allocations are released and claimed again, never changed in place';
END $$;

CREATE TRIGGER allocation_claim BEFORE INSERT ON allocations FOR EACH ROW EXECUTE FUNCTION allocation_claim();
CREATE TRIGGER allocation_release AFTER DELETE ON allocations FOR EACH ROW EXECUTE FUNCTION allocation_release();
CREATE TRIGGER allocation_immutable BEFORE UPDATE ON allocations FOR EACH ROW EXECUTE FUNCTION allocation_immutable();

-- Address pools. CIDRs may not overlap, so an `ip:<address>` key names one address of one network.
CREATE TABLE networks (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name         text NOT NULL UNIQUE,
  cidr         cidr NOT NULL CHECK (family(cidr) = 4 AND masklen(cidr) BETWEEN 8 AND 30),
  gateway      inet CHECK (gateway IS NULL OR gateway << cidr),
  created_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT networks_no_overlap EXCLUDE USING gist (cidr inet_ops WITH &&)
);

-- Where each free-address search starts: a sequence per network (network_cursor_<id>), so
-- concurrent claims start apart without queueing on a row lock. A hint only, never a claim.

CREATE TABLE network_reserved (
  network_id  uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
  first       inet NOT NULL,
  last        inet NOT NULL,
  CHECK (first <= last)
);
CREATE INDEX network_reserved_idx ON network_reserved (network_id);
