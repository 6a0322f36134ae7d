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
            IdentityError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}
