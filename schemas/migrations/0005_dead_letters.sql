-- Aggregates parked behind a dead letter, per consumer. While a row exists, the consumer
-- dead-letters every later event of that aggregate at once (marked parked) instead of
-- handling it, so the aggregate's events stay in order; a re-drive deletes the row and
-- republishes the dead letters in order.

CREATE TABLE dead_letter_parks
(
    consumer       text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    -- The dead-letter stream sequence of the first dead letter, the one the rest wait behind.
    dlq_sequence   bigint      NOT NULL,
    error          text        NOT NULL,
    parked_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, aggregate_type, aggregate_id)
);
