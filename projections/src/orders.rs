//! The `orders` and `order_lines` read models: each customer's orders with their status.

use async_trait::async_trait;
use ordo_aggregates::order::OrderEvent;
use ordo_contracts::{EventFacts, OrderMessage};
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::worker::Projection;

/// Builds `orders` and `order_lines` from the order stream.
pub struct OrdersProjection;

#[async_trait]
impl Projection for OrdersProjection {
    fn name(&self) -> &'static str {
        "projection-orders"
    }

    fn aggregate_type(&self) -> &'static str {
        "order"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["orders", "order_lines"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let OrderMessage { id, event, facts } = ordo_contracts::order(event)?;
        let order_id = *id.as_uuid();
        match event {
            OrderEvent::OrderPlaced {
                order_id,
                customer_id,
                lines,
                total,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO orders (order_id, customer_id, status, total_minor, currency, version, placed_at, updated_at)
                     VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6)",
                )
                .bind(order_id.as_uuid())
                .bind(customer_id.as_uuid())
                .bind(total.amount_minor())
                .bind(total.currency().as_str())
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
                for (line_no, line) in lines.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price_minor, currency)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(order_id.as_uuid())
                    .bind(line_no as i32)
                    .bind(line.sku.as_str())
                    .bind(i32::try_from(line.quantity.get())?)
                    .bind(line.unit_price.amount_minor())
                    .bind(line.unit_price.currency().as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            OrderEvent::OrderConfirmed {} => {
                set_status(tx, order_id, &facts, "awaiting_payment", None).await?
            }
            OrderEvent::OrderRejected { reason, short_skus } => {
                let short_skus: Vec<String> = short_skus.into_iter().map(String::from).collect();
                sqlx::query(
                    "UPDATE orders SET status = 'rejected', reason = $2, short_skus = $3, version = $4, updated_at = $5
                     WHERE order_id = $1",
                )
                .bind(order_id)
                .bind(reason)
                .bind(short_skus)
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            OrderEvent::PaymentAttached { payment_id } => {
                sqlx::query(
                    "UPDATE orders SET payment_id = $2, version = $3, updated_at = $4 WHERE order_id = $1",
                )
                .bind(order_id)
                .bind(payment_id.as_uuid())
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            OrderEvent::OrderPaid { .. } => set_status(tx, order_id, &facts, "paid", None).await?,
            OrderEvent::OrderCancelled { reason } => {
                set_status(tx, order_id, &facts, "cancelled", Some(reason)).await?
            }
            OrderEvent::OrderExpired {} => {
                set_status(
                    tx,
                    order_id,
                    &facts,
                    "expired",
                    Some("payment_timeout".into()),
                )
                .await?
            }
            OrderEvent::OrderRefunded { reason, .. } => {
                set_status(tx, order_id, &facts, "refunded", Some(reason)).await?
            }
            OrderEvent::OrderShipped { .. } => {
                set_status(tx, order_id, &facts, "shipped", None).await?
            }
            OrderEvent::OrderDelivered { .. } => {
                set_status(tx, order_id, &facts, "delivered", None).await?
            }
            OrderEvent::OrderCompleted { .. } => {
                set_status(tx, order_id, &facts, "completed", None).await?
            }
        }
        Ok(())
    }
}

async fn set_status(
    tx: &mut PgConnection,
    order_id: Uuid,
    facts: &EventFacts,
    status: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE orders SET status = $2, reason = coalesce($3, reason), version = $4, updated_at = $5
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(status)
    .bind(reason)
    .bind(facts.sequence)
    .bind(facts.recorded_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
