//! The fulfilment process, one instance per shipment (its id is the shipment id, derived
//! from the order's: [`shipment_id_of`]):
//!
//! ```text
//! OrderPaid                   -> create the order's shipment from the order's lines
//! ShipmentShipped             -> mark the order shipped -> ask the carrier to follow the
//!                                parcel (it then posts signed tracking updates)
//! TrackingUpdated (delivered) -> mark the order delivered; auto-confirm deadline
//!                                (delivery time + ORDO_AUTO_CONFIRM_AFTER)
//! deadline passed             -> complete the order (auto_confirm)
//! OrderCompleted              -> done (the customer confirmed receipt, or the deadline)
//! ```
//!
//! Picking and shipping are an admin's commands on the shipment; tracking updates are the
//! carrier's, through the signed tracking endpoint. Every command the process issues
//! carries a deterministic id and is idempotent on its aggregate, and every decision reads
//! the write side (the order and shipment aggregates), never the message alone: a step
//! repeated after a crash or a redelivery changes nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordo_aggregates::common::{OrderId, ShipmentId, UserId};
use ordo_aggregates::order::{Order, OrderCommand, OrderEvent, OrderStatus};
use ordo_aggregates::shipment::{
    CarrierCode, Shipment, ShipmentCommand, ShipmentEvent, ShipmentLine, ShipmentStatus,
    TrackingNumber, TrackingStatus,
};
use ordo_contracts::{OrderMessage, ShipmentMessage};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::{CommandBus, CommandMetadata};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::handling::{begin_claimed, finish, log_step, retry, step_failure};
use crate::port::{step_error, StepError};
use crate::repository;

/// Durable consumer name of the fulfilment process on the order stream.
pub const FULFILMENT_CONSUMER: &str = "saga-fulfilment";
/// Durable consumer name of the fulfilment process on the shipment stream.
pub const FULFILMENT_SHIPMENTS_CONSUMER: &str = "saga-fulfilment-shipments";
/// The saga type stored in `sagas.saga_type`.
pub const FULFILMENT_SAGA: &str = "fulfilment";

/// The id of the shipment of an order: derived, so creating it again after a crash or a
/// redelivery addresses the same shipment.
pub fn shipment_id_of(order_id: OrderId) -> ShipmentId {
    ShipmentId::from(Uuid::new_v5(order_id.as_uuid(), b"shipment:1"))
}

/// Settings of the fulfilment process.
#[derive(Debug, Clone)]
pub struct FulfilmentSettings {
    /// How long after delivery an order completes by itself.
    pub auto_confirm_after: Duration,
    /// Ordo's public base URL: carriers post tracking updates to
    /// `<base>/api/v1/shipments/<id>/tracking`.
    pub tracking_base_url: String,
}

/// What the process needs to know of an order.
#[derive(Debug, Clone)]
pub struct OrderFacts {
    /// Its status.
    pub status: OrderStatus,
    /// Who ordered.
    pub customer_id: UserId,
    /// What is to be shipped.
    pub lines: Vec<ShipmentLine>,
}

