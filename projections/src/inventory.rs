//! The `inventory_levels` read model: on hand, reserved and available per SKU (or per
//! session seat area in ticketing).

use async_trait::async_trait;
use ordo_aggregates::inventory::InventoryEvent;
use ordo_contracts::InventoryMessage;
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;

use crate::worker::Projection;

/// Builds `inventory_levels` from the inventory stream.
pub struct InventoryProjection;

#[async_trait]
impl Projection for InventoryProjection {
    fn name(&self) -> &'static str {
        "projection-inventory"
    }

    fn aggregate_type(&self) -> &'static str {
        "inventory"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["inventory_levels"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let InventoryMessage { id, event, facts } = ordo_contracts::inventory(event)?;
        // (on_hand delta, reserved delta), or an absolute on_hand for a restock.
        let (set_on_hand, on_hand_delta, reserved_delta): (Option<i64>, i64, i64) = match event {
            InventoryEvent::Restocked { on_hand, .. } => (Some(i64::try_from(on_hand)?), 0, 0),
            InventoryEvent::StockReserved { quantity, .. } => (None, 0, i64::from(quantity)),
            InventoryEvent::StockReleased { quantity, .. } => (None, 0, -i64::from(quantity)),
            InventoryEvent::StockCommitted { quantity, .. } => {
                let q = i64::from(quantity);
                (None, -q, -q)
            }
            InventoryEvent::StockReturned { quantity, .. } => (None, i64::from(quantity), 0),
            // The threshold changes no level.
            InventoryEvent::SafetyThresholdSet { .. }
            | InventoryEvent::StockBelowThreshold { .. } => (None, 0, 0),
        };
        // The VALUES row is checked against the table's constraints before the conflict is
        // detected, so it is clamped at zero even though only the UPDATE applies then.
        sqlx::query(
            "INSERT INTO inventory_levels (sku, on_hand, reserved, version, updated_at)
             VALUES ($1, greatest(coalesce($2, 0) + $3, 0), greatest($4, 0), $5, $6)
             ON CONFLICT (sku) DO UPDATE SET
                on_hand = coalesce($2, inventory_levels.on_hand + $3),
                reserved = inventory_levels.reserved + $4,
                version = $5,
                updated_at = $6",
        )
        .bind(id.as_str())
        .bind(set_on_hand)
        .bind(on_hand_delta)
        .bind(reserved_delta)
        .bind(facts.sequence)
        .bind(facts.recorded_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
