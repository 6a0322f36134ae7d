-- The shipments read model (projection-shipments): each order's shipments with their
-- carrier, tracking number and status, and every tracking update the carrier reported.

CREATE TABLE shipments
(
    shipment_id uuid PRIMARY KEY,
    order_id    uuid        NOT NULL,
    customer_id uuid        NOT NULL,
    status      text        NOT NULL,
    carrier     text,
    tracking_no text,
    version     bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX shipments_order_idx ON shipments (order_id, created_at);
CREATE INDEX shipments_status_idx ON shipments (status, updated_at);

CREATE TABLE shipment_tracking
(
    shipment_id uuid        NOT NULL,
    -- The event's sequence within its shipment: one row per tracking update.
    sequence    bigint      NOT NULL,
    status      text        NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (shipment_id, sequence)
);
