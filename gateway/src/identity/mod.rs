//! The HTTP adapter of [`ordo_identity`]: the `/auth` routes, the [`AuthUser`] extractor
//! and the mapping of [`ordo_identity::IdentityError`] to problems.
//!
//! # Layout
//!
//! - `extractor`: [`AuthUser`], the authenticated caller of a request, and [`Require`]
//!   ([`AdminUser`], [`CustomerUser`]...), a caller with a route's role, checked before the
//!   body is read.
//! - `http`: the `/auth` handlers (register, login, refresh, logout), mounted by
//!   [`router`] and described by [`openapi`].
//! - `problem`: `From<IdentityError> for ApiError`, the one place identity's refusals
//!   become HTTP statuses.
//!
//! Accounts, passwords, tokens and roles themselves live in the `ordo-identity` crate.

mod extractor;
mod http;
mod problem;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::post;
use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi as _;

pub use extractor::{
    AdminRole, AdminUser, AuthUser, CustomerRole, CustomerUser, MerchantRole, MerchantUser,
    ProviderRole, ProviderUser, Require, RequiredRole,
};
pub use http::{LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest, SessionResponse};
use ordo_identity::IdentityService;
/// The roles routes ask for, so that a route names its role where it names its caller.
pub use ordo_identity::Role;

/// Name of the bearer security scheme in the OpenAPI document; protected paths refer to it
/// with `security(("bearer" = []))`.
pub const BEARER_SCHEME: &str = "bearer";

/// The `/auth/register`, `/auth/login`, `/auth/refresh` and `/auth/logout` routes,
/// relative: the caller nests them under `/api/v1`.
pub fn router<S>() -> Router<S>
where
    Arc<IdentityService>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/auth/register", post(http::register))
        .route("/auth/login", post(http::login))
        .route("/auth/refresh", post(http::refresh))
        .route("/auth/logout", post(http::logout))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(http::register, http::login, http::refresh, http::logout),
    components(schemas(
        RegisterRequest,
        LoginRequest,
        RefreshRequest,
        LogoutRequest,
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
