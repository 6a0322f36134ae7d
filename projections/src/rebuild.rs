//! Rebuilding a read model from the full event history, beside the live one, then
//! switching; and what each projection has applied.
//!
//! A rebuild never touches the live tables until the switch, so queries keep answering:
//!
//! 1. Shadow tables are created in the schema [`REBUILD_SCHEMA`] with the live tables'
//!    names and definitions (`LIKE ... INCLUDING ALL`, which keeps generated columns,
//!    defaults, checks and indexes; foreign keys between the projection's own tables are
//!    added back), together with a `consumer_positions` table of the rebuild's own.
//! 2. Every stored event of the projection's aggregate type is applied in `events.position`
//!    order by the projection's own [`Projection::apply`], in transactions whose search path
//!    starts with [`REBUILD_SCHEMA`]: the projection's unqualified table names, and the
//!    claims ([`ordo_nats::applied::claim`]), land in the shadow tables.
//! 3. The switch is one transaction: it waits for the live consumer's event in progress
//!    (the [`crate::delivery_lock`] every delivery holds shared), locks the live tables,
//!    applies the events committed since (those the shadow has not claimed), drops the live tables,
//!    moves the shadow ones into `public` with the live index names, and replaces the live
//!    consumer's positions with the rebuild's. Queries wait for that transaction only, and
//!    the live consumer resumes on the new tables where the rebuild stopped: events it
//!    receives later are claimed against the rebuild's positions, so none is lost or
//!    applied twice.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ordo_nats::applied::{claim, Claim};
use ordo_nats::envelope::{EventRow, OutgoingEvent, ReceivedEvent};
use ordo_nats::subjects::Namespace;
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};

use crate::delivery_lock;
use crate::worker::Projection;

/// The schema holding the shadow tables of rebuilds in progress.
pub const REBUILD_SCHEMA: &str = "ordo_rebuild";

/// First key of the session lock that keeps two rebuilds of one projection apart.
const REBUILD_LOCK: i32 = 0x6f73;

/// Events applied per transaction while the shadow tables fill.
const BATCH: i64 = 500;

/// The projection named `name` (its consumer name, e.g. `projection-orders`; the short
/// form `orders` is accepted too).
pub fn find(name: &str) -> Result<Arc<dyn Projection>, UnknownProjection> {
    let all = crate::projections();
    let wanted = if name.starts_with("projection-") {
        name.to_owned()
    } else {
        format!("projection-{name}")
    };
    all.iter()
        .find(|p| p.name() == wanted)
        .cloned()
        .ok_or_else(|| UnknownProjection {
            name: name.to_owned(),
            known: all.iter().map(|p| p.name()).collect(),
        })
}

/// A projection name that is not one of ours.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown projection {name:?}: the projections are {}", known.join(", "))]
pub struct UnknownProjection {
    /// The name asked for.
    pub name: String,
    /// The projections there are.
    pub known: Vec<&'static str>,
}

/// What a projection has applied and the state of its last rebuild.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionStatus {
    /// Its consumer name.
    pub name: String,
    /// The aggregate type it reads.
    pub aggregate_type: String,
    /// The tables it writes.
    pub tables: Vec<String>,
    /// Aggregates it has applied at least one event of.
    pub aggregates_applied: i64,
    /// Events it has applied.
    pub events_applied: i64,
    /// When it last applied an event.
    pub last_applied_at: Option<DateTime<Utc>>,
    /// `live`, or `rebuilding` while a rebuild fills its shadow tables.
    pub state: String,
    /// The last rebuild: when it started.
    pub rebuild_started_at: Option<DateTime<Utc>>,
    /// The last rebuild: when it switched or failed.
    pub rebuild_finished_at: Option<DateTime<Utc>>,
    /// The last rebuild's error, when it failed.
    pub rebuild_error: Option<String>,
    /// Events the last rebuild applied to its shadow tables so far (its progress).
    pub rebuild_events_applied: Option<i64>,
    /// Events of the projection's aggregate type in the store: what a rebuild applies.
    pub events_total: i64,
}

