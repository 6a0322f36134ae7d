//! Running commands from handlers: the error mapping from the write side to problem+json,
//! in one place.

use ordo_aggregates::common::ErrorKind;
use ordo_store::CommandError;

use crate::problem::ApiError;

/// An aggregate error with a stable code and a kind.
pub trait DomainError: std::error::Error {
    /// The stable snake_case code.
    fn code(&self) -> &'static str;
    /// Refusal, bad input or missing.
    fn kind(&self) -> ErrorKind;
}

macro_rules! domain_error {
    ($($ty:ty),* $(,)?) => {
        $(impl DomainError for $ty {
            fn code(&self) -> &'static str { <$ty>::code(self) }
            fn kind(&self) -> ErrorKind { <$ty>::kind(self) }
        })*
    };
}

domain_error!(
    ordo_aggregates::inventory::InventoryError,
    ordo_aggregates::order::OrderError,
    ordo_aggregates::product::ProductError,
);

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
        },
        CommandError::Conflict(_) => ApiError::Conflict,
        CommandError::Store(message) => ApiError::Internal(anyhow::anyhow!(message)),
    }
}
