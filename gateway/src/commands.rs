//! Running commands from handlers: the error mapping from the write side to problem+json,
//! in one place.

use ordo_aggregates::common::{DomainError, ErrorKind};
use ordo_store::CommandError;

use crate::problem::ApiError;

/// Maps a failed command to its HTTP answer.
pub fn api_error<E: DomainError>(err: CommandError<E>) -> ApiError {
    match err {
        CommandError::Rejected(err) => match err.kind() {
            ErrorKind::Refused => ApiError::Refused {
                code: err.code(),
                detail: err.to_string(),
            },
            ErrorKind::Invalid => ApiError::Unprocessable {
                code: err.code(),
                detail: err.to_string(),
            },
            ErrorKind::NotFound => ApiError::NotFound(err.to_string()),
            ErrorKind::UnknownReference => ApiError::UnknownReference {
                code: err.code(),
                detail: err.to_string(),
            },
        },
        CommandError::Conflict(_) => ApiError::Conflict,
        CommandError::Store(message) => ApiError::Internal(anyhow::anyhow!(message)),
    }
}
