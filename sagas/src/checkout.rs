//! The checkout saga for goods, one instance per order (its id is the order id):
//!
//! ```text
//! OrderPlaced      -> take the ordered units out of the cart it came from (once per
//!                     order), reserve stock for every line, lock every coupon of its
//!                     price breakdown -> confirm (awaiting payment, deadline)
//!                     any line short, or a coupon another order holds
//!                                                  -> release every line and coupon, reject
//! PaymentCreated   -> ask the provider to charge
//! PaymentCaptured  -> mark the order paid -> commit the stock of every line, redeem
//!                     every coupon
//!                     order no longer payable      -> refund the capture
//!                     not captured in the store for this order with its total
//!                                                  -> dead-lettered, nothing done
//! PaymentFailed    -> the order keeps waiting for payment until its deadline: the
//!                     customer may pay again (one payment in progress at a time);
//!                     past the deadline (the order was held) -> expire the order
//! OrderCancelled   -> release the stock and the coupons, void the attached payment
//! OrderRefunded    -> refund the payment in full (an admin refunded a paid order)
//! deadline passed  -> a payment still in flight holds the order (payment_held) until
//!                     the provider answers or the grace passes; otherwise, or once the
//!                     grace passed (the payment voided first), expire the order;
//!                     OrderExpired -> release the stock and the coupons (a capture that
//!                     still arrives is refunded)
//! PaymentVoided / PaymentRefunded -> tell the provider
//! ```
//!
//! The order aggregate is the arbiter of races: paying, cancelling and expiring are
//! transitions of one order, so exactly one of them wins and the saga compensates the
//! others. Every command carries a deterministic id and is idempotent on its aggregate,
//! so a step repeated after a crash or a redelivery changes nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use ordo_aggregates::common::{
    CartId, CouponId, OrderId, PaymentId, Quantity, RefundId, Sku, UserId,
};
use ordo_aggregates::order::{OrderEvent, OrderLine, OrderStatus};
use ordo_aggregates::payment::{PaymentEvent, PaymentStatus};
use ordo_contracts::{OrderMessage, PaymentMessage};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::CommandMetadata;
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::handling::{
    begin_claimed, finish, log_step, provider_failure, retry, step_failure, tell_provider_refund,
    tell_provider_void,
};
use crate::port::{CheckoutPort, OrderSnapshot, PaymentSnapshot, StepError};
use crate::provider::{ChargeRequest, PaymentProvider};
use crate::repository;

/// Durable consumer name of the checkout saga on the order stream.
pub const CHECKOUT_CONSUMER: &str = "saga-checkout";
/// Durable consumer name of the checkout saga on the payment stream.
pub const CHECKOUT_PAYMENTS_CONSUMER: &str = "saga-checkout-payments";
/// The saga type stored in `sagas.saga_type`.
pub const CHECKOUT_SAGA: &str = "checkout";
/// The status of a checkout past its deadline whose payment is still in flight.
pub const PAYMENT_HELD: &str = "payment_held";

/// Settings of the checkout saga.
#[derive(Debug, Clone)]
pub struct CheckoutSettings {
    /// How long a confirmed order waits for payment.
    pub payment_timeout: Duration,
    /// How long past the deadline a payment still in flight holds the order before it is
    /// voided and the order expired.
    pub payment_grace: Duration,
    /// Base URL the payment provider calls back (`http://127.0.0.1:8080`).
    pub callback_base_url: String,
}

/// A line as the saga keeps it in its state.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
struct LinePayload {
    sku: String,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
struct SagaData {
    lines: Vec<LinePayload>,
    /// The coupons the order uses (none on orders placed without a price breakdown).
    #[serde(default)]
    coupons: Vec<Uuid>,
}

/// What an `OrderPlaced` tells the saga.
struct Placed<'a> {
    order_id: OrderId,
    customer_id: UserId,
    lines: &'a [OrderLine],
    coupons: &'a [CouponId],
    from_cart: Option<CartId>,
}

