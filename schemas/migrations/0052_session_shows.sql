-- The show each session belongs to, kept by the seat stock policy from the shows'
-- SessionAdded events: write-side state of the processes, which find a booked session's
-- show (and so its seat prices, from the Show aggregate) without reading a read model.
CREATE TABLE session_shows
(
    session_id  uuid PRIMARY KEY,
    show_id     uuid        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The sessions added before this table existed, from the event store itself.
INSERT INTO session_shows (session_id, show_id)
SELECT (payload -> 'SessionAdded' ->> 'session_id')::uuid, aggregate_id::uuid
FROM events
WHERE aggregate_type = 'show' AND event_type = 'SessionAdded'
ON CONFLICT (session_id) DO NOTHING;
