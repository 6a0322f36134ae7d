//! Errors at the HTTP edge: every failure leaves the gateway as an RFC 9457
//! `application/problem+json` document with a stable `type`, mapped once here.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Prefix of every problem `type`; the suffix is a stable snake_case code.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:ordo:problem:";

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read (malformed JSON, wrong content type).
    #[error("{0}")]
    Malformed(String),
    /// A field failed validation.
    #[error("{detail}")]
    Invalid {
        field: Option<String>,
        detail: String,
    },
    /// Missing, expired or forged credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the role does not allow this.
    #[error("this action needs the {0} role")]
    Forbidden(&'static str),
    /// Nothing here (or nothing the caller may see).
    #[error("{0}")]
    NotFound(String),
    /// The request names (in its body) something that does not exist (HTTP 404), with a
    /// business code.
    #[error("{detail}")]
    UnknownReference { code: &'static str, detail: String },
    /// A business rule refused the command (HTTP 409).
    #[error("{detail}")]
    Refused { code: &'static str, detail: String },
    /// The input is well-formed but cannot be processed (HTTP 422) with a business code.
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    /// A concurrent writer won; retrying may succeed.
    #[error("the resource was changed concurrently; retry")]
    Conflict,
    /// Too many requests from this client.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency is not available right now.
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u64,
    },
    /// Ordo holds as many of something as it will (HTTP 503 with a business code); the
    /// client may try again later.
    #[error("{detail}")]
    AtCapacity {
        code: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    /// Anything else: logged with its cause, answered opaquely.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A validation error on one field.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    /// The HTTP status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::UnknownReference { code, .. } => (StatusCode::NOT_FOUND, code),
            ApiError::Refused { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::Conflict => (StatusCode::CONFLICT, "concurrent_modification"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::AtCapacity { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The problem document (RFC 9457) with Ordo's extensions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemDocument {
    /// Stable identifier of the kind of problem: `urn:ordo:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong for this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The invalid field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let detail = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "request failed");
                Some("an internal error occurred; it has been logged".to_string())
            }
            other => Some(other.to_string()),
        };
        let field = match &self {
            ApiError::Invalid { field, .. } => field.clone(),
            _ => None,
        };
        let body = ProblemDocument {
            problem_type: format!("{PROBLEM_TYPE_PREFIX}{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            field,
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Unavailable {
                retry_after_secs, ..
            }
            | ApiError::AtCapacity {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            ApiError::Conflict => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// Middleware: an error answer that is not a problem document (the plain-text rejections of
/// axum's extractors and router, the body limit's 413, the timeout's 503, a caught panic's
/// 500) becomes one, with the same status and headers and its text as the detail. Every
/// error of the API is thus `application/problem+json`, as the OpenAPI document says.
pub async fn problem_for_plain_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|value| value.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Rejection texts are short; a longer body is cut, never buffered whole.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "malformed_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::INTERNAL_SERVER_ERROR => "internal",
        _ if status.is_client_error() => "client_error",
        _ => "server_error",
    };
    let detail = if status.is_server_error() || text.is_empty() {
        None
    } else {
        Some(text)
    };
    let document = ProblemDocument {
        problem_type: format!("{PROBLEM_TYPE_PREFIX}{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
        field: None,
    };
    let body = serde_json::to_vec(&document).expect("a problem document serializes");
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A JSON body extractor whose rejections are problem documents instead of plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut body = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(body)) => body,
            Err(rejection) => {
                return Err(match rejection {
                    JsonRejection::JsonDataError(err) => ApiError::Invalid {
                        field: None,
                        detail: err.body_text(),
                    },
                    other => ApiError::Malformed(other.body_text()),
                })
            }
        };
        // Every body of this API is an object; serde would also read a struct from an array.
        if !body.is_object() {
            return Err(ApiError::Invalid {
                field: None,
                detail: "the body must be a JSON object".into(),
            });
        }
        whole_numbers_as_integers(&mut body);
        serde_path_to_error::deserialize(body)
            .map(ApiJson)
            .map_err(|err| ApiError::Invalid {
                field: None,
                detail: format!("Failed to deserialize the JSON body into the target type: {err}"),
            })
    }
}

/// Makes every number without a fraction (`5.0`) that fits an `i64` an integer (`5`): the
/// API document's `integer` is JSON Schema's, which counts such numbers in.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) if number.is_f64() => {
            // i64::MIN is -2^63 exactly; every whole float below 2^63 fits.
            if let Some(float) = number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64)
            {
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause() {
        let response = ApiError::Internal(anyhow::anyhow!("password=hunter2 in connection string"))
            .into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("urn:ordo:problem:internal"), "{text}");
    }

    #[tokio::test]
    async fn rate_limited_answers_carry_retry_after() {
        let response = ApiError::RateLimited {
            retry_after_secs: 3,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