/// Runs checkouts. Feed it the order stream through [`CheckoutSaga::orders`] and the
/// payment stream through [`CheckoutSaga::payments`].
pub struct CheckoutSaga {
    pool: PgPool,
    port: Arc<dyn CheckoutPort>,
    provider: Arc<dyn PaymentProvider>,
    settings: CheckoutSettings,
}

/// Which stream a handler of the saga reads.
#[derive(Clone, Copy)]
enum Feed {
    Orders,
    Payments,
}

/// One of the saga's two event handlers.
pub struct CheckoutHandler {
    saga: Arc<CheckoutSaga>,
    feed: Feed,
}

impl CheckoutSaga {
    /// A saga issuing commands through `port`, charging through `provider`, keeping its
    /// state in `pool`.
    pub fn new(
        pool: PgPool,
        port: Arc<dyn CheckoutPort>,
        provider: Arc<dyn PaymentProvider>,
        settings: CheckoutSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            port,
            provider,
            settings,
        })
    }

    /// The handler for the order stream.
    pub fn orders(self: &Arc<Self>) -> CheckoutHandler {
        CheckoutHandler {
            saga: self.clone(),
            feed: Feed::Orders,
        }
    }

    /// The handler for the payment stream.
    pub fn payments(self: &Arc<Self>) -> CheckoutHandler {
        CheckoutHandler {
            saga: self.clone(),
            feed: Feed::Payments,
        }
    }

    /// Handles every checkout whose payment deadline (or grace) has passed. Returns how
    /// many orders it expired. Safe to run from several processes at once: every step is
    /// idempotent.
    ///
    /// At the deadline, an order whose attached payment is still in flight (created or
    /// authorized: the provider has not answered) is held for `payment_grace` instead of
    /// expired, so a customer who paid in time is not refunded because the provider, or
    /// Ordo, was slow. When the grace passes, the payment is voided first; a payment the
    /// provider captured meanwhile cannot be voided, and its capture then pays the order.
    pub async fn expire_overdue(&self) -> anyhow::Result<usize> {
        let overdue = crate::repository::overdue(
            &self.pool,
            CHECKOUT_SAGA,
            &["awaiting_payment", PAYMENT_HELD],
            200,
        )
        .await?;
        let mut expired = 0;
        for (saga_id, status) in overdue {
            let order_id = OrderId::from(saga_id);
            let order = match self.port.order(order_id).await {
                Ok(order) => order,
                Err(StepError::Refused { .. }) => continue,
                Err(StepError::Failed(err)) => return Err(err),
            };
            let in_flight = match order.payment {
                Some(payment_id) if order.status == Some(OrderStatus::AwaitingPayment) => {
                    let payment = match self.port.payment(payment_id).await {
                        Ok(payment) => payment,
                        Err(StepError::Refused { .. }) => continue,
                        Err(StepError::Failed(err)) => return Err(err),
                    };
                    match payment.status {
                        Some(PaymentStatus::Created | PaymentStatus::Authorized) => {
                            Some(payment_id)
                        }
                        // Captured: its capture pays the order; nothing to expire.
                        Some(s) if s.is_captured() => {
                            crate::repository::clear_deadline(&self.pool, saga_id, &status).await?;
                            continue;
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            if let (Some(payment_id), "awaiting_payment") = (in_flight, status.as_str()) {
                let until = Utc::now()
                    + chrono::Duration::from_std(self.settings.payment_grace)
                        .unwrap_or(chrono::Duration::minutes(2));
                let mut tx = self.pool.begin().await?;
                crate::repository::advance(
                    &mut tx,
                    saga_id,
                    &["awaiting_payment"],
                    PAYMENT_HELD,
                    Some(until),
                )
                .await?;
                crate::repository::log_step(
                    &mut tx,
                    saga_id,
                    "payment_held",
                    Some(format!(
                        "{payment_id} in flight at the deadline; held until {}",
                        until.to_rfc3339()
                    )),
                )
                .await?;
                tx.commit().await?;
                continue;
            }
            if let Some(payment_id) = in_flight {
                // The grace passed: stop the charge before giving the stock back.
                let metadata = CommandMetadata::caused_by(
                    &saga_id.to_string(),
                    &format!("deadline:{saga_id}"),
                    step_id(saga_id, &format!("void_payment:{payment_id}")).to_string(),
                );
                match self
                    .port
                    .void_payment(payment_id, "payment_grace_passed", metadata)
                    .await
                {
                    Ok(()) => {}
                    // Captured meanwhile: the capture pays the order.
                    Err(StepError::Refused { .. }) => {
                        crate::repository::clear_deadline(&self.pool, saga_id, &status).await?;
                        continue;
                    }
                    Err(StepError::Failed(err)) => return Err(err),
                }
                crate::repository::log_step(
                    &mut *self.pool.acquire().await?,
                    saga_id,
                    "void_payment",
                    Some(format!("{payment_id}: payment grace passed")),
                )
                .await?;
            }
            if self.expire(saga_id).await? {
                expired += 1;
            }
            // The deadline is handled; the OrderExpired event drives the compensation.
            crate::repository::clear_deadline(&self.pool, saga_id, &status).await?;
        }
        Ok(expired)
    }

    /// Expires the order of saga `saga_id`: false when it was paid or cancelled meanwhile.
    async fn expire(&self, saga_id: Uuid) -> anyhow::Result<bool> {
        let metadata = CommandMetadata::caused_by(
            &saga_id.to_string(),
            &format!("deadline:{saga_id}"),
            step_id(saga_id, "expire_order").to_string(),
        );
        match self
            .port
            .expire_order(OrderId::from(saga_id), metadata)
            .await
        {
            Ok(()) => Ok(true),
            // Paid or cancelled in the meantime: the order decided, nothing to expire.
            Err(StepError::Refused { .. }) => Ok(false),
            Err(StepError::Failed(err)) => Err(err),
        }
    }

    /// Runs [`CheckoutSaga::expire_overdue`] every `every` until shutdown.
    pub async fn run_deadlines(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        crate::deadlines::run_every(every, shutdown, "expiring overdue checkouts", || {
            self.expire_overdue()
        })
        .await;
    }

    fn metadata(event: &ReceivedEvent, saga_id: Uuid, step: &str) -> CommandMetadata {
        crate::deadlines::step_metadata(event, saga_id, step)
    }

    async fn lines(
        &self,
        conn: &mut PgConnection,
        saga_id: Uuid,
    ) -> Result<Vec<(Sku, Quantity)>, HandlerError> {
        let row = crate::repository::data(&mut *conn, saga_id)
            .await
            .map_err(retry)?;
        let Some(data) = row else {
            return Err(HandlerError::Retry(anyhow::anyhow!(
                "checkout {saga_id} has not started yet"
            )));
        };
        let data: SagaData =
            serde_json::from_value(data).map_err(|e| HandlerError::Permanent(e.into()))?;
        parse_lines(&data.lines)
    }

    /// Reacts to an event of the order stream.
    async fn on_order_event(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        message: OrderMessage,
    ) -> Result<(), HandlerError> {
        match message.event {
            OrderEvent::OrderPlaced {
                order_id,
                customer_id,
                lines,
                pricing,
                from_cart,
                ..
            } => {
                let coupons = pricing.map(|p| p.coupons()).unwrap_or_default();
                let placed = Placed {
                    order_id,
                    customer_id,
                    lines: &lines,
                    coupons: &coupons,
                    from_cart,
                };
                self.on_order_placed(conn, event, placed).await
            }
            OrderEvent::OrderCancelled { .. } => {
                self.on_order_closed(conn, event, message.id, "cancelled")
                    .await
            }
            OrderEvent::OrderExpired {} => {
                self.on_order_closed(conn, event, message.id, "expired")
                    .await
            }
            OrderEvent::OrderPaid { .. } => self.on_order_paid(conn, event, message.id).await,
            OrderEvent::OrderRefunded { .. } => {
                self.on_order_refunded(conn, event, message.id).await
            }
            // Steps of the saga itself, or of the customer: nothing to react to.
            OrderEvent::OrderConfirmed {}
            | OrderEvent::OrderRejected { .. }
            | OrderEvent::PaymentAttached { .. } => Ok(()),
            // Fulfilment follows a paid order (sagas/src/fulfilment.rs).
            OrderEvent::OrderShipped { .. }
            | OrderEvent::OrderDelivered { .. }
            | OrderEvent::OrderCompleted { .. } => Ok(()),
            // After-sales claims are the after-sales process's (sagas/src/aftersale.rs).
            OrderEvent::AfterSaleUnitsClaimed { .. }
            | OrderEvent::AfterSaleUnitsReleased { .. } => Ok(()),
        }
    }

    async fn on_order_placed(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        placed: Placed<'_>,
    ) -> Result<(), HandlerError> {
        let Placed {
            order_id,
            customer_id,
            lines: placed_lines,
            coupons,
            from_cart,
        } = placed;
        let saga_id = *order_id.as_uuid();
        let lines: Vec<(Sku, Quantity)> = placed_lines
            .iter()
            .map(|line| (line.sku.clone(), line.quantity))
            .collect();
        let kept: Vec<LinePayload> = placed_lines
            .iter()
            .map(|line| LinePayload {
                sku: line.sku.to_string(),
                quantity: i64::from(line.quantity.get()),
            })
            .collect();
        let data =
            serde_json::json!({ "customer_id": customer_id, "lines": kept, "coupons": coupons });
        // Started outside the step's transaction: even if the step keeps failing, the saga
        // exists and shows its error.
        repository::start(
            &mut *self.pool.acquire().await.map_err(retry)?,
            saga_id,
            CHECKOUT_SAGA,
            "reserving",
            &data,
        )
        .await
        .map_err(retry)?;

        // The ordered units leave the cart once the order is placed, whatever the saga
        // decides next; the cart takes them out once per order, so a repeat is a no-op.
        if let Some(cart_id) = from_cart {
            match self
                .port
                .remove_ordered_from_cart(
                    cart_id,
                    customer_id,
                    order_id,
                    &lines,
                    Self::metadata(event, saga_id, "remove_from_cart"),
                )
                .await
            {
                Ok(()) => log(conn, saga_id, "remove_from_cart", Some(cart_id.to_string())).await?,
                // Not the customer's cart: the order stands, the cart is left alone.
                Err(StepError::Refused { detail, .. }) => {
                    log(conn, saga_id, "remove_from_cart_refused", Some(detail)).await?
                }
                Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
            }
        }

        let mut short = Vec::new();
        let mut refusal = None;
        for (sku, quantity) in &lines {
            let step = format!("reserve_stock:{sku}");
            match self
                .port
                .reserve_stock(
                    sku,
                    order_id,
                    *quantity,
                    Self::metadata(event, saga_id, &step),
                )
                .await
            {
                Ok(()) => {
                    log(
                        conn,
                        saga_id,
                        "reserve_stock",
                        Some(format!("{sku} x{}", quantity.get())),
                    )
                    .await?
                }
                Err(StepError::Refused { code, detail }) => {
                    log(
                        conn,
                        saga_id,
                        "reserve_refused",
                        Some(format!("{sku}: {detail}")),
                    )
                    .await?;
                    short.push(sku.clone());
                    refusal.get_or_insert(code);
                }
                Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
            }
        }

        // The coupons are locked with the stock: one another order holds rejects this one.
        if short.is_empty() {
            for coupon_id in coupons {
                let step = format!("lock_coupon:{coupon_id}");
                match self
                    .port
                    .lock_coupon(
                        *coupon_id,
                        order_id,
                        customer_id,
                        Self::metadata(event, saga_id, &step),
                    )
                    .await
                {
                    Ok(()) => {
                        log(conn, saga_id, "lock_coupon", Some(coupon_id.to_string())).await?
                    }
                    Err(StepError::Refused { code, detail }) => {
                        log(
                            conn,
                            saga_id,
                            "lock_coupon_refused",
                            Some(format!("{coupon_id}: {detail}")),
                        )
                        .await?;
                        refusal = Some(code);
                        break;
                    }
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
            }
        }

        if short.is_empty() && refusal.is_none() {
            self.port
                .confirm_order(order_id, Self::metadata(event, saga_id, "confirm_order"))
                .await
                .map_err(step_failure)?;
            let deadline = Utc::now()
                + chrono::Duration::from_std(self.settings.payment_timeout)
                    .unwrap_or(chrono::Duration::minutes(15));
            log(
                conn,
                saga_id,
                "confirm_order",
                Some(format!("payment due by {}", deadline.to_rfc3339())),
            )
            .await?;
            repository::set_status(conn, saga_id, "awaiting_payment", Some(deadline))
                .await
                .map_err(retry)?;
        } else {
            // Compensate every line and coupon, also one an earlier attempt may have taken
            // before a crash.
            self.release_all(conn, event, saga_id, order_id, &lines)
                .await?;
            self.release_coupons(conn, event, saga_id, order_id, coupons)
                .await?;
            let reason = refusal.unwrap_or_else(|| "insufficient_stock".into());
            self.port
                .reject_order(
                    order_id,
                    &reason,
                    short,
                    Self::metadata(event, saga_id, "reject_order"),
                )
                .await
                .map_err(step_failure)?;
            log(conn, saga_id, "reject_order", Some(reason)).await?;
            repository::set_status(conn, saga_id, "rejected", None)
                .await
                .map_err(retry)?;
        }
        Ok(())
    }

    async fn release_all(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        saga_id: Uuid,
        order_id: OrderId,
        lines: &[(Sku, Quantity)],
    ) -> Result<(), HandlerError> {
        for (sku, _) in lines {
            self.port
                .release_stock(
                    sku,
                    order_id,
                    Self::metadata(event, saga_id, &format!("release_stock:{sku}")),
                )
                .await
                .map_err(step_failure)?;
            log(conn, saga_id, "release_stock", Some(sku.to_string())).await?;
        }
        Ok(())
    }

    async fn release_coupons(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        saga_id: Uuid,
        order_id: OrderId,
        coupons: &[CouponId],
    ) -> Result<(), HandlerError> {
        for coupon_id in coupons {
            match self
                .port
                .release_coupon(
                    *coupon_id,
                    order_id,
                    Self::metadata(event, saga_id, &format!("release_coupon:{coupon_id}")),
                )
                .await
            {
                // Releasing is a no-op unless this order holds the coupon; a coupon that no
                // longer exists has nothing to give back.
                Ok(()) | Err(StepError::Refused { .. }) => {}
                Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
            }
            log(conn, saga_id, "release_coupon", Some(coupon_id.to_string())).await?;
        }
        Ok(())
    }

    async fn coupons(
        &self,
        conn: &mut PgConnection,
        saga_id: Uuid,
    ) -> Result<Vec<CouponId>, HandlerError> {
        let row = crate::repository::data(&mut *conn, saga_id)
            .await
            .map_err(retry)?;
        let Some(data) = row else {
            return Ok(Vec::new());
        };
        let data: SagaData =
            serde_json::from_value(data).map_err(|e| HandlerError::Permanent(e.into()))?;
        Ok(data.coupons.into_iter().map(CouponId::from).collect())
    }

    /// The order was cancelled or expired: give the stock back and stop the payment.
    async fn on_order_closed(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        order_id: OrderId,
        status: &str,
    ) -> Result<(), HandlerError> {
        let saga_id = *order_id.as_uuid();
        let lines = self.lines(conn, saga_id).await?;
        self.release_all(conn, event, saga_id, order_id, &lines)
            .await?;
        let coupons = self.coupons(conn, saga_id).await?;
        self.release_coupons(conn, event, saga_id, order_id, &coupons)
            .await?;
        // A cancelled order stops its payment. An expired one does not: the customer may
        // still complete it at the provider, and a capture arriving late is refunded.
        if status == "cancelled" {
            let order = self.port.order(order_id).await.map_err(step_failure)?;
            if let Some(payment_id) = order.payment {
                self.settle_unwanted_payment(conn, event, saga_id, payment_id, status)
                    .await?;
            }
        }

        repository::set_status(conn, saga_id, status, None)
            .await
            .map_err(retry)?;
        Ok(())
    }

    /// A payment the order no longer wants: void it if it was not captured, refund it if it was.
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
                // What is left: an earlier attempt of this step, or a refund by hand, may
                // have returned some or all of it already.
                if let Some(amount) = payment.refundable() {
                    let refund_id =
                        RefundId::from(step_id(*payment_id.as_uuid(), "refund:unwanted"));
                    self.port
                        .refund_payment(
                            payment_id,
                            refund_id,
                            amount,
                            &format!("order {why}"),
                            Self::metadata(event, saga_id, &format!("refund_payment:{payment_id}")),
                        )
                        .await
                        .map_err(step_failure)?;
                }
                log(
                    conn,
                    saga_id,
                    "refund_payment",
                    Some(format!("{payment_id}: order {why}")),
                )
                .await?;
            }
            Some(_) => {
                match self
                    .port
                    .void_payment(
                        payment_id,
                        &format!("order {why}"),
                        Self::metadata(event, saga_id, &format!("void_payment:{payment_id}")),
                    )
                    .await
                {
                    // Already failed or voided: nothing to stop.
                    Ok(()) | Err(StepError::Refused { .. }) => {}
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
                log(conn, saga_id, "void_payment", Some(payment_id.to_string())).await?;
            }
            None => {}
        }
        Ok(())
    }

    async fn on_order_paid(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        order_id: OrderId,
    ) -> Result<(), HandlerError> {
        let saga_id = *order_id.as_uuid();
        for (sku, _) in self.lines(conn, saga_id).await? {
            self.port
                .commit_stock(
                    &sku,
                    order_id,
                    Self::metadata(event, saga_id, &format!("commit_stock:{sku}")),
                )
                .await
                .map_err(step_failure)?;
            log(conn, saga_id, "commit_stock", Some(sku.to_string())).await?;
        }
        for coupon_id in self.coupons(conn, saga_id).await? {
            self.port
                .redeem_coupon(
                    coupon_id,
                    order_id,
                    Self::metadata(event, saga_id, &format!("redeem_coupon:{coupon_id}")),
                )
                .await
                .map_err(step_failure)?;
            log(conn, saga_id, "redeem_coupon", Some(coupon_id.to_string())).await?;
        }
        repository::set_status(conn, saga_id, "paid", None)
            .await
            .map_err(retry)?;
        Ok(())
    }

    /// A paid order was refunded: give the customer the whole payment back.
    async fn on_order_refunded(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        order_id: OrderId,
    ) -> Result<(), HandlerError> {
        let saga_id = *order_id.as_uuid();
        let order = self.port.order(order_id).await.map_err(step_failure)?;
        if let Some(payment_id) = order.payment {
            self.settle_unwanted_payment(conn, event, saga_id, payment_id, "refunded")
                .await?;
        }
        repository::set_status(conn, saga_id, "refunded", None)
            .await
            .map_err(retry)?;
        Ok(())
    }

    async fn on_payment_event(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        message: PaymentMessage,
    ) -> Result<(), HandlerError> {
        let payment_id = message.id;
        let payment = self.port.payment(payment_id).await.map_err(step_failure)?;
        let Some(saga_id) = payment.order_id else {
            return Err(HandlerError::Retry(anyhow::anyhow!(
                "payment {payment_id} not found"
            )));
        };
        // Payments of other sagas (bookings) share the stream.
        let saga_type = crate::repository::saga_type(&mut *conn, saga_id)
            .await
            .map_err(retry)?;
        if saga_type.as_deref() != Some(CHECKOUT_SAGA) {
            return Ok(());
        }
        let order_id = OrderId::from(saga_id);
        match message.event {
            PaymentEvent::PaymentCreated { .. } => {
                let amount = payment.amount.ok_or_else(|| {
                    HandlerError::Permanent(anyhow::anyhow!("payment {payment_id} has no amount"))
                })?;
                let request = ChargeRequest {
                    payment_id,
                    amount,
                    method: payment.method.clone(),
                    sealed_token: payment.sealed_token.clone(),
                    callback_url: format!(
                        "{}/api/v1/payments/{payment_id}/callbacks",
                        self.settings.callback_base_url.trim_end_matches('/')
                    ),
                };
                self.provider
                    .charge(request)
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
                // The message may not be what the store holds (anyone who can publish on
                // the bus can send one): act only on the payment as the event store has it.
                let order = self.port.order(order_id).await.map_err(step_failure)?;
                backed_capture(payment_id, order_id, &payment, &order)?;
                match self
                    .port
                    .mark_order_paid(
                        order_id,
                        payment_id,
                        Self::metadata(event, saga_id, &format!("mark_paid:{payment_id}")),
                    )
                    .await
                {
                    Ok(()) => {
                        log(
                            conn,
                            saga_id,
                            "mark_order_paid",
                            Some(payment_id.to_string()),
                        )
                        .await?
                    }
                    Err(StepError::Refused { code, detail }) => {
                        // The order was cancelled or expired (or paid by another payment)
                        // before this capture: the money goes back.
                        log(
                            conn,
                            saga_id,
                            "capture_not_wanted",
                            Some(format!("{code}: {detail}")),
                        )
                        .await?;
                        let order = self.port.order(order_id).await.map_err(step_failure)?;
                        let why = order
                            .status
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_else(|| "gone".into());
                        self.settle_unwanted_payment(conn, event, saga_id, payment_id, &why)
                            .await?;
                    }
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
            }
            PaymentEvent::PaymentFailed { .. } => {
                let order = self.port.order(order_id).await.map_err(step_failure)?;
                if order.status == Some(OrderStatus::AwaitingPayment)
                    && order.payment == Some(payment_id)
                {
                    log(
                        conn,
                        saga_id,
                        "payment_failed",
                        Some(payment_id.to_string()),
                    )
                    .await?;
                    // Before the deadline the order keeps waiting: the customer may pay
                    // again. An order held past its deadline for this payment expires now.
                    let status = repository::status(&mut *conn, saga_id)
                        .await
                        .map_err(retry)?;
                    if status.as_deref() == Some(PAYMENT_HELD) {
                        match self
                            .port
                            .expire_order(order_id, Self::metadata(event, saga_id, "expire_order"))
                            .await
                        {
                            Ok(()) | Err(StepError::Refused { .. }) => {}
                            Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                        }
                        log(
                            conn,
                            saga_id,
                            "expire_order",
                            Some("payment declined after the deadline".into()),
                        )
                        .await?;
                    }
                }
            }
            // The payment aggregate decided; the provider is told.
            PaymentEvent::PaymentVoided { .. } => {
                tell_provider_void(
                    self.provider.as_ref(),
                    conn,
                    CHECKOUT_SAGA,
                    saga_id,
                    payment_id,
                )
                .await?;
            }
            PaymentEvent::PaymentRefunded {
                refund_id, amount, ..
            } => {
                tell_provider_refund(
                    self.provider.as_ref(),
                    conn,
                    CHECKOUT_SAGA,
                    saga_id,
                    payment_id,
                    refund_id,
                    amount,
                )
                .await?;
                let order = self.port.order(order_id).await.map_err(step_failure)?;
                let refunded = self.port.payment(payment_id).await.map_err(step_failure)?;
                if order.status == Some(OrderStatus::Paid)
                    && order.payment == Some(payment_id)
                    && refunded.status == Some(PaymentStatus::Refunded)
                {
                    // A paid order whose payment was refunded in full (by hand, before it
                    // shipped) is refunded; a partial refund leaves it be.
                    self.port
                        .mark_order_refunded(
                            order_id,
                            payment_id,
                            "payment_refunded",
                            Self::metadata(event, saga_id, &format!("mark_refunded:{payment_id}")),
                        )
                        .await
                        .map_err(step_failure)?;
                    log(conn, saga_id, "mark_refunded", Some(payment_id.to_string())).await?;
                    repository::set_status(conn, saga_id, "refunded", None)
                        .await
                        .map_err(retry)?;
                }
            }
            // The provider's own answer, before the capture: nothing to do.
            PaymentEvent::PaymentAuthorized { .. } => {}
        }
        Ok(())
    }
}

#[async_trait]
impl EventHandler for CheckoutHandler {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let saga = &self.saga;
        let consumer = match self.feed {
            Feed::Orders => CHECKOUT_CONSUMER,
            Feed::Payments => CHECKOUT_PAYMENTS_CONSUMER,
        };
        let Some(mut tx) = begin_claimed(&saga.pool, consumer, event).await? else {
            return Ok(());
        };
        let outcome = match self.feed {
            Feed::Orders => match ordo_contracts::order(event) {
                Ok(message) => saga.on_order_event(&mut tx, event, message).await,
                Err(err) => Err(err.into()),
            },
            Feed::Payments => match ordo_contracts::payment(event) {
                Ok(message) => saga.on_payment_event(&mut tx, event, message).await,
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

/// Checks that `payment`, as the event store holds it, is captured for `order_id` with the
/// amount and currency of the order's total; anything else is dead-lettered (a permanent
/// error), never acted on: a `PaymentCaptured` message the store does not back is forged
/// or misrouted, and retrying it cannot make it true.
pub fn backed_capture(
    payment_id: PaymentId,
    order_id: OrderId,
    payment: &PaymentSnapshot,
    order: &OrderSnapshot,
) -> Result<(), HandlerError> {
    payment
        .backs_capture_of("order", *order_id.as_uuid(), order.total.as_ref())
        .map_err(|why| {
            HandlerError::Permanent(anyhow::anyhow!(
                "PaymentCaptured for payment {payment_id} not acted on: {why}"
            ))
        })
}

/// The saga an event belongs to: the order id for order events; for payment events the
/// id is looked up when handling, so only order events are attributed here.
fn saga_of(event: &ReceivedEvent) -> Option<Uuid> {
    (event.aggregate_type == "order")
        .then(|| event.aggregate_id.parse().ok())
        .flatten()
}

fn parse_lines(lines: &[LinePayload]) -> Result<Vec<(Sku, Quantity)>, HandlerError> {
    lines
        .iter()
        .map(|line| {
            Ok((
                Sku::parse(&line.sku)
                    .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("{e}")))?,
                Quantity::parse(line.quantity)
                    .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("{e}")))?,
            ))
        })
        .collect()
}

async fn log(
    conn: &mut PgConnection,
    saga_id: Uuid,
    step: &str,
    detail: Option<String>,
) -> Result<(), HandlerError> {
    log_step(conn, CHECKOUT_SAGA, saga_id, step, detail).await
}

pub use crate::deadlines::step_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_crash_step_names_this_saga() {
        assert_eq!(crate::crash_points::BARE_STEP_SAGA, CHECKOUT_SAGA);
    }
}
