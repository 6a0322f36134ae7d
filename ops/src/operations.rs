//! Operator tasks shared by the `ordo` subcommands, the NATS admin service and the metrics
//! poller: projection status with JetStream lag, projection and search index rebuilds,
//! stream refills.

use chrono::{DateTime, Utc};
use ordo_nats::consumer::consumer_pending;
use ordo_nats::refill::{self, RefillReport};
use ordo_projections::rebuild::{self, ProjectionStatus, RebuildReport};
use serde::Serialize;

use ordo_projections::search::elastic::{self, IndexRebuildReport, SearchIndex};
use ordo_projections::search::SearchEngine;

use crate::OpsContext;

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
    /// Events its last rebuild applied so far (of `events_total`): the rebuild's progress.
    pub rebuild_events_applied: Option<i64>,
    /// Events a rebuild applies: those of its aggregate type in the store (documents, for a
    /// search index).
    pub events_total: Option<i64>,
}

impl ProjectionReport {
    /// Events waiting for it in JetStream (pending plus delivered but unacknowledged).
    pub fn lag(&self) -> Option<u64> {
        Some(self.pending? + self.ack_pending.unwrap_or(0))
    }
}

/// Every projection's status with its lag in JetStream: the Postgres read models, then,
/// with Elasticsearch, the search indexers (their documents in place of aggregates).
pub async fn projection_reports(ops: &OpsContext) -> anyhow::Result<Vec<ProjectionReport>> {
    let mut reports = postgres_projection_reports(ops).await?;
    if let SearchEngine::Elasticsearch(es) = &ops.search {
        reports.extend(search_indexer_reports(ops, es).await?);
    }
    Ok(reports)
}

/// A `projection_rebuilds` row: state, started at, finished at, error.
type RebuildRow = (
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
);

async fn search_indexer_reports(
    ops: &OpsContext,
    es: &elastic::EsSearch,
) -> anyhow::Result<Vec<ProjectionReport>> {
    // Per index, once: its documents and its last rebuild (two consumers feed products).
    let mut indices = std::collections::HashMap::new();
    for index in SearchIndex::ALL {
        let documents = es.count(&es.names().alias(index)).await.ok();
        let rebuild: Option<RebuildRow> = sqlx::query_as(
            "SELECT state, started_at, finished_at, error FROM projection_rebuilds \
                 WHERE projection = $1",
        )
        .bind(index.rebuild_name())
        .fetch_optional(&ops.pool)
        .await?;
        indices.insert(index, (documents, rebuild.unwrap_or_default()));
    }
    let mut reports = Vec::new();
    for (name, aggregate_type, index) in elastic::CONSUMERS {
        let alias = es.names().alias(index);
        let lag = consumer_pending(&ops.jetstream, &ops.namespace, name, aggregate_type)
            .await
            .ok();
        let (documents, (rebuild_state, started, finished, error)) = indices[&index].clone();
        reports.push(ProjectionReport {
            name: name.to_owned(),
            aggregate_type: aggregate_type.to_owned(),
            tables: vec![alias],
            aggregates_applied: documents.map(|n| n as i64).unwrap_or(0),
            events_applied: 0,
            last_applied_at: None,
            pending: lag.map(|l| l.pending),
            ack_pending: lag.map(|l| l.ack_pending as u64),
            redelivered: lag.map(|l| l.redelivered as u64),
            state: if rebuild_state == "rebuilding" {
                "rebuilding".into()
            } else {
                "live".into()
            },
            rebuild_started_at: started,
            rebuild_finished_at: finished,
            rebuild_error: error.filter(|_| rebuild_state == "failed"),
            rebuild_events_applied: None,
            events_total: None,
        });
    }
    Ok(reports)
}

async fn postgres_projection_reports(ops: &OpsContext) -> anyhow::Result<Vec<ProjectionReport>> {
    let mut reports = Vec::new();
    for status in rebuild::status(&ops.pool).await? {
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
            rebuild_events_applied,
            events_total,
        } = status;
        let lag = consumer_pending(&ops.jetstream, &ops.namespace, &name, &aggregate_type)
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
            rebuild_events_applied,
            events_total: Some(events_total),
        });
    }
    Ok(reports)
}

/// What can be rebuilt: a Postgres projection, or (with Elasticsearch) a search index.
#[derive(Clone)]
pub enum RebuildTarget {
    /// A Postgres read model, rebuilt beside the live tables.
    Projection(std::sync::Arc<dyn ordo_projections::worker::Projection>),
    /// A search index, rebuilt beside the live generation.
    SearchIndex(SearchIndex),
}

impl RebuildTarget {
    /// Its name: `projection-orders`, `search-products`...
    pub fn name(&self) -> &'static str {
        match self {
            RebuildTarget::Projection(projection) => projection.name(),
            RebuildTarget::SearchIndex(index) => index.rebuild_name(),
        }
    }
}

