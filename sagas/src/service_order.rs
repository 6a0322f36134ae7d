//! The service order saga, one instance per service order of the marketplace (its id is
//! the order's): the escrowed payment and its release.
//!
//! ```text
//! ServiceOrderPublished -> the saga exists
//! PaymentCreated        -> attach the payment to the order, then ask the provider to charge;
//!                          order no longer payable -> void the payment, never charged
//! PaymentCaptured       -> mark the order paid: the money is held in escrow
//!                          order no longer payable -> refund the capture
//! WorkDone              -> wait for the customer's confirmation until ORDO_SERVICE_CONFIRM_AFTER
//! deadline passed       -> confirm the order (automatic)
//! ServiceOrderConfirmed -> release the payout to the provider (one deterministic payout id)
//! ServiceOrderCancelled -> refund the escrow (or void a payment not captured yet)
//! PaymentRefunded       -> record the refund on the order, tell the provider
//! PaymentVoided         -> tell the provider
//! ```
//!
//! The HTTP gateway sends one command for paying: the payment's `Create` for the order. The
//! service order aggregate arbitrates every race (a cancellation against a capture, against
//! the payout): whichever is recorded first wins, the loser is refused and compensated for.
//! Before the payout, the aggregate itself re-checks that the order is completed, paid and
//! not cancelled, so a forged message changes nothing; a capture acts only when the event
//! store backs it in full for the order's price.
//!
//! Every command carries a deterministic id and is idempotent on its aggregate, so a step
//! repeated after a crash (`ORDO_CRASH_AFTER_STEP=service_order:<step>`) is a no-op: nothing
//! is lost or paid twice.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use ordo_aggregates::common::{Money, PaymentId, PayoutId, RefundId, ServiceOrderId};
use ordo_aggregates::payment::PaymentEvent;
use ordo_aggregates::service_order::{
    ServiceOrder, ServiceOrderCommand, ServiceOrderEvent, ServiceOrderStatus,
};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::{CommandBus, CommandMetadata};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::crash_points::crash_after;
use crate::deadlines::step_id;
use crate::handling::{
    begin_claimed, finish, log_step, provider_failure, retry, step_failure, tell_provider_refund,
    tell_provider_void,
};
use crate::port::{PaymentPort, PaymentSnapshot, StepError, StorePort};
use crate::provider::{ChargeRequest, PaymentProvider};
use crate::repository;

/// Durable consumer name of the saga on the service order stream.
pub const SERVICE_ORDER_CONSUMER: &str = "saga-service-order";
/// Durable consumer name of the saga on the payment stream.
pub const SERVICE_ORDER_PAYMENTS_CONSUMER: &str = "saga-service-order-payments";
/// The saga type stored in `sagas.saga_type`.
pub const SERVICE_ORDER_SAGA: &str = "service_order";
/// The saga status while a done order waits for its customer's confirmation.
const AWAITING_CONFIRMATION: &str = "awaiting_confirmation";

/// Settings of the service order saga.
#[derive(Debug, Clone)]
pub struct ServiceOrderSettings {
    /// How long a done order waits for its customer before it confirms itself
    /// (`ORDO_SERVICE_CONFIRM_AFTER`, 3 days by default).
    pub confirm_after: Duration,
    /// Base URL the payment provider calls back (`http://127.0.0.1:8080`).
    pub callback_base_url: String,
}

/// The commands the saga issues: payments (through [`PaymentPort`]) and service orders.
#[async_trait]
pub trait ServiceOrderPort: PaymentPort {
    /// The order as the write side has it; `None` when it does not exist.
    async fn service_order(
        &self,
        order_id: ServiceOrderId,
    ) -> Result<Option<ServiceOrder>, StepError>;
    /// Runs a command on the order.
    async fn service_order_command(
        &self,
        order_id: ServiceOrderId,
        command: ServiceOrderCommand,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
}

/// [`ServiceOrderPort`] on the command buses: the payments of [`StorePort`] and the
/// service order bus.
pub struct ServiceOrderStorePort {
    /// Payments (and the rest of the store).
    pub store: Arc<StorePort>,
    /// Service orders.
    pub service_orders: Arc<CommandBus<ServiceOrder>>,
}

#[async_trait]
impl PaymentPort for ServiceOrderStorePort {
    async fn payment(&self, payment_id: PaymentId) -> Result<PaymentSnapshot, StepError> {
        self.store.payment(payment_id).await
    }

