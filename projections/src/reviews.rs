//! The `product_reviews` and `product_ratings` read models: every review of an order line
//! with its follow-up, status and reports, and each product's rating, recomputed from its
//! published reviews whenever one of them changes (so a rebuild gives the same rating).

use async_trait::async_trait;
use ordo_aggregates::review::ReviewEvent;
use ordo_contracts::ReviewMessage;
use ordo_nats::envelope::ReceivedEvent;
use serde_json::json;
use sqlx::PgConnection;

use crate::worker::Projection;

/// Builds `product_reviews` and `product_ratings` from the review stream.
pub struct ReviewsProjection;

#[async_trait]
impl Projection for ReviewsProjection {
    fn name(&self) -> &'static str {
        "projection-reviews"
    }

    fn aggregate_type(&self) -> &'static str {
        "review"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["product_reviews", "product_ratings"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let ReviewMessage { id, event, facts } = ordo_contracts::review(event)?;
        let review_id = *id.as_uuid();
        let (status, follow_up, reports): (Option<&str>, Option<String>, Option<i32>) = match &event
        {
            ReviewEvent::ReviewSubmitted {
                order_id,
                sku,
                author_id,
                content,
                status,
                ..
            } => {
                let dimensions: serde_json::Map<String, serde_json::Value> = content
                    .dimensions
                    .iter()
                    .map(|(name, stars)| (name.as_str().to_string(), json!(stars.get())))
                    .collect();
                let images: Vec<&str> = content.images.iter().map(|url| url.as_str()).collect();
                sqlx::query(
                    "INSERT INTO product_reviews (review_id, sku, order_id, author_id, rating, comment,
                                                  dimensions, images, status, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                )
                .bind(review_id)
                .bind(sku.as_str())
                .bind(order_id.as_uuid())
                .bind(author_id.as_uuid())
                .bind(i16::from(content.rating.get()))
                .bind(content.comment.as_str())
                .bind(json!(dimensions))
                .bind(json!(images))
                .bind(status.as_str())
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
                (None, None, None)
            }
            ReviewEvent::ReviewFollowedUp { comment, status } => (
                Some(status.as_str()),
                Some(comment.as_str().to_string()),
                None,
            ),
            ReviewEvent::ReviewPublished {} => (Some("published"), None, None),
            ReviewEvent::ReviewRejected { .. } => (Some("rejected"), None, None),
            ReviewEvent::ReviewReported { reports, .. } => (
                None,
                None,
                Some(i32::try_from(*reports).unwrap_or(i32::MAX)),
            ),
            ReviewEvent::ReviewHidden {} => (Some("hidden"), None, None),
        };
        let sku: Option<(String,)> = sqlx::query_as(
            "UPDATE product_reviews SET status = coalesce($2, status),
                    follow_up = coalesce($3, follow_up), reports = coalesce($4, reports),
                    version = $5, updated_at = $6
             WHERE review_id = $1 RETURNING sku",
        )
        .bind(review_id)
        .bind(status)
        .bind(follow_up)
        .bind(reports)
        .bind(facts.sequence)
        .bind(facts.recorded_at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((sku,)) = sku {
            refresh_rating(tx, &sku).await?;
        }
        Ok(())
    }
}

/// Recomputes one product's rating from its published reviews.
async fn refresh_rating(tx: &mut PgConnection, sku: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO product_ratings (sku, total_reviews, rating_sum, stars_1, stars_2, stars_3,
             stars_4, stars_5)
         SELECT $1, count(*), coalesce(sum(rating), 0),
                count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = 2),
                count(*) FILTER (WHERE rating = 3), count(*) FILTER (WHERE rating = 4),
                count(*) FILTER (WHERE rating = 5)
         FROM product_reviews WHERE sku = $1 AND status = 'published'
         ON CONFLICT (sku) DO UPDATE SET
             total_reviews = excluded.total_reviews, rating_sum = excluded.rating_sum,
             stars_1 = excluded.stars_1, stars_2 = excluded.stars_2, stars_3 = excluded.stars_3,
             stars_4 = excluded.stars_4, stars_5 = excluded.stars_5",
    )
    .bind(sku)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
