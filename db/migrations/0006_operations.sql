-- Every maintenance run (scheduled, CLI or API), for the operations views.
CREATE TABLE maintenance_runs (
    id bigserial PRIMARY KEY,
    job text NOT NULL,
    started_at timestamptz NOT NULL,
    duration_s double precision NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('ok', 'error')),
    counts jsonb NOT NULL DEFAULT '{}',
    error text
);
CREATE INDEX maintenance_runs_started ON maintenance_runs (started_at DESC);
CREATE INDEX maintenance_runs_job ON maintenance_runs (job, started_at DESC);

-- How often the stuck-job reaper re-enqueued a job, so it gives up in time.
ALTER TABLE jobs ADD COLUMN requeue_count integer NOT NULL DEFAULT 0;
