//! The after-sales process, one instance per after-sales request (its id is the request's):
//!
//! ```text
//! AfterSaleRequested              -> claim its units on the order (none left: reject it)
//! AfterSaleApproved (refund_only) -> refund the original payment -> mark the request refunded
//! ReturnReceived                  -> put the returned units back to stock (once per line)
//!                                    return_refund: refund the original payment -> mark refunded
//!                                    exchange: take the replacement's units from stock ->
//!                                    create its shipment (it ships through fulfilment) ->
//!                                    mark the request replacing
//! AfterSaleRefunded / ReplacementArranged -> close the request
//! AfterSaleWithdrawn / AfterSaleRejected  -> give its units on the order back
//! ```
//!
//! The claim is what keeps two requests from asking about the same units: the order
//! aggregate grants each unit to one open request only. The HTTP handler claims at once,
//! so the customer hears of a lost race in the answer; this process claims again (a no-op
//! then) so that a crash between the request and its claim still ends claimed or rejected.
//!
//! The refund goes through the payment aggregate, which refuses anything beyond what it
//! captured (the request is then marked `refund_failed`); the checkout process tells the
//! provider of every refund the payment records. Every command carries an id derived from
//! the request (the refund's, the stock return's per SKU, the replacement's reservation and
//! shipment) and is idempotent on its aggregate, and every decision reads the request from
//! the write side: a step repeated after a crash or a redelivery changes nothing.

use std::sync::Arc;

use async_trait::async_trait;
use ordo_aggregates::aftersale::{
    AfterSale, AfterSaleCommand, AfterSaleDetails, AfterSaleEvent, AfterSaleKind, AfterSaleStatus,
};
use ordo_aggregates::common::Reason;
use ordo_aggregates::common::{
    AfterSaleId, Money, OrderId, PaymentId, Quantity, RefundId, ReservationId, ShipmentId, Sku,
    UserId,
};
use ordo_aggregates::inventory::{InventoryCommand, InventoryItem};
use ordo_aggregates::order::{ClaimedUnits, Order, OrderCommand};
use ordo_aggregates::payment::{Payment, PaymentCommand};
use ordo_aggregates::shipment::{Shipment, ShipmentCommand, ShipmentLine};
use ordo_contracts::AfterSaleMessage;
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::{CommandBus, CommandMetadata};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::handling::{begin_claimed, finish, log_step, retry, step_failure};
use crate::port::{step_error, StepError};
use crate::repository;

/// Durable consumer name of the after-sales process on the after-sales stream.
pub const AFTERSALE_CONSUMER: &str = "saga-aftersale";
/// The saga type stored in `sagas.saga_type`.
pub const AFTERSALE_SAGA: &str = "aftersale";

/// The id of the refund of a request: derived, so the refund is made once.
pub fn refund_id_of(aftersale_id: AfterSaleId) -> RefundId {
    RefundId::from(Uuid::new_v5(aftersale_id.as_uuid(), b"aftersale-refund:1"))
}

/// The id of the stock return of one SKU of a request: its units come back once.
pub fn return_id_of(aftersale_id: AfterSaleId, sku: &Sku) -> ReservationId {
    let name = format!("aftersale-return:1:{}", sku.as_str());
    ReservationId::from(Uuid::new_v5(aftersale_id.as_uuid(), name.as_bytes()))
}

/// The id of the reservation of an exchange's replacement units.
pub fn replacement_reservation_of(aftersale_id: AfterSaleId) -> ReservationId {
    ReservationId::from(Uuid::new_v5(
        aftersale_id.as_uuid(),
        b"aftersale-replacement-stock:1",
    ))
}

/// The id of the shipment of an exchange's replacement.
pub fn replacement_shipment_of(aftersale_id: AfterSaleId) -> ShipmentId {
    ShipmentId::from(Uuid::new_v5(
        aftersale_id.as_uuid(),
        b"aftersale-replacement:1",
    ))
}

/// What the process needs to know of a request.
#[derive(Debug, Clone)]
pub struct AfterSaleFacts {
    /// What it is about.
    pub details: AfterSaleDetails,
    /// Where it stands.
    pub status: AfterSaleStatus,
}

