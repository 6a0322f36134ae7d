//! Operator endpoints: inspecting sagas and resuming stuck ones; listing, inspecting and
//! re-driving dead letters; the projections' status and lag, and rebuilding one; the event
//! streams (what `ordo dlq`, `ordo projections` and the admin NATS service also offer, here
//! for the admin console).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use ordo_sagas::repository::{self, SagaView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::identity::AdminUser;
use crate::problem::{ApiError, ApiJson};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/sagas/{saga_id}", get(get_saga))
        .route("/admin/sagas/{saga_id}/resume", post(resume_saga))
        .route("/admin/dead-letters", get(list_dead_letters))
        .route("/admin/dead-letters/{sequence}", get(get_dead_letter))
        .route(
            "/admin/dead-letters/{sequence}/redrive",
            post(redrive_dead_letter),
        )
        .route("/admin/projections", get(list_projections))
        .route(
            "/admin/projections/{name}/rebuild",
            post(rebuild_projection),
        )
        .route("/admin/streams", get(list_streams))
}

/// A rebuild that was started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildStarted {
    /// The projection's name (`projection-orders`, `search-products`...).
    pub projection: String,
    /// `rebuilding`: follow it in `GET /admin/projections` (`state`,
    /// `rebuild_events_applied` of `events_total`, `rebuild_finished_at`, `rebuild_error`).
    pub state: String,
}

/// Starts rebuilding a projection from the event history beside its live tables (admin),
/// as `ordo projections rebuild` does; queries keep answering meanwhile and it switches
/// when done. 202 at once; the projection list shows its progress.
#[utoipa::path(post, path = "/api/v1/admin/projections/{name}/rebuild", tag = "admin",
    security(("bearer" = [])),
    responses((status = 202, body = RebuildStarted), (status = 404, description = "no such projection"),
              (status = 409, description = "problem urn:ordo:problem:rebuild_in_progress")))]
pub async fn rebuild_projection(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(name): Path<String>,
) -> Result<(StatusCode, ApiJson<RebuildStarted>), ApiError> {
    let ops = state.ops();
    let target = ordo_ops::operations::rebuild_target(&ops, &name).map_err(ApiError::NotFound)?;
    let projection = target.name().to_owned();
    let reports = ordo_ops::operations::projection_reports(&ops)
        .await
        .map_err(ApiError::Internal)?;
    if reports
        .iter()
        .any(|r| r.name == projection && r.state == "rebuilding")
    {
        return Err(ApiError::Refused {
            code: "rebuild_in_progress",
            detail: format!("{projection} is already being rebuilt"),
        });
    }
    let name = projection.clone();
    tokio::spawn(async move {
        match ordo_ops::operations::rebuild(&ops, &target).await {
            Ok(report) => tracing::info!(projection = %name, "{report}"),
            Err(err) => {
                tracing::warn!(projection = %name, error = %format!("{err:#}"), "rebuild failed")
            }
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(RebuildStarted {
            projection,
            state: "rebuilding".into(),
        }),
    ))
}

/// One JetStream stream of this deployment.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamView {
    /// `ORDO_ORDER`, ..., `ORDO_DLQ`.
    pub name: String,
    pub subjects: Vec<String>,
    pub messages: u64,
    pub bytes: u64,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub consumers: usize,
}

/// The deployment's streams.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamList {
    pub streams: Vec<StreamView>,
}

/// The event streams and the dead-letter stream of this deployment, with their sizes and
/// consumers (admin); what `nats stream ls` shows an operator.
#[utoipa::path(get, path = "/api/v1/admin/streams", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = StreamList)))]
pub async fn list_streams(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<ApiJson<StreamList>, ApiError> {
    use futures::TryStreamExt;
    let prefix = format!("{}_", state.namespace.stream_prefix());
    let infos: Vec<async_nats::jetstream::stream::Info> = state
        .jetstream
        .streams()
        .try_collect()
        .await
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("listing streams: {err}")))?;
    let mut streams: Vec<StreamView> = infos
        .into_iter()
        .filter(|info| info.config.name.starts_with(&prefix))
        .map(|info| StreamView {
            name: info.config.name.clone(),
            subjects: info.config.subjects.clone(),
            messages: info.state.messages,
            bytes: info.state.bytes,
            first_sequence: info.state.first_sequence,
            last_sequence: info.state.last_sequence,
            consumers: info.state.consumer_count,
        })
        .collect();
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ApiJson(StreamList { streams }))
}

