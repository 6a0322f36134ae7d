//! Promotions and coupon batches, as admins create, list and end them.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use ordo_aggregates::common::{
    CampaignName, CouponBatchId, Currency, Money, Percent, PromotionId, Sku,
};
use ordo_aggregates::coupon::{BatchTerms, CouponCommand, CouponDiscount};
use ordo_aggregates::promotion::{PromotionCommand, PromotionRule};
use ordo_projections::queries::offers;
pub use ordo_projections::queries::offers::{CouponBatchView, PromotionView};
use ordo_projections::queries::page::PageRequest;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::api_error;
use crate::identity::AdminUser;
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::routes::orders::idempotency_key;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/promotions",
            post(create_promotion).get(list_promotions),
        )
        .route("/admin/promotions/{promotion_id}/end", post(end_promotion))
        .route(
            "/admin/coupon-batches",
            post(create_coupon_batch).get(list_coupon_batches),
        )
}

/// The kinds of promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromotionKind {
    /// Spend at least `threshold`, get `amount_off` off the order.
    ThresholdAmountOff,
    /// Spend at least `threshold`, get `percent_off` off the order.
    ThresholdPercentOff,
    /// Each unit of `skus` costs `amount_off` less.
    DirectPriceCut,
}

/// A new promotion. Amounts are in minor units of `currency`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreatePromotion {
    /// Name shown to shoppers.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub kind: PromotionKind,
    /// ISO 4217 code of every amount.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    /// First instant it applies.
    pub starts_at: DateTime<Utc>,
    /// First instant it no longer applies; after `starts_at`.
    pub ends_at: DateTime<Utc>,
    /// 0 to 1000: a higher priority applies first.
    #[schema(minimum = 0, maximum = 1000)]
    pub priority: i64,
    /// When it applies, no other promotion does.
    #[serde(default)]
    pub exclusive: bool,
    /// Threshold kinds: the least the cart must come to after direct cuts.
    #[schema(minimum = 0)]
    pub threshold: Option<i64>,
    /// `threshold_amount_off`: off the order; `direct_price_cut`: off each unit.
    #[schema(minimum = 1)]
    pub amount_off: Option<i64>,
    /// `threshold_percent_off`: 1 to 100, rounded down to the minor unit.
    #[schema(minimum = 1, maximum = 100)]
    pub percent_off: Option<i64>,
    /// `direct_price_cut`: 1 to 100 distinct SKUs.
    #[schema(max_items = 100)]
    pub skus: Option<Vec<String>>,
}

/// The kinds of coupon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CouponKind {
    /// `value` minor units off the order.
    AmountOff,
    /// `value` percent (1 to 100) off the order, rounded down to the minor unit.
    PercentOff,
}

/// A new batch of coupons.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCouponBatch {
    /// Name shown to shoppers.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub kind: CouponKind,
    /// Minor units off (`amount_off`) or the percentage (`percent_off`, 1 to 100).
    #[schema(minimum = 1)]
    pub value: i64,
    /// Minor units the order must come to after promotions (0 by default).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub min_spend: i64,
    /// Coupons handed out in all.
    #[schema(minimum = 1, maximum = 1000000)]
    pub quota: i64,
    /// Coupons one customer may hold; at most `quota`.
    #[schema(minimum = 1, maximum = 1000000)]
    pub per_user_limit: i64,
    /// First instant a coupon may be used.
    pub valid_from: DateTime<Utc>,
    /// First instant a coupon may no longer be claimed nor used; after `valid_from`.
    pub valid_until: DateTime<Utc>,
    /// ISO 4217 code of `value` and `min_spend`.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
}

/// The answer to a promotion command.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionWritten {
    pub promotion_id: Uuid,
    /// The promotion's version after the command.
    pub version: i64,
}

/// The answer to a created coupon batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponBatchWritten {
    pub batch_id: Uuid,
    /// The batch's version after the command.
    pub version: i64,
}

/// A page of promotions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionPage {
    pub promotions: Vec<PromotionView>,
    pub next_cursor: Option<String>,
}

/// A page of coupon batches, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponBatchPage {
    pub batches: Vec<CouponBatchView>,
    pub next_cursor: Option<String>,
}