/// Every projection's status, from `projection_status` and `projection_rebuilds`.
pub async fn status(pool: &PgPool) -> sqlx::Result<Vec<ProjectionStatus>> {
    type Row = (
        String,
        Option<i64>,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<String>,
        Option<i64>,
        i64,
    );
    let mut found = Vec::new();
    for projection in crate::projections() {
        let row: Row = sqlx::query_as(
            "SELECT $1::text, s.aggregates_applied, s.events_applied::bigint, s.last_applied_at, \
                    r.state, r.started_at, r.finished_at, r.error, r.events_applied::bigint, \
                    (SELECT count(*) FROM events WHERE aggregate_type = $2) \
             FROM (SELECT 1) one \
             LEFT JOIN projection_status s ON s.projection = $1 AND s.aggregate_type = $2 \
             LEFT JOIN projection_rebuilds r ON r.projection = $1",
        )
        .bind(projection.name())
        .bind(projection.aggregate_type())
        .fetch_one(pool)
        .await?;
        let state = match row.4.as_deref() {
            Some("rebuilding") => "rebuilding",
            _ => "live",
        };
        found.push(ProjectionStatus {
            name: row.0,
            aggregate_type: projection.aggregate_type().to_owned(),
            tables: projection.tables().iter().map(|t| t.to_string()).collect(),
            aggregates_applied: row.1.unwrap_or(0),
            events_applied: row.2.unwrap_or(0),
            last_applied_at: row.3,
            state: state.to_owned(),
            rebuild_started_at: row.5,
            rebuild_finished_at: row.6,
            rebuild_error: if row.4.as_deref() == Some("failed") {
                row.7
            } else {
                None
            },
            rebuild_events_applied: row.8,
            events_total: row.9,
        });
    }
    Ok(found)
}

/// What a rebuild did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    /// The projection rebuilt.
    pub projection: String,
    /// The tables switched.
    pub tables: Vec<String>,
    /// Events applied while the shadow tables filled.
    pub events_applied: i64,
    /// Events committed meanwhile, applied during the switch.
    pub caught_up: i64,
}

/// Rebuilds `projection` from the full event history beside the live tables, then
/// switches (see the module documentation). Refused when another rebuild of it runs.
pub async fn rebuild(pool: &PgPool, projection: &dyn Projection) -> anyhow::Result<RebuildReport> {
    let name = projection.name();
    let tables = projection.tables();
    anyhow::ensure!(
        !tables.is_empty(),
        "projection {name} does not declare its tables, so it cannot be rebuilt"
    );
    let rebuilt = async {
        let result = run(pool, projection).await;
        match &result {
            Ok(report) => {
                tracing::info!(
                    projection = name,
                    events = report.events_applied,
                    caught_up = report.caught_up,
                    "projection rebuilt and switched"
                );
            }
            Err(err) => {
                tracing::warn!(projection = name, error = %format!("{err:#}"), "projection rebuild failed; the live tables are unchanged");
                drop_shadow(pool, projection).await.ok();
            }
        }
        result
    };
    tracked(pool, REBUILD_LOCK, name, rebuilt).await
}

/// Runs `rebuild`, the rebuild of `name`, as the only one of that name (a session lock
/// under `lock_key`, on a connection of its own, so that it goes away with a crashed
/// rebuild) and records it in `projection_rebuilds`: `rebuilding` while it runs, `failed`
/// with its error if it fails. On success `rebuild` itself has marked it `live` (in the
/// transaction that switched it) or leaves that to the caller.
pub async fn tracked<T>(
    pool: &PgPool,
    lock_key: i32,
    name: &str,
    rebuild: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let mut guard = PgConnection::connect_with(&pool.connect_options()).await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(lock_key)
        .bind(name)
        .fetch_one(&mut guard)
        .await?;
    anyhow::ensure!(locked, "{name} is already being rebuilt");

    sqlx::query(
        "INSERT INTO projection_rebuilds (projection, state, started_at) \
         VALUES ($1, 'rebuilding', now()) \
         ON CONFLICT (projection) DO UPDATE SET state = 'rebuilding', started_at = now(), \
             finished_at = NULL, events_applied = 0, error = NULL",
    )
    .bind(name)
    .execute(pool)
    .await?;

    let result = rebuild.await;
    if let Err(err) = &result {
        sqlx::query(
            "UPDATE projection_rebuilds SET state = 'failed', finished_at = now(), error = $2 \
             WHERE projection = $1",
        )
        .bind(name)
        .bind(format!("{err:#}"))
        .execute(pool)
        .await
        .ok();
    }
    guard.close().await.ok();
    result
}

