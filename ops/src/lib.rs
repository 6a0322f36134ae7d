//! Ordo's operator tasks, shared by the `ordo` subcommands, the admin HTTP routes, the NATS
//! admin micro service and the metrics poller.
//!
//! # Layout
//! - [`operations`]: projection status with JetStream lag, projection and search index
//!   rebuilds, stream refills, and the gauges the metrics poller reads (relay lag, sagas by
//!   status, dead letters per consumer).
//! - [`dead_letters`]: re-driving an aggregate's dead letters.
//! - [`replay`]: `ordo replay`, events for analysts (JSON Lines, CSV) or into a fresh read
//!   model database.
//! - [`admin_service`]: the `<ns>.admin.*` NATS micro service.
//! - [`demo`]: the demo catalog.
#![forbid(unsafe_code)]

pub mod admin_service;
pub mod dead_letters;
pub mod demo;
pub mod operations;
pub mod replay;

/// What operator tasks work on: the database, NATS and the search engine of one deployment.
/// Cheap to clone.
#[derive(Clone)]
pub struct OpsContext {
    /// Postgres: event store, read models, sagas.
    pub pool: sqlx::PgPool,
    /// The NATS connection (the admin service registers on it).
    pub nats: async_nats::Client,
    /// JetStream, for streams, consumers and dead letters.
    pub jetstream: async_nats::jetstream::Context,
    /// The streams' namespace.
    pub namespace: ordo_nats::subjects::Namespace,
    /// The search engine (Postgres, or Elasticsearch when configured).
    pub search: ordo_projections::search::SearchEngine,
}
