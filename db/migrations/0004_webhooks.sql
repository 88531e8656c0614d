-- Webhook subscriptions.  A row with job_id set is the one-off subscription a
-- job's webhook_url makes: every job.* event of that job, with its own secret.
CREATE TABLE webhooks (
    id text PRIMARY KEY,
    owner_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url text NOT NULL,
    events text[] NOT NULL CHECK (cardinality(events) > 0),
    -- Kept in clear: every delivery is signed with it (HMAC needs the key).
    secret text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    job_id text UNIQUE REFERENCES jobs (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_owner ON webhooks (owner_id, created_at DESC, id) WHERE job_id IS NULL;

-- Per job: the last sequence number given to one of its events (events of a
-- job are numbered in commit order, since emitting locks this row) and the
-- last 10 % progress step announced, so a redelivered stage never repeats it.
CREATE TABLE webhook_job_streams (
    job_id text PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    last_sequence integer NOT NULL,
    progress_step integer NOT NULL DEFAULT 0
);

-- One row per event with at least one subscriber.  body is the exact JSON
-- sent (and signed) by every attempt and redelivery.
CREATE TABLE webhook_events (
    id text PRIMARY KEY,
    owner_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event text NOT NULL,
    job_id text REFERENCES jobs (id) ON DELETE CASCADE,
    file_id text REFERENCES files (id) ON DELETE CASCADE,
    sequence integer,
    -- "job.completed once per job": a racing or redelivered stage finds the
    -- key taken and emits nothing.
    dedupe_key text UNIQUE,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (event, subscription); retries update it, a manual redelivery
-- adds a row.  The ordering stream is (webhook_id, job_id) by sequence.
CREATE TABLE webhook_deliveries (
    id text PRIMARY KEY,
    event_id text NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    webhook_id text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    job_id text,
    sequence integer,
    redelivery_of text REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error text,
    last_duration_ms double precision,
    last_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Set while an attempt is in flight; a worker that dies mid-attempt
    -- leaves it to lapse, and the sweep sends the delivery again.
    locked_until timestamptz,
    -- Times in a row this delivery found its subscription's in-flight quota
    -- full: it waits a little longer each time (a dead receiver's backlog
    -- must not spin through the queue).
    throttled integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at DESC, id);
CREATE INDEX webhook_deliveries_stream ON webhook_deliveries (webhook_id, job_id, sequence)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
-- Attempts in flight per subscription (the lease is cleared when one ends).
CREATE INDEX webhook_deliveries_in_flight ON webhook_deliveries (webhook_id, locked_until)
    WHERE locked_until IS NOT NULL;