/// Paging of the admin lists.
#[derive(Debug, Deserialize, IntoParams)]
pub struct OfferPaging {
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn money(field: &'static str, minor: i64, currency: &Currency) -> Result<Money, ApiError> {
    Money::new(minor, currency.clone())
        .map_err(|_| ApiError::invalid(field, format!("{field} must be zero or more")))
}

fn required<T>(value: Option<T>, field: &'static str, kind: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::invalid(field, format!("{field} is required for {kind}")))
}

/// The rule a request describes, its fields checked for its kind.
fn rule_of(body: &CreatePromotion, currency: &Currency) -> Result<PromotionRule, ApiError> {
    let kind = match body.kind {
        PromotionKind::ThresholdAmountOff => "threshold_amount_off",
        PromotionKind::ThresholdPercentOff => "threshold_percent_off",
        PromotionKind::DirectPriceCut => "direct_price_cut",
    };
    let amount_off = |value| -> Result<Money, ApiError> {
        match value {
            Some(minor) if minor >= 1 => money("amount_off", minor, currency),
            Some(_) => Err(ApiError::invalid(
                "amount_off",
                "amount_off must be 1 or more",
            )),
            None => Err(ApiError::invalid(
                "amount_off",
                format!("amount_off is required for {kind}"),
            )),
        }
    };
    Ok(match body.kind {
        PromotionKind::ThresholdAmountOff => PromotionRule::ThresholdAmountOff {
            threshold: money(
                "threshold",
                required(body.threshold, "threshold", kind)?,
                currency,
            )?,
            amount_off: amount_off(body.amount_off)?,
        },
        PromotionKind::ThresholdPercentOff => PromotionRule::ThresholdPercentOff {
            threshold: money(
                "threshold",
                required(body.threshold, "threshold", kind)?,
                currency,
            )?,
            percent_off: Percent::parse(required(body.percent_off, "percent_off", kind)?)
                .map_err(|e| ApiError::invalid("percent_off", e.to_string()))?,
        },
        PromotionKind::DirectPriceCut => {
            let raw = required(body.skus.as_ref(), "skus", kind)?;
            if raw.is_empty() || raw.len() > 100 {
                return Err(ApiError::invalid("skus", "skus must list 1 to 100 SKUs"));
            }
            let mut skus = Vec::with_capacity(raw.len());
            for (index, sku) in raw.iter().enumerate() {
                let sku = Sku::parse(sku)
                    .map_err(|e| ApiError::invalid(format!("skus[{index}]"), e.to_string()))?;
                if skus.contains(&sku) {
                    return Err(ApiError::invalid(
                        format!("skus[{index}]"),
                        format!("{sku} is listed twice"),
                    ));
                }
                skus.push(sku);
            }
            PromotionRule::DirectPriceCut {
                skus,
                amount_off: amount_off(body.amount_off)?,
            }
        }
    })
}

/// An id from the caller's `Idempotency-Key`, so a repeated request names the same resource.
fn id_for(headers: &HeaderMap, admin: Uuid, what: &str) -> Result<Uuid, ApiError> {
    Ok(match idempotency_key(headers)? {
        Some(key) => Uuid::new_v5(&admin, format!("{what}:{key}").as_bytes()),
        None => Uuid::new_v4(),
    })
}

/// Creates a promotion (admin). With `Idempotency-Key`, a repeat creates nothing new.
#[utoipa::path(post, path = "/api/v1/admin/promotions", tag = "promotions", request_body = CreatePromotion,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$")),
    responses((status = 201, body = PromotionWritten),
               (status = 409, description = "the key names a promotion with other terms"),
               (status = 422, description = "invalid field, empty window, or fields missing for the kind")))]
pub async fn create_promotion(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreatePromotion>,
) -> Result<Response, ApiError> {
    let name =
        CampaignName::parse(&body.name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
    let currency = Currency::parse(&body.currency)
        .map_err(|e| ApiError::invalid("currency", e.to_string()))?;
    let priority = u16::try_from(body.priority)
        .ok()
        .filter(|p| *p <= ordo_aggregates::promotion::MAX_PRIORITY)
        .ok_or_else(|| ApiError::invalid("priority", "priority must be 0 to 1000"))?;
    if body.ends_at <= body.starts_at {
        return Err(ApiError::invalid(
            "ends_at",
            "ends_at must be after starts_at",
        ));
    }
    let rule = rule_of(&body, &currency)?;
    let promotion_id = id_for(&headers, user.user_id, "promotion")?;
    let committed = state
        .offers
        .promotions
        .execute(
            &promotion_id.to_string(),
            PromotionCommand::Create {
                promotion_id: PromotionId::from(promotion_id),
                name,
                currency,
                rule,
                starts_at: body.starts_at,
                ends_at: body.ends_at,
                priority,
                exclusive: body.exclusive,
            },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(PromotionWritten {
            promotion_id,
            version: committed.version,
        }),
    )
        .into_response())
}

/// Promotions, newest first (admin).
#[utoipa::path(get, path = "/api/v1/admin/promotions", tag = "promotions", params(OfferPaging),
    security(("bearer" = [])),
    responses((status = 200, body = PromotionPage)))]
