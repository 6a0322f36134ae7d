//! The `aftersales` read model: each after-sales request with its lines and what they
//! refund, the admin's decision, the return parcel, the refund and the replacement.

use async_trait::async_trait;
use ordo_aggregates::aftersale::AfterSaleEvent;
use ordo_contracts::AfterSaleMessage;
use ordo_nats::envelope::ReceivedEvent;
use serde_json::json;
use sqlx::PgConnection;

use crate::worker::Projection;

/// Builds `aftersales` from the after-sales stream.
pub struct AfterSalesProjection;

#[async_trait]
impl Projection for AfterSalesProjection {
    fn name(&self) -> &'static str {
        "projection-aftersales"
    }

    fn aggregate_type(&self) -> &'static str {
        "aftersale"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["aftersales"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let AfterSaleMessage { id, event, facts } = ordo_contracts::aftersale(event)?;
        let aftersale_id = *id.as_uuid();
        if let AfterSaleEvent::AfterSaleRequested {
            order_id,
            customer_id,
            payment_id,
            kind,
            lines,
            refund_amount,
            reason,
            evidence,
            ..
        } = &event
        {
            let lines: Vec<_> = lines
                .iter()
                .map(|line| {
                    json!({
                        "sku": line.sku.as_str(),
                        "quantity": line.quantity.get(),
                        "refund": line.refund.amount_minor(),
                    })
                })
                .collect();
            let evidence: Vec<&str> = evidence.iter().map(|url| url.as_str()).collect();
            sqlx::query(
                "INSERT INTO aftersales (aftersale_id, order_id, customer_id, payment_id, kind, status,
                                         lines, refund_minor, currency, reason, evidence, version,
                                         created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7, $8, $9, $10, $11, $12, $12)",
            )
            .bind(aftersale_id)
            .bind(order_id.as_uuid())
            .bind(customer_id.as_uuid())
            .bind(payment_id.as_uuid())
            .bind(kind.as_str())
            .bind(json!(lines))
            .bind(refund_amount.amount_minor())
            .bind(refund_amount.currency().as_str())
            .bind(reason.as_str())
            .bind(json!(evidence))
            .bind(facts.sequence)
            .bind(facts.recorded_at)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        // Every later event sets the status, and some a column of their own.
        let (status, column, value): (Option<&str>, Option<&str>, Option<String>) = match &event {
            AfterSaleEvent::AfterSaleRequested { .. } => unreachable!("handled above"),
            AfterSaleEvent::AfterSaleWithdrawn {} => (Some("withdrawn"), None, None),
            AfterSaleEvent::AfterSaleApproved { kind } => (
                Some(if kind.needs_return() {
                    "awaiting_return"
                } else {
                    "approved"
                }),
                None,
                None,
            ),
            AfterSaleEvent::AfterSaleRejected { reason } => (
                Some("rejected"),
                Some("rejection_reason"),
                Some(reason.as_str().to_string()),
            ),
            AfterSaleEvent::ReturnShipped {
                carrier,
                tracking_no,
            } => {
                sqlx::query(
                    "UPDATE aftersales SET return_carrier = $2, return_tracking_no = $3
                     WHERE aftersale_id = $1",
                )
                .bind(aftersale_id)
                .bind(carrier.as_str())
                .bind(tracking_no.as_str())
                .execute(&mut *tx)
                .await?;
                (None, None, None)
            }
            AfterSaleEvent::ReturnReceived {} => (Some("received"), None, None),
            AfterSaleEvent::AfterSaleRefunded { refund_id, .. } => (
                Some("refunded"),
                Some("refund_id"),
                Some(refund_id.to_string()),
            ),
            AfterSaleEvent::AfterSaleRefundFailed { code, detail } => (
                Some("refund_failed"),
                Some("refund_error"),
                Some(format!("{code}: {detail}")),
            ),
            AfterSaleEvent::ReplacementArranged { shipment_id } => (
                Some("replacing"),
                Some("replacement_shipment_id"),
                Some(shipment_id.to_string()),
            ),
            AfterSaleEvent::AfterSaleClosed {} => (Some("closed"), None, None),
        };
        sqlx::query(
            "UPDATE aftersales SET status = coalesce($2, status), version = $3, updated_at = $4
             WHERE aftersale_id = $1",
        )
        .bind(aftersale_id)
        .bind(status)
        .bind(facts.sequence)
        .bind(facts.recorded_at)
        .execute(&mut *tx)
        .await?;
        let set = match column {
            Some("refund_id") => {
                "UPDATE aftersales SET refund_id = $2::uuid WHERE aftersale_id = $1"
            }
            Some("replacement_shipment_id") => {
                "UPDATE aftersales SET replacement_shipment_id = $2::uuid WHERE aftersale_id = $1"
            }
            Some("rejection_reason") => {
                "UPDATE aftersales SET rejection_reason = $2 WHERE aftersale_id = $1"
            }
            Some("refund_error") => {
                "UPDATE aftersales SET refund_error = $2 WHERE aftersale_id = $1"
            }
            _ => return Ok(()),
        };
        sqlx::query(set)
            .bind(aftersale_id)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}
