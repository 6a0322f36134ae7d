-- One event-shaped row per transaction into a table without triggers: the ceiling. Run by
-- pgbench; see BENCHMARKS.md.
INSERT INTO plain_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
VALUES ('bench', md5(random()::text || clock_timestamp()::text), 1, 'BenchEvent', '1.0',
        '{"BenchEvent":{"n":1}}', '{"correlation_id":"6b1d1c2e-0000-4000-8000-000000000001"}');
