//! The `orders` and `order_lines` read models: each customer's orders with their status.

use async_trait::async_trait;
use ordo_nats::envelope::ReceivedEvent;
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::products::MoneyPayload;
use crate::worker::Projection;

#[derive(Deserialize)]
struct OrderPlaced {
    order_id: Uuid,
    customer_id: Uuid,
    lines: Vec<Line>,
    total: MoneyPayload,
}

#[derive(Deserialize)]
struct Line {
    sku: String,
    quantity: i32,
    unit_price: MoneyPayload,
}

#[derive(Deserialize)]
struct OrderRejected {
    reason: String,
    #[serde(default)]
    short_skus: Vec<String>,
}

#[derive(Deserialize)]
struct WithReason {
    reason: String,
}

#[derive(Deserialize)]
struct WithPayment {
    payment_id: Uuid,
}

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
        let payload = event.payload.clone();
        match event.event_type.as_str() {
            "OrderPlaced" => {
                let placed: OrderPlaced = serde_json::from_value(payload)?;
                sqlx::query(
                    "INSERT INTO orders (order_id, customer_id, status, total_minor, currency, version, placed_at, updated_at)
                     VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6)",
                )
                .bind(placed.order_id)
                .bind(placed.customer_id)
                .bind(placed.total.amount_minor)
                .bind(&placed.total.currency)
                .bind(event.sequence)
                .bind(event.recorded_at)
                .execute(&mut *tx)
                .await?;
                for (line_no, line) in placed.lines.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price_minor, currency)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(placed.order_id)
                    .bind(line_no as i32)
                    .bind(&line.sku)
                    .bind(line.quantity)
                    .bind(line.unit_price.amount_minor)
                    .bind(&line.unit_price.currency)
                    .execute(&mut *tx)
                    .await?;
                }
                return Ok(());
            }
            "OrderConfirmed" => self.set_status(tx, event, "awaiting_payment", None).await?,
            "OrderRejected" => {
                let rejected: OrderRejected = serde_json::from_value(payload)?;
                sqlx::query(
                    "UPDATE orders SET status = 'rejected', reason = $2, short_skus = $3, version = $4, updated_at = $5
                     WHERE order_id = $1",
                )
                .bind(order_id(event)?)
                .bind(rejected.reason)
                .bind(rejected.short_skus)
                .bind(event.sequence)
                .bind(event.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            "PaymentAttached" => {
                let attached: WithPayment = serde_json::from_value(payload)?;
                sqlx::query(
                    "UPDATE orders SET payment_id = $2, version = $3, updated_at = $4 WHERE order_id = $1",
                )
                .bind(order_id(event)?)
                .bind(attached.payment_id)
                .bind(event.sequence)
                .bind(event.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            "OrderPaid" => self.set_status(tx, event, "paid", None).await?,
            "OrderCancelled" => {
                let reason: WithReason = serde_json::from_value(payload)?;
                self.set_status(tx, event, "cancelled", Some(reason.reason))
                    .await?
            }
            "OrderExpired" => {
                self.set_status(tx, event, "expired", Some("payment_timeout".into()))
                    .await?
            }
            "OrderRefunded" => {
                let reason: WithReason = serde_json::from_value(payload)?;
                self.set_status(tx, event, "refunded", Some(reason.reason))
                    .await?
            }
            _ => {}
        }
        Ok(())
    }
}

impl OrdersProjection {
    async fn set_status(
        &self,
        tx: &mut PgConnection,
        event: &ReceivedEvent,
        status: &str,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE orders SET status = $2, reason = coalesce($3, reason), version = $4, updated_at = $5
             WHERE order_id = $1",
        )
        .bind(order_id(event)?)
        .bind(status)
        .bind(reason)
        .bind(event.sequence)
        .bind(event.recorded_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

fn order_id(event: &ReceivedEvent) -> anyhow::Result<Uuid> {
    Ok(event.aggregate_id.parse()?)
}
