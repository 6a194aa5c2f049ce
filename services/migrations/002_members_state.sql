-- What a reconcile must remember of each member between ticks, and where a service's replicas
-- go.

-- Where its replicas go: [{ cluster?, region?, replicas }], or null for wherever its cloud
-- places them.
ALTER TABLE services.services ADD COLUMN placements jsonb;

-- The placement it was made for (its key: the cluster or region named), null for none.
ALTER TABLE services.members ADD COLUMN placement text;
-- Since when its cluster has not answered: it is replaced once this passes the grace period.
ALTER TABLE services.members ADD COLUMN unknown_since timestamptz;
-- Health checks it failed in a row.
ALTER TABLE services.members ADD COLUMN failed_checks integer NOT NULL DEFAULT 0
  CHECK (failed_checks >= 0);
-- Why a reconcile decided it goes, once its delete was asked and not yet carried out (its
-- cluster silent, say): it goes however it stands when seen again.
ALTER TABLE services.members ADD COLUMN retiring text;

-- The id of the service's own cloud token, revoked once the service is removed.
ALTER TABLE services.services ADD COLUMN token_id text;

-- The cloud's id of the instance it is: an instance of its name with another id (made again by
-- someone, after its own went) is not the service's.
ALTER TABLE services.members ADD COLUMN instance_id text;
-- Whether it has passed a health check since it was made: failures count only after one has.
ALTER TABLE services.members ADD COLUMN healthy boolean NOT NULL DEFAULT false;

-- The reconcile step under way, if one is: its owner's id and how long its lease lasts (renewed
-- as it goes). Another step waits for it to end or lapse, and a step whose lease lapsed (its
-- worker cut off; another took over) may record nothing more.
ALTER TABLE services.services ADD COLUMN step_owner uuid;
ALTER TABLE services.services ADD COLUMN step_until timestamptz;
