//! The seat stock policy: when a show adds a session (alone, or with the show's creation),
//! it records the session's show ([`crate::show_state`]) and opens the inventory item of
//! each of the session's seat areas with the area's capacity. Every command carries a
//! deterministic id (the session and the area) and opening an item that is open is a
//! no-op, so a crash or a redelivery between two areas opens each exactly once.
//!
//! The policy is the durable consumer `policy-seat-stock` on the show stream
//! (`nats/consumers/policy-seat-stock.json`). The HTTP gateway only sends the Show's
//! command, then waits a short while for the seats to be open.

use std::sync::Arc;

use async_trait::async_trait;
use ordo_aggregates::common::{Quantity, SessionId, Sku};
use ordo_aggregates::show::{seat_inventory_id, SeatArea, ShowEvent};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::CommandMetadata;
use sqlx::PgPool;

use crate::crash_points::crash_after;
use crate::deadlines::step_metadata;
use crate::handling::{begin_claimed, retry, step_failure};
use crate::port::StepError;
use crate::show_state;

/// Durable consumer name of the seat stock policy on the show stream.
pub const SEAT_STOCK_CONSUMER: &str = "policy-seat-stock";
/// The policy's name at the crash points: `seat_stock:seats_opened` aborts the process
/// after the first seat area of a session is opened, before the others.
pub const SEAT_STOCK: &str = "seat_stock";

/// The command the seat stock policy issues.
#[async_trait]
pub trait SeatStockPort: Send + Sync + 'static {
    /// Opens the inventory item `seats` with `capacity` seats; a no-op when it is open.
    async fn open_seats(
        &self,
        seats: &Sku,
        capacity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
}

/// The step id of opening one area's seats: the same on every attempt.
pub fn open_step(area: &SeatArea) -> String {
    format!("open_seats:{}", area.area_id)
}

/// Reacts to the shows' events by opening their sessions' seats.
pub struct SeatStockPolicy {
    pool: PgPool,
    port: Arc<dyn SeatStockPort>,
}

impl SeatStockPolicy {
    /// A policy keeping its state in `pool` and opening seats through `port`.
    pub fn new(pool: PgPool, port: Arc<dyn SeatStockPort>) -> Arc<Self> {
        Arc::new(Self { pool, port })
    }

    async fn open_session(
        &self,
        event: &ReceivedEvent,
        session_id: SessionId,
        seat_areas: &[SeatArea],
    ) -> Result<(), HandlerError> {
        for (index, area) in seat_areas.iter().enumerate() {
            let capacity = Quantity::parse(i64::from(area.capacity))
                .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("{e}")))?;
            self.port
                .open_seats(
                    &seat_inventory_id(session_id, &area.area_id),
                    capacity,
                    step_metadata(event, *session_id.as_uuid(), &open_step(area)),
                )
                .await
                .map_err(step_failure)?;
            if index == 0 {
                crash_after(SEAT_STOCK, "seats_opened");
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventHandler for SeatStockPolicy {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let Some(tx) = begin_claimed(&self.pool, SEAT_STOCK_CONSUMER, event).await? else {
            return Ok(());
        };
        let decoded = ordo_contracts::show(event)?;
        match &decoded.event {
            ShowEvent::SessionAdded {
                session_id,
                seat_areas,
                ..
            } => {
                // Recorded at once, so that a booking finds the show as soon as its seats
                // are open.
                show_state::record(&self.pool, *session_id, decoded.id)
                    .await
                    .map_err(retry)?;
                self.open_session(event, *session_id, seat_areas).await?;
            }
            ShowEvent::ShowCreated { .. }
            | ShowEvent::ShowUpdated { .. }
            | ShowEvent::SeatAreaChanged { .. } => {}
        }
        tx.commit().await.map_err(retry)
    }
}
