-- The shipping fee rules: one set, replaced whole by an admin's command in one transaction.
-- Write-side configuration: the checkout reads it to price every delivery, and an order
-- records the fee it was placed with.

CREATE TABLE shipping_rule_set
(
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    currency    text        NOT NULL,
    version     bigint      NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now(),
    replaced_by uuid
);

CREATE TABLE shipping_rules
(
    position          integer PRIMARY KEY,
    name              text    NOT NULL,
    provinces         text[]  NOT NULL,
    base_fee          bigint  NOT NULL CHECK (base_fee >= 0),
    base_weight_grams bigint  NOT NULL CHECK (base_weight_grams >= 0),
    fee_per_extra_kg  bigint  NOT NULL CHECK (fee_per_extra_kg >= 0),
    free_over         bigint CHECK (free_over >= 0)
);
