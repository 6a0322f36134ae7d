-- The admins' moderation queue lists reviews by status, newest first.
CREATE INDEX IF NOT EXISTS product_reviews_status_idx
    ON product_reviews (status, created_at DESC, review_id DESC);
