//! The `payments` read model: each payment's status, amount and refunds.

use async_trait::async_trait;
use ordo_nats::envelope::ReceivedEvent;
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::products::MoneyPayload;
use crate::worker::Projection;

#[derive(Deserialize)]
struct Created {
    payment_id: Uuid,
    order_id: Uuid,
    customer_id: Uuid,
    amount: MoneyPayload,
    method: String,
}

#[derive(Deserialize)]
struct ProviderRef {
    provider_ref: String,
}

#[derive(Deserialize)]
struct WithReason {
    reason: String,
}

#[derive(Deserialize)]
struct Refunded {
    total_refunded: MoneyPayload,
    amount: MoneyPayload,
}

/// Builds `payments` from the payment stream.
pub struct PaymentsProjection;

#[async_trait]
impl Projection for PaymentsProjection {
    fn name(&self) -> &'static str {
        "projection-payments"
    }

    fn aggregate_type(&self) -> &'static str {
        "payment"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["payments"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let payload = event.payload.clone();
        let id: Uuid = event.aggregate_id.parse()?;
        // (status, provider_ref, reason, refunded total)
        let (status, provider_ref, reason, refunded): (
            &str,
            Option<String>,
            Option<String>,
            Option<i64>,
        ) = match event.event_type.as_str() {
            "PaymentCreated" => {
                let created: Created = serde_json::from_value(payload)?;
                sqlx::query(
                        "INSERT INTO payments (payment_id, order_id, customer_id, status, amount_minor, currency, method, version, created_at, updated_at)
                         VALUES ($1, $2, $3, 'created', $4, $5, $6, $7, $8, $8)",
                    )
                    .bind(created.payment_id)
                    .bind(created.order_id)
                    .bind(created.customer_id)
                    .bind(created.amount.amount_minor)
                    .bind(&created.amount.currency)
                    .bind(&created.method)
                    .bind(event.sequence)
                    .bind(event.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                return Ok(());
            }
            "PaymentAuthorized" => {
                let r: ProviderRef = serde_json::from_value(payload)?;
                ("authorized", Some(r.provider_ref), None, None)
            }
            "PaymentCaptured" => {
                let r: ProviderRef = serde_json::from_value(payload)?;
                ("captured", Some(r.provider_ref), None, None)
            }
            "PaymentFailed" => {
                let r: WithReason = serde_json::from_value(payload)?;
                ("failed", None, Some(r.reason), None)
            }
            "PaymentVoided" => {
                let r: WithReason = serde_json::from_value(payload)?;
                ("voided", None, Some(r.reason), None)
            }
            "PaymentRefunded" => {
                let refunded: Refunded = serde_json::from_value(payload.clone())?;
                let reason = payload
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .map(str::to_string);
                let (amount,): (i64,) =
                    sqlx::query_as("SELECT amount_minor FROM payments WHERE payment_id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                let total = refunded
                    .total_refunded
                    .amount_minor
                    .max(refunded.amount.amount_minor);
                let status = if total >= amount {
                    "refunded"
                } else {
                    "partially_refunded"
                };
                (status, None, reason, Some(total))
            }
            _ => return Ok(()),
        };
        sqlx::query(
            "UPDATE payments SET status = $2, provider_ref = coalesce($3, provider_ref), reason = coalesce($4, reason),
                refunded_minor = coalesce($5, refunded_minor), version = $6, updated_at = $7
             WHERE payment_id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(provider_ref)
        .bind(reason)
        .bind(refunded)
        .bind(event.sequence)
        .bind(event.recorded_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
