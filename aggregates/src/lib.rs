//! The domain of Ordo: one module per aggregate, each holding its commands, events,
//! errors, state and business rules. Pure: no SQL, no NATS, no HTTP.
#![forbid(unsafe_code)]

pub mod common;
pub mod inventory;
pub mod order;
pub mod payment;
pub mod product;
pub mod show;
