-- The catalog: products (SPUs) with several SKUs, the category tree, listing and delisting,
-- purchase limits per customer.
--
-- Read side: `products` keeps one row per SKU, now with the product it belongs to, its
-- specification, weight, limit, whether it is on sale, and the product's media and tree
-- category; `categories` is the tree as browsed.
--
-- Write side: four small tables that commands read their cross-aggregate facts from. They
-- are kept by a trigger on `events`, so each changes in the same transaction as the event
-- that changes it (no read model, no lag):
--   catalog_skus                which product owns a SKU (its key refuses a SKU in two products)
--   catalog_category_tree       every category's parent, and whether it was deleted
--   catalog_product_categories  the tree category a product is filed under
--   order_purchases             the units of each SKU on each order, and whether the order
--                               still counts towards purchase limits (not cancelled,
--                               rejected or expired)

ALTER TABLE products
    ADD COLUMN product_id       text,
    ADD COLUMN spec             jsonb   NOT NULL DEFAULT '{}',
    ADD COLUMN weight_grams     bigint,
    ADD COLUMN max_per_customer bigint,
    ADD COLUMN on_sale          boolean NOT NULL DEFAULT true,
    ADD COLUMN media            text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN category_id      uuid;
UPDATE products SET product_id = sku;
ALTER TABLE products ALTER COLUMN product_id SET NOT NULL;
CREATE INDEX products_product_id_idx ON products (product_id);
CREATE INDEX products_category_id_sku_idx ON products (category_id, sku);

CREATE TABLE categories
(
    category_id uuid PRIMARY KEY,
    name        text        NOT NULL,
    parent_id   uuid,
    version     bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX categories_parent_name_idx ON categories (parent_id, name);

CREATE TABLE catalog_skus
(
    sku        text PRIMARY KEY,
    product_id text NOT NULL
);

CREATE TABLE catalog_category_tree
(
    category_id uuid PRIMARY KEY,
    parent_id   uuid,
    deleted     boolean NOT NULL DEFAULT false
);
CREATE INDEX catalog_category_tree_parent_idx ON catalog_category_tree (parent_id) WHERE NOT deleted;

CREATE TABLE catalog_product_categories
(
    product_id  text PRIMARY KEY,
    category_id uuid NOT NULL
);
CREATE INDEX catalog_product_categories_category_idx ON catalog_product_categories (category_id);

CREATE TABLE order_purchases
(
    order_id    uuid    NOT NULL,
    sku         text    NOT NULL,
    customer_id uuid    NOT NULL,
    quantity    bigint  NOT NULL,
    counts      boolean NOT NULL DEFAULT true,
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX order_purchases_customer_sku_idx ON order_purchases (customer_id, sku) WHERE counts;

CREATE FUNCTION events_to_catalog_write_side() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    body json := NEW.payload -> NEW.event_type;
BEGIN
    IF NEW.aggregate_type = 'product' AND NEW.event_type = 'ProductCreated' THEN
        IF NEW.event_version = '1' THEN
            INSERT INTO catalog_skus (sku, product_id) VALUES (body ->> 'sku', NEW.aggregate_id);
        ELSE
            INSERT INTO catalog_skus (sku, product_id)
            SELECT s ->> 'sku', NEW.aggregate_id FROM json_array_elements(body -> 'skus') s;
            IF body ->> 'category_id' IS NOT NULL THEN
                INSERT INTO catalog_product_categories (product_id, category_id)
                VALUES (NEW.aggregate_id, (body ->> 'category_id')::uuid);
            END IF;
        END IF;
    ELSIF NEW.aggregate_type = 'category' THEN
        IF NEW.event_type = 'CategoryCreated' THEN
            INSERT INTO catalog_category_tree (category_id, parent_id)
            VALUES (NEW.aggregate_id::uuid, (body ->> 'parent_id')::uuid);
        ELSIF NEW.event_type = 'CategoryMoved' THEN
            UPDATE catalog_category_tree SET parent_id = (body ->> 'parent_id')::uuid
            WHERE category_id = NEW.aggregate_id::uuid;
        ELSIF NEW.event_type = 'CategoryDeleted' THEN
            UPDATE catalog_category_tree SET deleted = true
            WHERE category_id = NEW.aggregate_id::uuid;
        END IF;
    ELSIF NEW.aggregate_type = 'order' THEN
        IF NEW.event_type = 'OrderPlaced' THEN
            INSERT INTO order_purchases (order_id, sku, customer_id, quantity)
            SELECT NEW.aggregate_id::uuid, l ->> 'sku', (body ->> 'customer_id')::uuid,
                   (l ->> 'quantity')::bigint
            FROM json_array_elements(body -> 'lines') l
            ON CONFLICT DO NOTHING;
        ELSIF NEW.event_type IN ('OrderCancelled', 'OrderRejected', 'OrderExpired') THEN
            UPDATE order_purchases SET counts = false WHERE order_id = NEW.aggregate_id::uuid;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_to_catalog_write_side
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_to_catalog_write_side();

-- What was stored before this migration: single-SKU products and the orders so far.
INSERT INTO catalog_skus (sku, product_id)
SELECT payload -> 'ProductCreated' ->> 'sku', aggregate_id
FROM events
WHERE aggregate_type = 'product' AND event_type = 'ProductCreated' AND event_version = '1'
ON CONFLICT DO NOTHING;

INSERT INTO order_purchases (order_id, sku, customer_id, quantity)
SELECT e.aggregate_id::uuid, l ->> 'sku', (e.payload -> 'OrderPlaced' ->> 'customer_id')::uuid,
       (l ->> 'quantity')::bigint
FROM events e, json_array_elements(e.payload -> 'OrderPlaced' -> 'lines') l
WHERE e.aggregate_type = 'order' AND e.event_type = 'OrderPlaced'
ON CONFLICT DO NOTHING;

UPDATE order_purchases p SET counts = false
WHERE EXISTS (SELECT 1 FROM events e
              WHERE e.aggregate_type = 'order' AND e.aggregate_id = p.order_id::text
                AND e.event_type IN ('OrderCancelled', 'OrderRejected', 'OrderExpired'));
