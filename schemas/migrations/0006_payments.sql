-- The payments read model.

CREATE TABLE payments
(
    payment_id     uuid PRIMARY KEY,
    order_id       uuid        NOT NULL,
    customer_id    uuid        NOT NULL,
    status         text        NOT NULL,
    amount_minor   bigint      NOT NULL,
    currency       text        NOT NULL,
    method         text        NOT NULL,
    provider_ref   text,
    refunded_minor bigint      NOT NULL DEFAULT 0,
    reason         text,
    version        bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX payments_order_idx ON payments (order_id);
