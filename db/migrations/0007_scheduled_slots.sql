-- The schedule slot a scheduled maintenance run was fired for (NULL for runs
-- started by hand): several scheduler copies must run each slot once.
ALTER TABLE maintenance_runs ADD COLUMN slot bigint;
CREATE INDEX maintenance_runs_slot ON maintenance_runs (job, slot) WHERE slot IS NOT NULL;