/// What the process needs to know of a shipment.
#[derive(Debug, Clone)]
pub struct ShipmentFacts {
    /// Its status.
    pub status: ShipmentStatus,
    /// The order it delivers.
    pub order_id: OrderId,
    /// The carrier and tracking number, once shipped.
    pub shipped_with: Option<(CarrierCode, TrackingNumber)>,
    /// When the carrier reported it delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The commands the fulfilment process issues, each idempotent on its aggregate.
#[async_trait]
pub trait FulfilmentPort: Send + Sync + 'static {
    /// The order as the write side holds it, `None` if it was never placed.
    async fn order(&self, order_id: OrderId) -> Result<Option<OrderFacts>, StepError>;
    /// The shipment as the write side holds it, `None` if it was never created.
    async fn shipment(&self, shipment_id: ShipmentId) -> Result<Option<ShipmentFacts>, StepError>;
    /// Creates the shipment of a paid order.
    async fn create_shipment(
        &self,
        shipment_id: ShipmentId,
        order_id: OrderId,
        customer_id: UserId,
        lines: Vec<ShipmentLine>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Marks the order shipped by the shipment.
    async fn mark_order_shipped(
        &self,
        order_id: OrderId,
        shipment_id: ShipmentId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Marks the order delivered.
    async fn mark_order_delivered(
        &self,
        order_id: OrderId,
        shipment_id: ShipmentId,
        delivered_at: DateTime<Utc>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Completes a delivered order whose auto-confirm period passed.
    async fn auto_complete_order(
        &self,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Cancels a shipment that has not left (a no-op once cancelled).
    async fn cancel_shipment(
        &self,
        shipment_id: ShipmentId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
}

/// A parcel a carrier is asked to follow.
#[derive(Debug, Clone)]
pub struct Parcel {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The carrier it left with.
    pub carrier: CarrierCode,
    /// Its tracking number.
    pub tracking_no: TrackingNumber,
    /// Where the carrier posts its signed tracking updates.
    pub tracking_url: String,
}

/// Why a carrier did not take a parcel.
#[derive(Debug, thiserror::Error)]
pub enum CarrierError {
    /// The carrier refused for good (an unknown carrier, a sandbox that is off).
    #[error("the carrier refused: {0}")]
    Refused(String),
    /// The carrier could not be reached; retry later.
    #[error("the carrier is unavailable: {0}")]
    Unavailable(String),
}

/// The carriers: a true external boundary. Asked once a parcel ships, a carrier posts
/// signed tracking updates of it to Ordo's tracking endpoint. Idempotent per shipment.
#[async_trait]
pub trait Carrier: Send + Sync + 'static {
    /// Asks the parcel's carrier to report on it.
    async fn follow(&self, parcel: Parcel) -> Result<(), CarrierError>;
}

/// Runs fulfilments. Feed it the order stream through [`FulfilmentSaga::orders`] and the
/// shipment stream through [`FulfilmentSaga::shipments`].
pub struct FulfilmentSaga {
    pool: PgPool,
    port: Arc<dyn FulfilmentPort>,
    carrier: Arc<dyn Carrier>,
    settings: FulfilmentSettings,
}

#[derive(Clone, Copy)]
enum Feed {
    Orders,
    Shipments,
}

/// One of the process's two event handlers.
pub struct FulfilmentHandler {
    saga: Arc<FulfilmentSaga>,
    feed: Feed,
}

impl FulfilmentSaga {
    /// A process issuing commands through `port`, asking `carrier` to follow parcels.
    pub fn new(
        pool: PgPool,
        port: Arc<dyn FulfilmentPort>,
        carrier: Arc<dyn Carrier>,
        settings: FulfilmentSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            port,
            carrier,
            settings,
        })
    }

    /// The handler for the order stream.
    pub fn orders(self: &Arc<Self>) -> FulfilmentHandler {
        FulfilmentHandler {
            saga: self.clone(),
            feed: Feed::Orders,
        }
    }

    /// The handler for the shipment stream.
    pub fn shipments(self: &Arc<Self>) -> FulfilmentHandler {
        FulfilmentHandler {
            saga: self.clone(),
            feed: Feed::Shipments,
        }
    }

    /// Completes every delivered order whose auto-confirm deadline passed. Returns how
    /// many it completed. Safe to run from several processes at once.
    pub async fn complete_overdue(&self) -> anyhow::Result<usize> {
        let overdue = repository::overdue(&self.pool, FULFILMENT_SAGA, &["delivered"], 200).await?;
        let mut completed = 0;
        for (saga_id, _) in overdue {
            let shipment = self
                .port
                .shipment(ShipmentId::from(saga_id))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let Some(shipment) = shipment else {
                repository::clear_deadline(&self.pool, saga_id, "delivered").await?;
                continue;
            };
            let metadata = CommandMetadata::caused_by(
                &saga_id.to_string(),
                &format!("deadline:{saga_id}"),
                crate::deadlines::step_id(saga_id, "auto_complete").to_string(),
            );
            match self
                .port
                .auto_complete_order(shipment.order_id, metadata)
                .await
            {
                Ok(()) => completed += 1,
                // Completed by its customer, or no longer delivered: nothing to do.
                Err(StepError::Refused { .. }) => {}
                Err(StepError::Failed(err)) => return Err(err),
            }
            crate::crash_points::crash_after(FULFILMENT_SAGA, "auto_complete");
            // The OrderCompleted event closes the process.
            repository::clear_deadline(&self.pool, saga_id, "delivered").await?;
        }
        Ok(completed)
    }

    /// Runs [`FulfilmentSaga::complete_overdue`] every `every` until shutdown.
    pub async fn run_deadlines(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        crate::deadlines::run_every(every, shutdown, "completing delivered orders", || {
            self.complete_overdue()
        })
        .await;
    }

    async fn on_order_event(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        message: OrderMessage,
    ) -> Result<(), HandlerError> {
        let order_id = message.id;
        let saga_id = *shipment_id_of(order_id).as_uuid();
        match message.event {
            OrderEvent::OrderPaid { .. } => self.on_order_paid(conn, event, order_id).await,
            OrderEvent::OrderCompleted { by } => {
                if repository::saga_type(&mut *conn, saga_id)
                    .await
                    .map_err(retry)?
                    .is_some()
                {
                    log(conn, saga_id, "order_completed", Some(by.as_str().into())).await?;
                    repository::set_status(conn, saga_id, "completed", None)
                        .await
                        .map_err(retry)?;
                }
                Ok(())
            }
            // Refunded before its goods left: they do not leave.
            OrderEvent::OrderRefunded { .. } => {
                let shipment_id = shipment_id_of(order_id);
                if self
                    .port
                    .shipment(shipment_id)
                    .await
                    .map_err(step_failure)?
                    .is_none()
                {
                    return Ok(());
                }
                match self
                    .port
                    .cancel_shipment(
                        shipment_id,
                        "order_refunded",
                        crate::deadlines::step_metadata(event, saga_id, "cancel_shipment"),
                    )
                    .await
                {
                    // Already with the carrier: it goes on; the refund stands.
                    Ok(()) | Err(StepError::Refused { .. }) => {}
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
                log(conn, saga_id, "cancel_shipment", None).await?;
                Ok(())
            }
            // The checkout's steps, and fulfilment's own results on the order.
            OrderEvent::OrderPlaced { .. }
            | OrderEvent::OrderConfirmed {}
            | OrderEvent::OrderRejected { .. }
            | OrderEvent::PaymentAttached { .. }
            | OrderEvent::OrderCancelled { .. }
            | OrderEvent::OrderExpired {}
            | OrderEvent::OrderShipped { .. }
            | OrderEvent::OrderDelivered { .. }
            | OrderEvent::AfterSaleUnitsClaimed { .. }
            | OrderEvent::AfterSaleUnitsReleased { .. } => Ok(()),
        }
    }

    async fn on_order_paid(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        order_id: OrderId,
    ) -> Result<(), HandlerError> {
        let shipment_id = shipment_id_of(order_id);
        let saga_id = *shipment_id.as_uuid();
        let Some(order) = self.port.order(order_id).await.map_err(step_failure)? else {
            return Err(HandlerError::Retry(anyhow::anyhow!(
                "order {order_id} not found"
            )));
        };
        // Refunded before fulfilment started: nothing to ship.
        if order.status == OrderStatus::Refunded {
            return Ok(());
        }
        repository::start(
            &mut *self.pool.acquire().await.map_err(retry)?,
            saga_id,
            FULFILMENT_SAGA,
            "creating",
            &serde_json::json!({ "order_id": order_id }),
        )
        .await
        .map_err(retry)?;
        self.port
            .create_shipment(
                shipment_id,
                order_id,
                order.customer_id,
                order.lines,
                crate::deadlines::step_metadata(event, saga_id, "create_shipment"),
            )
            .await
            .map_err(step_failure)?;
        log(conn, saga_id, "create_shipment", Some(order_id.to_string())).await?;
        // A redelivery arriving after the shipment moved on leaves the status as it is.
        repository::advance(conn, saga_id, &["creating"], "awaiting_shipping", None)
            .await
            .map_err(retry)?;
        Ok(())
    }

    async fn on_shipment_event(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        message: ShipmentMessage,
    ) -> Result<(), HandlerError> {
        let shipment_id = message.id;
        let saga_id = *shipment_id.as_uuid();
        match message.event {
            ShipmentEvent::ShipmentShipped { .. } => {
                let shipment = self.shipment_facts(shipment_id).await?;
                let Some((carrier, tracking_no)) = shipment.shipped_with.clone() else {
                    return Err(HandlerError::Permanent(anyhow::anyhow!(
                        "ShipmentShipped for {shipment_id} not acted on: the event store holds it as {}",
                        shipment.status
                    )));
                };
                match self
                    .port
                    .mark_order_shipped(
                        shipment.order_id,
                        shipment_id,
                        crate::deadlines::step_metadata(event, saga_id, "mark_order_shipped"),
                    )
                    .await
                {
                    Ok(()) => log(conn, saga_id, "mark_order_shipped", None).await?,
                    Err(StepError::Refused { code, detail }) => {
                        log(
                            conn,
                            saga_id,
                            "order_not_shippable",
                            Some(format!("{code}: {detail}")),
                        )
                        .await?
                    }
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
                let parcel = Parcel {
                    shipment_id,
                    carrier: carrier.clone(),
                    tracking_no: tracking_no.clone(),
                    tracking_url: format!(
                        "{}/api/v1/shipments/{shipment_id}/tracking",
                        self.settings.tracking_base_url.trim_end_matches('/')
                    ),
                };
                match self.carrier.follow(parcel).await {
                    Ok(()) => {
                        log(
                            conn,
                            saga_id,
                            "follow_tracking",
                            Some(format!("{carrier} {tracking_no}")),
                        )
                        .await?
                    }
                    // No carrier integration for it: updates come only if the carrier
                    // posts them by itself; the process waits for them all the same.
                    Err(CarrierError::Refused(why)) => {
                        log(conn, saga_id, "carrier_refused", Some(why)).await?
                    }
                    Err(CarrierError::Unavailable(why)) => {
                        return Err(HandlerError::Retry(anyhow::anyhow!(
                            "carrier unavailable: {why}"
                        )))
                    }
                }
                repository::advance(
                    conn,
                    saga_id,
                    &["creating", "awaiting_shipping"],
                    "shipped",
                    None,
                )
                .await
                .map_err(retry)?;
            }
            ShipmentEvent::TrackingUpdated {
                status: TrackingStatus::Delivered,
                ..
            } => {
                let shipment = self.shipment_facts(shipment_id).await?;
                let Some(delivered_at) = shipment.delivered_at else {
                    return Err(HandlerError::Permanent(anyhow::anyhow!(
                        "TrackingUpdated (delivered) for {shipment_id} not acted on: the event store holds no delivery"
                    )));
                };
                match self
                    .port
                    .mark_order_delivered(
                        shipment.order_id,
                        shipment_id,
                        delivered_at,
                        crate::deadlines::step_metadata(event, saga_id, "mark_order_delivered"),
                    )
                    .await
                {
                    Ok(()) => log(conn, saga_id, "mark_order_delivered", None).await?,
                    Err(StepError::Refused { code, detail }) => {
                        // Completed by its customer before the carrier said so.
                        log(
                            conn,
                            saga_id,
                            "order_not_deliverable",
                            Some(format!("{code}: {detail}")),
                        )
                        .await?;
                        return Ok(());
                    }
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
                let deadline = delivered_at
                    + chrono::Duration::from_std(self.settings.auto_confirm_after)
                        .unwrap_or(chrono::Duration::days(7));
                // A customer who already confirmed receipt completed the process.
                repository::advance(
                    conn,
                    saga_id,
                    &["creating", "awaiting_shipping", "shipped"],
                    "delivered",
                    Some(deadline),
                )
                .await
                .map_err(retry)?;
            }
            // The admin's steps before shipping, and the carrier's other reports: nothing
            // for the order (the shipment's read model shows them).
            ShipmentEvent::ShipmentCreated { .. }
            | ShipmentEvent::ShipmentPicked {}
            | ShipmentEvent::TrackingUpdated { .. }
            | ShipmentEvent::ShipmentCancelled { .. } => {}
        }
        Ok(())
    }

    async fn shipment_facts(&self, shipment_id: ShipmentId) -> Result<ShipmentFacts, HandlerError> {
        self.port
            .shipment(shipment_id)
            .await
            .map_err(step_failure)?
            .ok_or_else(|| HandlerError::Retry(anyhow::anyhow!("shipment {shipment_id} not found")))
    }
}

#[async_trait]
impl EventHandler for FulfilmentHandler {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let saga = &self.saga;
        let consumer = match self.feed {
            Feed::Orders => FULFILMENT_CONSUMER,
            Feed::Shipments => FULFILMENT_SHIPMENTS_CONSUMER,
        };
        let Some(mut tx) = begin_claimed(&saga.pool, consumer, event).await? else {
            return Ok(());
        };
        let outcome = match self.feed {
            Feed::Orders => match ordo_contracts::order(event) {
                Ok(message) => saga.on_order_event(&mut tx, event, message).await,
                Err(err) => Err(err.into()),
            },
            Feed::Shipments => match ordo_contracts::shipment(event) {
                Ok(message) => saga.on_shipment_event(&mut tx, event, message).await,
                Err(err) => Err(err.into()),
            },
        };
        finish(&saga.pool, tx, outcome, event, saga_of(event)).await
    }

    async fn on_dead_letter(&self, event: &ReceivedEvent, error: &str) {
        if let Some(saga_id) = saga_of(event) {
            let _ = repository::mark_stuck(
                &self.saga.pool,
                saga_id,
                &format!("{}: {error}", event.event_type),
            )
            .await;
        }
    }
}

/// The process an event belongs to: the shipment's id, or the one derived from the order's.
fn saga_of(event: &ReceivedEvent) -> Option<Uuid> {
    let id: Uuid = event.aggregate_id.parse().ok()?;
    match event.aggregate_type.as_str() {
        "shipment" => Some(id),
        "order" => Some(*shipment_id_of(OrderId::from(id)).as_uuid()),
        _ => None,
    }
}

async fn log(
    conn: &mut PgConnection,
    saga_id: Uuid,
    step: &str,
    detail: Option<String>,
) -> Result<(), HandlerError> {
    log_step(conn, FULFILMENT_SAGA, saga_id, step, detail).await
}

/// [`FulfilmentPort`] on the order and shipment command buses.
pub struct FulfilmentStore {
    /// Orders.
    pub orders: Arc<CommandBus<Order>>,
    /// Shipments.
    pub shipments: Arc<CommandBus<Shipment>>,
}

#[async_trait]
impl FulfilmentPort for FulfilmentStore {
    async fn order(&self, order_id: OrderId) -> Result<Option<OrderFacts>, StepError> {
        let (order, _) = self
            .orders
            .load(&order_id.to_string())
            .await
            .map_err(step_error)?;
        let (Some(status), Some(customer_id)) = (order.status(), order.customer_id()) else {
            return Ok(None);
        };
        Ok(Some(OrderFacts {
            status,
            customer_id,
            lines: order
                .lines()
                .iter()
                .map(|line| ShipmentLine {
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                })
                .collect(),
        }))
    }

    async fn shipment(&self, shipment_id: ShipmentId) -> Result<Option<ShipmentFacts>, StepError> {
        let (shipment, _) = self
            .shipments
            .load(&shipment_id.to_string())
            .await
            .map_err(step_error)?;
        let (Some(status), Some(order_id)) = (shipment.status(), shipment.order_id()) else {
            return Ok(None);
        };
        Ok(Some(ShipmentFacts {
            status,
            order_id,
            shipped_with: shipment
                .carrier()
                .cloned()
                .zip(shipment.tracking_no().cloned()),
            delivered_at: shipment.delivered_at(),
        }))
    }

    async fn cancel_shipment(
        &self,
        shipment_id: ShipmentId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.shipments
            .execute(
                &shipment_id.to_string(),
                ShipmentCommand::Cancel {
                    reason: reason.to_string(),
                },
                metadata,
            )
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn create_shipment(
        &self,
        shipment_id: ShipmentId,
        order_id: OrderId,
        customer_id: UserId,
        lines: Vec<ShipmentLine>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.shipments
            .execute(
                &shipment_id.to_string(),
                ShipmentCommand::Create {
                    shipment_id,
                    order_id,
                    customer_id,
                    lines,
                },
                metadata,
            )
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn mark_order_shipped(
        &self,
        order_id: OrderId,
        shipment_id: ShipmentId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.orders
            .execute(
                &order_id.to_string(),
                OrderCommand::MarkShipped { shipment_id },
                metadata,
            )
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn mark_order_delivered(
        &self,
        order_id: OrderId,
        shipment_id: ShipmentId,
        delivered_at: DateTime<Utc>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.orders
            .execute(
                &order_id.to_string(),
                OrderCommand::MarkDelivered {
                    shipment_id,
                    delivered_at,
                },
                metadata,
            )
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn auto_complete_order(
        &self,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.orders
            .execute(&order_id.to_string(), OrderCommand::AutoComplete, metadata)
            .await
            .map(|_| ())
            .map_err(step_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_always_names_the_same_shipment() {
        let order = OrderId::from(Uuid::from_u128(7));
        assert_eq!(shipment_id_of(order), shipment_id_of(order));
        assert_ne!(
            shipment_id_of(order),
            shipment_id_of(OrderId::from(Uuid::from_u128(8)))
        );
    }

    #[test]
    fn events_are_attributed_to_the_shipment_process() {
        let order = Uuid::from_u128(7);
        let mut event = ReceivedEvent {
            stream: String::new(),
            stream_sequence: 0,
            subject: String::new(),
            aggregate_type: "order".into(),
            aggregate_id: order.to_string(),
            sequence: 1,
            payload: serde_json::json!({}),
            event_type: "OrderPaid".into(),
            event_version: "1".into(),
            event_id: Uuid::nil(),
            correlation_id: String::new(),
            causation_id: String::new(),
            user_id: None,
            recorded_at: Utc::now(),
            delivered: 1,
        };
        let shipment = *shipment_id_of(OrderId::from(order)).as_uuid();
        assert_eq!(saga_of(&event), Some(shipment));
        event.aggregate_type = "shipment".into();
        event.aggregate_id = shipment.to_string();
        assert_eq!(saga_of(&event), Some(shipment));
        event.aggregate_type = "payment".into();
        assert_eq!(saga_of(&event), None);
    }
}
