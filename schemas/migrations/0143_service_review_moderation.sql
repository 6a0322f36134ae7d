-- A provider's review is moderated like a product's: one holding a sensitive word waits for
-- an admin (pending_moderation), an admin may reject one, and only published reviews count
-- in the provider's rating. Reviews written before this migration are published.
ALTER TABLE service_reviews
    ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'published';
CREATE INDEX IF NOT EXISTS service_reviews_status_idx
    ON service_reviews (status, reviewed_at DESC, order_id DESC);
