//! Projection workers: they turn the event streams into read models (Postgres tables with
//! typed columns), each applying an event at most once.
//!
//! # Layout
//! - [`worker`]: [`Projection`], what a read model implements, and [`ProjectionHandler`],
//!   which applies an event and records it as applied in one transaction.
//! - [`products`], [`inventory`], [`orders`], [`payments`]: the commerce read models.
//! - [`shipments`]: the shipments of orders and their tracking updates.
//! - [`aftersales`]: after-sales requests, their decisions, returns, refunds and replacements.
//! - [`reviews`]: product reviews and each product's rating.
//! - [`categories`]: the catalog's category tree.
//! - [`promotions`], [`coupons`]: promotions, coupon batches and the coupons claimed from them.
//! - [`customers`]: the customer directory, whose personal values are opened through the
//!   personal-data vault ([`customers::install_vault`]) and scrubbed on erasure
//!   ([`ERASURE_SCRUBS`]).
//! - [`marketplace`]: the provider directory, service orders, their reviews and the
//!   providers' ratings.
//! - [`ticketing`]: shows, sessions, seat areas, bookings and tickets.
//! - [`delivery_lock`]: the lock every delivery holds shared and a rebuild's switch takes
//!   exclusively (used by both [`worker`] and [`rebuild`], which do not use each other).
//! - [`rebuild`]: rebuilding a read model from the event store beside the live one, then
//!   switching; the projections' status (applied positions, rebuild state).
//! - [`queries`]: what clients read from the read models, one function per question, and
//!   the pagination every list shares.
//! - [`search`]: search over products and shows, on Postgres full text or on
//!   Elasticsearch (its documents, indexers and alias-swapping rebuilds).
#![forbid(unsafe_code)]

pub mod aftersales;
pub mod categories;
pub mod coupons;
pub mod customers;
pub mod delivery_lock;
pub mod inventory;
pub mod marketplace;
pub mod orders;
pub mod payments;
pub mod products;
pub mod promotions;
pub mod queries;
pub mod rebuild;
pub mod reviews;
pub mod search;
pub mod shipments;
pub mod ticketing;
pub mod worker;

pub use worker::{Projection, ProjectionHandler};

use std::sync::Arc;

/// Every projection, by itself (for status and rebuilds).
pub fn projections() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(products::ProductsProjection),
        Arc::new(categories::CategoriesProjection),
        Arc::new(promotions::PromotionsProjection),
        Arc::new(coupons::CouponsProjection),
        Arc::new(inventory::InventoryProjection),
        Arc::new(orders::OrdersProjection),
        Arc::new(payments::PaymentsProjection),
        Arc::new(ticketing::ShowsProjection),
        Arc::new(ticketing::BookingsProjection),
        Arc::new(customers::CustomersProjection),
        Arc::new(marketplace::ProvidersProjection),
        Arc::new(marketplace::ServiceOrdersProjection),
        Arc::new(shipments::ShipmentsProjection),
        Arc::new(aftersales::AfterSalesProjection),
        Arc::new(reviews::ReviewsProjection),
    ]
}

/// What erasing a user does to the read models, in the erasure's own transaction: SQL
/// statements whose `$1` is the user's id, setting every personal column of theirs to NULL.
pub const ERASURE_SCRUBS: &[&str] = &[customers::ERASURE_SCRUB];

/// Every projection, ready to be run by consumers.
pub fn all(pool: sqlx::PgPool) -> Vec<Arc<ProjectionHandler>> {
    projections()
        .into_iter()
        .map(|projection| Arc::new(ProjectionHandler::new(pool.clone(), projection)))
        .collect()
}
