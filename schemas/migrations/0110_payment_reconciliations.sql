-- Reconciliation of payments with the provider's daily statements: every run of a day,
-- with the discrepancies it found (a missed capture it applied among them).

CREATE TABLE payment_reconciliation_runs
(
    run_id           uuid PRIMARY KEY,
    run_date         date        NOT NULL,
    ran_at           timestamptz NOT NULL,
    provider_entries integer     NOT NULL,
    ordo_entries     integer     NOT NULL,
    matched          integer     NOT NULL,
    applied          integer     NOT NULL
);
CREATE INDEX payment_reconciliation_runs_date_idx
    ON payment_reconciliation_runs (run_date, ran_at DESC);

CREATE TABLE payment_reconciliation_discrepancies
(
    run_id          uuid    NOT NULL REFERENCES payment_reconciliation_runs ON DELETE CASCADE,
    position        integer NOT NULL,
    kind            text    NOT NULL,
    payment_id      uuid    NOT NULL,
    refund_id       uuid,
    provider_amount bigint,
    ordo_amount     bigint,
    currency        text    NOT NULL,
    applied         boolean NOT NULL,
    detail          text    NOT NULL,
    PRIMARY KEY (run_id, position)
);
