-- Carts: the guest carts merged into a customer's cart, kept by a trigger on `events` in
-- the same transaction as the `GuestCartMerged` event that retires them. A guest cart listed
-- here is gone for its token's holder; its key refuses a guest cart merged into two carts.

CREATE TABLE merged_guest_carts
(
    guest_cart_id uuid PRIMARY KEY,
    cart_id       uuid        NOT NULL,
    merged_at     timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION events_to_merged_guest_carts() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF NEW.aggregate_type = 'cart' AND NEW.event_type = 'GuestCartMerged' THEN
        INSERT INTO merged_guest_carts (guest_cart_id, cart_id)
        VALUES ((NEW.payload -> 'GuestCartMerged' ->> 'guest_cart_id')::uuid, NEW.aggregate_id::uuid);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_to_merged_guest_carts
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_to_merged_guest_carts();
