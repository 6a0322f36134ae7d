//! The marketplace's read models: the provider directory (verification, skills, areas,
//! certifications; no personal values) from the provider stream, and from the service
//! order stream the service orders, their reviews and each provider's rating
//! (`provider_ratings`, recomputed for the provider from `service_orders` and
//! the published reviews of `service_reviews` whenever an event touches one of their orders, so after a rebuild it
//! equals a recomputation from the reviews by construction).

use async_trait::async_trait;
use ordo_aggregates::provider::{ProviderEvent, VerificationStatus};
use ordo_aggregates::review::ReviewStatus;
use ordo_aggregates::service_order::{ServiceOrderEvent, ServiceOrderStatus};
use ordo_contracts::{ProviderMessage, ServiceOrderMessage};
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::worker::Projection;

/// Builds `provider_directory` and `provider_certifications` from the provider stream.
pub struct ProvidersProjection;

#[async_trait]
impl Projection for ProvidersProjection {
    fn name(&self) -> &'static str {
        "projection-providers"
    }

    fn aggregate_type(&self) -> &'static str {
        "provider"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["provider_directory", "provider_certifications"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let ProviderMessage { id, event, facts } = ordo_contracts::provider(event)?;
        let provider_id = *id.as_uuid();
        // Every provider has its row from its first event on.
        sqlx::query(
            "INSERT INTO provider_directory (provider_id, status, version, updated_at)
             VALUES ($1, 'unverified', $2, $3) ON CONFLICT (provider_id) DO NOTHING",
        )
        .bind(provider_id)
        .bind(facts.sequence)
        .bind(facts.recorded_at)
        .execute(&mut *tx)
        .await?;
        let mut status = None;
        let mut reason = None;
        match event {
            ProviderEvent::ProviderProfileSet { profile } => {
                let skills: Vec<String> = profile
                    .skills
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect();
                let areas: Vec<String> = profile
                    .service_areas
                    .iter()
                    .map(|a| a.as_str().to_owned())
                    .collect();
                sqlx::query(
                    "UPDATE provider_directory SET skills = $2, service_areas = $3 WHERE provider_id = $1",
                )
                .bind(provider_id)
                .bind(&skills)
                .bind(&areas)
                .execute(&mut *tx)
                .await?;
            }
            ProviderEvent::CertificationSubmitted { certification } => {
                sqlx::query(
                    "INSERT INTO provider_certifications (certification_id, provider_id, name, file_url, submitted_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (certification_id) DO NOTHING",
                )
                .bind(certification.certification_id.as_uuid())
                .bind(provider_id)
                .bind(&certification.name)
                .bind(certification.file_url.as_str())
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            ProviderEvent::VerificationRequested {} => {
                status = Some(VerificationStatus::PendingVerification);
            }
            ProviderEvent::ProviderVerified {} => status = Some(VerificationStatus::Verified),
            ProviderEvent::ProviderRejected { reason: why } => {
                status = Some(VerificationStatus::Rejected);
                reason = Some(why.as_str().to_owned());
            }
        }
        sqlx::query(
            "UPDATE provider_directory
             SET status = coalesce($2, status),
                 rejection_reason = CASE WHEN $2 IS NULL THEN rejection_reason ELSE $3 END,
                 version = $4, updated_at = $5
             WHERE provider_id = $1",
        )
        .bind(provider_id)
        .bind(status.map(|s| s.as_str()))
        .bind(reason)
        .bind(facts.sequence)
        .bind(facts.recorded_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Builds `service_orders`, `service_reviews` and `provider_ratings` from the service
/// order stream.
pub struct ServiceOrdersProjection;

#[async_trait]
impl Projection for ServiceOrdersProjection {
    fn name(&self) -> &'static str {
        "projection-service-orders"
    }

    fn aggregate_type(&self) -> &'static str {
        "service_order"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["service_orders", "service_reviews", "provider_ratings"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let ServiceOrderMessage { id, event, facts } = ordo_contracts::service_order(event)?;
        let order_id = *id.as_uuid();
        let held = matches!(event, ServiceOrderEvent::ServiceOrderReviewHeld { .. });
        let mut status = None;
        match event {
            ServiceOrderEvent::ServiceOrderPublished { request } => {
                sqlx::query(
                    "INSERT INTO service_orders (order_id, customer_id, title, service_type, price_minor, currency,
                         location, status, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending_review', $8, $9, $9)",
                )
                .bind(order_id)
                .bind(request.customer_id.as_uuid())
                .bind(request.title.as_str())
                .bind(request.service_type.as_str())
                .bind(request.price.amount_minor())
                .bind(request.price.currency().as_str())
                .bind(request.location.as_str())
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
                return Ok(());
            }
            ServiceOrderEvent::ServiceOrderApproved {} => {
                status = Some(ServiceOrderStatus::Pending)
            }
            ServiceOrderEvent::ServiceOrderRejected { .. } => {
                status = Some(ServiceOrderStatus::Rejected)
            }
            ServiceOrderEvent::ServiceOrderAccepted { provider_id } => {
                sqlx::query("UPDATE service_orders SET provider_id = $2 WHERE order_id = $1")
                    .bind(order_id)
                    .bind(provider_id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                status = Some(ServiceOrderStatus::Accepted);
            }
            ServiceOrderEvent::ServicePaymentAttached { payment_id } => {
                sqlx::query("UPDATE service_orders SET payment_id = $2 WHERE order_id = $1")
                    .bind(order_id)
                    .bind(payment_id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
            }
            ServiceOrderEvent::ServiceOrderPaid { .. } => status = Some(ServiceOrderStatus::Paid),
            ServiceOrderEvent::WorkStarted {} => status = Some(ServiceOrderStatus::InProgress),
            ServiceOrderEvent::WorkDone {} => status = Some(ServiceOrderStatus::Done),
            ServiceOrderEvent::ServiceOrderConfirmed { .. } => {
                status = Some(ServiceOrderStatus::Completed)
            }
            ServiceOrderEvent::PayoutReleased { payout } => {
                sqlx::query(
                    "UPDATE service_orders SET payout_id = $2, payout_minor = $3 WHERE order_id = $1",
                )
                .bind(order_id)
                .bind(payout.payout_id.as_uuid())
                .bind(payout.amount.amount_minor())
                .execute(&mut *tx)
                .await?;
            }
            ServiceOrderEvent::ServiceOrderCancelled { .. } => {
                status = Some(ServiceOrderStatus::Cancelled)
            }
            ServiceOrderEvent::ServiceOrderRefunded { amount, .. } => {
                sqlx::query("UPDATE service_orders SET refunded_minor = $2 WHERE order_id = $1")
                    .bind(order_id)
                    .bind(amount.amount_minor())
                    .execute(&mut *tx)
                    .await?;
            }
            ServiceOrderEvent::ServiceOrderReviewed {
                provider_id,
                review,
            }
            | ServiceOrderEvent::ServiceOrderReviewHeld {
                provider_id,
                review,
            } => {
                let moderation = if held {
                    ReviewStatus::PendingModeration
                } else {
                    ReviewStatus::Published
                };
                sqlx::query(
                    "INSERT INTO service_reviews (order_id, provider_id, rating, professionalism, attitude, punctuality, reviewed_at, status)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (order_id) DO NOTHING",
                )
                .bind(order_id)
                .bind(provider_id.as_uuid())
                .bind(i16::from(review.rating.get()))
                .bind(i16::from(review.dimensions.professionalism.get()))
                .bind(i16::from(review.dimensions.attitude.get()))
                .bind(i16::from(review.dimensions.punctuality.get()))
                .bind(facts.recorded_at)
                .bind(moderation.as_str())
                .execute(&mut *tx)
                .await?;
                status = Some(ServiceOrderStatus::Reviewed);
            }
            ServiceOrderEvent::ServiceOrderReviewPublished {} => {
                review_status(tx, order_id, ReviewStatus::Published).await?;
            }
            ServiceOrderEvent::ServiceOrderReviewRejected { .. } => {
                review_status(tx, order_id, ReviewStatus::Rejected).await?;
            }
        }
        let provider: Option<(Option<Uuid>,)> = sqlx::query_as(
            "UPDATE service_orders SET status = coalesce($2, status), version = $3, updated_at = $4
             WHERE order_id = $1 RETURNING provider_id",
        )
        .bind(order_id)
        .bind(status.map(|s| s.as_str()))
        .bind(facts.sequence)
        .bind(facts.recorded_at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((Some(provider_id),)) = provider {
            refresh_rating(tx, provider_id).await?;
        }
        Ok(())
    }
}

/// Moves the order's review to `status` (only published reviews count in the rating).
async fn review_status(
    tx: &mut PgConnection,
    order_id: Uuid,
    status: ReviewStatus,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE service_reviews SET status = $2 WHERE order_id = $1")
        .bind(order_id)
        .bind(status.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Recomputes one provider's rating from their published reviews and completed orders.
async fn refresh_rating(tx: &mut PgConnection, provider_id: Uuid) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO provider_ratings (provider_id, total_reviews, rating_sum, stars_1, stars_2, stars_3,
             stars_4, stars_5, professionalism_sum, attitude_sum, punctuality_sum, completed_orders)
         SELECT $1, count(*), coalesce(sum(rating), 0),
                count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = 2),
                count(*) FILTER (WHERE rating = 3), count(*) FILTER (WHERE rating = 4),
                count(*) FILTER (WHERE rating = 5),
                coalesce(sum(professionalism), 0), coalesce(sum(attitude), 0),
                coalesce(sum(punctuality), 0),
                (SELECT count(*) FROM service_orders
                 WHERE provider_id = $1 AND status IN ('completed', 'reviewed'))
         FROM service_reviews WHERE provider_id = $1 AND status = 'published'
         ON CONFLICT (provider_id) DO UPDATE SET
             total_reviews = excluded.total_reviews, rating_sum = excluded.rating_sum,
             stars_1 = excluded.stars_1, stars_2 = excluded.stars_2, stars_3 = excluded.stars_3,
             stars_4 = excluded.stars_4, stars_5 = excluded.stars_5,
             professionalism_sum = excluded.professionalism_sum,
             attitude_sum = excluded.attitude_sum, punctuality_sum = excluded.punctuality_sum,
             completed_orders = excluded.completed_orders",
    )
    .bind(provider_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
