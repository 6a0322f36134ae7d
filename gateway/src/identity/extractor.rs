//! [`AuthUser`]: the caller of a request, taken from its `Authorization: Bearer` header.
//! A handler that asks for it never runs for a caller without a valid access token; there
//! is no fallback to an anonymous user.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ordo_identity::{Caller, IdentityService, Role};

use crate::problem::ApiError;

/// The authenticated caller of a request. It reads as the [`Caller`] it wraps
/// (`user.user_id`, `user.is_admin()`), and adds the role check that answers 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser(pub Caller);

impl AuthUser {
    /// Passes if the caller has `role` or is an admin; otherwise 403.
    pub fn require_role(&self, role: Role) -> Result<(), ApiError> {
        if self.0.may_act_as(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(role.as_str()))
        }
    }
}

impl Deref for AuthUser {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

/// The token of the request's `Authorization: Bearer` header; 401 when it is missing or
/// not a bearer credential.
pub(super) fn bearer_credential(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    header.to_str().ok().and_then(bearer_token).ok_or_else(|| {
        ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
    })
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<IdentityService>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_credential(parts)?;
        let identity = Arc::<IdentityService>::from_ref(state);
        // Checks the signature and expiry, then that the token was not revoked.
        Ok(AuthUser(identity.authenticate(token).await?))
    }
}

/// An optional caller: no `Authorization` header means anonymous, but a header that is
/// present and wrong is still refused with 401.
impl<S> axum::extract::OptionalFromRequestParts<S> for AuthUser
where
    Arc<IdentityService>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if parts.headers.get(AUTHORIZATION).is_none() {
            return Ok(None);
        }
        <AuthUser as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// The token of a `Bearer` credential; the scheme name is case-insensitive (RFC 9110).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn user(role: Role) -> AuthUser {
        AuthUser(Caller {
            user_id: Uuid::new_v4(),
            email: "ada@example.com".into(),
            role,
        })
    }

    #[test]
    fn require_role_lets_admins_do_everything() {
        let admin = user(Role::Admin);
        assert!(admin.is_admin());
        assert!(admin.require_role(Role::Merchant).is_ok());
        assert!(admin.require_role(Role::Customer).is_ok());
    }

    #[test]
    fn require_role_refuses_other_roles() {
        let merchant = user(Role::Merchant);
        assert!(merchant.require_role(Role::Merchant).is_ok());
        assert!(matches!(
            merchant.require_role(Role::Customer),
            Err(ApiError::Forbidden("customer"))
        ));
        assert!(matches!(
            user(Role::Customer).require_role(Role::Admin),
            Err(ApiError::Forbidden("admin"))
        ));
    }

    #[test]
    fn bearer_token_reads_only_the_bearer_scheme() {
        assert_eq!(bearer_token("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer_token("bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
