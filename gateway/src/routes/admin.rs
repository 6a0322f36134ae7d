//! Operator endpoints: inspecting sagas and resuming stuck ones.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use ordo_sagas::repository::{self, SagaView};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::identity::AdminUser;
use crate::problem::{ApiError, ApiJson};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/sagas/{saga_id}", get(get_saga))
        .route("/admin/sagas/{saga_id}/resume", post(resume_saga))
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
