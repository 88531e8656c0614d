-- The tag vocabulary: actions of the recommender.
CREATE TABLE tags (
    tag text PRIMARY KEY,
    source text NOT NULL CHECK (source IN ('seed', 'user', 'accepted')),
    uses integer NOT NULL DEFAULT 0,
    accepts integer NOT NULL DEFAULT 0,
    rejects integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every recommendation shown, with what the exploring policy knew: the
-- basis of off-policy evaluation and of reward attribution.
CREATE TABLE recommendations (
    id text PRIMARY KEY,
    content_id text NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id text REFERENCES users (id) ON DELETE SET NULL,
    model_version integer NOT NULL,
    tags text[] NOT NULL,
    -- Every tag the policy chose from, for off-policy evaluation.
    candidates text[] NOT NULL,
    k integer NOT NULL,
    scores double precision[] NOT NULL,
    propensities double precision[] NOT NULL,
    explored boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recommendations_content ON recommendations (content_id, created_at DESC);

-- Viewer feedback, kept as rows so a crashed updater loses nothing:
-- processed_at is set in the same transaction as the model version it fed.
CREATE TABLE feedback_events (
    id bigserial PRIMARY KEY,
    content_id text NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id text REFERENCES users (id) ON DELETE SET NULL,
    viewer_ref text,
    event_type text NOT NULL
        CHECK (event_type IN ('view', 'like', 'dislike', 'share', 'skip', 'tag_accept', 'tag_reject')),
    watch_time_ms bigint,
    tags text[] NOT NULL DEFAULT '{}',
    recommendation_id text REFERENCES recommendations (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    -- Sum of the per-tag rewards the updater derived from this event.
    reward double precision
);
CREATE INDEX feedback_unprocessed ON feedback_events (id) WHERE processed_at IS NULL;
CREATE INDEX feedback_created ON feedback_events (created_at);

CREATE TABLE model_versions (
    version integer PRIMARY KEY,
    checkpoint_key text NOT NULL,
    scorer_key text NOT NULL,
    events_trained bigint NOT NULL,
    total_events bigint NOT NULL,
    loss double precision,
    seconds double precision NOT NULL,
    -- Off-policy estimates and other figures computed with this version.
    metrics jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
