-- The customer directory read model: one row per customer with their profile opened from the
-- sealed events through the personal-data vault. Erasing a user sets its personal columns to
-- NULL in the erasure's own transaction, and a rebuild after erasure writes NULL again (the
-- values open as erased).
CREATE TABLE customer_directory
(
    user_id       uuid PRIMARY KEY,
    full_name     text,
    phone         text,
    address_count integer     NOT NULL DEFAULT 0 CHECK (address_count >= 0),
    version       bigint      NOT NULL,
    updated_at    timestamptz NOT NULL
);
