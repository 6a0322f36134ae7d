-- Promotions and coupons.
--
-- Read side: `promotions` (one row per promotion with its rule's fields as columns),
-- `coupon_batches` (terms and how many coupons were claimed) and `coupons` (one row per
-- claimed coupon: owner, status and the order holding or having used it).
--
-- Write side: two small tables kept by a trigger on `events`, in the same transaction as
-- the event that changes them, so commands read them without lag:
--   promotion_windows  each promotion's window end and whether it was ended, so the pricing
--                      of a cart loads only the promotions that may still apply
--   coupon_owners      which batch a coupon belongs to and who claimed it, so an order can
--                      name a coupon by its id alone

CREATE TABLE promotions
(
    promotion_id     uuid PRIMARY KEY,
    name             text        NOT NULL,
    kind             text        NOT NULL,
    currency         text        NOT NULL,
    threshold_minor  bigint,
    amount_off_minor bigint,
    percent_off      integer,
    skus             text[]      NOT NULL DEFAULT '{}',
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    ended_at         timestamptz,
    priority         integer     NOT NULL,
    exclusive        boolean     NOT NULL,
    version          bigint      NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX promotions_created_idx ON promotions (created_at DESC, promotion_id DESC);

CREATE TABLE coupon_batches
(
    batch_id        uuid PRIMARY KEY,
    name            text        NOT NULL,
    kind            text        NOT NULL,
    value           bigint      NOT NULL,
    currency        text        NOT NULL,
    min_spend_minor bigint      NOT NULL,
    quota           bigint      NOT NULL,
    per_user_limit  bigint      NOT NULL,
    claimed         bigint      NOT NULL DEFAULT 0,
    valid_from      timestamptz NOT NULL,
    valid_until     timestamptz NOT NULL,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX coupon_batches_created_idx ON coupon_batches (created_at DESC, batch_id DESC);

CREATE TABLE coupons
(
    coupon_id  uuid PRIMARY KEY,
    batch_id   uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    status     text        NOT NULL,
    order_id   uuid,
    claimed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX coupons_user_status_idx ON coupons (user_id, status, claimed_at DESC, coupon_id DESC);
CREATE INDEX coupons_user_claimed_idx ON coupons (user_id, claimed_at DESC, coupon_id DESC);

CREATE TABLE promotion_windows
(
    promotion_id uuid PRIMARY KEY,
    ends_at      timestamptz NOT NULL,
    ended_at     timestamptz
);
CREATE INDEX promotion_windows_ends_idx ON promotion_windows (ends_at);

CREATE TABLE coupon_owners
(
    coupon_id uuid PRIMARY KEY,
    batch_id  uuid NOT NULL,
    user_id   uuid NOT NULL
);

CREATE FUNCTION events_to_coupon_write_side() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    body json := NEW.payload -> NEW.event_type;
BEGIN
    IF NEW.aggregate_type = 'promotion' THEN
        IF NEW.event_type = 'PromotionCreated' THEN
            INSERT INTO promotion_windows (promotion_id, ends_at)
            VALUES (NEW.aggregate_id::uuid, (body ->> 'ends_at')::timestamptz)
            ON CONFLICT DO NOTHING;
        ELSIF NEW.event_type = 'PromotionEnded' THEN
            UPDATE promotion_windows SET ended_at = (body ->> 'ended_at')::timestamptz
            WHERE promotion_id = NEW.aggregate_id::uuid;
        END IF;
    ELSIF NEW.aggregate_type = 'coupon_batch' AND NEW.event_type = 'CouponClaimed' THEN
        INSERT INTO coupon_owners (coupon_id, batch_id, user_id)
        VALUES ((body ->> 'coupon_id')::uuid, NEW.aggregate_id::uuid, (body ->> 'user_id')::uuid)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_to_coupon_write_side
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_to_coupon_write_side();
