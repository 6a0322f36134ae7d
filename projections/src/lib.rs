//! Projection workers: they turn the event streams into read models (Postgres tables with
//! typed columns), each applying an event at most once.
//!
//! # Layout
//! - [`worker`]: [`Projection`], what a read model implements, and [`ProjectionHandler`],
//!   which applies an event and records it as applied in one transaction.
//! - [`products`], [`inventory`], [`orders`], [`payments`]: the commerce read models.
//! - [`notifications`]: each user's inbox and its email copies (its own handler, because
//!   mail is sent after the inbox entry commits).
#![forbid(unsafe_code)]

pub mod inventory;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod products;
pub mod worker;

pub use worker::{Projection, ProjectionHandler};

use std::sync::Arc;

/// Every projection of the commerce side, ready to be run by consumers.
pub fn all(pool: sqlx::PgPool) -> Vec<Arc<ProjectionHandler>> {
    vec![
        Arc::new(ProjectionHandler::new(
            pool.clone(),
            Arc::new(products::ProductsProjection),
        )),
        Arc::new(ProjectionHandler::new(
            pool.clone(),
            Arc::new(inventory::InventoryProjection),
        )),
        Arc::new(ProjectionHandler::new(
            pool.clone(),
            Arc::new(orders::OrdersProjection),
        )),
        Arc::new(ProjectionHandler::new(
            pool,
            Arc::new(payments::PaymentsProjection),
        )),
    ]
}