/// The rebuild target called `name`: a projection (`projection-orders` or `orders`) or,
/// with Elasticsearch, a search index (`search-products`, `search-shows`). The error says
/// what can be rebuilt.
pub fn rebuild_target(ops: &OpsContext, name: &str) -> Result<RebuildTarget, String> {
    let names = match &ops.search {
        SearchEngine::Elasticsearch(es) => Some(es.names().clone()),
        SearchEngine::Postgres(_) => None,
    };
    let default_names = elastic::IndexNames::default();
    if let Some(index) =
        SearchIndex::from_rebuild_name(name, names.as_ref().unwrap_or(&default_names))
    {
        return match names {
            Some(_) => Ok(RebuildTarget::SearchIndex(index)),
            None => Err(format!(
                "{name} is a search index in Elasticsearch, and ORDO_ELASTICSEARCH_URL is not set: \
                 search reads the Postgres read models (rebuild projection-products or \
                 projection-shows)"
            )),
        };
    }
    rebuild::find(name)
        .map(RebuildTarget::Projection)
        .map_err(|err| match names {
            Some(_) => format!(
                "{err}, and the search indices are {}",
                SearchIndex::ALL.map(SearchIndex::rebuild_name).join(", ")
            ),
            None => err.to_string(),
        })
}

/// What a rebuild did.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Rebuilt {
    /// A projection's tables were switched.
    Projection(RebuildReport),
    /// A search index's alias was swapped.
    SearchIndex(IndexRebuildReport),
}

impl std::fmt::Display for Rebuilt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rebuilt::Projection(report) => write!(
                f,
                "rebuilt {} ({}): {} events applied beside the live tables, {} caught up during the switch",
                report.projection,
                report.tables.join(", "),
                report.events_applied,
                report.caught_up
            ),
            Rebuilt::SearchIndex(report) => write!(
                f,
                "rebuilt {}: {} documents indexed into {}, alias {} swapped from {}, {} changed meanwhile and indexed again",
                report.projection,
                report.documents,
                report.index,
                report.alias,
                if report.replaced.is_empty() {
                    "nothing".to_owned()
                } else {
                    report.replaced.join(", ")
                },
                report.caught_up
            ),
        }
    }
}

/// Rebuilds `target` and switches to the result.
pub async fn rebuild(ops: &OpsContext, target: &RebuildTarget) -> anyhow::Result<Rebuilt> {
    match target {
        RebuildTarget::Projection(projection) => rebuild::rebuild(&ops.pool, projection.as_ref())
            .await
            .map(Rebuilt::Projection),
        RebuildTarget::SearchIndex(index) => {
            let SearchEngine::Elasticsearch(es) = &ops.search else {
                anyhow::bail!("ORDO_ELASTICSEARCH_URL is not set");
            };
            elastic::rebuild::rebuild(&ops.pool, es, *index)
                .await
                .map(Rebuilt::SearchIndex)
        }
    }
}

/// Refills the event stream `stream` (`ORDO_ORDER`, its namespaced name, or `order`) from
/// the event store; purges it first when `purge`.
pub async fn refill_stream(
    ops: &OpsContext,
    stream: &str,
    purge: bool,
) -> anyhow::Result<RefillReport> {
    let aggregate_type =
        refill::aggregate_type_of(&ops.namespace, stream).map_err(anyhow::Error::msg)?;
    refill::refill_stream(
        &ops.jetstream,
        &ops.pool,
        &ops.namespace,
        aggregate_type,
        purge,
    )
    .await
}

/// Sagas by type and status.
pub async fn saga_counts(ops: &OpsContext) -> sqlx::Result<Vec<(String, String, i64)>> {
    sqlx::query_as("SELECT saga_type, status, count(*) FROM sagas GROUP BY saga_type, status")
        .fetch_all(&ops.pool)
        .await
}

/// How old the oldest unpublished event is, in seconds (0 when the outbox is empty).
pub async fn relay_lag_seconds(ops: &OpsContext) -> sqlx::Result<f64> {
    let lag: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - min(e.recorded_at))::float8 \
         FROM outbox o JOIN events e USING (position)",
    )
    .fetch_one(&ops.pool)
    .await?;
    Ok(lag.unwrap_or(0.0).max(0.0))
}

/// Dead letters per consumer, counted from the dead-letter stream's subjects.
pub async fn dead_letter_counts(ops: &OpsContext) -> anyhow::Result<Vec<(String, u64)>> {
    use futures::TryStreamExt;
    let stream = ops.jetstream.get_stream(ops.namespace.dlq_stream()).await?;
    let prefix = ops.namespace.dlq_subject("");
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(ops.namespace.dlq_filter())
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
