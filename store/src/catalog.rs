//! The write side's catalog facts: small tables kept by a trigger on `events` (migration
//! `0065_catalog.sql`) in the same transaction as the event that changes them, so a command
//! that needs a fact about other aggregates reads it here, never from a read model:
//!
//! - which product owns a SKU ([`product_of_sku`]); the table's key also refuses a second
//!   product claiming a SKU, so two products created at once with one SKU cannot both
//!   commit (the loser's command ends as a conflict);
//! - a category's path to the root and what is filed under it ([`category_path`],
//!   [`category_contents`]);
//! - the units of a SKU on a customer's orders that count towards a purchase limit
//!   ([`units_ordered`]): orders that were not cancelled, rejected or expired.
//!
//! Decisions that read these facts and then commit take a [`WriteLock`] around both, so two
//! racing commands cannot both decide on the same stale fact: the whole category tree has
//! one lock (its changes are rare admin work), and each customer has one for placing orders
//! of SKUs with a purchase limit.

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

/// Deepest path [`category_path`] follows before it stops (a bound above the tree's depth).
const MAX_PATH: i32 = 64;

/// The product that owns `sku`, if any.
pub async fn product_of_sku(pool: &PgPool, sku: &str) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT product_id FROM catalog_skus WHERE sku = $1")
            .bind(sku)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(id,)| id))
}

/// Which of `skus` some product already owns.
pub async fn skus_taken(pool: &PgPool, skus: &[String]) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT sku FROM catalog_skus WHERE sku = ANY($1) ORDER BY sku")
            .bind(skus)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(sku,)| sku).collect())
}

/// The live category `id` and its ancestors, nearest first (`[id, parent, ..., root]`);
/// `None` when there is no such category or it was deleted.
pub async fn category_path(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Vec<Uuid>>> {
    let rows: Vec<(Uuid, bool)> = sqlx::query_as(
        "WITH RECURSIVE path (category_id, parent_id, deleted, depth) AS (
             SELECT category_id, parent_id, deleted, 1 FROM catalog_category_tree
             WHERE category_id = $1
             UNION ALL
             SELECT t.category_id, t.parent_id, t.deleted, p.depth + 1
             FROM catalog_category_tree t JOIN path p ON t.category_id = p.parent_id
             WHERE p.depth < $2)
         SELECT category_id, deleted FROM path ORDER BY depth",
    )
    .bind(id)
    .bind(MAX_PATH)
    .fetch_all(pool)
    .await?;
    match rows.first() {
        Some((_, false)) => Ok(Some(rows.into_iter().map(|(id, _)| id).collect())),
        _ => Ok(None),
    }
}

/// How many live categories have `id` as parent, and how many products are filed under it.
pub async fn category_contents(pool: &PgPool, id: Uuid) -> sqlx::Result<(u64, u64)> {
    let (children, products): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM catalog_category_tree WHERE parent_id = $1 AND NOT deleted),
                (SELECT count(*) FROM catalog_product_categories WHERE category_id = $1)",
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    Ok((children as u64, products as u64))
}

/// Units of `sku` on the orders of `customer` other than `order`, counting only orders
/// that were not cancelled, rejected or expired.
pub async fn units_ordered(
    pool: &PgPool,
    customer: Uuid,
    sku: &str,
    order: Uuid,
) -> sqlx::Result<u64> {
    let (units,): (i64,) = sqlx::query_as(
        "SELECT coalesce(sum(quantity), 0)::bigint FROM order_purchases
         WHERE customer_id = $1 AND sku = $2 AND counts AND order_id <> $3",
    )
    .bind(customer)
    .bind(sku)
    .bind(order)
    .fetch_one(pool)
    .await?;
    Ok(units.max(0) as u64)
}

/// A Postgres session lock held on a connection of its own while a decision reads its facts
/// and commits; other processes wait for it too. Call [`WriteLock::release`]; a lock dropped
/// without it closes its connection, which releases it as well.
pub struct WriteLock {
    conn: Option<PoolConnection<Postgres>>,
    key: String,
}

impl WriteLock {
    /// The lock of the whole category tree.
    pub async fn category_tree(pool: &PgPool) -> sqlx::Result<WriteLock> {
        Self::acquire(pool, "ordo:category-tree".to_owned()).await
    }

    /// The lock of one customer's orders of limited SKUs.
    pub async fn customer_purchases(pool: &PgPool, customer: Uuid) -> sqlx::Result<WriteLock> {
        Self::acquire(pool, format!("ordo:purchases:{customer}")).await
    }

    async fn acquire(pool: &PgPool, key: String) -> sqlx::Result<WriteLock> {
        let mut conn = pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
            .bind(&key)
            .execute(&mut *conn)
            .await?;
        Ok(WriteLock {
            conn: Some(conn),
            key,
        })
    }

    /// Releases the lock and gives its connection back to the pool.
    pub async fn release(mut self) -> sqlx::Result<()> {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(&self.key)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                drop(conn.detach());
            }
            unlocked?;
        }
        Ok(())
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Closing the session releases its locks; the pool opens another connection.
            drop(conn.detach());
        }
    }
}
