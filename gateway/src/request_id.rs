//! Request ids: taken from the client's `X-Request-Id` when it is sane, made otherwise,
//! echoed on the answer, put on the request's log span and stored as the correlation id of
//! every event the request causes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId as TowerRequestId};
use uuid::Uuid;

/// The request id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Makes a UUID request id unless the client sent a usable one.
#[derive(Clone, Copy, Default)]
pub struct MakeRequestIdOrKeep;

impl MakeRequestId for MakeRequestIdOrKeep {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<TowerRequestId> {
        let id = Uuid::new_v4().to_string();
        Some(TowerRequestId::new(
            HeaderValue::from_str(&id).expect("uuid is a valid header"),
        ))
    }
}

/// Whether a client-supplied request id may be kept: short, visible ASCII, no spaces.
pub fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// Replaces an unusable client request id before the id layer sees it.
pub async fn sanitize(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(value) = request.headers().get(&X_REQUEST_ID) {
        if !acceptable(value) {
            request.headers_mut().remove(&X_REQUEST_ID);
        }
    }
    next.run(request).await
}

/// The current request's id, for handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .headers
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        Ok(RequestId(id))
    }
}
