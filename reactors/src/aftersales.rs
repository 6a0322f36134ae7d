//! The after-sales notifications: inbox entries (announced to the SSE streams like every
//! other entry) telling a customer of each decision and step of their request: approved
//! or rejected, the goods received, the refund made (or refused by the payment), the
//! replacement on its way.
//!
//! One entry per event, with an id derived from it, so a redelivery adds nothing. The
//! customer of a request is kept from its first event in `notification_recipients`.

use async_trait::async_trait;
use ordo_aggregates::aftersale::AfterSaleEvent;
use ordo_contracts::ContractError;
use ordo_nats::applied::{claim, Claim};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::notifications::{format_money, notification_id};

/// The durable consumer of the after-sales stream.
pub const AFTERSALE_NOTIFICATIONS: &str = "notifications-aftersales";

/// Writes the after-sales inbox entries.
pub struct AfterSaleNotifications {
    pool: PgPool,
}

impl AfterSaleNotifications {
    /// A handler writing to `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let decoded = ordo_contracts::aftersale(event)?;
        let aftersale_id = *decoded.id.as_uuid();
        let short = &event.aggregate_id[..8.min(event.aggregate_id.len())];
        if let AfterSaleEvent::AfterSaleRequested {
            order_id,
            customer_id,
            kind,
            ..
        } = &decoded.event
        {
            sqlx::query(
                "INSERT INTO notification_recipients (aggregate_type, aggregate_id, user_id, data)
                 VALUES ('aftersale', $1, $2, $3) ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING",
            )
            .bind(&event.aggregate_id)
            .bind(customer_id.as_uuid())
            .bind(json!({"order_id": order_id, "kind": kind.as_str()}))
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        let found: Option<(Uuid, serde_json::Value)> = sqlx::query_as(
            "SELECT user_id, data FROM notification_recipients
             WHERE aggregate_type = 'aftersale' AND aggregate_id = $1",
        )
        .bind(&event.aggregate_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((customer, data)) = found else {
            return Ok(());
        };
        let (kind, title, body): (&str, &str, String) = match &decoded.event {
            AfterSaleEvent::AfterSaleApproved { kind } if kind.needs_return() => (
                "aftersale_approved",
                "After-sales request approved",
                format!(
                    "Your request {short} was approved: please send the goods back and tell us the parcel's tracking number."
                ),
            ),
            AfterSaleEvent::AfterSaleApproved { .. } => (
                "aftersale_approved",
                "After-sales request approved",
                format!("Your request {short} was approved: your refund is on its way."),
            ),
            AfterSaleEvent::AfterSaleRejected { reason } => (
                "aftersale_rejected",
                "After-sales request rejected",
                format!("Your request {short} was rejected: {}", reason.as_str()),
            ),
            AfterSaleEvent::ReturnReceived {} => (
                "aftersale_received",
                "Returned goods received",
                format!("We received the goods of your request {short}."),
            ),
            AfterSaleEvent::AfterSaleRefunded { amount, .. } => (
                "aftersale_refunded",
                "Refund made",
                format!(
                    "{} of your request {short} went back to your original payment.",
                    format_money(amount.amount_minor(), amount.currency().as_str())
                ),
            ),
            AfterSaleEvent::AfterSaleRefundFailed { .. } => (
                "aftersale_refund_failed",
                "Refund on hold",
                format!("The refund of your request {short} could not be made; our team will contact you."),
            ),
            AfterSaleEvent::ReplacementArranged { .. } => (
                "aftersale_replacement",
                "Replacement on its way",
                format!("The replacement of your request {short} is being prepared for shipping."),
            ),
            _ => return Ok(()),
        };
        let mut payload = data;
        payload["aftersale_id"] = json!(aftersale_id);
        sqlx::query(
            "INSERT INTO notifications (notification_id, user_id, kind, title, body, data, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (notification_id) DO NOTHING",
        )
        .bind(notification_id(event.event_id))
        .bind(customer)
        .bind(kind)
        .bind(title)
        .bind(&body)
        .bind(payload)
        .bind(event.recorded_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl EventHandler for AfterSaleNotifications {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await?;
        match claim(&mut tx, AFTERSALE_NOTIFICATIONS, event).await? {
            Claim::Apply => {
                self.apply(&mut tx, event).await.map_err(|err| {
                    match err.downcast::<ContractError>() {
                        Ok(contract) => contract.into(),
                        Err(err) => HandlerError::Retry(err),
                    }
                })?;
                tx.commit().await?;
            }
            Claim::AlreadyApplied => tx.rollback().await?,
            Claim::Gap { expected } => {
                return Err(HandlerError::gap(event, expected));
            }
        }
        Ok(())
    }
}
