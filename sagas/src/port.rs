//! The command port of the checkout saga: the aggregate operations it needs, as a trait so
//! the saga's logic can be exercised without a database, and their implementation on the
//! command buses.

use std::sync::Arc;

use async_trait::async_trait;
use ordo_aggregates::common::{OrderId, Quantity, ReservationId, Sku};
use ordo_aggregates::inventory::{InventoryCommand, InventoryItem};
use ordo_aggregates::order::{Order, OrderCommand};
use ordo_store::{CommandBus, CommandError, CommandMetadata};

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

/// The commands the checkout saga issues.
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
    /// Confirms the order: all its stock is reserved.
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
}

/// [`CheckoutPort`] on the event store's command buses.
pub struct StorePort {
    /// Inventory items, one per SKU.
    pub inventory: Arc<CommandBus<InventoryItem>>,
    /// Orders.
    pub orders: Arc<CommandBus<Order>>,
}

fn step_error<E>(err: CommandError<E>) -> StepError
where
    E: std::error::Error + CodedError,
{
    match err {
        CommandError::Rejected(err) => StepError::Refused {
            code: err.error_code().to_string(),
            detail: err.to_string(),
        },
        other => StepError::Failed(anyhow::anyhow!(other.to_string())),
    }
}

/// Aggregate errors with a stable code.
pub trait CodedError {
    /// The stable snake_case code.
    fn error_code(&self) -> &'static str;
}

impl CodedError for ordo_aggregates::inventory::InventoryError {
    fn error_code(&self) -> &'static str {
        self.code()
    }
}

impl CodedError for ordo_aggregates::order::OrderError {
    fn error_code(&self) -> &'static str {
        self.code()
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
            reservation_id: ReservationId::from(*order_id.as_uuid()),
            quantity,
        };
        self.inventory
            .execute(sku.as_str(), command, metadata)
            .await
            .map(|_| ())
            .map_err(step_error)
    }

    async fn release_stock(
        &self,
        sku: &Sku,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        let command = InventoryCommand::Release {
            reservation_id: ReservationId::from(*order_id.as_uuid()),
        };
        match self
            .inventory
            .execute(sku.as_str(), command, metadata)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match step_error(err) {
                // Nothing was reserved for this line: there is nothing to release.
                StepError::Refused { code, .. } if code == "unknown_reservation" => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn confirm_order(
        &self,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.orders
            .execute(&order_id.to_string(), OrderCommand::Confirm, metadata)
            .await
            .map(|_| ())
            .map_err(step_error)
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
        self.orders
            .execute(&order_id.to_string(), command, metadata)
            .await
            .map(|_| ())
            .map_err(step_error)
    }
}
