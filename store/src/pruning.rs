//! Pruning what the write side keeps only for a while, in bounded batches so that one pass
//! never holds many rows locked:
//!
//! - checkout quotes some time after they expired ([`prune_expired_quotes`]); an order
//!   from a quote that expired recently is still answered with a fresh quote, one from a
//!   pruned quote is told it does not exist;
//! - guest carts nobody changed for a while, and guest carts merged into a customer's cart
//!   ([`prune_idle_guest_carts`]): their rows in `guest_carts` (migration 0081) and their
//!   events go together, in one transaction; a pruned guest cart's token answers as gone.
//!
//! [`guest_carts`] counts the guest carts kept, which the gateway caps.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Deletes at most `batch` checkout quotes that expired before `expired_before`. Returns
/// how many it deleted.
pub async fn prune_expired_quotes(
    pool: &PgPool,
    expired_before: DateTime<Utc>,
    batch: i64,
) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM checkout_quotes WHERE quote_id IN (
             SELECT quote_id FROM checkout_quotes WHERE expires_at < $1
              ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(expired_before)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

/// Deletes at most `batch` guest carts last changed before `idle_before` (merged ones
/// count as changed never), with every event of theirs. Returns how many it deleted.
///
/// A cart event committed while its cart is pruned waits for the pruning transaction (the
/// trigger keeping `guest_carts` updates the row this transaction holds), so a cart is not
/// pruned under a change in flight; the gateway refuses a pruned cart's token before it
/// writes anything.
pub async fn prune_idle_guest_carts(
    pool: &PgPool,
    idle_before: DateTime<Utc>,
    batch: i64,
) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let pruned: Vec<Uuid> = sqlx::query_scalar(
        "DELETE FROM guest_carts WHERE cart_id IN (
             SELECT cart_id FROM guest_carts WHERE last_active_at < $1
              ORDER BY last_active_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING cart_id",
    )
    .bind(idle_before)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if pruned.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = pruned.iter().map(Uuid::to_string).collect();
    sqlx::query(
        "DELETE FROM outbox WHERE position IN (
             SELECT position FROM events WHERE aggregate_type = 'cart' AND aggregate_id = ANY($1))",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM snapshots WHERE aggregate_type = 'cart' AND aggregate_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM events WHERE aggregate_type = 'cart' AND aggregate_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(pruned.len() as u64)
}

/// How many guest carts are kept (open, or merged and not pruned yet).
pub async fn guest_carts(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM guest_carts")
        .fetch_one(pool)
        .await
}
