//! The `inventory_levels` read model: on hand, reserved and available per SKU (or per
//! session seat area in ticketing).

use async_trait::async_trait;
use ordo_nats::envelope::ReceivedEvent;
use serde::Deserialize;
use sqlx::PgConnection;

use crate::worker::Projection;

#[derive(Deserialize)]
struct Restocked {
    on_hand: i64,
}

#[derive(Deserialize)]
struct ReservationChange {
    quantity: i64,
}

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
        // (on_hand delta, reserved delta), or an absolute on_hand for a restock.
        let (set_on_hand, on_hand_delta, reserved_delta): (Option<i64>, i64, i64) =
            match event.event_type.as_str() {
                "Restocked" => {
                    let restocked: Restocked = serde_json::from_value(event.payload.clone())?;
                    (Some(restocked.on_hand), 0, 0)
                }
                "StockReserved" => (None, 0, quantity(event)?),
                "StockReleased" => (None, 0, -quantity(event)?),
                "StockCommitted" => {
                    let q = quantity(event)?;
                    (None, -q, -q)
                }
                "StockReturned" => (None, quantity(event)?, 0),
                _ => return Ok(()),
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
        .bind(&event.aggregate_id)
        .bind(set_on_hand)
        .bind(on_hand_delta)
        .bind(reserved_delta)
        .bind(event.sequence)
        .bind(event.recorded_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

fn quantity(event: &ReceivedEvent) -> anyhow::Result<i64> {
    let change: ReservationChange = serde_json::from_value(event.payload.clone())?;
    Ok(change.quantity)
}
