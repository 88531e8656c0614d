-- Accounts: refresh-token families, token generations, per-client guests.

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

-- Guest mode: one guest row per anonymous client ("guest-<id>"), recording
-- the client address it was created from.  The quotas of all guests of one
-- address are summed, and guests unused for GUEST_MAX_AGE_DAYS are reaped.
ALTER TABLE users ADD COLUMN guest_address text;
CREATE INDEX users_guest_address ON users (guest_address) WHERE guest_address IS NOT NULL;
CREATE INDEX users_guest_last_use ON users (last_sign_in_at) WHERE guest_address IS NOT NULL;
