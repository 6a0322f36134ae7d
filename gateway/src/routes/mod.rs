//! The HTTP resources of the API, one module each, merged into one router. Handlers read
//! through [`ordo_projections::queries`]; a read model that fails to answer is an opaque
//! 500, a parameter the read side refuses a 422 naming it.

pub mod admin;
pub mod aftersales;
pub mod bookings;
pub mod carts;
pub mod categories;
pub mod coupons;
pub mod health;
pub mod inventory;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod products;
pub mod promotions;
pub mod providers;
pub mod reconciliations;
pub mod reviews;
pub mod search;
pub mod service_orders;
pub mod shipments;
pub mod shipping;
pub mod shows;
pub mod users;

use ordo_projections::queries::{page, InvalidParameter, QueryError};

use crate::problem::ApiError;

impl From<InvalidParameter> for ApiError {
    fn from(err: InvalidParameter) -> Self {
        ApiError::invalid(err.field, err.detail)
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        ApiError::Internal(err.into())
    }
}

/// Decodes an opaque pagination cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    Ok(page::decode_cursor(cursor)?)
}

/// Makes an opaque pagination cursor.
pub fn encode_cursor(position: &str) -> String {
    page::encode_cursor(position)
}

/// Checks a page size: 1 to 100, 20 when absent.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    Ok(page::limit(limit)?)
}
