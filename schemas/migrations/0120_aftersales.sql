-- The after-sales read model (projection-aftersales): each request with its lines, what
-- they refund, the admin's decision, the return parcel, the refund and the replacement.

CREATE TABLE aftersales
(
    aftersale_id            uuid PRIMARY KEY,
    order_id                uuid        NOT NULL,
    customer_id             uuid        NOT NULL,
    payment_id              uuid        NOT NULL,
    kind                    text        NOT NULL,
    status                  text        NOT NULL,
    -- [{sku, quantity, refund}], refunds in minor units of `currency`.
    lines                   jsonb       NOT NULL,
    refund_minor            bigint      NOT NULL,
    currency                text        NOT NULL,
    reason                  text        NOT NULL,
    evidence                jsonb       NOT NULL,
    rejection_reason        text,
    return_carrier          text,
    return_tracking_no      text,
    refund_id               uuid,
    refund_error            text,
    replacement_shipment_id uuid,
    version                 bigint      NOT NULL,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);
CREATE INDEX aftersales_customer_idx ON aftersales (customer_id, created_at DESC, aftersale_id DESC);
CREATE INDEX aftersales_all_idx ON aftersales (created_at DESC, aftersale_id DESC);
CREATE INDEX aftersales_order_idx ON aftersales (order_id);
