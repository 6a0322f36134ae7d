//! Saga rows in Postgres: status, data, deadline, last error, and the log of steps taken.
//! Written in the same transaction that records the triggering event as applied.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A saga as an operator sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SagaView {
    /// The saga id (the order or booking id).
    pub saga_id: Uuid,
    /// `checkout` or `booking`.
    pub saga_type: String,
    /// Where it stands.
    pub status: String,
    /// Its working data.
    pub data: serde_json::Value,
    /// When it times out, if it waits for something.
    pub deadline: Option<DateTime<Utc>>,
    /// The last error met, if any.
    pub last_error: Option<String>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The steps taken, oldest first.
    #[sqlx(skip)]
    pub steps: Vec<SagaStep>,
}

/// One step of a saga.
#[derive(Debug, Clone, Serialize)]
pub struct SagaStep {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// What was done (`reserve_stock`, `confirm_order`...).
    pub step: String,
    /// Details (the SKU, the refusal...).
    pub detail: Option<String>,
}

/// Creates the saga row unless it exists. Answers whether it was created.
pub async fn start(
    conn: &mut PgConnection,
    saga_id: Uuid,
    saga_type: &str,
    status: &str,
    data: &serde_json::Value,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO sagas (saga_id, saga_type, status, data) VALUES ($1, $2, $3, $4)
         ON CONFLICT (saga_id) DO NOTHING",
    )
    .bind(saga_id)
    .bind(saga_type)
    .bind(status)
    .bind(data)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Sets the saga's status and deadline, clearing its last error.
pub async fn set_status(
    conn: &mut PgConnection,
    saga_id: Uuid,
    status: &str,
    deadline: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sagas SET status = $2, deadline = $3, last_error = NULL, updated_at = now()
         WHERE saga_id = $1",
    )
    .bind(saga_id)
    .bind(status)
    .bind(deadline)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the saga to `status` (with `deadline`, clearing its last error) only from one of
/// `from`: a process fed by two streams receives their events in no order between them, so
/// a late event of one never sets back what an event of the other already advanced.
pub async fn advance(
    conn: &mut PgConnection,
    saga_id: Uuid,
    from: &[&str],
    status: &str,
    deadline: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sagas SET status = $2, deadline = $3, last_error = NULL, updated_at = now()
         WHERE saga_id = $1 AND status = ANY($4)",
    )
    .bind(saga_id)
    .bind(status)
    .bind(deadline)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a step in the saga's log.
