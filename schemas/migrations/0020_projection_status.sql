-- What each projection has applied, and the state of its rebuilds.

-- One row per projection that was ever rebuilt: `rebuilding` while its shadow tables fill,
-- `live` once switched, `failed` (with the error) when a rebuild gave up; the live tables
-- are untouched unless the switch committed.
CREATE TABLE projection_rebuilds
(
    projection     text PRIMARY KEY,
    state          text        NOT NULL CHECK (state IN ('rebuilding', 'live', 'failed')),
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    events_applied bigint      NOT NULL DEFAULT 0,
    error          text
);

-- Each projection's position: aggregates it has applied events of, how many events, and
-- when it last applied one. The lag in JetStream (pending messages) comes from the server.
CREATE VIEW projection_status AS
SELECT p.consumer              AS projection,
       p.aggregate_type,
       count(*)                AS aggregates_applied,
       sum(p.last_sequence)    AS events_applied,
       max(p.updated_at)       AS last_applied_at
FROM consumer_positions p
WHERE p.consumer LIKE 'projection-%'
GROUP BY p.consumer, p.aggregate_type;
