//! Ordo's data contracts: the SQL migrations of the event store, the outbox and the read
//! models (in `migrations/`), applied with [`MIGRATOR`].
#![forbid(unsafe_code)]

/// Every migration under `schemas/migrations`, in order. `ordo migrate` and `ordo serve`
/// run it; sqlx takes an advisory lock, so concurrent starts are safe.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
