-- Guest carts and when each last changed, so that idle ones are pruned and their number
-- capped. Kept by a trigger on `events` in the same transaction as each cart event: a guest
-- cart's `CartOpened` adds its row, any later event of it moves `last_active_at`, and the
-- `GuestCartMerged` that retires it makes it prunable at once.
--
-- Pruning (`ordo_store::pruning`) deletes the rows here and the carts' events together,
-- in bounded batches; a pruned guest cart's token answers as gone.

CREATE TABLE guest_carts
(
    cart_id        uuid PRIMARY KEY,
    opened_at      timestamptz NOT NULL,
    last_active_at timestamptz NOT NULL
);
CREATE INDEX guest_carts_idle ON guest_carts (last_active_at);

INSERT INTO guest_carts (cart_id, opened_at, last_active_at)
SELECT e.aggregate_id::uuid, min(e.recorded_at), max(e.recorded_at)
  FROM events e
 WHERE e.aggregate_type = 'cart'
   AND e.aggregate_id IN (SELECT o.aggregate_id FROM events o
                           WHERE o.aggregate_type = 'cart' AND o.event_type = 'CartOpened'
                             AND o.payload -> 'CartOpened' -> 'owner' ->> 'kind' = 'guest')
 GROUP BY e.aggregate_id;
UPDATE guest_carts SET last_active_at = '-infinity'
 WHERE cart_id IN (SELECT guest_cart_id FROM merged_guest_carts);

CREATE FUNCTION events_to_guest_carts() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF NEW.aggregate_type = 'cart' THEN
        IF NEW.event_type = 'CartOpened'
           AND NEW.payload -> 'CartOpened' -> 'owner' ->> 'kind' = 'guest' THEN
            INSERT INTO guest_carts (cart_id, opened_at, last_active_at)
            VALUES (NEW.aggregate_id::uuid, NEW.recorded_at, NEW.recorded_at)
            ON CONFLICT (cart_id) DO NOTHING;
        ELSIF NEW.event_type = 'GuestCartMerged' THEN
            UPDATE guest_carts SET last_active_at = '-infinity'
             WHERE cart_id = (NEW.payload -> 'GuestCartMerged' ->> 'guest_cart_id')::uuid;
        ELSE
            UPDATE guest_carts SET last_active_at = NEW.recorded_at
             WHERE cart_id = NEW.aggregate_id::uuid;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_to_guest_carts
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_to_guest_carts();
