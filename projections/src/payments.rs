//! The `payments` read model: each payment's status, amount and refunds.

use async_trait::async_trait;
use cqrs_es::DomainEvent;
use ordo_aggregates::payment::PaymentEvent;
use ordo_contracts::PaymentMessage;
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;

use crate::worker::Projection;

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
        let PaymentMessage { id, event, facts } = ordo_contracts::payment(event)?;
        let id = *id.as_uuid();
        // Money moved only if the event store says so: a capture or refund that reached the
        // stream without being recorded (published by hand) is refused, and dead-lettered.
        if matches!(
            event,
            PaymentEvent::PaymentCaptured { .. } | PaymentEvent::PaymentRefunded { .. }
        ) {
            let (recorded,): (bool,) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'payment'
                 AND aggregate_id = $1 AND sequence = $2 AND event_type = $3)",
            )
            .bind(id.to_string())
            .bind(facts.sequence)
            .bind(event.event_type())
            .fetch_one(&mut *tx)
            .await?;
            anyhow::ensure!(
                recorded,
                "payment {id} event {} is not in the event store: not applied",
                facts.sequence
            );
        }
        // (status, provider_ref, reason, refunded total)
        let (status, provider_ref, reason, refunded): (
            &str,
            Option<String>,
            Option<String>,
            Option<i64>,
        ) = match event {
            PaymentEvent::PaymentCreated {
                payment_id,
                order_id,
                customer_id,
                amount,
                method,
                ..
            } => {
                sqlx::query(
                        "INSERT INTO payments (payment_id, order_id, customer_id, status, amount_minor, currency, method, version, created_at, updated_at)
                         VALUES ($1, $2, $3, 'created', $4, $5, $6, $7, $8, $8)",
                    )
                    .bind(payment_id.as_uuid())
                    .bind(order_id)
                    .bind(customer_id.as_uuid())
                    .bind(amount.amount_minor())
                    .bind(amount.currency().as_str())
                    .bind(&method)
                    .bind(facts.sequence)
                    .bind(facts.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                return Ok(());
            }
            PaymentEvent::PaymentAuthorized { provider_ref } => {
                ("authorized", Some(provider_ref), None, None)
            }
            PaymentEvent::PaymentCaptured { provider_ref, .. } => {
                ("captured", Some(provider_ref), None, None)
            }
            PaymentEvent::PaymentFailed { reason } => ("failed", None, Some(reason), None),
            PaymentEvent::PaymentVoided { reason } => ("voided", None, Some(reason), None),
            PaymentEvent::PaymentRefunded {
                amount: this_refund,
                total_refunded,
                reason,
                ..
            } => {
                let (amount,): (i64,) =
                    sqlx::query_as("SELECT amount_minor FROM payments WHERE payment_id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                let total = total_refunded
                    .amount_minor()
                    .max(this_refund.amount_minor());
                let status = if total >= amount {
                    "refunded"
                } else {
                    "partially_refunded"
                };
                // A refund recorded before reasons were (version 1) has none: keep the last.
                let reason = Some(reason).filter(|reason| !reason.is_empty());
                (status, None, reason, Some(total))
            }
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
        .bind(facts.sequence)
        .bind(facts.recorded_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
