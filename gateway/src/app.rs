//! The HTTP application: every resource's router under `/api/v1`, the probes, the OpenAPI
//! document, the web consoles, and the layers every request goes through (request id, tracing, timeouts,
//! body limits, panic safety).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderName, Request};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::request_id::{self, MakeRequestIdOrKeep};
use crate::routes;
use crate::state::AppState;

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsEndpoint {
    /// On the public address, beside the API.
    Public,
    /// On its own internal address (`ORDO_METRICS_ADDR`): the public router answers 404.
    Internal,
}

/// The whole HTTP API.
pub fn router(
    state: AppState,
    sandbox: Option<ordo_payments::Sandbox>,
    metrics: MetricsEndpoint,
) -> Router {
    let api = Router::new()
        .merge(crate::identity::router())
        .merge(routes::products::router())
        .merge(routes::categories::router())
        .merge(routes::carts::router())
        .merge(routes::inventory::router())
        .merge(routes::orders::router())
        .merge(routes::payments::router())
        .merge(routes::reconciliations::router())
        .merge(routes::shipments::router())
        .merge(routes::aftersales::router())
        .merge(routes::reviews::router())
        .merge(routes::shipping::router())
        .merge(routes::admin::router())
        .merge(routes::search::router())
        .merge(routes::notifications::router())
        .merge(routes::shows::router())
        .merge(routes::bookings::router())
        .merge(routes::promotions::router())
        .merge(routes::coupons::router())
        .merge(routes::users::router())
        .merge(routes::providers::router())
        .merge(routes::service_orders::router())
        .route(
            "/openapi.json",
            get(|State(state): State<AppState>| async move {
                Json(crate::openapi::served_document(
                    state.ticketing.settings.max_per_booking,
                ))
            }),
        );
    let request_id_header = HeaderName::from_static("x-request-id");
    let mut app = Router::new().nest("/api/v1", api);
    if let Some(sandbox) = sandbox {
        app = app.nest_service("/sandbox/provider", sandbox.router());
    }
    if metrics == MetricsEndpoint::Public {
        app = app.merge(crate::metrics::router());
    }
    app.merge(routes::health::router())
        // The web consoles: `/`, `/provider`, `/admin` and their `/assets/`.
        .merge(ordo_web::router())
        .fallback(|| async {
            crate::problem::ApiError::NotFound("no such route".into())
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::rate_limit::limit,
        ))
        .with_state(state)
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(RequestBodyLimitLayer::new(1024 * 1024))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(60),
        ))
        .layer(axum::middleware::from_fn(crate::problem::problem_for_plain_errors))
        .layer(PropagateRequestIdLayer::new(request_id_header.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let span = tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id);
                // A client that traces its calls gets this request in its own trace.
                ordo_nats::trace::follow(
                    &span,
                    request.headers().get("traceparent").and_then(|v| v.to_str().ok()),
                );
                span
            }),
        )
        .layer(SetRequestIdLayer::new(request_id_header, MakeRequestIdOrKeep))
        .layer(axum::middleware::from_fn(request_id::sanitize))
}
