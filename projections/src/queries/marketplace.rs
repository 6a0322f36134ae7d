//! Reads of the marketplace's read models: providers by verification status (for admins),
//! a provider's public profile with its rating, the service orders a caller published or
//! accepted, the open orders matching a provider's skills and areas, and the providers'
//! reviews by moderation status.
//!
//! One service order in full (with its personal values) is read from the write side, so it
//! has no query here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::page::{NewestFirst, Page, PageRequest};
use super::ratings::{distribution, mean};
use super::{PgPool, QueryResult};

/// A provider as admins list them.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ProviderSummary {
    pub provider_id: Uuid,
    /// `unverified`, `pending_verification`, `verified` or `rejected`.
    pub status: String,
    pub skills: Vec<String>,
    pub service_areas: Vec<String>,
    pub rejection_reason: Option<String>,
    /// How many certifications were submitted.
    pub certifications: i64,
    pub updated_at: DateTime<Utc>,
}

/// A page of the providers with `status` (any when `None`), the longest waiting first
/// (the page's position is read in ascending order).
pub async fn providers(
    pool: &PgPool,
    status: Option<&str>,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<ProviderSummary>> {
    let rows: Vec<ProviderSummary> = sqlx::query_as(
        "SELECT d.provider_id, d.status, d.skills, d.service_areas, d.rejection_reason,
                (SELECT count(*) FROM provider_certifications c WHERE c.provider_id = d.provider_id)
                    AS certifications,
                d.updated_at
         FROM provider_directory d
         WHERE ($1::text IS NULL OR d.status = $1)
           AND ($2::timestamptz IS NULL OR (d.updated_at, d.provider_id) > ($2, $3::uuid))
         ORDER BY d.updated_at, d.provider_id LIMIT $4",
    )
    .bind(status)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |p| NewestFirst {
        at: p.updated_at,
        id: p.provider_id,
    }))
}

/// A provider's rating, kept from the reviews of their orders.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProviderRating {
    /// The mean overall rating, rounded to two decimals; null before any review.
    pub average_rating: Option<f64>,
    pub total_reviews: i64,
    /// How many reviews gave 1, 2, 3, 4 and 5 stars, keyed by the stars.
    pub rating_distribution: std::collections::BTreeMap<String, i64>,
    /// The mean of each dimension, rounded to two decimals; null before any review.
    pub professionalism: Option<f64>,
    pub attitude: Option<f64>,
    pub punctuality: Option<f64>,
    /// Orders of the provider confirmed (or reviewed).
    pub completed_orders: i64,
}

/// A provider's public profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicProvider {
    pub provider_id: Uuid,
    pub skills: Vec<String>,
    pub service_areas: Vec<String>,
    pub verified: bool,
    pub verification_status: String,
    pub rating: ProviderRating,
    pub completed_orders: i64,
}

#[derive(sqlx::FromRow)]
struct RatingRow {
    total_reviews: i32,
    rating_sum: i32,
    stars_1: i32,
    stars_2: i32,
    stars_3: i32,
    stars_4: i32,
    stars_5: i32,
    professionalism_sum: i32,
    attitude_sum: i32,
    punctuality_sum: i32,
    completed_orders: i32,
}

impl From<Option<RatingRow>> for ProviderRating {
    fn from(row: Option<RatingRow>) -> Self {
        let row = row.unwrap_or(RatingRow {
            total_reviews: 0,
            rating_sum: 0,
            stars_1: 0,
            stars_2: 0,
            stars_3: 0,
            stars_4: 0,
            stars_5: 0,
            professionalism_sum: 0,
            attitude_sum: 0,
            punctuality_sum: 0,
            completed_orders: 0,
        });
        let n = row.total_reviews;
        ProviderRating {
            average_rating: mean(row.rating_sum, n),
            total_reviews: i64::from(n),
            rating_distribution: distribution([
                row.stars_1,
                row.stars_2,
                row.stars_3,
                row.stars_4,
                row.stars_5,
            ]),
            professionalism: mean(row.professionalism_sum, n),
            attitude: mean(row.attitude_sum, n),
            punctuality: mean(row.punctuality_sum, n),
            completed_orders: i64::from(row.completed_orders),
        }
    }
}

/// A provider's rating as the read model keeps it.
pub async fn rating(pool: &PgPool, provider_id: Uuid) -> QueryResult<ProviderRating> {
    let row: Option<RatingRow> = sqlx::query_as(
        "SELECT total_reviews, rating_sum, stars_1, stars_2, stars_3, stars_4, stars_5,
                professionalism_sum, attitude_sum, punctuality_sum, completed_orders
         FROM provider_ratings WHERE provider_id = $1",
    )
    .bind(provider_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.into())
}

