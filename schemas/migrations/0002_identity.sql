-- Accounts and the refresh tokens issued to them. Access tokens are stateless JWTs; refresh
-- tokens are JWTs too, but each is recorded here so that it can be used exactly once.

CREATE TABLE users
(
    user_id       uuid PRIMARY KEY,
    -- Stored lowercased by the gateway, so the unique constraint is case-insensitive.
    email         text        NOT NULL UNIQUE CHECK (email = lower(email)),
    full_name     text        NOT NULL,
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('customer', 'merchant', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE refresh_tokens
(
    -- The `jti` of the refresh JWT.
    token_id   uuid PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    -- Set when the token is exchanged; a token with `used_at` set is refused.
    used_at    timestamptz NULL
);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
-- Lets a periodic sweep delete expired tokens without a full scan.
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
