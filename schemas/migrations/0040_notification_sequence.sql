-- Resumable notification streams: every inbox entry gets `seq`, a number that orders one
-- user's entries in the order their transactions committed. A Server-Sent Events client
-- that reconnects with the last number it saw (Last-Event-ID) is sent the entries above it.
--
-- A plain bigserial would not do: its number is drawn at insert, and the notifications
-- consumers insert from many transactions at once (three streams, several lanes each), so
-- an entry with a smaller number can commit after a client has already seen a larger one,
-- and a resume from the larger would skip it for good. Instead, a BEFORE INSERT trigger
-- draws the number from the owner's row in `notification_sequences` by updating it. That
-- row lock is held until the inserting transaction ends, so transactions adding entries
-- for the same user run one after the other and commit in the order of their numbers:
-- whoever sees a user's entry n committed also sees every entry of that user below n.
-- Different users never wait for each other. A number may be left unused (an insert that
-- conflicts on notification_id draws one too); clients only rely on the order.

-- The last number given to each user's entries.
CREATE TABLE notification_sequences
(
    user_id  uuid PRIMARY KEY,
    last_seq bigint NOT NULL
);

ALTER TABLE notifications ADD COLUMN seq bigint;

-- Entries written before this migration: numbered per user in the order they happened.
UPDATE notifications n
SET seq = numbered.seq
FROM (SELECT notification_id,
             row_number() OVER (PARTITION BY user_id ORDER BY created_at, notification_id) AS seq
      FROM notifications) numbered
WHERE n.notification_id = numbered.notification_id;

INSERT INTO notification_sequences (user_id, last_seq)
SELECT user_id, max(seq)
FROM notifications
GROUP BY user_id;

ALTER TABLE notifications ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX notifications_user_seq_idx ON notifications (user_id, seq);

-- Numbers every new entry; whatever `seq` the writer gave is replaced.
CREATE FUNCTION notifications_number() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO notification_sequences AS s (user_id, last_seq)
    VALUES (NEW.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET last_seq = s.last_seq + 1
    RETURNING s.last_seq INTO NEW.seq;
    RETURN NEW;
END;
$$;

CREATE TRIGGER notifications_number
    BEFORE INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION notifications_number();

-- The announcement carries the number too, so a stream that has already sent an entry
-- (while replaying) can tell without a query.
CREATE OR REPLACE FUNCTION notifications_announce() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('ordo_notifications',
                      json_build_object('notification_id', NEW.notification_id,
                                        'user_id', NEW.user_id,
                                        'seq', NEW.seq)::text);
    RETURN NEW;
END;
$$;
