-- Search without Elasticsearch: trigram similarity on product names gives typo tolerance
-- ("hedphones" still finds "headphones") beside the full-text `search` column.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX products_name_trgm_idx ON products USING gin (lower(name) gin_trgm_ops);

-- Each user's inbox, filled by the notifications consumers. The id is derived from the
-- event that caused the notification, so a redelivered event cannot add a second entry.
CREATE TABLE notifications
(
    notification_id uuid PRIMARY KEY,
    user_id         uuid        NOT NULL,
    kind            text        NOT NULL,
    title           text        NOT NULL,
    body            text        NOT NULL,
    data            jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    read_at         timestamptz,
    -- Set once the email copy is in the mail spool; NULL rows are retried on redelivery.
    mailed_at       timestamptz
);
CREATE INDEX notifications_user_created_idx ON notifications (user_id, created_at DESC, notification_id DESC);
CREATE INDEX notifications_user_unread_idx ON notifications (user_id, created_at DESC) WHERE read_at IS NULL;

-- Who an aggregate's notifications go to: later events (OrderConfirmed, PaymentCaptured...)
-- do not carry the customer, so the first event of each aggregate records it here.
CREATE TABLE notification_recipients
(
    aggregate_type text  NOT NULL,
    aggregate_id   text  NOT NULL,
    user_id        uuid  NOT NULL,
    data           jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Live delivery: every new inbox entry is announced on channel `ordo_notifications` when
-- its transaction commits, so a gateway in any process can push it to the user's open
-- Server-Sent Events streams.
CREATE FUNCTION notifications_announce() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('ordo_notifications',
                      json_build_object('notification_id', NEW.notification_id,
                                        'user_id', NEW.user_id)::text);
    RETURN NEW;
END;
$$;

CREATE TRIGGER notifications_announce
    AFTER INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION notifications_announce();
