CREATE TABLE jobs (
    id text PRIMARY KEY,
    owner_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type text NOT NULL DEFAULT 'video_generation',
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    progress integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    current_stage text,
    parameters jsonb NOT NULL DEFAULT '{}',
    script_key text,
    storyboard_key text,
    storyboard_summary jsonb,
    result jsonb,
    error text,
    -- The file record the finished video becomes (known from the start so
    -- the root API can hand out its URLs at submission).
    output_file_id text NOT NULL,
    idempotency_key text,
    webhook_url text,
    render_seconds double precision,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_owner_created ON jobs (owner_id, created_at DESC, id) WHERE deleted_at IS NULL;
CREATE INDEX jobs_status ON jobs (status, updated_at);

CREATE TABLE job_logs (
    id bigserial PRIMARY KEY,
    job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    ts timestamptz NOT NULL DEFAULT clock_timestamp(),
    level text NOT NULL CHECK (level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR')),
    message text NOT NULL,
    details jsonb
);
CREATE INDEX job_logs_job ON job_logs (job_id, id);

-- Every failure of a stage, kept for the maintenance view and retries.
CREATE TABLE failed_operations (
    id bigserial PRIMARY KEY,
    stage text NOT NULL,
    job_id text REFERENCES jobs (id) ON DELETE CASCADE,
    file_id text REFERENCES files (id) ON DELETE CASCADE,
    error text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    permanent boolean NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    retried_at timestamptz
);
CREATE INDEX failed_operations_failed ON failed_operations (failed_at DESC);

ALTER TABLE files ADD COLUMN job_id text REFERENCES jobs (id) ON DELETE SET NULL;