pub async fn log_step(
    conn: &mut PgConnection,
    saga_id: Uuid,
    step: &str,
    detail: Option<String>,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO saga_steps (saga_id, step, detail) VALUES ($1, $2, $3)")
        .bind(saga_id)
        .bind(step)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records an error outside the step's transaction, so that it stays visible even though
/// the step is rolled back and retried.
pub async fn record_error(pool: &PgPool, saga_id: Uuid, error: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE sagas SET last_error = $2, updated_at = now() WHERE saga_id = $1")
        .bind(saga_id)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// Stops a saga whose step keeps failing: status `stuck`, the error kept, the status it
/// had remembered so that [`resume`] can put it back.
pub async fn mark_stuck(pool: &PgPool, saga_id: Uuid, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sagas SET
            data = CASE WHEN status = 'stuck' THEN data
                        ELSE jsonb_set(data, '{resume_status}', to_jsonb(status)) END,
            status = 'stuck', last_error = $2, updated_at = now()
         WHERE saga_id = $1",
    )
    .bind(saga_id)
    .bind(error)
    .execute(pool)
    .await?;
    sqlx::query("INSERT INTO saga_steps (saga_id, step, detail) VALUES ($1, 'stuck', $2)")
        .bind(saga_id)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// Puts a stuck saga back in the status it had. Answers false when it was not stuck.
pub async fn resume(pool: &PgPool, saga_id: Uuid) -> sqlx::Result<bool> {
    let resumed = sqlx::query(
        "UPDATE sagas SET status = coalesce(data->>'resume_status', 'reserving'),
            data = data - 'resume_status', updated_at = now()
         WHERE saga_id = $1 AND status = 'stuck'",
    )
    .bind(saga_id)
    .execute(pool)
    .await?;
    if resumed.rows_affected() == 1 {
        sqlx::query("INSERT INTO saga_steps (saga_id, step) VALUES ($1, 'resumed')")
            .bind(saga_id)
            .execute(pool)
            .await?;
    }
    Ok(resumed.rows_affected() == 1)
}

/// Loads a saga with its steps.
pub async fn find(pool: &PgPool, saga_id: Uuid) -> sqlx::Result<Option<SagaView>> {
    let saga: Option<SagaView> = sqlx::query_as(
        "SELECT saga_id, saga_type, status, data, deadline, last_error, created_at, updated_at
         FROM sagas WHERE saga_id = $1",
    )
    .bind(saga_id)
    .fetch_optional(pool)
    .await?;
    let Some(mut saga) = saga else {
        return Ok(None);
    };
    let steps: Vec<(DateTime<Utc>, String, Option<String>)> = sqlx::query_as(
        "SELECT at, step, detail FROM saga_steps WHERE saga_id = $1 ORDER BY step_no",
    )
    .bind(saga_id)
    .fetch_all(pool)
    .await?;
    saga.steps = steps
        .into_iter()
        .map(|(at, step, detail)| SagaStep { at, step, detail })
        .collect();
    Ok(Some(saga))
}

/// Sagas of `saga_type` in one of `statuses` whose deadline has passed, earliest first, at
/// most `limit`: their ids and statuses.
pub async fn overdue(
    pool: &PgPool,
    saga_type: &str,
    statuses: &[&str],
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    sqlx::query_as(
        "SELECT saga_id, status FROM sagas
         WHERE saga_type = $1 AND status = ANY($2) AND deadline <= now()
         ORDER BY deadline LIMIT $3",
    )
    .bind(saga_type)
    .bind(statuses)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Clears the deadline of a saga still in `status`: the deadline was handled, and the event
/// that follows drives what comes next.
pub async fn clear_deadline(pool: &PgPool, saga_id: Uuid, status: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sagas SET deadline = NULL, updated_at = now()
         WHERE saga_id = $1 AND status = $2",
    )
    .bind(saga_id)
    .bind(status)
    .execute(pool)
    .await?;
    Ok(())
}

/// A saga's data, read inside the caller's transaction; `None` before it started.
pub async fn data(
    conn: &mut sqlx::PgConnection,
    saga_id: Uuid,
) -> sqlx::Result<Option<serde_json::Value>> {
    sqlx::query_scalar("SELECT data FROM sagas WHERE saga_id = $1")
        .bind(saga_id)
        .fetch_optional(conn)
        .await
}

/// A saga's status, read inside the caller's transaction; `None` when there is no such saga.
pub async fn status(conn: &mut sqlx::PgConnection, saga_id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT status FROM sagas WHERE saga_id = $1")
        .bind(saga_id)
        .fetch_optional(conn)
        .await
}

/// A saga's type, read inside the caller's transaction; `None` when there is no such saga.
pub async fn saga_type(
    conn: &mut sqlx::PgConnection,
    saga_id: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT saga_type FROM sagas WHERE saga_id = $1")
        .bind(saga_id)
        .fetch_optional(conn)
        .await
}

// Reconciliation of payments with the provider's statements.

/// The captures and refunds the event store recorded on `date` (UTC), oldest first.
pub async fn payment_movements(
    pool: &PgPool,
    date: chrono::NaiveDate,
) -> sqlx::Result<Vec<crate::reconciliation::OrdoMovement>> {
    use crate::provider::MovementKind;
    let start = date.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = start + chrono::Duration::days(1);
    let rows: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT aggregate_id, event_type, payload::jsonb FROM events
         WHERE aggregate_type = 'payment'
           AND event_type IN ('PaymentCaptured', 'PaymentRefunded')
           AND recorded_at >= $1 AND recorded_at < $2
         ORDER BY position",
    )
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(payment_id, event_type, payload)| {
            let body = payload.get(&event_type)?;
            let amount = body.get("amount")?;
            Some(crate::reconciliation::OrdoMovement {
                kind: if event_type == "PaymentCaptured" {
                    MovementKind::Capture
                } else {
                    MovementKind::Refund
                },
                payment_id: payment_id.parse().ok()?,
                refund_id: body
                    .get("refund_id")
                    .and_then(|id| id.as_str())
                    .and_then(|id| id.parse().ok()),
                amount: amount.get("amount_minor")?.as_i64()?,
                currency: amount.get("currency")?.as_str()?.to_string(),
            })
        })
        .collect())
}

