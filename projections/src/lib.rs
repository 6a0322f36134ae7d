//! Projection workers: they turn the event streams into read models (Postgres tables with
//! typed columns), each applying an event at most once.
//!
//! # Layout
//! - [`worker`]: [`Projection`], what a read model implements, and [`ProjectionHandler`],
//!   which applies an event and records it as applied in one transaction.
//! - [`products`], [`inventory`], [`orders`], [`payments`]: the commerce read models.
//! - [`ticketing`]: shows, sessions, seat areas, bookings and tickets; see [`ticketing_all`].
#![forbid(unsafe_code)]

pub mod inventory;
pub mod orders;
pub mod payments;
pub mod products;
pub mod ticketing;
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

/// Every projection of the ticketing side (shows and bookings), ready to be run by consumers.
pub fn ticketing_all(pool: sqlx::PgPool) -> Vec<Arc<ProjectionHandler>> {
    vec![
        Arc::new(ProjectionHandler::new(
            pool.clone(),
            Arc::new(ticketing::ShowsProjection),
        )),
        Arc::new(ProjectionHandler::new(
            pool,
            Arc::new(ticketing::BookingsProjection),
        )),
    ]
}
