-- Snapshots of aggregates with long histories (store/src/snapshots.rs): one row per
-- aggregate, its state as JSON at `last_sequence`, written with the events of the batch
-- that made it due, so it never runs ahead of them. Loading reads it and only the events
-- after it. The payload is kept as `json` (its text): loading reads the text and parses it
-- once into the aggregate, with no conversion on either side.
CREATE TABLE IF NOT EXISTS aggregate_snapshots
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    last_sequence  bigint      NOT NULL CHECK (last_sequence > 0),
    payload        json        NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);
