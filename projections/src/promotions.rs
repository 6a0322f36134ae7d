//! The `promotions` read model: every promotion with its rule's fields as columns, its
//! window and whether an admin ended it, as admins list them.

use async_trait::async_trait;
use ordo_aggregates::promotion::{PromotionEvent, PromotionRule};
use ordo_contracts::PromotionMessage;
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::worker::Projection;

/// Builds `promotions` from the promotion stream.
pub struct PromotionsProjection;

#[async_trait]
impl Projection for PromotionsProjection {
    fn name(&self) -> &'static str {
        "projection-promotions"
    }

    fn aggregate_type(&self) -> &'static str {
        "promotion"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["promotions"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let PromotionMessage { id, event, facts } = ordo_contracts::promotion(event)?;
        let id = Uuid::from(id);
        match event {
            PromotionEvent::PromotionCreated {
                name,
                currency,
                rule,
                starts_at,
                ends_at,
                priority,
                exclusive,
                ..
            } => {
                let kind = rule.kind();
                let (threshold, amount_off, percent_off, skus) = match rule {
                    PromotionRule::ThresholdAmountOff {
                        threshold,
                        amount_off,
                    } => (
                        Some(threshold.amount_minor()),
                        Some(amount_off.amount_minor()),
                        None,
                        Vec::new(),
                    ),
                    PromotionRule::ThresholdPercentOff {
                        threshold,
                        percent_off,
                    } => (
                        Some(threshold.amount_minor()),
                        None,
                        Some(i32::from(percent_off.get())),
                        Vec::new(),
                    ),
                    PromotionRule::DirectPriceCut { skus, amount_off } => (
                        None,
                        Some(amount_off.amount_minor()),
                        None,
                        skus.into_iter().map(String::from).collect(),
                    ),
                };
                sqlx::query(
                    "INSERT INTO promotions (promotion_id, name, kind, currency, threshold_minor,
                        amount_off_minor, percent_off, skus, starts_at, ends_at, priority, exclusive,
                        version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
                     ON CONFLICT (promotion_id) DO NOTHING",
                )
                .bind(id)
                .bind(name.as_str())
                .bind(kind)
                .bind(currency.as_str())
                .bind(threshold)
                .bind(amount_off)
                .bind(percent_off)
                .bind(&skus)
                .bind(starts_at)
                .bind(ends_at)
                .bind(i32::from(priority))
                .bind(exclusive)
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            PromotionEvent::PromotionEnded { ended_at } => {
                sqlx::query(
                    "UPDATE promotions SET ended_at = $2, version = $3, updated_at = $4
                     WHERE promotion_id = $1",
                )
                .bind(id)
                .bind(ended_at)
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}
