-- The reviews read model (projection-reviews): every review of an order line with its
-- follow-up, status and reports, and each product's rating recomputed from its published
-- reviews.

CREATE TABLE product_reviews
(
    review_id   uuid PRIMARY KEY,
    sku         text        NOT NULL,
    order_id    uuid        NOT NULL,
    author_id   uuid        NOT NULL,
    rating      smallint    NOT NULL,
    comment     text        NOT NULL,
    dimensions  jsonb       NOT NULL,
    images      jsonb       NOT NULL,
    follow_up   text,
    status      text        NOT NULL,
    reports     integer     NOT NULL DEFAULT 0,
    version     bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX product_reviews_sku_idx ON product_reviews (sku, status, created_at DESC, review_id DESC);

CREATE TABLE product_ratings
(
    sku           text PRIMARY KEY,
    total_reviews integer NOT NULL,
    rating_sum    integer NOT NULL,
    stars_1       integer NOT NULL,
    stars_2       integer NOT NULL,
    stars_3       integer NOT NULL,
    stars_4       integer NOT NULL,
    stars_5       integer NOT NULL
);
