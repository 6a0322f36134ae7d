-- The event store (the layout postgres-es reads and writes), with the global position and
-- commit time that the outbox relay and replays need, and the outbox itself.

CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    -- Global insertion order across all aggregates; gaps are possible, order per
    -- aggregate always follows `sequence`.
    position       bigserial                    NOT NULL,
    recorded_at    timestamptz                  NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE UNIQUE INDEX events_position_idx ON events (position);
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Events committed but not yet acknowledged by JetStream. Filled by a trigger in the same
-- transaction as the event, so an event is in the outbox if and only if it committed.
CREATE TABLE outbox
(
    position bigint PRIMARY KEY
);

CREATE FUNCTION events_to_outbox() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO outbox (position) VALUES (NEW.position);
    PERFORM pg_notify('ordo_outbox', '');
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_to_outbox
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_to_outbox();

-- What each consumer has applied, per aggregate: written in the same transaction as the
-- consumer's effect, so a redelivered event is recognised and skipped.
CREATE TABLE consumer_positions
(
    consumer       text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    last_sequence  bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, aggregate_type, aggregate_id)
);