/// Filter of the dead-letter list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeadLetterFilter {
    /// Only this consumer's (e.g. `projection-orders`).
    #[param(pattern = r"^[a-z0-9-]{1,100}$")]
    pub consumer: Option<String>,
}

/// The dead letters, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    /// Each with `dlq_sequence`, `consumer`, `aggregate_type`, `aggregate_id`,
    /// `event_type`, `sequence`, `error`, `attempts`, `failed_at`, `parked`, `headers`,
    /// `payload`.
    #[schema(value_type = Vec<Object>)]
    pub dead_letters: Vec<ordo_nats::dlq::DeadLetter>,
}

/// What a re-drive did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redriven {
    /// The dead letters sent back to their consumer and removed, by sequence, in order.
    pub redriven: Vec<u64>,
    /// The aggregates released for their consumer: `[consumer, aggregate_type, aggregate_id]`.
    pub unparked: Vec<Vec<String>>,
}

/// The projections with what they applied and what waits for them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionList {
    /// Each with `name`, `aggregate_type`, `tables`, `aggregates_applied`,
    /// `events_applied`, `last_applied_at`, `pending`, `ack_pending`, `redelivered`, `lag`,
    /// `state`, `rebuild_started_at`, `rebuild_finished_at`, `rebuild_error`.
    #[schema(value_type = Vec<Object>)]
    pub projections: Vec<serde_json::Value>,
}

/// A dead letter's sequence: a number from 1 (the stream's first); anything else names none.
fn dead_letter_sequence(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .ok()
        .filter(|sequence| *sequence > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no dead letter {text}")))
}

fn dead_letter_error(err: anyhow::Error) -> ApiError {
    let message = format!("{err:#}");
    if message.starts_with("no dead letter") {
        ApiError::NotFound(message)
    } else if message.contains("waits behind dead letter") {
        ApiError::Refused {
            code: "dead_letter_waits",
            detail: message,
        }
    } else {
        ApiError::Internal(err)
    }
}

/// The dead letters (admin), oldest first; only one consumer's with `consumer`.
#[utoipa::path(get, path = "/api/v1/admin/dead-letters", tag = "admin", params(DeadLetterFilter),
    security(("bearer" = [])),
    responses((status = 200, body = DeadLetterList)))]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(filter): Query<DeadLetterFilter>,
) -> Result<ApiJson<DeadLetterList>, ApiError> {
    if let Some(consumer) = &filter.consumer {
        if consumer.is_empty()
            || consumer.len() > 100
            || !consumer
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ApiError::invalid(
                "consumer",
                "a consumer name: lowercase letters, digits and dashes",
            ));
        }
    }
    let ops = state.ops();
    let dead_letters =
        ordo_nats::dlq::list(&ops.jetstream, &ops.namespace, filter.consumer.as_deref())
            .await
            .map_err(ApiError::Internal)?;
    Ok(ApiJson(DeadLetterList { dead_letters }))
}

/// One dead letter with its headers and payload (admin).
#[utoipa::path(get, path = "/api/v1/admin/dead-letters/{sequence}", tag = "admin",
    params(("sequence" = String, Path, pattern = r"^[0-9]{1,18}$", description = "its sequence in the dead-letter stream")),
    security(("bearer" = [])),
    responses((status = 200, description = "the dead letter", body = Object),
              (status = 404, description = "no such dead letter")))]
pub async fn get_dead_letter(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(sequence): Path<String>,
) -> Result<ApiJson<ordo_nats::dlq::DeadLetter>, ApiError> {
    let sequence = dead_letter_sequence(&sequence)?;
    let ops = state.ops();
    ordo_nats::dlq::show(&ops.jetstream, &ops.namespace, sequence)
        .await
        .map(ApiJson)
        .map_err(dead_letter_error)
}