/// A provider's public profile; `None` for an unknown provider.
pub async fn public_provider(
    pool: &PgPool,
    provider_id: Uuid,
) -> QueryResult<Option<PublicProvider>> {
    let row: Option<(String, Vec<String>, Vec<String>)> = sqlx::query_as(
        "SELECT status, skills, service_areas FROM provider_directory WHERE provider_id = $1",
    )
    .bind(provider_id)
    .fetch_optional(pool)
    .await?;
    let Some((status, skills, service_areas)) = row else {
        return Ok(None);
    };
    let rating = rating(pool, provider_id).await?;
    Ok(Some(PublicProvider {
        provider_id,
        skills,
        service_areas,
        verified: status == "verified",
        verification_status: status,
        completed_orders: rating.completed_orders,
        rating,
    }))
}

/// A service order in a list.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ServiceOrderSummary {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub provider_id: Option<Uuid>,
    pub title: String,
    pub service_type: String,
    /// Minor units of `currency`.
    #[sqlx(rename = "price_minor")]
    pub price: i64,
    pub currency: String,
    pub location: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

const SUMMARY: &str =
    "SELECT order_id, customer_id, provider_id, title, service_type, price_minor, currency,
        location, status, created_at FROM service_orders";

/// A page of the orders `user_id` published or accepted, newest first.
pub async fn service_orders_of(
    pool: &PgPool,
    user_id: Uuid,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<ServiceOrderSummary>> {
    let rows: Vec<ServiceOrderSummary> = sqlx::query_as(&format!(
        "{SUMMARY} WHERE (customer_id = $1 OR provider_id = $1)
           AND ($2::timestamptz IS NULL OR (created_at, order_id) < ($2, $3::uuid))
         ORDER BY created_at DESC, order_id DESC LIMIT $4"
    ))
    .bind(user_id)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, summary_position))
}

/// A page of the orders in `status` (for admins: those waiting for review...), newest first.
pub async fn service_orders_with_status(
    pool: &PgPool,
    status: &str,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<ServiceOrderSummary>> {
    let rows: Vec<ServiceOrderSummary> = sqlx::query_as(&format!(
        "{SUMMARY} WHERE status = $1
           AND ($2::timestamptz IS NULL OR (created_at, order_id) < ($2, $3::uuid))
         ORDER BY created_at DESC, order_id DESC LIMIT $4"
    ))
    .bind(status)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, summary_position))
}

fn summary_position(order: &ServiceOrderSummary) -> NewestFirst {
    NewestFirst {
        at: order.created_at,
        id: order.order_id,
    }
}

/// A page of the approved orders nobody accepted yet whose service type is among `skills`
/// and whose location among `areas`, oldest first (the page's position is read in
/// ascending order).
pub async fn matching_orders(
    pool: &PgPool,
    skills: &[String],
    areas: &[String],
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<ServiceOrderSummary>> {
    let rows: Vec<ServiceOrderSummary> = sqlx::query_as(&format!(
        "{SUMMARY} WHERE status = 'pending' AND service_type = ANY($1) AND location = ANY($2)
           AND ($3::timestamptz IS NULL OR (created_at, order_id) > ($3, $4::uuid))
         ORDER BY created_at, order_id LIMIT $5"
    ))
    .bind(skills)
    .bind(areas)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, summary_position))
}

/// The verified providers whose skills hold `service_type` and whose areas hold
/// `location`: who is told of a new order.
pub async fn matching_providers(
    pool: &PgPool,
    service_type: &str,
    location: &str,
) -> QueryResult<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT provider_id FROM provider_directory
         WHERE status = 'verified' AND $1 = ANY(skills) AND $2 = ANY(service_areas)
         ORDER BY provider_id",
    )
    .bind(service_type)
    .bind(location)
    .fetch_all(pool)
    .await?)
}

/// A provider's review in the admins' moderation queue (the comment is personal data of the
/// customer, read from the service order itself).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ServiceReviewSummary {
    #[sqlx(rename = "order_id")]
    pub service_order_id: Uuid,
    pub provider_id: Uuid,
    /// 1 to 5.
    pub rating: i16,
    /// published, pending_moderation or rejected.
    pub status: String,
    pub reviewed_at: DateTime<Utc>,
}

/// A page of the providers' reviews in any of `statuses`, newest first.
pub async fn service_reviews_with_status(
    pool: &PgPool,
    statuses: &[&str],
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<ServiceReviewSummary>> {
    let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
    let rows: Vec<ServiceReviewSummary> = sqlx::query_as(
        "SELECT order_id, provider_id, rating, status, reviewed_at FROM service_reviews
         WHERE status = ANY($1)
           AND ($2::timestamptz IS NULL OR (reviewed_at, order_id) < ($2, $3::uuid))
         ORDER BY reviewed_at DESC, order_id DESC LIMIT $4",
    )
    .bind(&statuses)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |review| NewestFirst {
        at: review.reviewed_at,
        id: review.service_order_id,
    }))
}
