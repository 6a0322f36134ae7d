//! The write side's cart facts: which guest carts were merged into a customer's cart, from
//! the table a trigger on `events` keeps in the same transaction as each `GuestCartMerged`
//! (migration `0066_carts.sql`). A merged guest cart is retired.

use sqlx::PgPool;
use uuid::Uuid;

/// The cart the guest cart `guest_cart_id` was merged into, if it was.
pub async fn merged_into(pool: &PgPool, guest_cart_id: Uuid) -> sqlx::Result<Option<Uuid>> {
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT cart_id FROM merged_guest_carts WHERE guest_cart_id = $1")
            .bind(guest_cart_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(id,)| id))
}
