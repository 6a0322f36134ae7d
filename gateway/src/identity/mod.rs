//! Who is calling, and what they may do: accounts, passwords, JWT sessions and roles.
//!
//! # Layout
//!
//! - `domain`: the parsed values of an account ([`Email`], [`Password`], [`FullName`],
//!   [`Role`]).
//! - `tokens`: [`JwtKeys`] and the [`Claims`] of access and refresh tokens, with their
//!   lifetimes in [`IdentityConfig`].
//! - `service`: [`IdentityService`], which owns the `users` and `refresh_tokens` tables.
//! - `extractor`: [`AuthUser`], the authenticated caller of a request.
//! - `http`: the `/auth` handlers, mounted by [`router`] and described by [`openapi`].
//!
//! Access tokens are stateless and short-lived; refresh tokens are recorded and spent on
//! use, so a stolen one works at most once.

mod domain;
mod extractor;
mod http;
mod service;
mod tokens;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::post;
use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi as _;

pub use domain::{Email, EmailError, FullName, FullNameError, Password, PasswordError, Role};
pub use extractor::AuthUser;
pub use http::{LoginRequest, RefreshRequest, RegisterRequest, SessionResponse};
pub use service::{IdentityError, IdentityService, Session};
pub use tokens::{Claims, IdentityConfig, JwtKeys, TokenKind, WeakSecret, ISSUER};

/// Name of the bearer security scheme in the OpenAPI document; protected paths refer to it
/// with `security(("bearer" = []))`.
pub const BEARER_SCHEME: &str = "bearer";

/// The `/auth/register`, `/auth/login` and `/auth/refresh` routes, relative: the caller
/// nests them under `/api/v1`.
pub fn router<S>() -> Router<S>
where
    Arc<IdentityService>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/auth/register", post(http::register))
        .route("/auth/login", post(http::login))
        .route("/auth/refresh", post(http::refresh))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(http::register, http::login, http::refresh),
    components(schemas(
        RegisterRequest,
        LoginRequest,
        RefreshRequest,
        SessionResponse,
        Role,
        crate::problem::ProblemDocument
    )),
    modifiers(&BearerScheme),
    tags((name = "auth", description = "Accounts and sessions"))
)]
struct IdentityApi;

/// Registers the JWT bearer scheme that protected paths refer to.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme(BEARER_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// The OpenAPI description of the `/auth` paths, their schemas and the bearer scheme, to
/// merge into the gateway's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    IdentityApi::openapi()
}