async fn run(pool: &PgPool, projection: &dyn Projection) -> anyhow::Result<RebuildReport> {
    let name = projection.name();
    let tables = projection.tables();
    prepare_shadow(pool, projection).await?;

    let mut report = RebuildReport {
        projection: name.to_owned(),
        tables: tables.iter().map(|t| t.to_string()).collect(),
        ..RebuildReport::default()
    };
    let mut after = 0_i64;
    loop {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                    payload, metadata, recorded_at \
             FROM events WHERE aggregate_type = $1 AND position > $2 \
             ORDER BY position LIMIT $3",
        )
        .bind(projection.aggregate_type())
        .bind(after)
        .bind(BATCH)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        let mut tx = pool.begin().await?;
        shadow_path(&mut tx).await?;
        report.events_applied += apply_rows(&mut tx, projection, &rows).await?;
        sqlx::query("UPDATE projection_rebuilds SET events_applied = $2 WHERE projection = $1")
            .bind(name)
            .bind(report.events_applied)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }

    // The switch.
    let mut tx = pool.begin().await?;
    delivery_lock::lock_exclusive(&mut tx, name).await?;
    let live: Vec<String> = tables.iter().map(|t| format!("public.{t}")).collect();
    sqlx::query(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        live.join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    // By table: two tables of one projection may have indexes of the same shape.
    let mut live_indexes = Vec::new();
    for table in tables {
        for (name, key) in indexes(&mut tx, "public", table).await? {
            live_indexes.push((*table, name, key));
        }
    }

    // Events committed since the shadow's last batch, or committed out of position order
    // before it: whatever the shadow has not claimed.
    shadow_path(&mut tx).await?;
    let missing: Vec<EventRow> = sqlx::query_as(
        "SELECT e.position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, \
                e.event_version, e.payload, e.metadata, e.recorded_at \
         FROM public.events e \
         LEFT JOIN ordo_rebuild.consumer_positions p \
           ON p.consumer = $2 AND p.aggregate_type = e.aggregate_type \
          AND p.aggregate_id = e.aggregate_id \
         WHERE e.aggregate_type = $1 AND e.sequence > coalesce(p.last_sequence, 0) \
         ORDER BY e.position",
    )
    .bind(projection.aggregate_type())
    .bind(name)
    .fetch_all(&mut *tx)
    .await?;
    report.caught_up = apply_rows(&mut tx, projection, &missing).await?;
    sqlx::query("SET LOCAL search_path TO public")
        .execute(&mut *tx)
        .await?;

    for table in tables.iter().rev() {
        // No CASCADE: a view someone built on a read model stops the switch loudly
        // instead of vanishing.
        sqlx::query(&format!("DROP TABLE public.{table}"))
            .execute(&mut *tx)
            .await?;
    }
    for table in tables {
        sqlx::query(&format!(
            "ALTER TABLE {REBUILD_SCHEMA}.{table} SET SCHEMA public"
        ))
        .execute(&mut *tx)
        .await?;
    }
    // The shadow's indexes got generated names; give them the live ones back, so later
    // migrations find the names they were written against.
    for table in tables {
        for (new_name, key) in indexes(&mut tx, "public", table).await? {
            let old = live_indexes
                .iter()
                .find(|(old_table, _, old_key)| old_table == table && *old_key == key)
                .map(|(_, old_name, _)| old_name.clone());
            if let Some(old_name) = old.filter(|old_name| *old_name != new_name) {
                sqlx::query(&format!(
                    "ALTER INDEX public.{} RENAME TO {}",
                    quote(&new_name),
                    quote(&old_name)
                ))
                .execute(&mut *tx)
                .await?;
            }
        }
    }

    sqlx::query("DELETE FROM public.consumer_positions WHERE consumer = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO public.consumer_positions (consumer, aggregate_type, aggregate_id, last_sequence, updated_at) \
         SELECT consumer, aggregate_type, aggregate_id, last_sequence, updated_at \
         FROM {REBUILD_SCHEMA}.consumer_positions WHERE consumer = $1"
    ))
    .bind(name)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "DELETE FROM {REBUILD_SCHEMA}.consumer_positions WHERE consumer = $1"
    ))
    .bind(name)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE projection_rebuilds SET state = 'live', finished_at = now(), events_applied = $2 \
         WHERE projection = $1",
    )
    .bind(name)
    .bind(report.events_applied + report.caught_up)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    ordo_store::announce::Announcer::of(pool).positions_rewritten();
    Ok(report)
}

/// Points the transaction's unqualified names at the shadow tables first.
async fn shadow_path(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "SET LOCAL search_path TO {REBUILD_SCHEMA}, public"
    ))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Applies stored events through the projection's own code, claiming each in the
