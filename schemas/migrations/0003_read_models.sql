-- Read models of the commerce side, built by the projection workers from the event streams.
-- Each row keeps the version (aggregate sequence) it reflects.

CREATE TABLE products
(
    sku          text PRIMARY KEY,
    name         text        NOT NULL,
    description  text        NOT NULL,
    category     text        NOT NULL,
    price_minor  bigint      NOT NULL,
    currency     text        NOT NULL,
    version      bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', coalesce(name, '')), 'A') ||
        setweight(to_tsvector('simple', coalesce(category, '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(description, '')), 'C')) STORED
);
CREATE INDEX products_category_sku_idx ON products (category, sku);
CREATE INDEX products_search_idx ON products USING gin (search);

CREATE TABLE inventory_levels
(
    sku        text PRIMARY KEY,
    on_hand    bigint      NOT NULL CHECK (on_hand >= 0),
    reserved   bigint      NOT NULL CHECK (reserved >= 0),
    available  bigint GENERATED ALWAYS AS (on_hand - reserved) STORED,
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE orders
(
    order_id     uuid PRIMARY KEY,
    customer_id  uuid        NOT NULL,
    status       text        NOT NULL,
    total_minor  bigint      NOT NULL,
    currency     text        NOT NULL,
    reason       text,
    short_skus   text[]      NOT NULL DEFAULT '{}',
    payment_id   uuid,
    version      bigint      NOT NULL,
    placed_at    timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX orders_customer_placed_idx ON orders (customer_id, placed_at DESC, order_id DESC);
CREATE INDEX orders_status_idx ON orders (status);

CREATE TABLE order_lines
(
    order_id         uuid   NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_no          int    NOT NULL,
    sku              text   NOT NULL,
    quantity         int    NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint NOT NULL,
    currency         text   NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- The last command each user issued, so that `Prefer: wait=N` on a later query can wait for
-- the read model to reflect it.
CREATE TABLE last_writes
(
    user_id        uuid PRIMARY KEY,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    version        bigint      NOT NULL,
    written_at     timestamptz NOT NULL DEFAULT now()
);
