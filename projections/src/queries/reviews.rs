//! Reads of the `product_reviews` and `product_ratings` read models: a product's published
//! reviews newest first, its rating, one review, and the reviews waiting for an admin.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::page::{NewestFirst, Page, PageRequest};
use super::ratings::{distribution, mean};
use super::{PgPool, QueryResult};

/// A review as shoppers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewView {
    pub review_id: Uuid,
    pub sku: String,
    #[serde(skip)]
    pub author_id: Uuid,
    /// 1 to 5.
    pub rating: i16,
    pub comment: String,
    /// The rating of each named aspect.
    #[schema(value_type = Object)]
    pub dimensions: serde_json::Value,
    pub images: Vec<String>,
    /// The buyer's follow-up (追评), once written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<String>,
    /// published, pending_moderation, rejected or hidden.
    pub status: String,
    pub reports: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A product's rating, kept from its published reviews.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProductRating {
    pub sku: String,
    /// The mean rating, rounded to two decimals; null before any review.
    pub average_rating: Option<f64>,
    pub total_reviews: i64,
    /// How many reviews gave 1, 2, 3, 4 and 5 stars, keyed by the stars.
    pub rating_distribution: std::collections::BTreeMap<String, i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    review_id: Uuid,
    sku: String,
    author_id: Uuid,
    rating: i16,
    comment: String,
    dimensions: serde_json::Value,
    images: serde_json::Value,
    follow_up: Option<String>,
    status: String,
    reports: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for ReviewView {
    fn from(r: Row) -> Self {
        ReviewView {
            review_id: r.review_id,
            sku: r.sku,
            author_id: r.author_id,
            rating: r.rating,
            comment: r.comment,
            dimensions: r.dimensions,
            images: serde_json::from_value(r.images).unwrap_or_default(),
            follow_up: r.follow_up,
            status: r.status,
            reports: r.reports,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "review_id, sku, author_id, rating, comment, dimensions, images, follow_up,
    status, reports, created_at, updated_at";

/// The review with this id, whatever its status.
pub async fn find(pool: &PgPool, review_id: Uuid) -> QueryResult<Option<ReviewView>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM product_reviews WHERE review_id = $1"
    ))
    .bind(review_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(ReviewView::from))
}

/// A page of the published reviews of `sku`, newest first.
pub async fn published(
    pool: &PgPool,
    sku: &str,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<ReviewView>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM product_reviews
         WHERE sku = $1 AND status = 'published'
           AND ($2::timestamptz IS NULL OR (created_at, review_id) < ($2, $3::uuid))
         ORDER BY created_at DESC, review_id DESC LIMIT $4"
    ))
    .bind(sku)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    let views: Vec<ReviewView> = rows.into_iter().map(ReviewView::from).collect();
    Ok(Page::cut(views, page.limit, |view| NewestFirst {
        at: view.created_at,
        id: view.review_id,
    }))
}

/// The rating of `sku` (no review yet: an empty rating).
pub async fn rating(pool: &PgPool, sku: &str) -> QueryResult<ProductRating> {
    let row: Option<(i32, i32, i32, i32, i32, i32, i32)> = sqlx::query_as(
        "SELECT total_reviews, rating_sum, stars_1, stars_2, stars_3, stars_4, stars_5
         FROM product_ratings WHERE sku = $1",
    )
    .bind(sku)
    .fetch_optional(pool)
    .await?;
    let (n, sum, s1, s2, s3, s4, s5) = row.unwrap_or_default();
    Ok(ProductRating {
        sku: sku.to_string(),
        average_rating: mean(sum, n),
        total_reviews: i64::from(n),
        rating_distribution: distribution([s1, s2, s3, s4, s5]),
    })
}

/// A page of the reviews in any of `statuses`, newest first: the admins' moderation queue.
pub async fn with_status(
    pool: &PgPool,
    statuses: &[&str],
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<ReviewView>> {
    let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM product_reviews
         WHERE status = ANY($1)
           AND ($2::timestamptz IS NULL OR (created_at, review_id) < ($2, $3::uuid))
         ORDER BY created_at DESC, review_id DESC LIMIT $4"
    ))
    .bind(&statuses)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    let views: Vec<ReviewView> = rows.into_iter().map(ReviewView::from).collect();
    Ok(Page::cut(views, page.limit, |view| NewestFirst {
        at: view.created_at,
        id: view.review_id,
    }))
}
