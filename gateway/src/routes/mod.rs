//! The HTTP resources of the API, one module each, merged into one router.

pub mod admin;
pub mod bookings;
pub mod health;
pub mod inventory;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod products;
pub mod search;
pub mod shows;

use crate::problem::ApiError;

/// Decodes an opaque pagination cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::invalid("cursor", "cursor is not one this API gave out"))
}

/// Makes an opaque pagination cursor.
pub fn encode_cursor(position: &str) -> String {
    hex::encode(position)
}

/// Checks a page size: 1 to 100, 20 when absent.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(20),
        Some(n) if (1..=100).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 100",
        )),
    }
}
