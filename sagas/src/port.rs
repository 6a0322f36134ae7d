//! The command port of the checkout saga: the aggregate operations it needs, as a trait so
//! the saga's logic can be exercised without a database, and their implementation on the
//! command buses.

use std::sync::Arc;

use async_trait::async_trait;
use ordo_aggregates::common::{
    DomainError, Money, OrderId, PaymentId, Quantity, RefundId, ReservationId, Sku,
};
use ordo_aggregates::inventory::{InventoryCommand, InventoryItem};
use ordo_aggregates::order::{Order, OrderCommand, OrderStatus};
use ordo_aggregates::payment::{Payment, PaymentCommand, PaymentStatus};
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
    /// The method and token the customer gave.
    pub method: String,
    /// The customer's payment token.
    pub token: String,
}

/// The commands the checkout saga issues. Each is idempotent on its aggregate.
#[async_trait]
pub trait CheckoutPort: Send + Sync + 'static {
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
    /// The order's current state on the write side.
    async fn order(&self, order_id: OrderId) -> Result<OrderSnapshot, StepError>;
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

/// [`CheckoutPort`] on the event store's command buses.
pub struct StorePort {
    /// Inventory items, one per SKU.
    pub inventory: Arc<CommandBus<InventoryItem>>,
    /// Orders.
    pub orders: Arc<CommandBus<Order>>,
    /// Payments.
    pub payments: Arc<CommandBus<Payment>>,
}

fn step_error<E: DomainError>(err: CommandError<E>) -> StepError {
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
}

fn reservation(order_id: OrderId) -> ReservationId {
    ReservationId::from(*order_id.as_uuid())
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
        match self.inventory(sku, command, metadata).await {
            // Nothing was reserved for this line: there is nothing to release.
            Err(StepError::Refused { code, .. }) if code == "unknown_reservation" => Ok(()),
            other => other,
        }
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

    async fn order(&self, order_id: OrderId) -> Result<OrderSnapshot, StepError> {
        let (order, _) = self
            .orders
            .load(&order_id.to_string())
            .await
            .map_err(step_error)?;
        Ok(OrderSnapshot {
            status: order.status(),
            payment: order.attached_payment(),
        })
    }

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
            method: payment
                .details()
                .map(|d| d.method.clone())
                .unwrap_or_default(),
            token: payment
                .details()
                .map(|d| d.token.clone())
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
