-- Checkout quotes: what a customer was shown by `POST /api/v1/orders/prepare`, kept on the
-- write side so that `POST /api/v1/orders {quote_id}` can place exactly that order, or refuse
-- it with the new prices when they changed. A quote belongs to one customer and expires.

CREATE TABLE checkout_quotes
(
    quote_id    uuid PRIMARY KEY,
    customer_id uuid        NOT NULL,
    -- The checkout request priced: items or from_cart, coupon_ids, address_id.
    request     jsonb       NOT NULL,
    -- What the customer was shown (lines, discounts, shipping_fee, total, currency).
    quoted      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX checkout_quotes_expiry ON checkout_quotes (expires_at);
