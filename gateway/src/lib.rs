//! The HTTP gateway of Ordo and its composition root: the `ordo` binary's roles are wired
//! together here.
//!
//! # Layout
//! - [`config`]: settings from environment variables.
//! - [`serve`]: connecting, migrating, and running the roles with graceful shutdown.
//! - [`app`]: the axum router and its layers; [`routes`]: one module per resource.
//! - [`identity`]: users, passwords, JWTs and the [`identity::AuthUser`] extractor.
//! - [`problem`]: errors as problem+json; [`commands`]: write-side errors mapped to it.
//! - [`consistency`]: `Prefer: wait=N` read-your-writes.
//! - [`payments`]: the payment provider client, callback signatures and the sandbox provider.
//! - [`dead_letters`]: re-driving dead letters.
//! - [`search`]: catalog search on Postgres or Elasticsearch; [`inbox`]: notification queries
//!   and live delivery; [`replay`]: `ordo replay` for analysts.
//! - [`request_id`], [`telemetry`], [`openapi`], [`demo`].
#![forbid(unsafe_code)]

pub mod app;
pub mod cli_dlq;
pub mod commands;
pub mod config;
pub mod consistency;
pub mod dead_letters;
pub mod demo;
pub mod identity;
pub mod inbox;
pub mod openapi;
pub mod payments;
pub mod problem;
pub mod request_id;
pub mod replay;
pub mod routes;
pub mod search;
pub mod serve;
pub mod state;
pub mod telemetry;
