//! Reads of the `inventory_levels` read model: the stock of one SKU.

use serde::Serialize;
use utoipa::ToSchema;

use super::{products, PgPool, QueryResult};

/// Stock of one SKU.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct InventoryView {
    pub sku: String,
    /// Units in the warehouse, including reserved ones.
    pub on_hand: i64,
    /// Units held for orders not yet paid.
    pub reserved: i64,
    /// Units that can still be ordered.
    pub available: i64,
    /// The inventory item's version.
    pub version: i64,
}

impl InventoryView {
    /// The stock of a product that was never restocked: nothing, at version 0.
    fn empty(sku: &str) -> Self {
        Self {
            sku: sku.to_owned(),
            on_hand: 0,
            reserved: 0,
            available: 0,
            version: 0,
        }
    }
}

/// The stock of a catalog product: its level, or an empty one for a product never
/// restocked; `None` when the catalog has no such product.
pub async fn level(pool: &PgPool, sku: &str) -> QueryResult<Option<InventoryView>> {
    let row: Option<InventoryView> = sqlx::query_as(
        "SELECT sku, on_hand, reserved, available, version FROM inventory_levels WHERE sku = $1",
    )
    .bind(sku)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(view) => Ok(Some(view)),
        None if products::exists(pool, sku).await? => Ok(Some(InventoryView::empty(sku))),
        None => Ok(None),
    }
}
