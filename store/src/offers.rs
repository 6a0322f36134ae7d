//! The write side's facts about promotions and coupons: small tables kept by a trigger on
//! `events` (migration `0070_promotions_and_coupons.sql`) in the same transaction as the
//! event that changes them, so pricing and checkout read them here, never from a read model:
//!
//! - the promotions whose window is still open at an instant ([`promotions_open_at`]); their
//!   terms are then loaded from the promotion aggregates themselves;
//! - the batch a coupon belongs to and who claimed it ([`coupon_owner`]), so an order may
//!   name a coupon by its id alone.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Ids of the promotions not ended and whose window has not closed at `now` (those not
/// started yet included: the caller judges each one's window on its terms).
pub async fn promotions_open_at(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<Vec<Uuid>> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT promotion_id FROM promotion_windows
         WHERE ends_at > $1 AND (ended_at IS NULL OR ended_at > $1)
         ORDER BY promotion_id",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The batch of coupon `coupon_id` and its owner, if such a coupon was claimed.
pub async fn coupon_owner(pool: &PgPool, coupon_id: Uuid) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    sqlx::query_as("SELECT batch_id, user_id FROM coupon_owners WHERE coupon_id = $1")
        .bind(coupon_id)
        .fetch_optional(pool)
        .await
}