/// Re-drives a dead letter (admin): it and every later dead letter of the same consumer and
/// aggregate go back to the consumer, in order, and the aggregate is released.
#[utoipa::path(post, path = "/api/v1/admin/dead-letters/{sequence}/redrive", tag = "admin",
    params(("sequence" = String, Path, pattern = r"^[0-9]{1,18}$", description = "its sequence in the dead-letter stream")),
    security(("bearer" = [])),
    responses((status = 200, body = Redriven), (status = 404, description = "no such dead letter"),
              (status = 409, description = "problem urn:ordo:problem:dead_letter_waits: an earlier dead letter of the same aggregate must be re-driven first")))]
pub async fn redrive_dead_letter(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(sequence): Path<String>,
) -> Result<ApiJson<Redriven>, ApiError> {
    let sequence = dead_letter_sequence(&sequence)?;
    let ops = state.ops();
    let report = ordo_nats::dlq::redrive(&ops.jetstream, &ops.pool, &ops.namespace, sequence)
        .await
        .map_err(dead_letter_error)?;
    Ok(ApiJson(Redriven {
        redriven: report.redriven,
        unparked: report
            .unparked
            .into_iter()
            .map(|(consumer, aggregate_type, aggregate_id)| {
                vec![consumer, aggregate_type, aggregate_id]
            })
            .collect(),
    }))
}

/// The projections (admin): what each applied, what waits for it (`lag`) and its state.
#[utoipa::path(get, path = "/api/v1/admin/projections", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = ProjectionList)))]
pub async fn list_projections(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<ApiJson<ProjectionList>, ApiError> {
    let reports = ordo_ops::operations::projection_reports(&state.ops())
        .await
        .map_err(ApiError::Internal)?;
    let projections = reports
        .iter()
        .map(|report| {
            let mut value = serde_json::to_value(report).unwrap_or_default();
            value["lag"] = serde_json::json!(report.lag());
            value
        })
        .collect();
    Ok(ApiJson(ProjectionList { projections }))
}

/// The answer to a resume.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resumed {
    pub saga_id: Uuid,
    /// The status the saga went back to.
    pub status: String,
    /// Dead letters of the saga sent back to its consumers, by DLQ sequence.
    pub redriven: Vec<u64>,
}

fn parse_id(saga_id: &str) -> Result<Uuid, ApiError> {
    saga_id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no saga {saga_id}")))
}

/// A saga: its state, the steps taken with timestamps, its deadline and last error (admin).
#[utoipa::path(get, path = "/api/v1/admin/sagas/{saga_id}", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, description = "the saga"), (status = 404, description = "no such saga")))]
pub async fn get_saga(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(saga_id): Path<String>,
) -> Result<ApiJson<SagaView>, ApiError> {
    let id = parse_id(&saga_id)?;
    repository::find(&state.pool, id)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map(ApiJson)
        .ok_or_else(|| ApiError::NotFound(format!("no saga {saga_id}")))
}

/// Resumes a stuck saga (admin): its dead letters are re-driven in order and it goes back
/// to the status it had.
#[utoipa::path(post, path = "/api/v1/admin/sagas/{saga_id}/resume", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = Resumed), (status = 404, description = "no such saga"),
               (status = 409, description = "the saga is not stuck")))]
pub async fn resume_saga(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(saga_id): Path<String>,
) -> Result<ApiJson<Resumed>, ApiError> {
    let id = parse_id(&saga_id)?;
    let saga = repository::find(&state.pool, id)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .ok_or_else(|| ApiError::NotFound(format!("no saga {saga_id}")))?;
    if saga.status != "stuck" {
        return Err(ApiError::Refused {
            code: "saga_not_stuck",
            detail: format!("the saga is {}", saga.status),
        });
    }
    repository::resume(&state.pool, id)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let redriven = ordo_ops::dead_letters::redrive_aggregate(&state.ops(), &id.to_string())
        .await
        .map_err(ApiError::Internal)?;
    let status = repository::find(&state.pool, id)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map(|s| s.status)
        .unwrap_or_default();
    Ok(ApiJson(Resumed {
        saga_id: id,
        status,
        redriven,
    }))
}