    async fn void_payment(
        &self,
        payment_id: PaymentId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.store.void_payment(payment_id, reason, metadata).await
    }

    async fn refund_payment(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        amount: Money,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.store
            .refund_payment(payment_id, refund_id, amount, reason, metadata)
            .await
    }
}

#[async_trait]
impl ServiceOrderPort for ServiceOrderStorePort {
    async fn service_order(
        &self,
        order_id: ServiceOrderId,
    ) -> Result<Option<ServiceOrder>, StepError> {
        let (order, version) = self
            .service_orders
            .load(&order_id.to_string())
            .await
            .map_err(|e| StepError::Failed(anyhow::anyhow!("{e}")))?;
        Ok((version > 0).then_some(order))
    }

    async fn service_order_command(
        &self,
        order_id: ServiceOrderId,
        command: ServiceOrderCommand,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        match self
            .service_orders
            .execute(&order_id.to_string(), command, metadata)
            .await
        {
            Ok(_) => Ok(()),
            Err(ordo_store::CommandError::Rejected(err)) => Err(StepError::Refused {
                code: ordo_aggregates::common::DomainError::code(&err).to_string(),
                detail: err.to_string(),
            }),
            Err(other) => Err(StepError::Failed(anyhow::anyhow!(other.to_string()))),
        }
    }
}

#[derive(Clone, Copy)]
enum Feed {
    ServiceOrders,
    Payments,
}

/// Runs service orders' escrow. Feed it the service order stream through
/// [`ServiceOrderSaga::service_orders`] and the payment stream through
/// [`ServiceOrderSaga::payments`]; run [`ServiceOrderSaga::run_deadlines`].
pub struct ServiceOrderSaga {
    pool: PgPool,
    port: Arc<dyn ServiceOrderPort>,
    provider: Arc<dyn PaymentProvider>,
    settings: ServiceOrderSettings,
}

/// One of the saga's two event handlers.
pub struct ServiceOrderHandler {
    saga: Arc<ServiceOrderSaga>,
    feed: Feed,
}

/// The deterministic id of an order's payout.
pub fn payout_id(order_id: ServiceOrderId) -> PayoutId {
    PayoutId::from(step_id(*order_id.as_uuid(), "payout"))
}

impl ServiceOrderSaga {
    /// A saga issuing commands through `port`, charging through `provider`, keeping its
    /// state in `pool`.
    pub fn new(
        pool: PgPool,
        port: Arc<dyn ServiceOrderPort>,
        provider: Arc<dyn PaymentProvider>,
        settings: ServiceOrderSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            port,
            provider,
            settings,
        })
    }

    /// The handler for the service order stream.
    pub fn service_orders(self: &Arc<Self>) -> ServiceOrderHandler {
        ServiceOrderHandler {
            saga: self.clone(),
            feed: Feed::ServiceOrders,
        }
    }

    /// The handler for the payment stream.
    pub fn payments(self: &Arc<Self>) -> ServiceOrderHandler {
        ServiceOrderHandler {
            saga: self.clone(),
            feed: Feed::Payments,
        }
    }

    fn metadata(event: &ReceivedEvent, saga_id: Uuid, step: &str) -> CommandMetadata {
        crate::deadlines::step_metadata(event, saga_id, step)
    }

    async fn order(&self, order_id: ServiceOrderId) -> Result<ServiceOrder, HandlerError> {
        self.port
            .service_order(order_id)
            .await
            .map_err(step_failure)?
            .ok_or_else(|| retry(anyhow::anyhow!("service order {order_id} not found")))
    }

    /// Confirms every done order whose customer did not confirm within the confirmation
    /// period. Answers how many it confirmed. Safe to run from several processes at once.
    pub async fn run_overdue(&self) -> anyhow::Result<usize> {
        let overdue = repository::overdue(
            &self.pool,
            SERVICE_ORDER_SAGA,
            &[AWAITING_CONFIRMATION],
            500,
        )
        .await?;
        let mut confirmed = 0;
        for (saga_id, status) in overdue {
            let metadata = CommandMetadata::caused_by(
                &saga_id.to_string(),
                &format!("deadline:{saga_id}"),
                step_id(saga_id, "auto_confirm").to_string(),
            );
            match self
                .port
                .service_order_command(
                    ServiceOrderId::from(saga_id),
                    ServiceOrderCommand::Confirm { automatic: true },
                    metadata,
                )
                .await
            {
                Ok(()) => {
                    confirmed += 1;
                    crash_after(SERVICE_ORDER_SAGA, "auto_confirm");
                }
                // Cancelled in the meantime: nothing to confirm.
                Err(StepError::Refused { .. }) => {}
                Err(StepError::Failed(err)) => return Err(err),
            }
            repository::clear_deadline(&self.pool, saga_id, &status).await?;
        }
        Ok(confirmed)
    }

    /// Runs [`ServiceOrderSaga::run_overdue`] every `every` until shutdown.
    pub async fn run_deadlines(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        crate::deadlines::run_every(every, shutdown, "confirming overdue service orders", || {
            self.run_overdue()
        })
        .await;
    }

    async fn on_order_event(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let decoded = ordo_contracts::service_order(event)?;
        let order_id = decoded.id;
        let saga_id = *order_id.as_uuid();
        match decoded.event {
            ServiceOrderEvent::ServiceOrderPublished { request } => {
                let data = serde_json::json!({
                    "customer_id": request.customer_id,
                    "price": request.price,
                });
                repository::start(&mut *conn, saga_id, SERVICE_ORDER_SAGA, "published", &data)
                    .await
                    .map_err(retry)?;
            }
            ServiceOrderEvent::ServiceOrderPaid { payment_id, .. } => {
                repository::set_status(conn, saga_id, "escrowed", None)
                    .await
                    .map_err(retry)?;
                log(conn, saga_id, "escrow_held", Some(payment_id.to_string())).await?;
            }
            ServiceOrderEvent::WorkDone {} => {
                let deadline = Utc::now()
                    + chrono::Duration::from_std(self.settings.confirm_after)
                        .unwrap_or(chrono::Duration::days(3));
                repository::set_status(conn, saga_id, AWAITING_CONFIRMATION, Some(deadline))
                    .await
                    .map_err(retry)?;
            }
            ServiceOrderEvent::ServiceOrderConfirmed { .. } => {
                // The aggregate refuses a payout of an order not completed, not paid, or
                // cancelled: this step re-checks the write side by construction.
                match self
                    .port
                    .service_order_command(
                        order_id,
                        ServiceOrderCommand::ReleasePayout {
                            payout_id: payout_id(order_id),
                        },
                        Self::metadata(event, saga_id, "release_payout"),
                    )
                    .await
                {
                    Ok(()) => log(conn, saga_id, "release_payout", None).await?,
                    Err(StepError::Refused { detail, .. }) => {
                        log(conn, saga_id, "payout_refused", Some(detail)).await?
                    }
                    Err(err) => return Err(step_failure(err)),
                }
            }
            ServiceOrderEvent::PayoutReleased { payout } => {
                repository::set_status(conn, saga_id, "paid_out", None)
                    .await
                    .map_err(retry)?;
                log(
                    conn,
                    saga_id,
                    "paid_out",
                    Some(payout.payout_id.to_string()),
                )
                .await?;
            }
            ServiceOrderEvent::ServiceOrderCancelled { .. } => {
                let order = self.order(order_id).await?;
                if let Some(payment_id) = order.payment_id() {
                    self.settle_unwanted_payment(
                        conn,
                        event,
                        saga_id,
                        payment_id,
                        "service order cancelled",
                    )
                    .await?;
                }
                repository::set_status(conn, saga_id, "cancelled", None)
                    .await
                    .map_err(retry)?;
            }
            ServiceOrderEvent::ServiceOrderReviewed { .. }
            | ServiceOrderEvent::ServiceOrderReviewHeld { .. }
            | ServiceOrderEvent::ServiceOrderReviewPublished {}
            | ServiceOrderEvent::ServiceOrderReviewRejected { .. } => {}
            ServiceOrderEvent::ServiceOrderRejected { .. } => {
                repository::set_status(conn, saga_id, "rejected", None)
                    .await
                    .map_err(retry)?;
            }
            // Recorded by the saga itself or by routes; nothing follows from them here.
            ServiceOrderEvent::ServiceOrderApproved {}
            | ServiceOrderEvent::ServiceOrderAccepted { .. }
            | ServiceOrderEvent::ServicePaymentAttached { .. }
            | ServiceOrderEvent::WorkStarted {}
            | ServiceOrderEvent::ServiceOrderRefunded { .. } => {}
        }
        Ok(())
    }

    /// Refunds what is left of a captured payment (one deterministic refund id).
    async fn refund(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        saga_id: Uuid,
        payment: &PaymentSnapshot,
        payment_id: PaymentId,
        why: &str,
    ) -> Result<(), HandlerError> {
        if let Some(amount) = payment.refundable() {
            let refund_id = RefundId::from(step_id(*payment_id.as_uuid(), "refund:service_order"));
            self.port
                .refund_payment(
                    payment_id,
                    refund_id,
                    amount,
                    why,
                    Self::metadata(event, saga_id, &format!("refund_payment:{payment_id}")),
                )
                .await
                .map_err(step_failure)?;
        }
        log(
            conn,
            saga_id,
            "refund_payment",
            Some(format!("{payment_id}: {why}")),
        )
        .await
    }

    /// A payment the order no longer wants: void it if it was not captured, refund it if
    /// it was.
    async fn settle_unwanted_payment(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        saga_id: Uuid,
        payment_id: PaymentId,
        why: &str,
    ) -> Result<(), HandlerError> {
        let payment = self.port.payment(payment_id).await.map_err(step_failure)?;
        match payment.status {
            Some(status) if status.is_captured() => {
                self.refund(conn, event, saga_id, &payment, payment_id, why)
                    .await
            }
            Some(_) => {
                match self
                    .port
                    .void_payment(
                        payment_id,
                        why,
                        Self::metadata(event, saga_id, &format!("void_payment:{payment_id}")),
                    )
                    .await
                {
                    Ok(()) | Err(StepError::Refused { .. }) => {}
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
                log(conn, saga_id, "void_payment", Some(payment_id.to_string())).await
            }
            None => Ok(()),
        }
    }

    async fn on_payment_event(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let decoded = ordo_contracts::payment(event)?;
        let payment_id = decoded.id;
        let payment = self.port.payment(payment_id).await.map_err(step_failure)?;
        let Some(saga_id) = payment.order_id else {
            return Err(retry(anyhow::anyhow!("payment {payment_id} not found")));
        };
        let order_id = ServiceOrderId::from(saga_id);
        // Payments of orders and bookings share the stream: only service orders' are ours.
        match repository::saga_type(&mut *conn, saga_id)
            .await
            .map_err(retry)?
        {
            Some(kind) if kind == SERVICE_ORDER_SAGA => {}
            Some(_) => return Ok(()),
            None => {
                // Ours only if the order exists; then its saga has not started yet.
                if self
                    .port
                    .service_order(order_id)
                    .await
                    .map_err(step_failure)?
                    .is_some()
                {
                    return Err(retry(anyhow::anyhow!(
                        "the saga of service order {order_id} has not started yet"
                    )));
                }
                return Ok(());
            }
        }
        let order = self.order(order_id).await?;
        let request = order
            .request()
            .ok_or_else(|| retry(anyhow::anyhow!("service order {order_id} not found")))?
            .clone();
        match decoded.event {
            PaymentEvent::PaymentCreated { amount, .. } => {
                match self
                    .port
                    .service_order_command(
                        order_id,
                        ServiceOrderCommand::AttachPayment { payment_id },
                        Self::metadata(event, saga_id, &format!("attach_payment:{payment_id}")),
                    )
                    .await
                {
                    Ok(()) => {
                        log(
                            conn,
                            saga_id,
                            "attach_payment",
                            Some(payment_id.to_string()),
                        )
                        .await?
                    }
                    Err(StepError::Refused { detail, .. }) => {
                        // Cancelled or paid meanwhile: this payment is never charged.
                        log(conn, saga_id, "payment_not_wanted", Some(detail)).await?;
                        return self
                            .settle_unwanted_payment(
                                conn,
                                event,
                                saga_id,
                                payment_id,
                                "service order not payable",
                            )
                            .await;
                    }
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
                self.provider
                    .charge(ChargeRequest {
                        payment_id,
                        amount,
                        method: payment.method.clone(),
                        sealed_token: payment.sealed_token.clone(),
                        callback_url: format!(
                            "{}/api/v1/payments/{payment_id}/callbacks",
                            self.settings.callback_base_url.trim_end_matches('/')
                        ),
                    })
                    .await
                    .map_err(provider_failure)?;
                log(
                    conn,
                    saga_id,
                    "charge_requested",
                    Some(payment_id.to_string()),
                )
                .await?;
            }
            PaymentEvent::PaymentCaptured { .. } => {
                payment
                    .backs_capture_of("service order", saga_id, Some(&request.price))
                    .map_err(|why| {
                        HandlerError::Permanent(anyhow::anyhow!(
                            "PaymentCaptured for payment {payment_id} not acted on: {why}"
                        ))
                    })?;
                match self
                    .port
                    .service_order_command(
                        order_id,
                        ServiceOrderCommand::MarkPaid { payment_id },
                        Self::metadata(event, saga_id, &format!("mark_paid:{payment_id}")),
                    )
                    .await
                {
                    Ok(()) => log(conn, saga_id, "mark_paid", Some(payment_id.to_string())).await?,
                    Err(StepError::Refused { detail, .. }) => {
                        // Cancelled before this capture (or paid by another payment): the
                        // money goes back.
                        log(conn, saga_id, "capture_not_wanted", Some(detail)).await?;
                        self.settle_unwanted_payment(
                            conn,
                            event,
                            saga_id,
                            payment_id,
                            "service order not payable",
                        )
                        .await?;
                    }
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
            }
            PaymentEvent::PaymentRefunded {
                refund_id, amount, ..
            } => {
                if order.status() == Some(ServiceOrderStatus::Cancelled)
                    && order.payment_id() == Some(payment_id)
                {
                    match self
                        .port
                        .service_order_command(
                            order_id,
                            ServiceOrderCommand::RecordRefund {
                                refund_id,
                                amount: amount.clone(),
                            },
                            Self::metadata(event, saga_id, &format!("record_refund:{refund_id}")),
                        )
                        .await
                    {
                        Ok(()) | Err(StepError::Refused { .. }) => {}
                        Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                    }
                    log(conn, saga_id, "record_refund", Some(refund_id.to_string())).await?;
                }
                tell_provider_refund(
                    self.provider.as_ref(),
                    conn,
                    SERVICE_ORDER_SAGA,
                    saga_id,
                    payment_id,
                    refund_id,
                    amount,
                )
                .await?;
            }
            PaymentEvent::PaymentVoided { .. } => {
                tell_provider_void(
                    self.provider.as_ref(),
                    conn,
                    SERVICE_ORDER_SAGA,
                    saga_id,
                    payment_id,
                )
                .await?;
            }
            PaymentEvent::PaymentFailed { .. } => {
                // The order stays accepted: the customer may pay again.
                log(
                    conn,
                    saga_id,
                    "payment_failed",
                    Some(payment_id.to_string()),
                )
                .await?;
            }
            PaymentEvent::PaymentAuthorized { .. } => {}
        }
        Ok(())
    }
}

#[async_trait]
impl EventHandler for ServiceOrderHandler {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let saga = &self.saga;
        let consumer = match self.feed {
            Feed::ServiceOrders => SERVICE_ORDER_CONSUMER,
            Feed::Payments => SERVICE_ORDER_PAYMENTS_CONSUMER,
        };
        let Some(mut tx) = begin_claimed(&saga.pool, consumer, event).await? else {
            return Ok(());
        };
        let outcome = match self.feed {
            Feed::ServiceOrders => saga.on_order_event(&mut tx, event).await,
            Feed::Payments => saga.on_payment_event(&mut tx, event).await,
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

async fn log(
    conn: &mut PgConnection,
    saga_id: Uuid,
    step: &str,
    detail: Option<String>,
) -> Result<(), HandlerError> {
    log_step(conn, SERVICE_ORDER_SAGA, saga_id, step, detail).await
}

/// The saga a service order event belongs to (its id is the order's).
fn saga_of(event: &ReceivedEvent) -> Option<Uuid> {
    (event.aggregate_type == "service_order")
        .then(|| event.aggregate_id.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payout_id_is_deterministic_and_distinct_per_order() {
        let a = ServiceOrderId::from(Uuid::from_u128(1));
        let b = ServiceOrderId::from(Uuid::from_u128(2));
        assert_eq!(payout_id(a), payout_id(a));
        assert_ne!(payout_id(a), payout_id(b));
    }
}
