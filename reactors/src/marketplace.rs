//! The marketplace's notifications: inbox entries (announced to the SSE streams like every
//! other entry) for each step of a service order, to the right party:
//!
//! - approved (the order is open): every verified provider whose skills and areas match;
//! - accepted: the customer and the provider;
//! - paid (money in escrow): both;
//! - payout released: the provider;
//! - reviewed: the provider (once published, when held for a sensitive word); held,
//!   published or rejected in moderation: the customer.
//!
//! One entry per event and recipient, with an id derived from both, so a redelivery adds
//! nothing. What later entries need of the order (its customer, title, type and area, the
//! accepting provider) is kept from its first events in `notification_recipients`.

use async_trait::async_trait;
use ordo_aggregates::service_order::ServiceOrderEvent;
use ordo_contracts::ContractError;
use ordo_nats::applied::{claim, Claim};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::notifications::{format_money, notification_id};

/// The durable consumer of the service order stream.
pub const SERVICE_ORDER_NOTIFICATIONS: &str = "notifications-service-orders";

/// The id of the entry `event` adds to `user_id`'s inbox.
pub fn entry_id(event_id: Uuid, user_id: Uuid) -> Uuid {
    Uuid::new_v5(&notification_id(event_id), user_id.as_bytes())
}

/// Writes the marketplace's inbox entries.
pub struct ServiceOrderNotifications {
    pool: PgPool,
}

impl ServiceOrderNotifications {
    /// A handler writing to `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let decoded = ordo_contracts::service_order(event)?;
        let order_id = *decoded.id.as_uuid();
        let short = &event.aggregate_id[..8.min(event.aggregate_id.len())];
        if let ServiceOrderEvent::ServiceOrderPublished { request } = &decoded.event {
            let data = json!({
                "order_id": order_id,
                "title": request.title.as_str(),
                "service_type": request.service_type.as_str(),
                "location": request.location.as_str(),
                "price": format_money(request.price.amount_minor(), request.price.currency().as_str()),
            });
            sqlx::query(
                "INSERT INTO notification_recipients (aggregate_type, aggregate_id, user_id, data)
                 VALUES ('service_order', $1, $2, $3) ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING",
            )
            .bind(&event.aggregate_id)
            .bind(request.customer_id.as_uuid())
            .bind(&data)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        let found: Option<(Uuid, Value)> = sqlx::query_as(
            "SELECT user_id, data FROM notification_recipients
             WHERE aggregate_type = 'service_order' AND aggregate_id = $1",
        )
        .bind(&event.aggregate_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((customer, mut data)) = found else {
            return Ok(());
        };
        let text = |key: &str| data[key].as_str().unwrap_or("").to_owned();
        let title = text("title");
        let provider = data["provider_id"]
            .as_str()
            .and_then(|p| p.parse::<Uuid>().ok());
        // (recipients, kind, title, body)
        let entries: Vec<(Vec<Uuid>, &str, String, String)> = match &decoded.event {
            ServiceOrderEvent::ServiceOrderApproved {} => {
                let providers: Vec<Uuid> = sqlx::query_scalar(
                    "SELECT provider_id FROM provider_directory
                     WHERE status = 'verified' AND $1 = ANY(skills) AND $2 = ANY(service_areas)",
                )
                .bind(text("service_type"))
                .bind(text("location"))
                .fetch_all(&mut *tx)
                .await?;
                vec![(
                    providers,
                    "service_order_available",
                    "New service order".into(),
                    format!(
                        "A {} order in {} is open: \"{title}\" for {}. The first provider to accept it takes it.",
                        text("service_type"),
                        text("location"),
                        text("price")
                    ),
                )]
            }
            ServiceOrderEvent::ServiceOrderAccepted { provider_id } => {
                let provider_id = *provider_id.as_uuid();
                data["provider_id"] = json!(provider_id);
                sqlx::query(
                    "UPDATE notification_recipients SET data = $2
                     WHERE aggregate_type = 'service_order' AND aggregate_id = $1",
                )
                .bind(&event.aggregate_id)
                .bind(&data)
                .execute(&mut *tx)
                .await?;
                vec![
                    (
                        vec![customer],
                        "service_order_accepted",
                        "Service order accepted".into(),
                        format!("A provider accepted your order {short} (\"{title}\"). Please pay to confirm it."),
                    ),
                    (
                        vec![provider_id],
                        "service_order_won",
                        "You took the order".into(),
                        format!("You accepted order {short} (\"{title}\"); please arrive on time once it is paid."),
                    ),
                ]
            }
            ServiceOrderEvent::ServiceOrderPaid { amount, .. } => {
                let amount = format_money(amount.amount_minor(), amount.currency().as_str());
                vec![
                    (
                        vec![customer],
                        "service_order_paid",
                        "Payment received".into(),
                        format!("Your payment of {amount} for order {short} is held until you confirm the work."),
                    ),
                    (
                        provider.into_iter().collect(),
                        "service_order_escrowed",
                        "Payment held in escrow".into(),
                        format!("The customer paid {amount} for order {short}; it is released to you once the work is confirmed."),
                    ),
                ]
            }
            ServiceOrderEvent::PayoutReleased { payout } => vec![(
                vec![*payout.provider_id.as_uuid()],
                "service_order_paid_out",
                "Payout released".into(),
                format!(
                    "{} for order {short} was released to you.",
                    format_money(
                        payout.amount.amount_minor(),
                        payout.amount.currency().as_str()
                    )
                ),
            )],
            ServiceOrderEvent::ServiceOrderReviewed {
                provider_id,
                review,
            } => vec![(
                vec![*provider_id.as_uuid()],
                "service_order_reviewed",
                "New review".into(),
                format!(
                    "The customer of order {short} rated your work {} out of 5.",
                    review.rating.get()
                ),
            )],
            ServiceOrderEvent::ServiceOrderReviewHeld { .. } => vec![(
                vec![customer],
                "review_pending_moderation",
                "Review awaiting moderation".into(),
                format!("Your review of order {short} (\"{title}\") is checked by an admin before the provider's rating counts it."),
            )],
            ServiceOrderEvent::ServiceOrderReviewPublished {} => vec![
                (
                    vec![customer],
                    "review_published",
                    "Review published".into(),
                    format!("Your review of order {short} (\"{title}\") was published."),
                ),
                (
                    provider.into_iter().collect(),
                    "service_order_reviewed",
                    "New review".into(),
                    format!("A review of your work on order {short} was published."),
                ),
            ],
            ServiceOrderEvent::ServiceOrderReviewRejected { reason } => vec![(
                vec![customer],
                "review_rejected",
                "Review rejected".into(),
                format!("Your review of order {short} (\"{title}\") was rejected: {reason}"),
            )],
            _ => Vec::new(),
        };
        for (recipients, kind, entry_title, body) in entries {
            for user_id in recipients {
                sqlx::query(
                    "INSERT INTO notifications (notification_id, user_id, kind, title, body, data, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (notification_id) DO NOTHING",
                )
                .bind(entry_id(event.event_id, user_id))
                .bind(user_id)
                .bind(kind)
                .bind(&entry_title)
                .bind(&body)
                .bind(json!({"order_id": order_id, "title": title}))
                .bind(event.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventHandler for ServiceOrderNotifications {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await?;
        match claim(&mut tx, SERVICE_ORDER_NOTIFICATIONS, event).await? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_differ_per_recipient_and_repeat_per_event() {
        let event = Uuid::new_v4();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(entry_id(event, a), entry_id(event, a));
        assert_ne!(entry_id(event, a), entry_id(event, b));
    }
}
