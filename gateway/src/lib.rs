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
//! - [`dead_letters`]: re-driving dead letters.
//! - [`inbox`]: notification queries
//!   and live delivery; [`replay`]: `ordo replay` for analysts.
//! - [`ticketing`]: what the show and booking routes share (buses, reserve step, ticket
//!   signatures and QR images); [`rate_limit`]: per-IP and per-user limits.
//! - [`operations`]: projection status and rebuilds, stream refills; [`cli_ops`] and
//!   [`cli_dlq`] as `ordo` subcommands, [`admin_service`] as a NATS micro service.
//! - [`metrics`]: Prometheus metrics, `/metrics` and the HTTP middleware.
//! - [`request_id`], [`telemetry`], [`openapi`], [`demo`].
#![forbid(unsafe_code)]

pub mod admin_service;
pub mod app;
pub mod cli_dlq;
pub mod cli_ops;
pub mod commands;
pub mod config;
pub mod consistency;
pub mod dead_letters;
pub mod demo;
pub mod identity;
pub mod inbox;
pub mod metrics;
pub mod openapi;
pub mod operations;
pub mod problem;
pub mod rate_limit;
pub mod replay;
pub mod request_id;
pub mod routes;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod ticketing;
