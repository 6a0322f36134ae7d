-- Crypto-shredding: one key per data subject (user), held outside the event store. Personal
-- values in events are sealed with their subject's key; erasing the subject deletes the key
-- (the row stays, with key NULL and erased_at set, so that nothing is sealed for that subject
-- again) and every sealed value of theirs becomes unreadable for good.
CREATE TABLE personal_data_keys
(
    subject_id uuid PRIMARY KEY,
    -- The subject's 256-bit key, wrapped with the key derived from the operator's secret when
    -- one is configured (12-byte nonce, then ciphertext and tag); NULL once erased.
    key        bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);

-- When an account was erased (anonymised: email, name and password gone).
ALTER TABLE users ADD COLUMN erased_at timestamptz;
