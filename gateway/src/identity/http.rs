//! The `/auth` endpoints: register, log in, refresh, log out. Each handler parses its body
//! into the domain newtypes and hands them to [`IdentityService`]; errors become problems
//! through `From<IdentityError> for ApiError`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use ordo_identity::{
    Email, FullName, IdentityError, IdentityService, Password, Session, SignupRole,
};

use crate::problem::{ApiError, ApiJson, ProblemDocument};

/// Body of `POST /auth/register`. No `Debug`: it carries a password.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// Email address; compared case-insensitively: at most 254 characters, no spaces or
    /// control characters, one `@`, a domain with a dot inside.
    #[schema(
        example = "ada@example.com",
        max_length = 254,
        pattern = r"^[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000.][^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\.[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000.]$"
    )]
    pub email: String,
    /// 8 to 128 characters with at least one letter and one digit, other than the
    /// email's local part.
    #[schema(
        example = "correct horse 9",
        min_length = 8,
        max_length = 128,
        pattern = r"[A-Za-z][\s\S]*[0-9]|[0-9][\s\S]*[A-Za-z]"
    )]
    pub password: String,
    /// 1 to 100 characters on one line (surrounding spaces are dropped).
    #[schema(
        example = "Ada Lovelace",
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub full_name: String,
    /// `customer` (the default) or `provider`; an account never chooses admin.
    #[schema(example = "customer", value_type = Option<String>, pattern = "^(customer|provider)$")]
    #[serde(default)]
    pub role: Option<String>,
}

/// Body of `POST /auth/login`. No `Debug`: it carries a password.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    /// Email address given at registration.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// The account's password.
    #[schema(example = "correct horse 9")]
    pub password: String,
}

/// Body of `POST /auth/refresh`. No `Debug`: it carries a credential.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    /// A refresh token not used before.
    pub refresh_token: String,
}

/// Body of `POST /auth/logout`. No `Debug`: it carries a credential.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LogoutRequest {
    /// The session's refresh token (spent or not); its whole family is revoked.
    pub refresh_token: String,
}

/// The raw bearer token of a request, for the one route that acts on the token itself
/// rather than on its caller. 401 when the header is missing or not a bearer credential.
pub struct BearerToken(String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        super::extractor::bearer_credential(parts).map(|token| BearerToken(token.to_owned()))
    }
}

/// A new session: the answer to register, login and refresh.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionResponse {
    /// The account the tokens belong to.
    pub user_id: Uuid,
    /// Send as `Authorization: Bearer <access_token>`; expires after minutes.
    pub access_token: String,
    /// Exchange once at `POST /api/v1/auth/refresh` for a new pair.
    pub refresh_token: String,
}

impl From<Session> for SessionResponse {
    fn from(session: Session) -> Self {
        SessionResponse {
            user_id: session.user_id,
            access_token: session.access_token,
            refresh_token: session.refresh_token,
        }
    }
}

/// Create a customer account (or, with `role: "provider"`, a service provider's) and open
/// a session for it.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = SessionResponse),
        (status = 400, description = "Malformed JSON", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Email taken (`urn:ordo:problem:email_taken`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or missing field", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Too many password hashes at once (`urn:ordo:problem:unavailable`); see `Retry-After`", body = ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn register(
    State(identity): State<Arc<IdentityService>>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, ApiJson<SessionResponse>), ApiError> {
    let email = Email::parse(&body.email).map_err(IdentityError::from)?;
    let password = Password::parse(&body.password, &email).map_err(IdentityError::from)?;
    let full_name = FullName::parse(&body.full_name).map_err(IdentityError::from)?;
    let role = SignupRole::parse(body.role.as_deref()).map_err(IdentityError::from)?;
    let session = identity
        .register(&email, &password, &full_name, role)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(session.into())))
}

/// Open a session with an email and password.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = SessionResponse),
        (status = 400, description = "Malformed JSON", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "Invalid credentials", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Missing field", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this client, or too many failed logins for this email address in a row (`urn:ordo:problem:rate_limited`); see `Retry-After`", body = ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Too many password checks at once (`urn:ordo:problem:unavailable`); see `Retry-After`", body = ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn login(
    State(identity): State<Arc<IdentityService>>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<ApiJson<SessionResponse>, ApiError> {
    // A malformed address cannot belong to an account: answer as for any unknown one.
    let email = Email::parse(&body.email).map_err(|_| IdentityError::InvalidCredentials)?;
    let session = identity.login(&email, &body.password).await?;
    Ok(ApiJson(session.into()))
}

/// Exchange a refresh token, once, for a new access and refresh token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New session", body = SessionResponse),
        (status = 400, description = "Malformed JSON", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "Used, expired, revoked, forged or not a refresh token. Presenting a used one again also revokes its whole session (every refresh and access token of its family)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Missing field", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn refresh(
    State(identity): State<Arc<IdentityService>>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<ApiJson<SessionResponse>, ApiError> {
    let session = identity.refresh(&body.refresh_token).await?;
    Ok(ApiJson(session.into()))
}

/// End a session: the bearer access token is refused from now on (until it would have
/// expired), and so is every refresh and access token of the session's refresh family.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    request_body = LogoutRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 400, description = "Malformed JSON", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked access token; or a refresh token that is forged, expired, or another account's", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Missing field", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn logout(
    State(identity): State<Arc<IdentityService>>,
    BearerToken(access_token): BearerToken,
    ApiJson(body): ApiJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    identity
        .logout(&access_token, Some(&body.refresh_token))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
