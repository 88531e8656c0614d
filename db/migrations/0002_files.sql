-- Content-addressed bytes: one row per distinct sha256, shared by every file
-- record with that content.  ref_count is maintained in the same transaction
-- as the file rows; an unreferenced blob is purged after a grace period.
CREATE TABLE blobs (
    sha256 text PRIMARY KEY,
    storage_key text NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    mime text NOT NULL,
    ref_count integer NOT NULL DEFAULT 0 CHECK (ref_count >= 0),
    unreferenced_since timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX blobs_unreferenced ON blobs (unreferenced_since) WHERE ref_count = 0;

CREATE TABLE files (
    id text PRIMARY KEY,
    owner_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blob_sha256 text NOT NULL REFERENCES blobs (sha256),
    filename text NOT NULL,
    title text,
    description text,
    content_type text NOT NULL,
    file_type text NOT NULL CHECK (file_type IN ('document', 'image', 'video', 'audio')),
    subdirectory text,
    size bigint NOT NULL,
    source text NOT NULL DEFAULT 'upload' CHECK (source IN ('upload', 'generated')),
    processing_status text NOT NULL DEFAULT 'pending'
        CHECK (processing_status IN ('pending', 'processing', 'completed', 'failed')),
    processing_error text,
    metadata jsonb NOT NULL DEFAULT '{}',
    -- size name -> storage key of the thumbnail
    thumbnails jsonb NOT NULL DEFAULT '{}',
    -- quality -> {"key", "size", "width", "height"} for renditions beside the original
    renditions jsonb NOT NULL DEFAULT '{}',
    tags text[] NOT NULL DEFAULT '{}',
    download_count integer NOT NULL DEFAULT 0,
    stream_count integer NOT NULL DEFAULT 0,
    bytes_served bigint NOT NULL DEFAULT 0,
    last_accessed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX files_owner_created ON files (owner_id, created_at DESC, id) WHERE deleted_at IS NULL;
CREATE INDEX files_owner_type ON files (owner_id, file_type, created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX files_created ON files (created_at DESC, id) WHERE deleted_at IS NULL;
CREATE INDEX files_blob ON files (blob_sha256);

-- One row per stream response: feeds file analytics and the
-- streaming-performance report.
CREATE TABLE stream_sessions (
    id bigserial PRIMARY KEY,
    file_id text NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id text REFERENCES users (id) ON DELETE SET NULL,
    quality text NOT NULL,
    range_start bigint NOT NULL,
    range_end bigint NOT NULL,
    bytes_sent bigint NOT NULL,
    duration_ms double precision NOT NULL,
    completed boolean NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stream_sessions_started ON stream_sessions (started_at);
CREATE INDEX stream_sessions_file ON stream_sessions (file_id, started_at);
