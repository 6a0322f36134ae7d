//! Connecting to Postgres and applying Ordo's migrations.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// What names the database `pool` connects to (host, port and name): the key of the
/// per-database, per-process parts (the announcer, the group committer, the recorder of
/// last writes).
pub fn key_of(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

/// Opens a pool, failing with a readable error when the server is unreachable.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|err| anyhow::anyhow!("ORDO_DATABASE_URL is not a valid Postgres URL: {err}"))?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|err| anyhow::anyhow!("cannot connect to Postgres at {}: {err}", redact(url)))
}

/// Applies every migration in `schemas/migrations` that has not run yet.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    ordo_schemas::MIGRATOR
        .run(pool)
        .await
        .map_err(|err| anyhow::anyhow!("migrating the database failed: {err}"))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
