//! The delivery lock of a projection: an advisory lock, per projection, that every
//! delivery of an event holds shared for its transaction and a rebuild's switch takes
//! exclusively, so that the switch never swaps tables under an event half applied.
//!
//! Both the consumer ([`crate::worker`]) and the rebuild ([`crate::rebuild`]) take it; it
//! lives apart from either so that neither depends on the other.

use sqlx::PgConnection;

/// First key of the advisory locks of projections (`'or'`): deliveries hold
/// `(PROJECTION_LOCK, hashtext(name))` shared, a rebuild's switch exclusively.
const PROJECTION_LOCK: i32 = 0x6f72;

/// Takes `projection`'s delivery lock, shared, for the rest of `tx` (one event's delivery).
pub async fn lock_shared(tx: &mut PgConnection, projection: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1, hashtext($2))")
        .bind(PROJECTION_LOCK)
        .bind(projection)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Takes `projection`'s delivery lock, exclusively, for the rest of `tx`: waits for every
/// delivery in progress and holds new ones back (a rebuild's switch).
pub async fn lock_exclusive(tx: &mut PgConnection, projection: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(PROJECTION_LOCK)
        .bind(projection)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
