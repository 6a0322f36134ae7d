//! Ordo's data contracts: the SQL schema of the event store, the outbox and the read
//! models; the JSON Schema of every event as it is published on JetStream; the AsyncAPI
//! document of the NATS side; and the upcasters that bring stored events of an older
//! version up to the current one.
//!
//! # Layout
//!
//! - `migrations/`: the SQL migrations, applied in order with [`MIGRATOR`]. A migration
//!   never changes once released; a change is a new migration.
//! - `events/<aggregate_type>/<EventType>.v<version>.json`: one JSON Schema (draft 2020-12)
//!   per event type and version, describing the published payload: the event's own object,
//!   without the outer tag that serde writes in the `events` table (`{"StockReserved":
//!   {...}}` is published as `{...}`; a variant without fields as `{}`). Its `$id` is
//!   `urn:ordo:event:<aggregate_type>:<EventType>:<version>`. The aggregate type, the event
//!   type and the version are those of the `events` row (`Aggregate::TYPE`,
//!   `DomainEvent::event_type`, `DomainEvent::event_version`), found with
//!   [`event_schema_path`]. Older versions stay beside the current one: stored events
//!   keep their version and are published as stored.
//! - `events/common.json`: the shared value types (UUIDs, SKUs, money, quantities,
//!   bounded texts). Each event schema carries a copy of the definitions it uses under its
//!   own `$defs`, so it validates alone, offline, with any tool; the tests keep every copy
//!   equal to `common.json`.
//! - `asyncapi.yaml`: AsyncAPI 3.0 document of the NATS server, one channel per aggregate
//!   type (`ordo.events.<aggregate_type>.{aggregateId}.{eventType}`, stream
//!   `ORDO_<TYPE>`) and the dead-letter channel (`ordo.dlq.{consumer}`, stream
//!   `ORDO_DLQ`), every message with its payload schema and headers, and the operations
//!   of the outbox relay (send) and of the consumers (receive).
//! - [`upcasters`]: the `EventUpcaster`s to give to the event store, which rewrite an
//!   older version as it is loaded (today `PaymentRefunded` and `PaymentCreated`, version 1
//!   to 2).
//!
//! # Changing an event
//!
//! A change to an event's fields raises its `event_version()`, adds a schema file for the
//! new version, keeps the old one, and adds an upcaster from the old version. `tests/event_schemas.rs` validates a sample of every
//! variant against its schema and fails on a variant without a schema, a schema without a
//! variant, or a schema the AsyncAPI document does not name.
#![forbid(unsafe_code)]

use std::path::PathBuf;

pub mod upcasters;

/// Every migration under `schemas/migrations`, in order. `ordo migrate` and `ordo serve`
/// run it; sqlx takes an advisory lock, so concurrent starts are safe.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The folder of the event schemas in the source tree.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The AsyncAPI document in the source tree.
pub fn asyncapi_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("asyncapi.yaml")
}

/// The schema file of one event type and version:
/// `events/<aggregate_type>/<event_type>.v<event_version>.json`.
pub fn event_schema_path(aggregate_type: &str, event_type: &str, event_version: &str) -> PathBuf {
    events_dir()
        .join(aggregate_type)
        .join(format!("{event_type}.v{event_version}.json"))
}

/// The Elasticsearch index definitions under `elasticsearch/` (settings and mappings, the
/// body of `PUT /<index>`), as `(index name, JSON)`: the index is `ordo-<name>-v1` behind
/// the alias `ordo-<name>`.
pub const ELASTICSEARCH_INDICES: &[(&str, &str)] = &[
    ("products", include_str!("../elasticsearch/products.json")),
    ("shows", include_str!("../elasticsearch/shows.json")),
];
