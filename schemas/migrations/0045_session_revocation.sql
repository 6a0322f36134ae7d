-- Sessions that can be ended: refresh tokens belong to a family (the chain of rotations
-- that started at one login or registration), and access tokens can be revoked by id.

-- Every refresh token of a chain shares its `family_id`; the first token's id names the
-- family. Reusing a spent token revokes the whole family.
ALTER TABLE refresh_tokens ADD COLUMN family_id uuid;
UPDATE refresh_tokens SET family_id = token_id WHERE family_id IS NULL;
ALTER TABLE refresh_tokens ALTER COLUMN family_id SET NOT NULL;
-- Set when the family is revoked (logout, or reuse of a spent token); refused from then on.
ALTER TABLE refresh_tokens ADD COLUMN revoked_at timestamptz NULL;
-- The access token issued with this refresh token, so that revoking the family revokes the
-- access tokens it handed out. NULL for rows written before this migration.
ALTER TABLE refresh_tokens ADD COLUMN access_token_id uuid NULL;
ALTER TABLE refresh_tokens ADD COLUMN access_expires_at timestamptz NULL;
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_access_token_id_idx ON refresh_tokens (access_token_id);

-- Access tokens revoked before their expiry: every authenticated request looks its `jti`
-- up here (a primary-key probe). Rows are pruned once the token would have expired anyway.
CREATE TABLE revoked_access_tokens
(
    token_id   uuid PRIMARY KEY,
    user_id    uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_access_tokens_expires_at_idx ON revoked_access_tokens (expires_at);
