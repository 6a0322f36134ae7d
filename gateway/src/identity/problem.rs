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
