-- The price breakdown and the delivery address an order was placed with, as
-- `GET /api/v1/orders/{id}` shows them: each line's discount and total, the order's
-- subtotal and shipping fee, its discounts one row each, and the address snapshot.
--
-- The address is kept as the order event holds it: sealed with the customer's key
-- (crypto-shredding). The order query opens it for the owner; once the customer is erased
-- the key is gone and it opens as erased, so no scrub is needed here.

ALTER TABLE orders
    ADD COLUMN subtotal_minor     bigint,
    ADD COLUMN shipping_fee_minor bigint NOT NULL DEFAULT 0,
    ADD COLUMN delivery_address   jsonb;

ALTER TABLE order_lines
    ADD COLUMN discount_minor bigint NOT NULL DEFAULT 0 CHECK (discount_minor >= 0);

CREATE TABLE order_discounts
(
    order_id     uuid   NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    position     int    NOT NULL,
    source       text   NOT NULL CHECK (source IN ('promotion', 'coupon')),
    discount_id  uuid   NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (order_id, position)
);
