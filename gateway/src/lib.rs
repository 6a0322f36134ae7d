//! The HTTP gateway of Ordo and its composition root: the `ordo` binary's roles are wired
//! together here.
//!
//! # Layout
//! - [`config`]: settings from environment variables.
//! - [`serve`]: connecting, migrating, and running the roles with graceful shutdown.
//! - [`app`]: the axum router and its layers; [`routes`]: one module per resource.
//! - [`identity`]: the `/auth` routes and the [`identity::AuthUser`] extractor over the
//!   `ordo-identity` crate (users, passwords, tokens, roles, ticket signatures).
//! - [`problem`]: errors as problem+json; [`commands`]: write-side errors mapped to it.
//! - [`consistency`]: `Prefer: wait=N` read-your-writes.
//! - [`ticketing`]: what the show and booking routes share (buses, reserve step, ticket
//!   signatures and QR images); [`profiles`]: what the profile, address and erasure routes
//!   share (the customer bus sealing personal data, opened reads, address snapshots);
//!   [`rate_limit`]: per-IP and per-user limits.
//! - [`marketplace`]: what the provider and service order routes share (the buses sealing
//!   personal data, opened reads).
//! - [`offers`]: promotions and coupons for pricing and checkout (active promotions, quotes,
//!   and the coupon's lock, redeem and release around an order).
//! - [`cli_ops`] and [`cli_dlq`]: the operator subcommands of `ordo`, printing what the
//!   `ordo-ops` crate answers (projection status and rebuilds, stream refills, dead letters).
//! - [`cli_reconcile`]: `ordo reconcile`, a day's payments against the provider's statement.
//! - [`metrics`]: Prometheus metrics, `/metrics` and the HTTP middleware.
//! - [`request_id`], [`telemetry`], [`openapi`].
#![forbid(unsafe_code)]

pub mod app;
pub mod checkout;
pub mod cli_dlq;
pub mod cli_ops;
pub mod cli_reconcile;
pub mod commands;
pub mod config;
pub mod consistency;
pub mod identity;
pub mod marketplace;
pub mod metrics;
pub mod offers;
pub mod openapi;
pub mod problem;
pub mod profiles;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod ticketing;
