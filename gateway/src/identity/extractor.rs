//! [`AuthUser`]: the caller of a request, taken from its `Authorization: Bearer` header.
//! A handler that asks for it never runs for a caller without a valid access token; there
//! is no fallback to an anonymous user.
//!
//! [`Require`] (spelled [`AdminUser`], [`CustomerUser`], [`MerchantUser`], [`ProviderUser`]) is a caller
//! who also has a route's role. Authorization comes before validation: axum runs
//! extractors in argument order and the body last, so a route that names its role in its
//! caller's type refuses a stranger (401) or the wrong role (403) before it reads the body.

use std::fmt;
use std::marker::PhantomData;
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

/// A role a route requires, named as a type so that the requirement is an extractor.
pub trait RequiredRole: Send + Sync + 'static {
    /// The role.
    const ROLE: Role;
}

/// Requires [`Role::Admin`].
#[derive(Debug, Clone, Copy)]
pub struct AdminRole;

impl RequiredRole for AdminRole {
    const ROLE: Role = Role::Admin;
}

/// Requires [`Role::Customer`] (admins pass too).
#[derive(Debug, Clone, Copy)]
pub struct CustomerRole;

impl RequiredRole for CustomerRole {
    const ROLE: Role = Role::Customer;
}

/// Requires [`Role::Merchant`] (admins pass too).
#[derive(Debug, Clone, Copy)]
pub struct MerchantRole;

impl RequiredRole for MerchantRole {
    const ROLE: Role = Role::Merchant;
}

/// Requires [`Role::Provider`] (admins pass too).
#[derive(Debug, Clone, Copy)]
pub struct ProviderRole;

impl RequiredRole for ProviderRole {
    const ROLE: Role = Role::Provider;
}

/// The authenticated caller, who has role `R` (or is an admin): 401 without a valid token,
/// 403 with another role, both before the handler's body is read. It reads as the
/// [`AuthUser`] it wraps.
pub struct Require<R: RequiredRole> {
    user: AuthUser,
    role: PhantomData<R>,
}

/// A caller with the admin role.
pub type AdminUser = Require<AdminRole>;
/// A caller with the customer role (or an admin).
pub type CustomerUser = Require<CustomerRole>;
/// A caller with the merchant role (or an admin).
pub type MerchantUser = Require<MerchantRole>;
/// A caller with the provider role (or an admin).
pub type ProviderUser = Require<ProviderRole>;

impl<R: RequiredRole> Require<R> {
    /// `user`, if they have role `R`; otherwise 403.
    pub fn check(user: AuthUser) -> Result<Self, ApiError> {
        user.require_role(R::ROLE)?;
        Ok(Self {
            user,
            role: PhantomData,
        })
    }

    /// The caller.
    pub fn into_inner(self) -> AuthUser {
        self.user
    }
}

impl<R: RequiredRole> Deref for Require<R> {
    type Target = AuthUser;

    fn deref(&self) -> &AuthUser {
        &self.user
    }
}

impl<R: RequiredRole> Clone for Require<R> {
    fn clone(&self) -> Self {
        Self {
            user: self.user.clone(),
            role: PhantomData,
        }
    }
}

impl<R: RequiredRole> fmt::Debug for Require<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Require")
            .field("role", &R::ROLE)
            .field("user", &self.user)
            .finish()
    }
}

impl<S, R> FromRequestParts<S> for Require<R>
where
    Arc<IdentityService>: FromRef<S>,
    S: Send + Sync,
    R: RequiredRole,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = <AuthUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        Self::check(user)
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
    fn require_admits_the_role_and_admins_and_refuses_others() {
        assert!(CustomerUser::check(user(Role::Customer)).is_ok());
        assert!(CustomerUser::check(user(Role::Admin)).is_ok());
        assert!(matches!(
            CustomerUser::check(user(Role::Merchant)),
            Err(ApiError::Forbidden("customer"))
        ));
        let admin = AdminUser::check(user(Role::Admin)).unwrap();
        assert!(admin.is_admin());
        assert!(matches!(
            AdminUser::check(user(Role::Customer)),
            Err(ApiError::Forbidden("admin"))
        ));
        assert!(matches!(
            MerchantUser::check(user(Role::Customer)),
            Err(ApiError::Forbidden("merchant"))
        ));
        assert!(ProviderUser::check(user(Role::Provider)).is_ok());
        assert!(ProviderUser::check(user(Role::Admin)).is_ok());
        assert!(matches!(
            ProviderUser::check(user(Role::Customer)),
            Err(ApiError::Forbidden("provider"))
        ));
        assert!(matches!(
            CustomerUser::check(user(Role::Provider)),
            Err(ApiError::Forbidden("customer"))
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