/// Keeps a reconciliation run and its discrepancies.
pub async fn save_reconciliation(
    pool: &PgPool,
    report: &crate::reconciliation::ReconciliationReport,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO payment_reconciliation_runs
            (run_id, run_date, ran_at, provider_entries, ordo_entries, matched, applied)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(report.run_id)
    .bind(report.date)
    .bind(report.ran_at)
    .bind(report.provider_entries)
    .bind(report.ordo_entries)
    .bind(report.matched)
    .bind(report.applied)
    .execute(&mut *tx)
    .await?;
    for (position, d) in report.discrepancies.iter().enumerate() {
        sqlx::query(
            "INSERT INTO payment_reconciliation_discrepancies
                (run_id, position, kind, payment_id, refund_id, provider_amount, ordo_amount,
                 currency, applied, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(report.run_id)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(d.kind.as_str())
        .bind(d.payment_id)
        .bind(d.refund_id)
        .bind(d.provider_amount)
        .bind(d.ordo_amount)
        .bind(&d.currency)
        .bind(d.applied)
        .bind(&d.detail)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// The latest reconciliation run of `date` with its discrepancies, and how many runs the
/// day had.
pub async fn latest_reconciliation(
    pool: &PgPool,
    date: chrono::NaiveDate,
) -> sqlx::Result<Option<(crate::reconciliation::ReconciliationReport, i64)>> {
    use crate::reconciliation::{Discrepancy, DiscrepancyKind, ReconciliationReport};
    type Run = (Uuid, DateTime<Utc>, i32, i32, i32, i32, i64);
    let run: Option<Run> = sqlx::query_as(
        "SELECT run_id, ran_at, provider_entries, ordo_entries, matched, applied,
                count(*) OVER () AS runs
         FROM payment_reconciliation_runs WHERE run_date = $1
         ORDER BY ran_at DESC, run_id LIMIT 1",
    )
    .bind(date)
    .fetch_optional(pool)
    .await?;
    let Some((run_id, ran_at, provider_entries, ordo_entries, matched, applied, runs)) = run else {
        return Ok(None);
    };
    type Row = (
        String,
        Uuid,
        Option<Uuid>,
        Option<i64>,
        Option<i64>,
        String,
        bool,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT kind, payment_id, refund_id, provider_amount, ordo_amount, currency, applied,
                detail
         FROM payment_reconciliation_discrepancies WHERE run_id = $1 ORDER BY position",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    let discrepancies = rows
        .into_iter()
        .filter_map(
            |(
                kind,
                payment_id,
                refund_id,
                provider_amount,
                ordo_amount,
                currency,
                applied,
                detail,
            )| {
                Some(Discrepancy {
                    kind: DiscrepancyKind::parse(&kind)?,
                    payment_id,
                    refund_id,
                    provider_amount,
                    ordo_amount,
                    currency,
                    applied,
                    detail,
                })
            },
        )
        .collect();
    Ok(Some((
        ReconciliationReport {
            run_id,
            date,
            ran_at,
            provider_entries,
            ordo_entries,
            matched,
            applied,
            discrepancies,
        },
        runs,
    )))
}
