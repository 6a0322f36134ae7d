//! The review moderation notifications: inbox entries telling a review's author that it
//! waits for moderation, was published or rejected, or was hidden after reports.
//!
//! One entry per event, with an id derived from it, so a redelivery adds nothing. The
//! author of a review is kept from its first event in `notification_recipients`.

use async_trait::async_trait;
use ordo_aggregates::review::{ReviewEvent, ReviewStatus};
use ordo_contracts::ContractError;
use ordo_nats::applied::{claim, Claim};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::notifications::notification_id;

/// The durable consumer of the review stream.
pub const REVIEW_NOTIFICATIONS: &str = "notifications-reviews";

/// Writes the review moderation inbox entries.
pub struct ReviewNotifications {
    pool: PgPool,
}

impl ReviewNotifications {
    /// A handler writing to `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let decoded = ordo_contracts::review(event)?;
        let review_id = *decoded.id.as_uuid();
        let author = if let ReviewEvent::ReviewSubmitted { author_id, sku, .. } = &decoded.event {
            sqlx::query(
                "INSERT INTO notification_recipients (aggregate_type, aggregate_id, user_id, data)
                 VALUES ('review', $1, $2, $3) ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING",
            )
            .bind(&event.aggregate_id)
            .bind(author_id.as_uuid())
            .bind(json!({"sku": sku.as_str()}))
            .execute(&mut *tx)
            .await?;
            Some(*author_id.as_uuid())
        } else {
            let found: Option<(Uuid,)> = sqlx::query_as(
                "SELECT user_id FROM notification_recipients
                 WHERE aggregate_type = 'review' AND aggregate_id = $1",
            )
            .bind(&event.aggregate_id)
            .fetch_optional(&mut *tx)
            .await?;
            found.map(|(user,)| user)
        };
        let Some(author) = author else {
            return Ok(());
        };
        let held = |status: &ReviewStatus| *status == ReviewStatus::PendingModeration;
        let (kind, title, body): (&str, &str, String) = match &decoded.event {
            ReviewEvent::ReviewSubmitted { status, .. }
            | ReviewEvent::ReviewFollowedUp { status, .. }
                if held(status) =>
            {
                (
                    "review_pending_moderation",
                    "Review awaiting moderation",
                    "Your review will appear once our team has checked it.".into(),
                )
            }
            ReviewEvent::ReviewPublished {} => (
                "review_published",
                "Review published",
                "Your review is now shown with the product.".into(),
            ),
            ReviewEvent::ReviewRejected { reason } => (
                "review_rejected",
                "Review rejected",
                format!("Your review was not published: {}", reason.as_str()),
            ),
            ReviewEvent::ReviewHidden {} => (
                "review_hidden",
                "Review hidden",
                "Your review was reported and is hidden until our team has checked it.".into(),
            ),
            _ => return Ok(()),
        };
        sqlx::query(
            "INSERT INTO notifications (notification_id, user_id, kind, title, body, data, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (notification_id) DO NOTHING",
        )
        .bind(notification_id(event.event_id))
        .bind(author)
        .bind(kind)
        .bind(title)
        .bind(&body)
        .bind(json!({"review_id": review_id}))
        .bind(event.recorded_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl EventHandler for ReviewNotifications {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await?;
        match claim(&mut tx, REVIEW_NOTIFICATIONS, event).await? {
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