pub async fn list_promotions(
    State(state): State<AppState>,
    _user: AdminUser,
    Query(paging): Query<OfferPaging>,
) -> Result<ApiJson<PromotionPage>, ApiError> {
    let page = PageRequest::parse(paging.cursor.as_deref(), paging.limit)?;
    let page = offers::promotions(&state.pool, &page).await?;
    Ok(ApiJson(PromotionPage {
        promotions: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Ends a promotion now (admin); ending an ended one changes nothing.
#[utoipa::path(post, path = "/api/v1/admin/promotions/{promotion_id}/end", tag = "promotions",
    security(("bearer" = [])),
    params(("promotion_id" = Uuid, Path, description = "the promotion")),
    responses((status = 200, body = PromotionWritten), (status = 404, description = "no such promotion")))]
pub async fn end_promotion(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(promotion_id): Path<String>,
) -> Result<ApiJson<PromotionWritten>, ApiError> {
    let promotion_id: Uuid = promotion_id
        .parse()
        .map_err(|_| ApiError::NotFound("no such promotion".into()))?;
    let committed = state
        .offers
        .promotions
        .execute(
            &promotion_id.to_string(),
            PromotionCommand::End { at: Utc::now() },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    Ok(ApiJson(PromotionWritten {
        promotion_id,
        version: committed.version,
    }))
}

/// Creates a batch of coupons (admin). With `Idempotency-Key`, a repeat creates nothing new.
#[utoipa::path(post, path = "/api/v1/admin/coupon-batches", tag = "promotions", request_body = CreateCouponBatch,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$")),
    responses((status = 201, body = CouponBatchWritten),
               (status = 409, description = "the key names a batch with other terms"),
               (status = 422, description = "invalid field: empty validity, a limit above the quota, a percentage above 100")))]
pub async fn create_coupon_batch(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateCouponBatch>,
) -> Result<Response, ApiError> {
    let name =
        CampaignName::parse(&body.name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
    let currency = Currency::parse(&body.currency)
        .map_err(|e| ApiError::invalid("currency", e.to_string()))?;
    let discount = match body.kind {
        CouponKind::AmountOff if body.value >= 1 => CouponDiscount::AmountOff {
            amount_off: money("value", body.value, &currency)?,
        },
        CouponKind::AmountOff => return Err(ApiError::invalid("value", "value must be 1 or more")),
        CouponKind::PercentOff => CouponDiscount::PercentOff {
            percent_off: Percent::parse(body.value).map_err(|_| {
                ApiError::invalid("value", "value must be a percentage from 1 to 100")
            })?,
        },
    };
    let max = i64::from(ordo_aggregates::coupon::MAX_QUOTA);
    if !(1..=max).contains(&body.quota) {
        return Err(ApiError::invalid("quota", "quota must be 1 to 1000000"));
    }
    if !(1..=body.quota).contains(&body.per_user_limit) {
        return Err(ApiError::invalid(
            "per_user_limit",
            "per_user_limit must be 1 to the quota",
        ));
    }
    if body.valid_until <= body.valid_from {
        return Err(ApiError::invalid(
            "valid_until",
            "valid_until must be after valid_from",
        ));
    }
    let batch_id = id_for(&headers, user.user_id, "coupon-batch")?;
    let terms = BatchTerms {
        batch_id: CouponBatchId::from(batch_id),
        name,
        discount,
        min_spend: money("min_spend", body.min_spend, &currency)?,
        quota: body.quota as u32,
        per_user_limit: body.per_user_limit as u32,
        valid_from: body.valid_from,
        valid_until: body.valid_until,
    };
    let committed = state
        .offers
        .coupons
        .execute(
            &batch_id.to_string(),
            CouponCommand::CreateBatch { terms },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CouponBatchWritten {
            batch_id,
            version: committed.version,
        }),
    )
        .into_response())
}

/// Coupon batches with how many coupons were claimed, newest first (admin).
#[utoipa::path(get, path = "/api/v1/admin/coupon-batches", tag = "promotions", params(OfferPaging),
    security(("bearer" = [])),
    responses((status = 200, body = CouponBatchPage)))]
pub async fn list_coupon_batches(
    State(state): State<AppState>,
    _user: AdminUser,
    Query(paging): Query<OfferPaging>,
) -> Result<ApiJson<CouponBatchPage>, ApiError> {
    let page = PageRequest::parse(paging.cursor.as_deref(), paging.limit)?;
    let page = offers::batches(&state.pool, &page).await?;
    Ok(ApiJson(CouponBatchPage {
        batches: page.items,
        next_cursor: page.next_cursor,
    }))
}
