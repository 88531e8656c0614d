-- Private tag vocabularies. Every user's own tags live here and are suggested
-- to that user only; one user's tag text is never a candidate for another.
CREATE TABLE user_tags (
    owner_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tag text NOT NULL,
    uses integer NOT NULL DEFAULT 0,
    accepts integer NOT NULL DEFAULT 0,
    rejects integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, tag)
);

-- The tags users already put on their files become their private tags.
INSERT INTO user_tags (owner_id, tag, uses)
SELECT f.owner_id, t.tag, count(*)
FROM files f, unnest(f.tags) AS t(tag)
WHERE t.tag <> ''
GROUP BY f.owner_id, t.tag;

-- The global vocabulary holds only what administrators curated or promoted;
-- tags that reached it from users' uploads and accepts leave it (they are kept
-- in their owners' vocabularies above).
DELETE FROM tags WHERE source NOT IN ('seed');
ALTER TABLE tags DROP CONSTRAINT tags_source_check;
UPDATE tags SET source = 'curated' WHERE source = 'seed';
ALTER TABLE tags ADD CONSTRAINT tags_source_check CHECK (source IN ('curated', 'promoted'));
ALTER TABLE tags ADD COLUMN added_by text REFERENCES users (id) ON DELETE SET NULL;

-- Decisions are written in batches after the answer, so feedback may name one
-- whose row is not there yet: the id is checked by its MAC instead, and the
-- updater waits for the row before training on the event.
ALTER TABLE feedback_events DROP CONSTRAINT feedback_events_recommendation_id_fkey;
CREATE INDEX feedback_recommendation ON feedback_events (recommendation_id)
    WHERE recommendation_id IS NOT NULL;

-- Owners' tags are labels the updater learns from (once per file).
ALTER TABLE files ADD COLUMN tags_learned_at timestamptz;
CREATE INDEX files_tags_to_learn ON files (created_at)
    WHERE tags_learned_at IS NULL AND tags <> '{}';
