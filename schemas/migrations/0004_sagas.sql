-- Process managers' state: one row per business transaction, with the steps it took.

CREATE TABLE sagas
(
    saga_id     uuid PRIMARY KEY,
    saga_type   text        NOT NULL,
    status      text        NOT NULL,
    data        jsonb       NOT NULL,
    deadline    timestamptz,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sagas_deadline_idx ON sagas (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX sagas_status_idx ON sagas (saga_type, status);

CREATE TABLE saga_steps
(
    saga_id uuid        NOT NULL REFERENCES sagas (saga_id) ON DELETE CASCADE,
    step_no bigserial   NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    step    text        NOT NULL,
    detail  text,
    PRIMARY KEY (saga_id, step_no)
);
