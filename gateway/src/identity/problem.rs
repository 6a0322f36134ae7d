//! How identity's refusals answer over HTTP: the one mapping from [`IdentityError`] to
//! [`ApiError`].

use ordo_identity::IdentityError;

use crate::problem::ApiError;

impl From<IdentityError> for ApiError {
    fn from(err: IdentityError) -> Self {
        match err {
            IdentityError::InvalidEmail(e) => ApiError::invalid("email", e.to_string()),
            IdentityError::InvalidPassword(e) => ApiError::invalid("password", e.to_string()),
            IdentityError::InvalidFullName(e) => ApiError::invalid("full_name", e.to_string()),
            IdentityError::InvalidRole(e) => ApiError::invalid("role", e.to_string()),
            IdentityError::EmailTaken => ApiError::Refused {
                code: "email_taken",
                detail: err.to_string(),
            },
            IdentityError::InvalidCredentials | IdentityError::InvalidToken => {
                ApiError::Unauthorized(err.to_string())
            }
            IdentityError::LoginLocked(locked) => ApiError::RateLimited {
                retry_after_secs: locked.retry_after_secs(),
            },
            IdentityError::UnknownUser => ApiError::NotFound(err.to_string()),
            IdentityError::AdminNotErasable => ApiError::Refused {
                code: "admin_not_erasable",
                detail: err.to_string(),
            },
            IdentityError::Busy(busy) => ApiError::Unavailable {
                detail: busy.to_string(),
                retry_after_secs: 1,
            },
            // Only the bootstrap step meets it, and it stops the start; no client sees it.
            IdentityError::BootstrapAdminTaken { .. } => ApiError::Internal(err.into()),
            IdentityError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse as _;
    use ordo_identity::{HasherBusy, LoginLocked};

    use super::*;

    fn status_and_retry_after(err: IdentityError) -> (StatusCode, Option<String>) {
        let response = ApiError::from(err).into_response();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status(), retry_after)
    }

    #[test]
    fn a_locked_login_is_429_with_the_lock_as_retry_after() {
        let err = IdentityError::LoginLocked(LoginLocked(Duration::from_millis(2500)));
        assert_eq!(
            status_and_retry_after(err),
            (StatusCode::TOO_MANY_REQUESTS, Some("3".to_owned()))
        );
    }

    #[test]
    fn a_busy_hasher_is_503_with_retry_after() {
        assert_eq!(
            status_and_retry_after(IdentityError::Busy(HasherBusy)),
            (StatusCode::SERVICE_UNAVAILABLE, Some("1".to_owned()))
        );
    }
}
