//! Reads of the `promotions`, `coupon_batches` and `coupons` read models: promotions and
//! batches as admins list them, and a customer's coupons, optionally of one status.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::page::{NewestFirst, Page, PageRequest};
use super::{InvalidParameter, PgPool, QueryResult};

/// A promotion as admins see it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct PromotionView {
    pub promotion_id: Uuid,
    pub name: String,
    /// `threshold_amount_off`, `threshold_percent_off` or `direct_price_cut`.
    pub kind: String,
    pub currency: String,
    /// The least the cart must come to, in minor units (threshold kinds).
    pub threshold: Option<i64>,
    /// Amount off in minor units (the order's, or each unit's for a direct cut).
    pub amount_off: Option<i64>,
    /// Percentage off (threshold_percent_off).
    pub percent_off: Option<i32>,
    /// The SKUs cut (direct_price_cut).
    pub skus: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// When an admin ended it early.
    pub ended_at: Option<DateTime<Utc>>,
    pub priority: i32,
    pub exclusive: bool,
    /// The promotion's version (its last event's sequence).
    pub version: i64,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

/// A coupon batch as admins see it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct CouponBatchView {
    pub batch_id: Uuid,
    pub name: String,
    /// `amount_off` or `percent_off`.
    pub kind: String,
    /// Minor units off (amount_off) or the percentage (percent_off).
    pub value: i64,
    pub currency: String,
    /// Minor units the order must come to after promotions.
    pub min_spend: i64,
    pub quota: i64,
    pub per_user_limit: i64,
    /// Coupons claimed so far.
    pub claimed: i64,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    /// The batch's version (its last event's sequence).
    pub version: i64,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

/// A customer's coupon with its batch's terms.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct CouponView {
    pub coupon_id: Uuid,
    pub batch_id: Uuid,
    /// `claimed`, `locked` or `redeemed`.
    pub status: String,
    /// The order holding it (locked) or having used it (redeemed).
    pub order_id: Option<Uuid>,
    pub claimed_at: DateTime<Utc>,
    pub name: String,
    /// `amount_off` or `percent_off`.
    pub kind: String,
    /// Minor units off (amount_off) or the percentage (percent_off).
    pub value: i64,
    pub currency: String,
    pub min_spend: i64,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// The statuses a coupon may have, as `GET /coupons?status=` filters them.
pub const COUPON_STATUSES: [&str; 3] = ["claimed", "locked", "redeemed"];

/// Checks a status filter.
pub fn coupon_status(raw: Option<&str>) -> Result<Option<&str>, InvalidParameter> {
    match raw {
        None => Ok(None),
        Some(s) if COUPON_STATUSES.contains(&s) => Ok(Some(s)),
        Some(_) => Err(InvalidParameter::new(
            "status",
            "status must be claimed, locked or redeemed",
        )),
    }
}

/// A page of promotions, newest first.
pub async fn promotions(
    pool: &PgPool,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<PromotionView>> {
    let after = page.after;
    let rows: Vec<PromotionView> = sqlx::query_as(
        "SELECT promotion_id, name, kind, currency, threshold_minor AS threshold,
                amount_off_minor AS amount_off, percent_off, skus, starts_at, ends_at, ended_at,
                priority, exclusive, version, created_at
         FROM promotions
         WHERE ($1::timestamptz IS NULL OR (created_at, promotion_id) < ($1, $2::uuid))
         ORDER BY created_at DESC, promotion_id DESC LIMIT $3",
    )
    .bind(after.map(|a| a.at))
    .bind(after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |p| NewestFirst {
        at: p.created_at,
        id: p.promotion_id,
    }))
}

/// A page of coupon batches, newest first.
pub async fn batches(
    pool: &PgPool,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<CouponBatchView>> {
    let after = page.after;
    let rows: Vec<CouponBatchView> = sqlx::query_as(
        "SELECT batch_id, name, kind, value, currency, min_spend_minor AS min_spend, quota,
                per_user_limit, claimed, valid_from, valid_until, version, created_at
         FROM coupon_batches
         WHERE ($1::timestamptz IS NULL OR (created_at, batch_id) < ($1, $2::uuid))
         ORDER BY created_at DESC, batch_id DESC LIMIT $3",
    )
    .bind(after.map(|a| a.at))
    .bind(after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |b| NewestFirst {
        at: b.created_at,
        id: b.batch_id,
    }))
}

/// A page of `user_id`'s coupons, newest claim first, of one status when given.
pub async fn coupons_of(
    pool: &PgPool,
    user_id: Uuid,
    status: Option<&str>,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<CouponView>> {
    let after = page.after;
    let rows: Vec<CouponView> = sqlx::query_as(
        "SELECT c.coupon_id, c.batch_id, c.status, c.order_id, c.claimed_at, b.name, b.kind,
                b.value, b.currency, b.min_spend_minor AS min_spend, b.valid_from, b.valid_until
         FROM coupons c JOIN coupon_batches b ON b.batch_id = c.batch_id
         WHERE c.user_id = $1 AND ($2::text IS NULL OR c.status = $2)
           AND ($3::timestamptz IS NULL OR (c.claimed_at, c.coupon_id) < ($3, $4::uuid))
         ORDER BY c.claimed_at DESC, c.coupon_id DESC LIMIT $5",
    )
    .bind(user_id)
    .bind(status)
    .bind(after.map(|a| a.at))
    .bind(after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |c| NewestFirst {
        at: c.claimed_at,
        id: c.coupon_id,
    }))
}
