-- Read models of the marketplace: the provider directory (no personal values: the name,
-- phone and bio stay sealed in the events), service orders, their reviews, and each
-- provider's rating.

CREATE TABLE provider_directory
(
    provider_id      uuid PRIMARY KEY,
    status           text        NOT NULL,
    skills           text[]      NOT NULL DEFAULT '{}',
    service_areas    text[]      NOT NULL DEFAULT '{}',
    rejection_reason text        NULL,
    version          bigint      NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX provider_directory_status_idx ON provider_directory (status, updated_at, provider_id);

CREATE TABLE provider_certifications
(
    certification_id uuid PRIMARY KEY,
    provider_id      uuid        NOT NULL,
    name             text        NOT NULL,
    file_url         text        NOT NULL,
    submitted_at     timestamptz NOT NULL
);
CREATE INDEX provider_certifications_provider_idx ON provider_certifications (provider_id, submitted_at);

CREATE TABLE service_orders
(
    order_id       uuid PRIMARY KEY,
    customer_id    uuid        NOT NULL,
    provider_id    uuid        NULL,
    title          text        NOT NULL,
    service_type   text        NOT NULL,
    price_minor    bigint      NOT NULL,
    currency       text        NOT NULL,
    location       text        NOT NULL,
    status         text        NOT NULL,
    payment_id     uuid        NULL,
    payout_id      uuid        NULL,
    payout_minor   bigint      NULL,
    refunded_minor bigint      NULL,
    version        bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX service_orders_open_idx ON service_orders (status, service_type, location, created_at);
CREATE INDEX service_orders_customer_idx ON service_orders (customer_id, created_at);
CREATE INDEX service_orders_provider_idx ON service_orders (provider_id, created_at);

CREATE TABLE service_reviews
(
    order_id        uuid PRIMARY KEY,
    provider_id     uuid        NOT NULL,
    rating          smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    professionalism smallint    NOT NULL CHECK (professionalism BETWEEN 1 AND 5),
    attitude        smallint    NOT NULL CHECK (attitude BETWEEN 1 AND 5),
    punctuality     smallint    NOT NULL CHECK (punctuality BETWEEN 1 AND 5),
    reviewed_at     timestamptz NOT NULL
);
CREATE INDEX service_reviews_provider_idx ON service_reviews (provider_id);

-- Kept from service_orders and service_reviews as each event is applied.
CREATE TABLE provider_ratings
(
    provider_id         uuid PRIMARY KEY,
    total_reviews       integer NOT NULL,
    rating_sum          integer NOT NULL,
    stars_1             integer NOT NULL,
    stars_2             integer NOT NULL,
    stars_3             integer NOT NULL,
    stars_4             integer NOT NULL,
    stars_5             integer NOT NULL,
    professionalism_sum integer NOT NULL,
    attitude_sum        integer NOT NULL,
    punctuality_sum     integer NOT NULL,
    completed_orders    integer NOT NULL
);
