//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ordo_projections::queries;
use serde_json::json;

use crate::state::AppState;

/// `/healthz` and `/readyz` (served outside `/api/v1`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// The process can serve: Postgres answers and NATS is connected.
async fn readyz(State(state): State<AppState>) -> Response {
    let postgres = queries::ping(&state.pool).await.is_ok();
    let nats = matches!(
        state.nats.connection_state(),
        async_nats::connection::State::Connected
    );
    let status = if postgres && nats {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
            "postgres": if postgres { "up" } else { "down" },
            "nats": if nats { "up" } else { "down" },
        })),
    )
        .into_response()
}
