//! The domain of Ordo: one module per aggregate, each holding its commands, events,
//! errors, state and business rules. Pure: no SQL, no NATS, no HTTP.
//!
//! # Layout
//!
//! - [`common`]: value types parsed at the edge (SKUs, quantities, money, ids, texts) and
//!   [`common::ErrorKind`], the class every aggregate error maps to.
//! - [`inventory`]: stock of one SKU or one seat area; reserve, release, commit, return.
//! - [`product`]: catalog products (SPUs) with their SKUs, prices, listing and limits.
//! - [`category`]: the catalog's category tree.
//! - [`order`]: orders of goods, from placement to payment, cancellation or refund.
//! - [`payment`]: payments as reported by the provider, including partial refunds.
//! - [`show`]: shows, their sessions and seat areas.
//! - [`booking`]: bookings of seats, from request to tickets and check-in.
//!
//! Every aggregate uses `()` as its services, names its events after their variants
//! (version "1"), and treats the repeat of a transition that already happened as a
//! no-op, so sagas can retry any step. Every error has a stable `code()` and a `kind()`.
#![forbid(unsafe_code)]

pub mod booking;
pub mod category;
pub mod common;
pub mod inventory;
pub mod order;
pub mod payment;
pub mod product;
pub mod show;
