//! The command ports of the sagas: the aggregate operations each needs, as traits so that a
//! saga's logic can be exercised without a database, and their implementation on the
//! command buses.
//!
//! - [`PaymentPort`]: what both sagas do with payments (read, void, refund).
//! - [`CheckoutPort`]: stock and orders, for the checkout saga.
//! - [`BookingPort`]: seats, bookings and show sessions, for the booking saga.
//! - [`crate::SeatStockPort`]: opening seats, for the seat stock policy.
//! - [`StorePort`]: all of them on the event store's command buses.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordo_aggregates::booking::{Booking, BookingCommand, BookingRequest, BookingStatus};
use ordo_aggregates::cart::{Cart, CartCommand, CartOwner, MergedLine};
use ordo_aggregates::common::{
    BookingId, CartId, CouponId, DomainError, Money, OrderId, PaymentId, Quantity, RefundId,
    ReservationId, SessionId, ShowId, Sku, TicketId, UserId,
};
use ordo_aggregates::coupon::{CouponBatch, CouponCommand};
use ordo_aggregates::inventory::{InventoryCommand, InventoryItem, SeatHold};
use ordo_aggregates::order::{Order, OrderCommand, OrderStatus};
use ordo_aggregates::payment::{Payment, PaymentCommand, PaymentStatus};
use ordo_aggregates::show::{SeatArea, Show};
use ordo_store::{CommandBus, CommandError, CommandMetadata};
use uuid::Uuid;

/// Why a saga step did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The aggregate refused: a business answer the saga compensates for.
    #[error("{code}: {detail}")]
    Refused { code: String, detail: String },
    /// Infrastructure failed: the step is retried later.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What the saga needs to know of an order.
#[derive(Debug, Clone)]
pub struct OrderSnapshot {
    /// Its status, `None` if it was never placed.
    pub status: Option<OrderStatus>,
    /// The payment attached last.
    pub payment: Option<PaymentId>,
    /// What it costs, once placed.
    pub total: Option<Money>,
}

/// What the saga needs to know of a payment.
#[derive(Debug, Clone)]
pub struct PaymentSnapshot {
    /// Its status, `None` if it does not exist.
    pub status: Option<PaymentStatus>,
    /// The order (or booking) it pays for.
    pub order_id: Option<Uuid>,
    /// Its amount.
    pub amount: Option<Money>,
    /// The amount captured, once captured.
    pub captured: Option<Money>,
    /// The total refunded so far, once refunded.
    pub refunded: Option<Money>,
    /// The method the customer gave.
    pub method: String,
    /// The customer's payment token, sealed.
    pub sealed_token: String,
}

impl PaymentSnapshot {
    /// Whether this payment, as the event store holds it, is captured for `owner` (the
    /// `owner_kind` order or booking) in full and for exactly `total`; the error says what differs.
    /// The sagas act on a `PaymentCaptured` message only when this holds, so a forged or
    /// misrouted message changes nothing.
    pub fn backs_capture_of(
        &self,
        owner_kind: &str,
        owner: Uuid,
        total: Option<&Money>,
    ) -> Result<(), String> {
        if !self.status.is_some_and(|s| s.is_captured()) {
            let status = self
                .status
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "missing".into());
            return Err(format!(
                "the event store holds the payment as {status}, not captured"
            ));
        }
        if self.order_id != Some(owner) {
            return Err(format!("the payment is not for {owner_kind} {owner}"));
        }
        let (Some(amount), Some(captured)) = (&self.amount, &self.captured) else {
            return Err("the payment records no captured amount".into());
        };
        if captured != amount {
            return Err(format!("the payment captured {captured} of its {amount}"));
        }
        match total {
            Some(total) if total == captured => Ok(()),
            Some(total) => Err(format!(
                "the payment captured {captured} but {owner_kind} {owner} totals {total}"
            )),
            None => Err(format!("{owner_kind} {owner} has no total")),
        }
    }

    /// What can still be refunded: the captured amount less what was refunded already
    /// (by the saga or by hand); `None` when the payment was not captured or nothing is left.
    pub fn refundable(&self) -> Option<Money> {
        if !self.status.is_some_and(|s| s.is_captured()) {
            return None;
        }
        let captured = self.captured.clone().or_else(|| self.amount.clone())?;
        let left = match &self.refunded {
            Some(refunded) => captured.checked_sub(refunded).ok()?,
            None => captured,
        };
        (!left.is_zero()).then_some(left)
    }
}

