CREATE TABLE users (
    id text PRIMARY KEY,
    username text NOT NULL,
    email text NOT NULL,
    full_name text,
    image_url text,
    password_hash text,
    role text NOT NULL DEFAULT 'USER' CHECK (role IN ('USER', 'ADMIN')),
    email_verified boolean NOT NULL DEFAULT false,
    -- Set for users provisioned from an external OpenID provider ("iss|sub").
    external_subject text UNIQUE,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz
);
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

-- Revoked token ids (logout, refresh rotation); rows outlive the token only
-- until its own expiry, after which the maintenance job deletes them.
CREATE TABLE revoked_tokens (
    jti text PRIMARY KEY,
    user_id text REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
