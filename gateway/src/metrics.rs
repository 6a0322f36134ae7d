//! Prometheus metrics: the recorder (installed once per process), `GET /metrics` (on the
//! public address, or with the probes alone on `ORDO_METRICS_ADDR`), the
//! HTTP middleware that counts and times requests by route template, and the poller that
//! refreshes the gauges read from Postgres and JetStream.
//!
//! Counters and histograms are recorded where things happen (the command bus, the relay,
//! the consumer loop); gauges that describe shared state (outbox depth, consumer lag, sagas,
//! dead letters) are sampled every `ORDO_METRICS_INTERVAL`.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `ordo_http_requests_total` | counter | method, route, status |
//! | `ordo_http_request_duration_seconds` | histogram | method, route, status |
//! | `ordo_commands_total` | counter | aggregate_type, outcome (accepted, rejected, conflict, error) |
//! | `ordo_events_appended_total` | counter | aggregate_type |
//! | `ordo_commit_group_writes` | summary (aggregates' batches per write-side commit) | |
//! | `ordo_commit_groups_split_total` | counter | |
//! | `ordo_snapshots_written_total` | counter | aggregate_type |
//! | `ordo_relay_events_published_total` | counter | |
//! | `ordo_relay_leader` | gauge (1 on the leading relay, 0 on one standing by) | |
//! | `ordo_outbox_depth` | gauge | |
//! | `ordo_relay_lag_seconds` | gauge | |
//! | `ordo_consumer_active` | gauge (1 in the process running the consumer, 0 in one standing by) | consumer |
//! | `ordo_consumer_pending` | gauge | consumer |
//! | `ordo_consumer_ack_pending` | gauge | consumer |
//! | `ordo_consumer_redelivered` | gauge | consumer |
//! | `ordo_consumer_events_handled_total` | counter | consumer |
//! | `ordo_consumer_events_failed_total` | counter | consumer |
//! | `ordo_consumer_dead_lettered_total` | counter | consumer |
//! | `ordo_projection_lag_events` | gauge | projection |
//! | `ordo_projection_events_applied` | gauge | projection |
//! | `ordo_projection_group_events` | summary (events applied per transaction) | projection |
//! | `ordo_sagas` | gauge | saga_type, status |
//! | `ordo_dead_letters` | gauge | consumer |

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use ordo_ops::OpsContext;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the Prometheus recorder, once per process; later calls answer the same handle.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("ordo_http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder was installed first (a test harness): metrics
        // then go there and `/metrics` shows what this recorder saw.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

/// `GET /metrics`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/metrics", get(render))
}

/// The internal address (`ORDO_METRICS_ADDR`), which every process serves whatever its
/// roles: `GET /metrics` and the probes `/healthz` and `/readyz`, so that relay and worker
/// processes (which serve no API) are scraped and probed too; any other path is not found.
pub fn internal_router(state: crate::state::AppState) -> Router {
    router()
        .merge(crate::routes::health::router())
        .with_state(state)
        .fallback(|| async { crate::problem::ApiError::NotFound("no such route".into()) })
}

/// The metrics in Prometheus' text format.
async fn render() -> Response {
    let body = install().render();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Counts and times every request by method, route template (not the raw path, so ids do
/// not explode the label space) and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("ordo_http_requests_total", &labels).increment(1);
    metrics::histogram!("ordo_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Refreshes the sampled gauges every `every` until `shutdown`: outbox depth and relay lag,
/// sagas, dead letters, and (when `workers`) each consumer's and projection's lag.
pub async fn poll(
    state: OpsContext,
    workers: Vec<(String, String)>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let handle = install();
    let mut seen = Seen::default();
    loop {
        sample(&state, &workers, &mut seen).await;
        handle.run_upkeep();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Label sets reported before: a saga status or a consumer that no longer appears is set
/// to zero instead of keeping its last value forever.
#[derive(Default)]
struct Seen {
    sagas: HashSet<(String, String)>,
    dead_letters: HashSet<String>,
}

async fn sample(state: &OpsContext, workers: &[(String, String)], seen: &mut Seen) {
    match ordo_nats::outbox_depth(&state.pool).await {
        Ok(depth) => metrics::gauge!("ordo_outbox_depth").set(depth as f64),
        Err(err) => tracing::debug!(error = %err, "cannot read the outbox depth"),
    }
    if let Ok(lag) = ordo_ops::operations::relay_lag_seconds(state).await {
        metrics::gauge!("ordo_relay_lag_seconds").set(lag);
    }
    if let Ok(counts) = ordo_ops::operations::saga_counts(state).await {
        let mut current = HashSet::new();
        for (saga_type, status, count) in counts {
            metrics::gauge!("ordo_sagas", "saga_type" => saga_type.clone(), "status" => status.clone())
                .set(count as f64);
            current.insert((saga_type, status));
        }
        for (saga_type, status) in seen.sagas.difference(&current) {
            metrics::gauge!("ordo_sagas", "saga_type" => saga_type.clone(), "status" => status.clone())
                .set(0.0);
        }
        seen.sagas.extend(current);
    }
    if let Ok(counts) = ordo_ops::operations::dead_letter_counts(state).await {
        // Every worker is reported, with zero when it has no dead letter.
        seen.dead_letters
            .extend(workers.iter().map(|(consumer, _)| consumer.clone()));
        seen.dead_letters
            .extend(counts.iter().map(|(consumer, _)| consumer.clone()));
        for consumer in &seen.dead_letters {
            let count = counts
                .iter()
                .find(|(c, _)| c == consumer)
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("ordo_dead_letters", "consumer" => consumer.clone()).set(count as f64);
        }
    }
    if workers.is_empty() {
        return;
    }
    for (consumer, aggregate_type) in workers {
        if let Ok(lag) = ordo_nats::consumer::consumer_pending(
            &state.jetstream,
            &state.namespace,
            consumer,
            aggregate_type,
        )
        .await
        {
            let label = consumer.clone();
            metrics::gauge!("ordo_consumer_pending", "consumer" => label.clone())
                .set(lag.pending as f64);
            metrics::gauge!("ordo_consumer_ack_pending", "consumer" => label.clone())
                .set(lag.ack_pending as f64);
            metrics::gauge!("ordo_consumer_redelivered", "consumer" => label)
                .set(lag.redelivered as f64);
        }
    }
    if let Ok(reports) = ordo_ops::operations::projection_reports(state).await {
        for report in reports {
            if let Some(lag) = report.lag() {
                metrics::gauge!("ordo_projection_lag_events", "projection" => report.name.clone())
                    .set(lag as f64);
            }
            metrics::gauge!("ordo_projection_events_applied", "projection" => report.name)
                .set(report.events_applied as f64);
        }
    }
}
