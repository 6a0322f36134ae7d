//! The `shipments` and `shipment_tracking` read models: each order's shipments with their
//! carrier, tracking number and status, and the tracking updates in the order they came.

use async_trait::async_trait;
use ordo_aggregates::shipment::ShipmentEvent;
use ordo_contracts::{EventFacts, ShipmentMessage};
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::worker::Projection;

/// Builds `shipments` and `shipment_tracking` from the shipment stream.
pub struct ShipmentsProjection;

#[async_trait]
impl Projection for ShipmentsProjection {
    fn name(&self) -> &'static str {
        "projection-shipments"
    }

    fn aggregate_type(&self) -> &'static str {
        "shipment"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["shipments", "shipment_tracking"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let ShipmentMessage { id, event, facts } = ordo_contracts::shipment(event)?;
        let shipment_id = *id.as_uuid();
        match event {
            ShipmentEvent::ShipmentCreated {
                order_id,
                customer_id,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO shipments (shipment_id, order_id, customer_id, status, version, created_at, updated_at)
                     VALUES ($1, $2, $3, 'created', $4, $5, $5)",
                )
                .bind(shipment_id)
                .bind(order_id.as_uuid())
                .bind(customer_id.as_uuid())
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            ShipmentEvent::ShipmentCancelled { .. } => {
                set_status(tx, shipment_id, "cancelled", &facts).await?;
            }
            ShipmentEvent::ShipmentPicked {} => {
                set_status(tx, shipment_id, "picked", &facts).await?;
            }
            ShipmentEvent::ShipmentShipped {
                carrier,
                tracking_no,
            } => {
                sqlx::query(
                    "UPDATE shipments SET status = 'shipped', carrier = $2, tracking_no = $3,
                            version = $4, updated_at = $5
                     WHERE shipment_id = $1",
                )
                .bind(shipment_id)
                .bind(carrier.as_str())
                .bind(tracking_no.as_str())
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            ShipmentEvent::TrackingUpdated {
                status,
                at,
                shipment_status,
            } => {
                sqlx::query(
                    "INSERT INTO shipment_tracking (shipment_id, sequence, status, at)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(shipment_id)
                .bind(facts.sequence)
                .bind(status.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
                set_status(tx, shipment_id, shipment_status.as_str(), &facts).await?;
            }
        }
        Ok(())
    }
}

/// Moves a shipment's row to `status` at the event's version.
async fn set_status(
    tx: &mut PgConnection,
    shipment_id: Uuid,
    status: &str,
    facts: &EventFacts,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE shipments SET status = $2, version = $3, updated_at = $4 WHERE shipment_id = $1",
    )
    .bind(shipment_id)
    .bind(status)
    .bind(facts.sequence)
    .bind(facts.recorded_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
