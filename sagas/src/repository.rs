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