/// The commands the after-sales process issues, each idempotent on its aggregate.
#[async_trait]
pub trait AfterSalePort: Send + Sync + 'static {
    /// The request as the write side holds it, `None` if it was never made.
    async fn aftersale(&self, id: AfterSaleId) -> Result<Option<AfterSaleFacts>, StepError>;
    /// A command on the request.
    async fn aftersale_command(
        &self,
        id: AfterSaleId,
        command: AfterSaleCommand,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Puts `quantity` returned units of `sku` back to stock, once per `return_id`.
    async fn return_units(
        &self,
        sku: &Sku,
        return_id: ReservationId,
        quantity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Takes `quantity` units of `sku` out of stock for a replacement, once per reservation.
    async fn take_units(
        &self,
        sku: &Sku,
        reservation_id: ReservationId,
        quantity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Refunds `amount` of the payment, once per `refund_id`.
    async fn refund_payment(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        amount: Money,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Claims the request's units on its order (a no-op when it holds the claim already).
    async fn claim_units(
        &self,
        order_id: OrderId,
        aftersale_id: AfterSaleId,
        lines: Vec<ClaimedUnits>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Gives the request's units on its order back (a no-op without a claim).
    async fn release_units(
        &self,
        order_id: OrderId,
        aftersale_id: AfterSaleId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Creates the replacement's shipment.
    async fn create_shipment(
        &self,
        shipment_id: ShipmentId,
        order_id: OrderId,
        customer_id: UserId,
        lines: Vec<ShipmentLine>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
}

/// The units a request asks about, as the order claims them.
pub fn claimed_units_of(lines: &[ordo_aggregates::aftersale::AfterSaleLine]) -> Vec<ClaimedUnits> {
    lines
        .iter()
        .map(|line| ClaimedUnits {
            sku: line.sku.clone(),
            quantity: line.quantity,
        })
        .collect()
}

/// Whether a request secured its units: claimed on the order, or refused there and the
/// request rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitsSecured {
    /// The units are the request's.
    Claimed,
    /// Another request holds them: the request was rejected; `code` and `detail` say why.
    Refused { code: String, detail: String },
}

/// Claims the units of request `aftersale_id` on order `order_id`; if the order refuses
/// (another request claimed them first), rejects the request. Idempotent: the claim and the
/// rejection are both no-ops when repeated.
pub async fn secure_units(
    port: &dyn AfterSalePort,
    aftersale_id: AfterSaleId,
    order_id: OrderId,
    lines: Vec<ClaimedUnits>,
    metadata: CommandMetadata,
) -> Result<UnitsSecured, StepError> {
    match port
        .claim_units(order_id, aftersale_id, lines, metadata.clone())
        .await
    {
        Ok(()) => Ok(UnitsSecured::Claimed),
        Err(StepError::Refused { code, detail }) => {
            let reason = Reason::parse(&format!("{code}: {detail}"))
                .or_else(|_| Reason::parse(&code))
                .map_err(|err| StepError::Failed(anyhow::anyhow!("{err}")))?;
            port.aftersale_command(
                aftersale_id,
                AfterSaleCommand::Reject { reason },
                CommandMetadata {
                    command_id: format!("{}:reject-unclaimed", metadata.command_id),
                    ..metadata
                },
            )
            .await?;
            Ok(UnitsSecured::Refused { code, detail })
        }
        Err(err) => Err(err),
    }
}

/// Runs after-sales requests. Feed it the after-sales stream.
pub struct AfterSaleSaga {
    pool: PgPool,
    port: Arc<dyn AfterSalePort>,
}

impl AfterSaleSaga {
    /// A process issuing commands through `port`.
    pub fn new(pool: PgPool, port: Arc<dyn AfterSalePort>) -> Arc<Self> {
        Arc::new(Self { pool, port })
    }

    async fn facts(&self, id: AfterSaleId) -> Result<AfterSaleFacts, HandlerError> {
        self.port
            .aftersale(id)
            .await
            .map_err(step_failure)?
            .ok_or_else(|| {
                HandlerError::Retry(anyhow::anyhow!("after-sales request {id} not found"))
            })
    }

    async fn on_event(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        message: AfterSaleMessage,
    ) -> Result<(), HandlerError> {
        let id = message.id;
        let saga_id = *id.as_uuid();
        match message.event {
            AfterSaleEvent::AfterSaleRequested {
                order_id,
                kind,
                lines,
                ..
            } => {
                repository::start(
                    &mut *self.pool.acquire().await.map_err(retry)?,
                    saga_id,
                    AFTERSALE_SAGA,
                    "requested",
                    &serde_json::json!({ "order_id": order_id, "kind": kind.as_str() }),
                )
                .await
                .map_err(retry)?;
                let secured = secure_units(
                    self.port.as_ref(),
                    id,
                    order_id,
                    claimed_units_of(&lines),
                    crate::deadlines::step_metadata(event, saga_id, "claim_units"),
                )
                .await
                .map_err(step_failure)?;
                let detail = match secured {
                    UnitsSecured::Claimed => None,
                    UnitsSecured::Refused { code, .. } => Some(code),
                };
                log(conn, saga_id, "claim_units", detail).await?;
            }
            AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::RefundOnly,
            } => {
                let facts = self.facts(id).await?;
                repository::set_status(conn, saga_id, "refunding", None)
                    .await
                    .map_err(retry)?;
                self.refund(conn, event, saga_id, &facts).await?;
            }
            AfterSaleEvent::AfterSaleApproved { .. } => {
                repository::set_status(conn, saga_id, "awaiting_return", None)
                    .await
                    .map_err(retry)?;
            }
            AfterSaleEvent::ReturnReceived {} => {
                let facts = self.facts(id).await?;
                for line in &facts.details.lines {
                    self.port
                        .return_units(
                            &line.sku,
                            return_id_of(id, &line.sku),
                            line.quantity,
                            crate::deadlines::step_metadata(
                                event,
                                saga_id,
                                &format!("return_stock:{}", line.sku.as_str()),
                            ),
                        )
                        .await
                        .map_err(step_failure)?;
                }
                log(conn, saga_id, "return_stock", None).await?;
                match facts.details.kind {
                    AfterSaleKind::Exchange => self.replace(conn, event, saga_id, &facts).await?,
                    AfterSaleKind::ReturnRefund | AfterSaleKind::RefundOnly => {
                        self.refund(conn, event, saga_id, &facts).await?
                    }
                }
            }
            AfterSaleEvent::AfterSaleRefunded { .. }
            | AfterSaleEvent::ReplacementArranged { .. } => {
                self.port
                    .aftersale_command(
                        id,
                        AfterSaleCommand::Close,
                        crate::deadlines::step_metadata(event, saga_id, "close"),
                    )
                    .await
                    .map_err(step_failure)?;
                log(conn, saga_id, "close", None).await?;
            }
            AfterSaleEvent::AfterSaleClosed {} => {
                repository::set_status(conn, saga_id, "closed", None)
                    .await
                    .map_err(retry)?;
            }
            AfterSaleEvent::AfterSaleWithdrawn {} | AfterSaleEvent::AfterSaleRejected { .. } => {
                let status = if matches!(message.event, AfterSaleEvent::AfterSaleWithdrawn {}) {
                    "withdrawn"
                } else {
                    "rejected"
                };
                let facts = self.facts(id).await?;
                self.port
                    .release_units(
                        facts.details.order_id,
                        id,
                        crate::deadlines::step_metadata(event, saga_id, "release_units"),
                    )
                    .await
                    .map_err(step_failure)?;
                log(conn, saga_id, "release_units", None).await?;
                repository::set_status(conn, saga_id, status, None)
                    .await
                    .map_err(retry)?;
            }
            AfterSaleEvent::AfterSaleRefundFailed { .. } => {
                repository::set_status(conn, saga_id, "refund_failed", None)
                    .await
                    .map_err(retry)?;
            }
            // The customer's parcel: nothing to do until an admin receives it.
            AfterSaleEvent::ReturnShipped { .. } => {}
        }
        Ok(())
    }

    /// Refunds the request's amount to the original payment, then records it on the
    /// request (or the payment's refusal).
    async fn refund(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        saga_id: Uuid,
        facts: &AfterSaleFacts,
    ) -> Result<(), HandlerError> {
        let details = &facts.details;
        let id = details.aftersale_id;
        let refund_id = refund_id_of(id);
        let command = match self
            .port
            .refund_payment(
                details.payment_id,
                refund_id,
                details.refund_amount.clone(),
                crate::deadlines::step_metadata(event, saga_id, "refund_payment"),
            )
            .await
        {
            Ok(()) => {
                log(conn, saga_id, "refund_payment", Some(refund_id.to_string())).await?;
                AfterSaleCommand::MarkRefunded {
                    refund_id,
                    amount: details.refund_amount.clone(),
                }
            }
            Err(StepError::Refused { code, detail }) => {
                log(
                    conn,
                    saga_id,
                    "refund_refused",
                    Some(format!("{code}: {detail}")),
                )
                .await?;
                AfterSaleCommand::MarkRefundFailed { code, detail }
            }
            Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
        };
        self.port
            .aftersale_command(
                id,
                command,
                crate::deadlines::step_metadata(event, saga_id, "mark_refunded"),
            )
            .await
            .map_err(step_failure)?;
        log(conn, saga_id, "mark_refunded", None).await
    }

    /// Takes the replacement's units from stock, creates its shipment and records it on
    /// the request.
    async fn replace(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        saga_id: Uuid,
        facts: &AfterSaleFacts,
    ) -> Result<(), HandlerError> {
        let details = &facts.details;
        let id = details.aftersale_id;
        for line in &details.lines {
            self.port
                .take_units(
                    &line.sku,
                    replacement_reservation_of(id),
                    line.quantity,
                    crate::deadlines::step_metadata(
                        event,
                        saga_id,
                        &format!("take_stock:{}", line.sku.as_str()),
                    ),
                )
                .await
                .map_err(step_failure)?;
        }
        let shipment_id = replacement_shipment_of(id);
        // The replacement ships through the fulfilment process like any parcel: it keeps
        // its steps under the shipment's id.
        repository::start(
            &mut *self.pool.acquire().await.map_err(retry)?,
            *shipment_id.as_uuid(),
            crate::fulfilment::FULFILMENT_SAGA,
            "awaiting_shipping",
            &serde_json::json!({ "order_id": details.order_id, "replacement_of": id }),
        )
        .await
        .map_err(retry)?;
        self.port
            .create_shipment(
                shipment_id,
                details.order_id,
                details.customer_id,
                details
                    .lines
                    .iter()
                    .map(|line| ShipmentLine {
                        sku: line.sku.clone(),
                        quantity: line.quantity,
                    })
                    .collect(),
                crate::deadlines::step_metadata(event, saga_id, "create_replacement"),
            )
            .await
            .map_err(step_failure)?;
        log(
            conn,
            saga_id,
            "create_replacement",
            Some(shipment_id.to_string()),
        )
        .await?;
        self.port
            .aftersale_command(
                id,
                AfterSaleCommand::MarkReplacing { shipment_id },
                crate::deadlines::step_metadata(event, saga_id, "mark_replacing"),
            )
            .await
            .map_err(step_failure)?;
        log(conn, saga_id, "mark_replacing", None).await
    }
}

#[async_trait]
impl EventHandler for AfterSaleSaga {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let Some(mut tx) = begin_claimed(&self.pool, AFTERSALE_CONSUMER, event).await? else {
            return Ok(());
        };
        let outcome = match ordo_contracts::aftersale(event) {
            Ok(message) => self.on_event(&mut tx, event, message).await,
            Err(err) => Err(err.into()),
        };
        finish(&self.pool, tx, outcome, event, saga_of(event)).await
    }

    async fn on_dead_letter(&self, event: &ReceivedEvent, error: &str) {
        if let Some(saga_id) = saga_of(event) {
            let _ = repository::mark_stuck(
                &self.pool,
                saga_id,
                &format!("{}: {error}", event.event_type),
            )
            .await;
        }
    }
}

/// The process an event belongs to: the request's.
fn saga_of(event: &ReceivedEvent) -> Option<Uuid> {
    (event.aggregate_type == "aftersale")
        .then(|| event.aggregate_id.parse().ok())
        .flatten()
}

async fn log(
    conn: &mut PgConnection,
    saga_id: Uuid,
    step: &str,
    detail: Option<String>,
) -> Result<(), HandlerError> {
    log_step(conn, AFTERSALE_SAGA, saga_id, step, detail).await
}

/// [`AfterSalePort`] on the command buses.
pub struct AfterSaleStore {
    /// After-sales requests.
    pub aftersales: Arc<CommandBus<AfterSale>>,
    /// Stock.
    pub inventory: Arc<CommandBus<InventoryItem>>,
    /// Payments.
    pub payments: Arc<CommandBus<Payment>>,
    /// Shipments.
    pub shipments: Arc<CommandBus<Shipment>>,
    /// Orders, which hold the requests' claims on their units.
    pub orders: Arc<CommandBus<Order>>,
}

#[async_trait]
impl AfterSalePort for AfterSaleStore {
    async fn aftersale(&self, id: AfterSaleId) -> Result<Option<AfterSaleFacts>, StepError> {
        let (aftersale, _) = self
            .aftersales
            .load(&id.to_string())
            .await
            .map_err(step_error)?;
        Ok(aftersale
            .details()
            .cloned()
            .zip(aftersale.status())
            .map(|(details, status)| AfterSaleFacts { details, status }))
    }

    async fn aftersale_command(
        &self,
        id: AfterSaleId,
        command: AfterSaleCommand,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.aftersales
            .execute(&id.to_string(), command, metadata)
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn return_units(
        &self,
        sku: &Sku,
        return_id: ReservationId,
        quantity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.inventory
            .execute(
                sku.as_str(),
                InventoryCommand::ReturnUnits {
                    return_id,
                    quantity,
                },
                metadata,
            )
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn take_units(
        &self,
        sku: &Sku,
        reservation_id: ReservationId,
        quantity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.inventory
            .execute(
                sku.as_str(),
                InventoryCommand::Reserve {
                    reservation_id,
                    quantity,
                    booking: None,
                },
                metadata.clone(),
            )
            .await
            .map_err(step_error)?;
        self.inventory
            .execute(
                sku.as_str(),
                InventoryCommand::Commit { reservation_id },
                metadata,
            )
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn refund_payment(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        amount: Money,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.payments
            .execute(
                &payment_id.to_string(),
                PaymentCommand::Refund {
                    refund_id,
                    amount,
                    reason: "aftersale".into(),
                },
                metadata,
            )
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn claim_units(
        &self,
        order_id: OrderId,
        aftersale_id: AfterSaleId,
        lines: Vec<ClaimedUnits>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.orders
            .execute(
                &order_id.to_string(),
                OrderCommand::ClaimAfterSaleUnits {
                    aftersale_id,
                    lines,
                },
                metadata,
            )
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn release_units(
        &self,
        order_id: OrderId,
        aftersale_id: AfterSaleId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.orders
            .execute(
                &order_id.to_string(),
                OrderCommand::ReleaseAfterSaleUnits { aftersale_id },
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_always_names_the_same_refund_returns_and_replacement() {
        let a = AfterSaleId::from(Uuid::from_u128(7));
        let b = AfterSaleId::from(Uuid::from_u128(8));
        let mug = Sku::parse("MUG").unwrap();
        let tea = Sku::parse("TEA").unwrap();
        assert_eq!(refund_id_of(a), refund_id_of(a));
        assert_ne!(refund_id_of(a), refund_id_of(b));
        assert_eq!(return_id_of(a, &mug), return_id_of(a, &mug));
        assert_ne!(return_id_of(a, &mug), return_id_of(a, &tea));
        assert_ne!(return_id_of(a, &mug), return_id_of(b, &mug));
        assert_ne!(
            *replacement_shipment_of(a).as_uuid(),
            *refund_id_of(a).as_uuid()
        );
        assert_ne!(
            *replacement_reservation_of(a).as_uuid(),
            *replacement_shipment_of(a).as_uuid()
        );
    }
}
