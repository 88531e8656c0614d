-- Refresh-token families and per-user token generations.
--
-- Every sign-in starts a family: the refresh tokens handed out by rotating
-- one another share its id ("fam").  A rotated refresh token presented again
-- means it was copied, so the whole family is revoked (the thief's and the
-- owner's tokens alike).  Rows outlive the family's last token only until its
-- expiry, after which the maintenance job deletes them.
CREATE TABLE revoked_token_families (
    family text PRIMARY KEY,
    user_id text REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_token_families_expires ON revoked_token_families (expires_at);

-- Every token carries its user's generation ("gen"); raising it (password
-- change, "sign out everywhere") ends every token issued before.
ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0;
