-- When the instance's cluster accepted its create: until then the VM may not exist yet, and a
-- cluster without it is no sign the instance was lost.
ALTER TABLE cloud.instances ADD COLUMN accepted_at timestamptz;
UPDATE cloud.instances SET accepted_at = created_at;
-- The reconciler reads each cluster's live instances a page at a time.
CREATE INDEX instances_cluster_vm ON cloud.instances (cluster_id, vm_name) WHERE deleted_at IS NULL;
DROP INDEX cloud.instances_cluster;
