-- A paid booking's owner may ask for a refund, which an admin approves or rejects. The
-- bookings read model keeps where the latest request stands (requested, withdrawn,
-- rejected or approved) and its reason, so admins can list the open ones.
ALTER TABLE bookings
    ADD COLUMN IF NOT EXISTS refund_request        text,
    ADD COLUMN IF NOT EXISTS refund_request_reason text;
CREATE INDEX IF NOT EXISTS bookings_open_refund_requests_idx
    ON bookings (updated_at, booking_id) WHERE refund_request = 'requested';
