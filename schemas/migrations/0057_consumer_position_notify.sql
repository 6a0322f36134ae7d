-- `Prefer: wait` is woken by notification instead of polling: every write of a consumer's
-- position announces it on the `ordo_consumer_positions` channel, and each gateway process
-- holds one LISTEN connection that wakes the requests waiting for that position.
--
-- The cost per applied event is one small payload (well under 200 bytes) queued by
-- pg_notify and delivered when the consumer's transaction commits; no table is written and
-- nothing is read. A payload that would not fit NOTIFY's 8000 bytes is not sent (the
-- waiter then times out): the consumer's transaction never fails because of it.
-- A projection rebuild's switch rewrites all of its positions in one statement and so
-- announces each of them once, at its commit.
CREATE FUNCTION consumer_positions_notify() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    payload text := json_build_object('c', NEW.consumer, 't', NEW.aggregate_type,
                                      'i', NEW.aggregate_id, 's', NEW.last_sequence)::text;
BEGIN
    IF octet_length(payload) < 7900 THEN
        PERFORM pg_notify('ordo_consumer_positions', payload);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER consumer_positions_notify
    AFTER INSERT OR UPDATE OF last_sequence ON consumer_positions
    FOR EACH ROW
EXECUTE FUNCTION consumer_positions_notify();
