//! The read side's queries: every read a client can make of the Postgres read models, one
//! module per read model, each function one question with a typed answer. The gateway's
//! handlers call one of them and map the answer to HTTP; no SQL is written anywhere else
//! for reads.
//!
//! - [`page`]: page sizes and the opaque cursors of every paginated list (search's too).
//! - [`products`], [`categories`], [`inventory`]: the catalog, its category tree and its
//!   stock levels.
//! - [`orders`], [`payments`]: orders with their lines and shipments, and payments, as their
//!   owners see them; [`shipments`]: shipments with their tracking updates.
//! - [`shows`], [`bookings`]: shows with their sessions and seats available, the bookings
//!   list and who holds a ticket.
//! - [`offers`]: promotions, coupon batches and a customer's coupons.
//! - [`marketplace`]: providers, their ratings, service orders and the orders matching a
//!   provider.
//! - [`aftersales`]: after-sales requests; [`reviews`]: product reviews and ratings, with
//!   [`ratings`] the rating arithmetic they share with the providers' ratings.
//! - [`ping`]: whether the read side's database answers at all (readiness).
//!
//! A request the read side refuses (a bad cursor, a page size out of range) is an
//! [`InvalidParameter`] naming the parameter; a database that fails is a [`QueryError`].
//! Functions answer what is there: who may see it is the caller's decision.

pub mod aftersales;
pub mod bookings;
pub mod categories;
pub mod inventory;
pub mod marketplace;
pub mod offers;
pub mod orders;
pub mod page;
pub mod payments;
pub mod products;
pub mod ratings;
pub mod reviews;
pub mod shipments;
pub mod shows;

/// The pool every query reads from.
pub use sqlx::PgPool;

/// A query parameter the read side cannot answer: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct InvalidParameter {
    /// The parameter, as the client spelled it (`cursor`, `limit`, `min_price`...).
    pub field: &'static str,
    /// What is wrong with it, for the client.
    pub detail: String,
}

impl InvalidParameter {
    /// `field` is invalid because of `detail`.
    pub fn new(field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field,
            detail: detail.into(),
        }
    }
}

/// A read model could not be read: the database failed (not a question of the request).
#[derive(Debug, thiserror::Error)]
#[error("reading a read model failed")]
pub struct QueryError(#[from] sqlx::Error);

/// What every query answers.
pub type QueryResult<T> = Result<T, QueryError>;

/// Whether the database answers a trivial query.
pub async fn ping(pool: &PgPool) -> QueryResult<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