/// rebuild's positions; answers how many were applied.
async fn apply_rows(
    tx: &mut PgConnection,
    projection: &dyn Projection,
    rows: &[EventRow],
) -> anyhow::Result<i64> {
    // Events go through the very encoding the relay publishes and consumers read.
    let namespace = Namespace::default();
    let mut applied = 0;
    for row in rows {
        let out = OutgoingEvent::from_row(&namespace, row);
        let event = ReceivedEvent::from_parts(
            &namespace.stream_name(&row.aggregate_type),
            0,
            1,
            &out.subject,
            Some(&out.headers),
            &out.payload,
        )?;
        match claim(&mut *tx, projection.name(), &event).await? {
            Claim::Apply => {
                projection.apply(&mut *tx, &event).await.map_err(|err| {
                    err.context(format!(
                        "applying {} {} sequence {}",
                        event.aggregate_type, event.aggregate_id, event.sequence
                    ))
                })?;
                applied += 1;
            }
            Claim::AlreadyApplied => {}
            Claim::Gap { expected } => anyhow::bail!(
                "{} {}: stored sequence {} follows {} in the event store",
                event.aggregate_type,
                event.aggregate_id,
                event.sequence,
                expected - 1
            ),
        }
    }
    Ok(applied)
}

/// Creates empty shadow tables like the live ones, and the rebuild's positions table.
async fn prepare_shadow(pool: &PgPool, projection: &dyn Projection) -> anyhow::Result<()> {
    let tables = projection.tables();
    // Read with the default search path, so references to live tables print unqualified
    // and resolve to the shadow tables below.
    let mut foreign_keys = Vec::new();
    for table in tables {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.conname::text, pg_get_constraintdef(c.oid) \
             FROM pg_constraint c \
             WHERE c.conrelid = $1::regclass AND c.contype = 'f' \
               AND c.confrelid::regclass::text = ANY($2)",
        )
        .bind(format!("public.{table}"))
        .bind(tables.iter().map(|t| t.to_string()).collect::<Vec<_>>())
        .fetch_all(pool)
        .await?;
        for (constraint, definition) in rows {
            foreign_keys.push((table, constraint, definition));
        }
    }
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {REBUILD_SCHEMA}"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {REBUILD_SCHEMA}.consumer_positions \
         (LIKE public.consumer_positions INCLUDING ALL)"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "DELETE FROM {REBUILD_SCHEMA}.consumer_positions WHERE consumer = $1"
    ))
    .bind(projection.name())
    .execute(&mut *tx)
    .await?;
    for table in tables.iter().rev() {
        sqlx::query(&format!("DROP TABLE IF EXISTS {REBUILD_SCHEMA}.{table}"))
            .execute(&mut *tx)
            .await?;
    }
    for table in tables {
        sqlx::query(&format!(
            "CREATE TABLE {REBUILD_SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    shadow_path(&mut tx).await?;
    for (table, constraint, definition) in foreign_keys {
        sqlx::query(&format!(
            "ALTER TABLE {REBUILD_SCHEMA}.{table} ADD CONSTRAINT {} {definition}",
            quote(&constraint)
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Drops what a failed rebuild left in the shadow schema.
async fn drop_shadow(pool: &PgPool, projection: &dyn Projection) -> sqlx::Result<()> {
    for table in projection.tables().iter().rev() {
        sqlx::query(&format!("DROP TABLE IF EXISTS {REBUILD_SCHEMA}.{table}"))
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// The indexes of `schema.table` as (name, definition without name and table).
async fn indexes(
    tx: &mut PgConnection,
    schema: &str,
    table: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_indexdef(i.indexrelid) \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = $1::regclass ORDER BY c.relname",
    )
    .bind(format!("{schema}.{table}"))
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, definition)| (name, index_key(&definition)))
        .collect())
}

/// `CREATE UNIQUE INDEX x ON s.t USING btree (a)` -> `UNIQUE btree (a)`: what makes two
/// indexes the same whatever their names and schemas.
fn index_key(definition: &str) -> String {
    let unique = definition.starts_with("CREATE UNIQUE");
    let method = definition
        .split_once(" USING ")
        .map(|(_, rest)| rest)
        .unwrap_or(definition);
    format!("{}{method}", if unique { "UNIQUE " } else { "" })
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_by_kind_and_columns_not_by_name() {
        assert_eq!(
            index_key("CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (order_id)"),
            index_key(
                "CREATE UNIQUE INDEX orders_pkey1 ON ordo_rebuild.orders USING btree (order_id)"
            )
        );
        assert_ne!(
            index_key("CREATE INDEX a ON public.t USING btree (x)"),
            index_key("CREATE UNIQUE INDEX a ON public.t USING btree (x)")
        );
    }

    #[test]
    fn projections_are_found_by_full_or_short_name() {
        assert_eq!(
            find("projection-orders").unwrap().name(),
            "projection-orders"
        );
        assert_eq!(find("orders").unwrap().name(), "projection-orders");
        let err = find("nope").err().unwrap().to_string();
        assert!(err.contains("projection-payments"), "{err}");
    }
}