/// What both sagas do with payments. Each command is idempotent on the payment.
#[async_trait]
pub trait PaymentPort: Send + Sync + 'static {
    /// The payment's current state on the write side.
    async fn payment(&self, payment_id: PaymentId) -> Result<PaymentSnapshot, StepError>;
    /// Voids a payment that was not captured.
    async fn void_payment(
        &self,
        payment_id: PaymentId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Refunds `amount` of a captured payment.
    async fn refund_payment(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        amount: Money,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
}

/// The commands the checkout saga issues. Each is idempotent on its aggregate.
#[async_trait]
pub trait CheckoutPort: PaymentPort {
    /// Reserves `quantity` of `sku` for the order.
    async fn reserve_stock(
        &self,
        sku: &Sku,
        order_id: OrderId,
        quantity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Releases the order's reservation of `sku` (no-op when there is none left).
    async fn release_stock(
        &self,
        sku: &Sku,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Commits the order's reservation of `sku`: the goods are sold.
    async fn commit_stock(
        &self,
        sku: &Sku,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Confirms the order: all its stock is reserved; it now awaits payment.
    async fn confirm_order(
        &self,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Rejects the order with a reason and the SKUs that were short.
    async fn reject_order(
        &self,
        order_id: OrderId,
        reason: &str,
        short_skus: Vec<Sku>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Cancels the order.
    async fn cancel_order(
        &self,
        order_id: OrderId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Expires the order: payment did not come in time.
    async fn expire_order(
        &self,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Marks the order paid by `payment_id`.
    async fn mark_order_paid(
        &self,
        order_id: OrderId,
        payment_id: PaymentId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Marks the paid order refunded: its payment was refunded in full.
    async fn mark_order_refunded(
        &self,
        order_id: OrderId,
        payment_id: PaymentId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// The order's current state on the write side.
    async fn order(&self, order_id: OrderId) -> Result<OrderSnapshot, StepError>;
    /// Locks `coupon_id` of `customer` for the order (refused, `coupon_in_use`, when
    /// another order holds it; a no-op when this order already does).
    async fn lock_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        customer: UserId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// The order holding the coupon was paid: the coupon is used.
    async fn redeem_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// The order no longer needs the coupon: claimed again (a no-op unless this order holds it).
    async fn release_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Takes the units of an order placed from `cart_id`, the cart of `customer`, out of it
    /// (a no-op when that order took them already).
    async fn remove_ordered_from_cart(
        &self,
        cart_id: CartId,
        customer: UserId,
        order_id: OrderId,
        lines: &[(Sku, Quantity)],
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
}

/// What the booking saga needs to know of a booking.
#[derive(Debug, Clone)]
pub struct BookingSnapshot {
    /// Its status, `None` if it was never requested.
    pub status: Option<BookingStatus>,
    /// What was requested: show, session, seat area, quantity.
    pub request: Option<BookingRequest>,
    /// The payment deadline, while seats are held.
    pub expires_at: Option<DateTime<Utc>>,
    /// Why it was rejected, cancelled or refunded.
    pub reason: Option<String>,
    /// The payment attached last (the one that paid, once paid).
    pub payment: Option<PaymentId>,
}

/// The commands the booking saga issues. Each is idempotent on its aggregate. Seats are
/// the stock of one inventory item per session and seat area
/// ([`ordo_aggregates::show::seat_inventory_id`]), reserved under the booking's id.
#[async_trait]
pub trait BookingPort: PaymentPort {
    /// Reserves `quantity` seats of the item `seats` for the booking. Refused with
    /// `insufficient_stock` when too few are left.
    async fn reserve_seats(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        quantity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Gives the booking's reserved seats back to sale (no-op when none were reserved).
    async fn release_seats(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Sells the booking's reserved seats.
    async fn commit_seats(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Puts the sold seats of a refunded booking back to sale.
    async fn return_seats(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Reserves `quantity` seats of the item `seats` for the booking, recording with the
    /// reservation the booking it decides (`hold`): one step on the seat area's single
    /// writer. Refused with `insufficient_stock` when too few are left (a no-op when the
    /// booking reserved them already).
    async fn reserve_seats_for(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        quantity: Quantity,
        hold: SeatHold,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Records the booking `request` with its seats held until `expires_at`
    /// (`BookingRequested` and `SeatsHeld` in one command). Answers whether this call
    /// recorded anything: false when the booking was recorded held already. Refused when a
    /// booking with this id was requested with other content.
    async fn record_held_booking(
        &self,
        request: &BookingRequest,
        max_per_booking: u32,
        expires_at: DateTime<Utc>,
        metadata: CommandMetadata,
    ) -> Result<bool, StepError>;
    /// Records the booking `request` alone, pending: its seats are reserved later.
    async fn request_booking(
        &self,
        request: &BookingRequest,
        max_per_booking: u32,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Attaches a payment just created to the booking (no-op when it is attached).
    /// Refused when the booking no longer awaits payment.
    async fn attach_payment(
        &self,
        booking_id: BookingId,
        payment_id: PaymentId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// The seat areas of a show's session as the Show aggregate has them now (their
    /// prices and capacities), `None` when the show has no such session.
    async fn session_areas(
        &self,
        show_id: ShowId,
        session_id: SessionId,
    ) -> Result<Option<Vec<SeatArea>>, StepError>;
    /// Holds the booking's seats until `expires_at`: it now awaits payment. Answers whether
    /// this call held them, false when they were held already.
    async fn hold_seats(
        &self,
        booking_id: BookingId,
        expires_at: DateTime<Utc>,
        metadata: CommandMetadata,
    ) -> Result<bool, StepError>;
    /// Rejects the booking with a reason.
    async fn reject_booking(
        &self,
        booking_id: BookingId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Marks the booking paid by `payment_id`, issuing `tickets`.
    async fn mark_booking_paid(
        &self,
        booking_id: BookingId,
        payment_id: PaymentId,
        tickets: Vec<TicketId>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Expires the booking: payment did not come in time.
    async fn expire_booking(
        &self,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// Completes a paid booking: its session is long over.
    async fn complete_booking(
        &self,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError>;
    /// The booking's current state on the write side.
    async fn booking(&self, booking_id: BookingId) -> Result<BookingSnapshot, StepError>;
    /// When a session of a show starts, `None` when the show has no such session.
    async fn session_starts_at(
        &self,
        show_id: ShowId,
        session_id: SessionId,
    ) -> Result<Option<DateTime<Utc>>, StepError>;
}

/// [`CheckoutPort`] and [`BookingPort`] on the event store's command buses.
pub struct StorePort {
    /// Inventory items: one per SKU, and one per session and seat area.
    pub inventory: Arc<CommandBus<InventoryItem>>,
    /// Orders.
    pub orders: Arc<CommandBus<Order>>,
    /// Payments.
    pub payments: Arc<CommandBus<Payment>>,
    /// Bookings.
    pub bookings: Arc<CommandBus<Booking>>,
    /// Shows and their sessions.
    pub shows: Arc<CommandBus<Show>>,
    /// Coupon batches and their coupons.
    pub coupons: Arc<CommandBus<CouponBatch>>,
    /// Carts.
    pub carts: Arc<CommandBus<Cart>>,
    /// The store, to find the batch of a coupon.
    pub pool: sqlx::PgPool,
}

/// A command's failure as a step's: a refusal of the aggregate, or anything else failing.
pub(crate) fn step_error<E: DomainError>(err: CommandError<E>) -> StepError {
    match err {
        CommandError::Rejected(err) => StepError::Refused {
            code: err.code().to_string(),
            detail: err.to_string(),
        },
        other => StepError::Failed(anyhow::anyhow!(other.to_string())),
    }
}

fn done<T, E: DomainError>(result: Result<T, CommandError<E>>) -> Result<(), StepError> {
    result.map(|_| ()).map_err(step_error)
}

impl StorePort {
    async fn coupon_command(
        &self,
        coupon_id: CouponId,
        command: CouponCommand,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let batch = ordo_store::offers::coupon_owner(&self.pool, *coupon_id.as_uuid())
            .await
            .map_err(|e| StepError::Failed(e.into()))?
            .map(|(batch_id, _)| batch_id.to_string())
            .ok_or_else(|| StepError::Refused {
                code: "coupon_not_found".into(),
                detail: format!("no coupon {coupon_id}"),
            })?;
        done(self.coupons.execute(&batch, command, metadata).await)
    }

    async fn inventory(
        &self,
        sku: &Sku,
        command: InventoryCommand,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        done(
            self.inventory
                .execute(sku.as_str(), command, metadata)
                .await,
        )
    }

    async fn order_command(
        &self,
        order_id: OrderId,
        command: OrderCommand,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        done(
            self.orders
                .execute(&order_id.to_string(), command, metadata)
                .await,
        )
    }

    async fn payment_command(
        &self,
        payment_id: PaymentId,
        command: PaymentCommand,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        done(
            self.payments
                .execute(&payment_id.to_string(), command, metadata)
                .await,
        )
    }

    async fn booking_command(
        &self,
        booking_id: BookingId,
        command: BookingCommand,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        done(
            self.bookings
                .execute(&booking_id.to_string(), command, metadata)
                .await,
        )
    }
}

fn reservation(order_id: OrderId) -> ReservationId {
    ReservationId::from(*order_id.as_uuid())
}

fn seat_reservation(booking_id: BookingId) -> ReservationId {
    ReservationId::from(*booking_id.as_uuid())
}

/// A release refused because nothing was reserved: there is nothing to give back.
fn nothing_to_release(result: Result<(), StepError>) -> Result<(), StepError> {
    match result {
        Err(StepError::Refused { code, .. }) if code == "unknown_reservation" => Ok(()),
        other => other,
    }
}

#[async_trait]
impl PaymentPort for StorePort {
    async fn payment(&self, payment_id: PaymentId) -> Result<PaymentSnapshot, StepError> {
        let (payment, _) = self
            .payments
            .load(&payment_id.to_string())
            .await
            .map_err(step_error)?;
        Ok(PaymentSnapshot {
            status: payment.status(),
            order_id: payment.order_id(),
            amount: payment.amount().cloned(),
            captured: payment.captured().cloned(),
            refunded: payment.total_refunded().cloned(),
            method: payment
                .details()
                .map(|d| d.method.clone())
                .unwrap_or_default(),
            sealed_token: payment
                .details()
                .map(|d| d.sealed_token.clone())
                .unwrap_or_default(),
        })
    }

    async fn void_payment(
        &self,
        payment_id: PaymentId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.payment_command(
            payment_id,
            PaymentCommand::Void {
                reason: reason.to_string(),
            },
            metadata,
        )
        .await
    }

    async fn refund_payment(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        amount: Money,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = PaymentCommand::Refund {
            refund_id,
            amount,
            reason: reason.to_string(),
        };
        self.payment_command(payment_id, command, metadata).await
    }
}

#[async_trait]
impl crate::reconciliation::ReconciliationPort for CommandBus<Payment> {
    async fn payment_record(
        &self,
        payment_id: PaymentId,
    ) -> Result<Option<crate::reconciliation::PaymentRecord>, StepError> {
        let (payment, version) = self
            .load(&payment_id.to_string())
            .await
            .map_err(step_error)?;
        if version == 0 {
            return Ok(None);
        }
        Ok(payment
            .status()
            .zip(payment.amount().cloned())
            .map(|(status, amount)| crate::reconciliation::PaymentRecord {
                status,
                amount,
                captured: payment.captured().cloned(),
                refunds: payment.refunds().clone(),
            }))
    }

    async fn capture_payment(
        &self,
        payment_id: PaymentId,
        provider_ref: &str,
        amount: Money,
        metadata: CommandMetadata,
    ) -> Result<bool, StepError> {
        self.execute(
            &payment_id.to_string(),
            PaymentCommand::Capture {
                provider_ref: provider_ref.to_string(),
                amount,
            },
            metadata,
        )
        .await
        .map(|committed| !committed.events.is_empty())
        .map_err(step_error)
    }
}

#[async_trait]
impl CheckoutPort for StorePort {
    async fn reserve_stock(
        &self,
        sku: &Sku,
        order_id: OrderId,
        quantity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Reserve {
            reservation_id: reservation(order_id),
            quantity,
            booking: None,
        };
        self.inventory(sku, command, metadata).await
    }

    async fn release_stock(
        &self,
        sku: &Sku,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Release {
            reservation_id: reservation(order_id),
        };
        // Nothing reserved for this line is nothing to release.
        nothing_to_release(self.inventory(sku, command, metadata).await)
    }

    async fn commit_stock(
        &self,
        sku: &Sku,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Commit {
            reservation_id: reservation(order_id),
        };
        self.inventory(sku, command, metadata).await
    }

    async fn confirm_order(
        &self,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.order_command(order_id, OrderCommand::Confirm, metadata)
            .await
    }

    async fn reject_order(
        &self,
        order_id: OrderId,
        reason: &str,
        short_skus: Vec<Sku>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = OrderCommand::Reject {
            reason: reason.to_string(),
            short_skus,
        };
        self.order_command(order_id, command, metadata).await
    }

    async fn cancel_order(
        &self,
        order_id: OrderId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.order_command(
            order_id,
            OrderCommand::Cancel {
                reason: reason.to_string(),
            },
            metadata,
        )
        .await
    }

    async fn expire_order(
        &self,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.order_command(order_id, OrderCommand::Expire, metadata)
            .await
    }

    async fn mark_order_paid(
        &self,
        order_id: OrderId,
        payment_id: PaymentId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.order_command(order_id, OrderCommand::MarkPaid { payment_id }, metadata)
            .await
    }

    async fn mark_order_refunded(
        &self,
        order_id: OrderId,
        payment_id: PaymentId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.order_command(
            order_id,
            OrderCommand::MarkRefunded {
                payment_id,
                reason: reason.to_string(),
            },
            metadata,
        )
        .await
    }

    async fn lock_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        customer: UserId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = CouponCommand::Lock {
            coupon_id,
            order_id,
            user_id: customer,
            at: Utc::now(),
        };
        self.coupon_command(coupon_id, command, metadata).await
    }

    async fn redeem_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = CouponCommand::Redeem {
            coupon_id,
            order_id,
        };
        self.coupon_command(coupon_id, command, metadata).await
    }

    async fn release_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = CouponCommand::Release {
            coupon_id,
            order_id,
        };
        self.coupon_command(coupon_id, command, metadata).await
    }

    async fn remove_ordered_from_cart(
        &self,
        cart_id: CartId,
        customer: UserId,
        order_id: OrderId,
        lines: &[(Sku, Quantity)],
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = CartCommand::RemoveOrdered {
            owner: CartOwner::Customer(customer),
            order_id,
            lines: lines
                .iter()
                .map(|(sku, quantity)| MergedLine {
                    sku: sku.clone(),
                    quantity: quantity.get(),
                })
                .collect(),
        };
        done(
            self.carts
                .execute(&cart_id.to_string(), command, metadata)
                .await,
        )
    }

    async fn order(&self, order_id: OrderId) -> Result<OrderSnapshot, StepError> {
        let (order, _) = self
            .orders
            .load(&order_id.to_string())
            .await
            .map_err(step_error)?;
        Ok(OrderSnapshot {
            status: order.status(),
            payment: order.attached_payment(),
            total: order.total().cloned(),
        })
    }
}

#[async_trait]
impl BookingPort for StorePort {
    async fn reserve_seats(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        quantity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Reserve {
            reservation_id: seat_reservation(booking_id),
            quantity,
            booking: None,
        };
        self.inventory(seats, command, metadata).await
    }

    async fn release_seats(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Release {
            reservation_id: seat_reservation(booking_id),
        };
        // A booking rejected before reserving anything has nothing to give back.
        nothing_to_release(self.inventory(seats, command, metadata).await)
    }

    async fn commit_seats(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Commit {
            reservation_id: seat_reservation(booking_id),
        };
        self.inventory(seats, command, metadata).await
    }

    async fn return_seats(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Return {
            reservation_id: seat_reservation(booking_id),
        };
        self.inventory(seats, command, metadata).await
    }

    async fn reserve_seats_for(
        &self,
        seats: &Sku,
        booking_id: BookingId,
        quantity: Quantity,
        hold: SeatHold,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Reserve {
            reservation_id: seat_reservation(booking_id),
            quantity,
            booking: Some(hold),
        };
        self.inventory(seats, command, metadata).await
    }

    async fn record_held_booking(
        &self,
        request: &BookingRequest,
        max_per_booking: u32,
        expires_at: DateTime<Utc>,
        metadata: CommandMetadata,
    ) -> Result<bool, StepError> {
        let command = BookingCommand::RequestHeld {
            booking_id: request.booking_id,
            customer_id: request.customer_id,
            show_id: request.show_id,
            session_id: request.session_id,
            area_id: request.area_id.clone(),
            quantity: request.quantity,
            unit_price: request.unit_price.clone(),
            max_per_booking,
            expires_at,
        };
        self.bookings
            .execute(&request.booking_id.to_string(), command, metadata)
            .await
            .map(|committed| !committed.events.is_empty())
            .map_err(step_error)
    }

    async fn request_booking(
        &self,
        request: &BookingRequest,
        max_per_booking: u32,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = BookingCommand::Request {
            booking_id: request.booking_id,
            customer_id: request.customer_id,
            show_id: request.show_id,
            session_id: request.session_id,
            area_id: request.area_id.clone(),
            quantity: request.quantity,
            unit_price: request.unit_price.clone(),
            max_per_booking,
        };
        self.booking_command(request.booking_id, command, metadata)
            .await
    }

    async fn attach_payment(
        &self,
        booking_id: BookingId,
        payment_id: PaymentId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.booking_command(
            booking_id,
            BookingCommand::AttachPayment { payment_id },
            metadata,
        )
        .await
    }

    async fn session_areas(
        &self,
        show_id: ShowId,
        session_id: SessionId,
    ) -> Result<Option<Vec<SeatArea>>, StepError> {
        let (show, _) = self
            .shows
            .load(&show_id.to_string())
            .await
            .map_err(step_error)?;
        Ok(show
            .session(&session_id)
            .map(|session| session.seat_areas.clone()))
    }

    async fn hold_seats(
        &self,
        booking_id: BookingId,
        expires_at: DateTime<Utc>,
        metadata: CommandMetadata,
    ) -> Result<bool, StepError> {
        self.bookings
            .execute(
                &booking_id.to_string(),
                BookingCommand::HoldSeats { expires_at },
                metadata,
            )
            .await
            .map(|committed| !committed.events.is_empty())
            .map_err(step_error)
    }

    async fn reject_booking(
        &self,
        booking_id: BookingId,
        reason: &str,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = BookingCommand::Reject {
            reason: reason.to_string(),
        };
        self.booking_command(booking_id, command, metadata).await
    }

    async fn mark_booking_paid(
        &self,
        booking_id: BookingId,
        payment_id: PaymentId,
        tickets: Vec<TicketId>,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = BookingCommand::MarkPaid {
            payment_id,
            tickets,
        };
        self.booking_command(booking_id, command, metadata).await
    }

    async fn expire_booking(
        &self,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.booking_command(booking_id, BookingCommand::Expire, metadata)
            .await
    }

    async fn complete_booking(
        &self,
        booking_id: BookingId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.booking_command(booking_id, BookingCommand::Complete, metadata)
            .await
    }

    async fn booking(&self, booking_id: BookingId) -> Result<BookingSnapshot, StepError> {
        let (booking, _) = self
            .bookings
            .load(&booking_id.to_string())
            .await
            .map_err(step_error)?;
        Ok(BookingSnapshot {
            status: booking.status(),
            request: booking.request().cloned(),
            expires_at: booking.expires_at(),
            reason: booking.reason().map(str::to_string),
            payment: booking.attached_payment(),
        })
    }

    async fn session_starts_at(
        &self,
        show_id: ShowId,
        session_id: SessionId,
    ) -> Result<Option<DateTime<Utc>>, StepError> {
        let (show, _) = self
            .shows
            .load(&show_id.to_string())
            .await
            .map_err(step_error)?;
        Ok(show.session(&session_id).map(|session| session.starts_at))
    }
}

#[async_trait]
impl crate::SeatStockPort for StorePort {
    async fn open_seats(
        &self,
        seats: &Sku,
        capacity: Quantity,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Open {
            sku: seats.clone(),
            quantity: capacity,
        };
        self.inventory(seats, command, metadata).await
    }
}

#[cfg(test)]
mod tests {
    use ordo_aggregates::common::{Currency, Money};
    use ordo_aggregates::payment::PaymentStatus;

    use super::PaymentSnapshot;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn snapshot(
        status: PaymentStatus,
        captured: Option<i64>,
        refunded: Option<i64>,
    ) -> PaymentSnapshot {
        PaymentSnapshot {
            status: Some(status),
            order_id: None,
            amount: Some(eur(5000)),
            captured: captured.map(eur),
            refunded: refunded.map(eur),
            method: "card".into(),
            sealed_token: "tok".into(),
        }
    }

    #[test]
    fn refundable_is_what_was_captured_less_what_was_refunded() {
        use PaymentStatus::*;
        assert_eq!(
            snapshot(Captured, Some(5000), None).refundable(),
            Some(eur(5000))
        );
        assert_eq!(
            snapshot(PartiallyRefunded, Some(5000), Some(1500)).refundable(),
            Some(eur(3500))
        );
        assert_eq!(
            snapshot(Refunded, Some(5000), Some(5000)).refundable(),
            None
        );
        assert_eq!(snapshot(Authorized, None, None).refundable(), None);
        assert_eq!(snapshot(Voided, None, None).refundable(), None);
    }
}
