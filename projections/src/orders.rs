//! The `orders`, `order_lines` and `order_discounts` read models: each customer's orders
//! with their status, the price breakdown they were placed with (each line's discount, the
//! subtotal, the discounts, the shipping fee) and the delivery address snapshot, kept sealed
//! as the event holds it (the order query opens it for its reader).

use async_trait::async_trait;
use ordo_aggregates::order::OrderEvent;
use ordo_aggregates::pricing::DiscountSource;
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
        &["orders", "order_lines", "order_discounts"]
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
                pricing,
                delivery_address,
                ..
            } => {
                // Orders placed before breakdowns were recorded: the lines' sum, no fee.
                let subtotal = pricing
                    .as_ref()
                    .map(|p| p.subtotal.amount_minor())
                    .unwrap_or_else(|| total.amount_minor());
                let shipping_fee = pricing
                    .as_ref()
                    .map(|p| p.shipping_fee.amount_minor())
                    .unwrap_or(0);
                let address = delivery_address
                    .map(|address| serde_json::to_value(*address))
                    .transpose()?;
                sqlx::query(
                    "INSERT INTO orders (order_id, customer_id, status, total_minor, currency, version, placed_at, updated_at,
                                         subtotal_minor, shipping_fee_minor, delivery_address)
                     VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6, $7, $8, $9)",
                )
                .bind(order_id.as_uuid())
                .bind(customer_id.as_uuid())
                .bind(total.amount_minor())
                .bind(total.currency().as_str())
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .bind(subtotal)
                .bind(shipping_fee)
                .bind(address)
                .execute(&mut *tx)
                .await?;
                for (line_no, line) in lines.iter().enumerate() {
                    let discount = pricing
                        .as_ref()
                        .and_then(|p| p.line_discounts.iter().find(|d| d.sku == line.sku))
                        .map(|d| d.discount.amount_minor())
                        .unwrap_or(0);
                    sqlx::query(
                        "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price_minor, currency, discount_minor)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(order_id.as_uuid())
                    .bind(line_no as i32)
                    .bind(line.sku.as_str())
                    .bind(i32::try_from(line.quantity.get())?)
                    .bind(line.unit_price.amount_minor())
                    .bind(line.unit_price.currency().as_str())
                    .bind(discount)
                    .execute(&mut *tx)
                    .await?;
                }
                let discounts = pricing.map(|p| p.discounts).unwrap_or_default();
                for (position, discount) in discounts.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO order_discounts (order_id, position, source, discount_id, amount_minor)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(order_id.as_uuid())
                    .bind(i32::try_from(position)?)
                    .bind(match discount.source {
                        DiscountSource::Promotion => "promotion",
                        DiscountSource::Coupon => "coupon",
                    })
                    .bind(discount.id)
                    .bind(discount.amount.amount_minor())
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
            // The after-sales read model shows the requests; the order only moves on.
            OrderEvent::AfterSaleUnitsClaimed { .. }
            | OrderEvent::AfterSaleUnitsReleased { .. } => {
                sqlx::query("UPDATE orders SET version = $2, updated_at = $3 WHERE order_id = $1")
                    .bind(order_id)
                    .bind(facts.sequence)
                    .bind(facts.recorded_at)
                    .execute(&mut *tx)
                    .await?;
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
