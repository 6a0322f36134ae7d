//! Operator tasks shared by the `ordo` subcommands, the NATS admin service and the metrics
//! poller: projection status with JetStream lag, projection rebuilds, stream refills.

use chrono::{DateTime, Utc};
use ordo_nats::consumer::consumer_pending;
use ordo_nats::refill::{self, RefillReport};
use ordo_projections::rebuild::{self, ProjectionStatus, RebuildReport};
use serde::Serialize;

use crate::state::AppState;

/// A projection's status as operators see it: what it applied (Postgres) and what waits
/// for it (JetStream).
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionReport {
    /// Its consumer name, e.g. `projection-orders`.
    pub name: String,
    /// The aggregate type it reads.
    pub aggregate_type: String,
    /// The tables it writes.
    pub tables: Vec<String>,
    /// Aggregates it has applied events of.
    pub aggregates_applied: i64,
    /// Events it has applied.
    pub events_applied: i64,
    /// When it last applied one.
    pub last_applied_at: Option<DateTime<Utc>>,
    /// Messages its durable consumer has not been delivered yet; `None` when the consumer
    /// does not exist (no worker has started it).
    pub pending: Option<u64>,
    /// Messages delivered and not acknowledged yet.
    pub ack_pending: Option<u64>,
    /// Messages delivered more than once and not acknowledged yet.
    pub redelivered: Option<u64>,
    /// `live`, or `rebuilding`.
    pub state: String,
    /// When its last rebuild started.
    pub rebuild_started_at: Option<DateTime<Utc>>,
    /// When its last rebuild switched or failed.
    pub rebuild_finished_at: Option<DateTime<Utc>>,
    /// Why its last rebuild failed.
    pub rebuild_error: Option<String>,
}

impl ProjectionReport {
    /// Events waiting for it in JetStream (pending plus delivered but unacknowledged).
    pub fn lag(&self) -> Option<u64> {
        Some(self.pending? + self.ack_pending.unwrap_or(0))
    }
}

/// Every projection's status with its lag in JetStream.
pub async fn projection_reports(state: &AppState) -> anyhow::Result<Vec<ProjectionReport>> {
    let mut reports = Vec::new();
    for status in rebuild::status(&state.pool).await? {
        let ProjectionStatus {
            name,
            aggregate_type,
            tables,
            aggregates_applied,
            events_applied,
            last_applied_at,
            state: projection_state,
            rebuild_started_at,
            rebuild_finished_at,
            rebuild_error,
        } = status;
        let lag = consumer_pending(&state.jetstream, &state.namespace, &name, &aggregate_type)
            .await
            .ok();
        reports.push(ProjectionReport {
            pending: lag.map(|l| l.pending),
            ack_pending: lag.map(|l| l.ack_pending as u64),
            redelivered: lag.map(|l| l.redelivered as u64),
            name,
            aggregate_type,
            tables,
            aggregates_applied,
            events_applied,
            last_applied_at,
            state: projection_state,
            rebuild_started_at,
            rebuild_finished_at,
            rebuild_error,
        });
    }
    Ok(reports)
}

/// Rebuilds the projection `name` (`projection-orders` or `orders`) and switches to it.
pub async fn rebuild_projection(state: &AppState, name: &str) -> anyhow::Result<RebuildReport> {
    let projection = rebuild::find(name)?;
    rebuild::rebuild(&state.pool, projection.as_ref()).await
}

/// Refills the event stream `stream` (`ORDO_ORDER`, its namespaced name, or `order`) from
/// the event store; purges it first when `purge`.
pub async fn refill_stream(
    state: &AppState,
    stream: &str,
    purge: bool,
) -> anyhow::Result<RefillReport> {
    let aggregate_type =
        refill::aggregate_type_of(&state.namespace, stream).map_err(anyhow::Error::msg)?;
    refill::refill_stream(
        &state.jetstream,
        &state.pool,
        &state.namespace,
        aggregate_type,
        purge,
    )
    .await
}

/// Sagas by type and status.
pub async fn saga_counts(state: &AppState) -> sqlx::Result<Vec<(String, String, i64)>> {
    sqlx::query_as("SELECT saga_type, status, count(*) FROM sagas GROUP BY saga_type, status")
        .fetch_all(&state.pool)
        .await
}

/// How old the oldest unpublished event is, in seconds (0 when the outbox is empty).
pub async fn relay_lag_seconds(state: &AppState) -> sqlx::Result<f64> {
    let lag: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - min(e.recorded_at))::float8 \
         FROM outbox o JOIN events e USING (position)",
    )
    .fetch_one(&state.pool)
    .await?;
    Ok(lag.unwrap_or(0.0).max(0.0))
}

/// Dead letters per consumer, counted from the dead-letter stream's subjects.
pub async fn dead_letter_counts(state: &AppState) -> anyhow::Result<Vec<(String, u64)>> {
    use futures::TryStreamExt;
    let stream = state
        .jetstream
        .get_stream(state.namespace.dlq_stream())
        .await?;
    let prefix = state.namespace.dlq_subject("");
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(state.namespace.dlq_filter())
        .await?
        .try_collect()
        .await?;
    Ok(subjects
        .into_iter()
        .map(|(subject, count)| {
            (
                subject.strip_prefix(&prefix).unwrap_or(&subject).to_owned(),
                count as u64,
            )
        })
        .collect())
}
