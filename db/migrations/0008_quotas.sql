-- Per-user quotas.  NULL means "the deployment's default" (QUOTA_* settings),
-- so changing a default reaches every user who has no override of their own.
ALTER TABLE users
    ADD COLUMN quota_stored_bytes bigint CHECK (quota_stored_bytes >= 0),
    ADD COLUMN quota_files integer CHECK (quota_files >= 0),
    ADD COLUMN quota_render_seconds_per_day integer CHECK (quota_render_seconds_per_day >= 0),
    ADD COLUMN quota_concurrent_jobs integer CHECK (quota_concurrent_jobs >= 0),
    -- Registered while REGISTRATION=approval: inactive until an admin approves.
    ADD COLUMN pending_approval boolean NOT NULL DEFAULT false;
CREATE INDEX users_pending ON users (created_at) WHERE pending_approval;

-- Bytes and files an upload in progress holds against its owner's quota, so
-- that parallel uploads cannot each see the same free space.  A row lives for
-- one request; a row left by a crashed API process stops counting once it has
-- not been extended for a while (see db/quotas.py), and the next reservation
-- of that user deletes it.
CREATE TABLE quota_reservations (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bytes bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    files integer NOT NULL DEFAULT 0 CHECK (files >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quota_reservations_user ON quota_reservations (user_id);

-- Daily render use is summed over the owner's jobs of the day.
CREATE INDEX jobs_owner_day ON jobs (owner_id, created_at) WHERE storyboard_summary IS NOT NULL;
CREATE INDEX jobs_owner_live ON jobs (owner_id) WHERE status IN ('queued', 'processing');
