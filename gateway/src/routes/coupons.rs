//! Coupons as customers claim and list them, and the price of a cart with the promotions
//! that apply and the coupons chosen.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use ordo_aggregates::common::{CouponId, Quantity, Sku, UserId};
use ordo_aggregates::coupon::CouponCommand;
use ordo_aggregates::pricing::{DiscountSource, PriceLine, RefusalReason};
use ordo_projections::queries::offers;
pub use ordo_projections::queries::offers::CouponView;
use ordo_projections::queries::page::PageRequest;
use ordo_store::catalog;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::api_error;
use crate::consistency::{self, PreferWait};
use crate::identity::{AuthUser, CustomerUser};
use crate::offers::OffersError;
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::routes::orders::idempotency_key;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/coupons", get(list_coupons))
        .route("/coupons/claim", post(claim_coupon))
        .route("/pricing/quote", post(quote))
}

/// A claim of one coupon of a batch.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClaimCoupon {
    pub batch_id: Uuid,
}

/// The coupon claimed.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponClaimed {
    pub coupon_id: Uuid,
    pub batch_id: Uuid,
    /// Always `claimed`.
    pub status: String,
    /// The batch's version after the claim; send `Prefer: wait=N` on `GET /coupons` to read it.
    pub version: i64,
}

/// A page of the caller's coupons, newest claim first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponPage {
    pub coupons: Vec<CouponView>,
    pub next_cursor: Option<String>,
}

/// Filters of the coupon list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CouponFilter {
    /// Only coupons with this status: `claimed`, `locked` or `redeemed`.
    #[param(pattern = "^(claimed|locked|redeemed)$")]
    pub status: Option<String>,
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Claims a coupon of a batch (customer). With `Idempotency-Key`, a repeat answers the same
/// coupon and claims nothing new.
#[utoipa::path(post, path = "/api/v1/coupons/claim", tag = "coupons", request_body = ClaimCoupon,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$")),
    responses((status = 201, body = CouponClaimed),
               (status = 404, description = "no such batch"),
               (status = 409, description = "coupons_exhausted, coupon_limit_reached or coupon_batch_expired")))]
pub async fn claim_coupon(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ClaimCoupon>,
) -> Result<Response, ApiError> {
    let coupon_id = match idempotency_key(&headers)? {
        Some(key) => Uuid::new_v5(
            &user.user_id,
            format!("coupon-claim:{}:{key}", body.batch_id).as_bytes(),
        ),
        None => Uuid::new_v4(),
    };
    let committed = state
        .offers
        .coupons
        .execute(
            &body.batch_id.to_string(),
            CouponCommand::Claim {
                coupon_id: CouponId::from(coupon_id),
                user_id: UserId::from(user.user_id),
                at: Utc::now(),
            },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    consistency::record_write(
        &state.pool,
        user.user_id,
        "coupon_batch",
        &body.batch_id.to_string(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CouponClaimed {
            coupon_id,
            batch_id: body.batch_id,
            status: "claimed".into(),
            version: committed.version,
        }),
    )
        .into_response())
}

/// The caller's coupons, newest claim first, optionally of one status.
#[utoipa::path(get, path = "/api/v1/coupons", tag = "coupons", params(CouponFilter),
    security(("bearer" = [])),
    responses((status = 200, body = CouponPage)))]
pub async fn list_coupons(
    State(state): State<AppState>,
    user: AuthUser,
    wait: PreferWait,
    Query(filter): Query<CouponFilter>,
) -> Result<Response, ApiError> {
    let status = offers::coupon_status(filter.status.as_deref())?;
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    if let Some(timeout) = wait.0 {
        consistency::wait_for_last_write(
            &state.pool,
            user.user_id,
            "projection-coupons",
            "coupon_batch",
            timeout,
        )
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let page = offers::coupons_of(&state.pool, user.user_id, status, &page).await?;
    let mut response = ApiJson(CouponPage {
        coupons: page.items,
        next_cursor: page.next_cursor,
    })
    .into_response();
    if let Some(applied) = wait.applied() {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

/// A cart to price.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QuoteCart {
    /// The lines: each SKU at most once, 1 to 100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<QuoteItem>,
    /// The coupons to apply, in order (at most 10).
    #[serde(default)]
    #[schema(max_items = 10)]
    pub coupon_ids: Vec<Uuid>,
}

/// One line of a cart.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QuoteItem {
    /// 1 to 64 letters, digits, '-' or '_' (case does not matter).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: i64,
}

/// One line of a quote; amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuoteLineView {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: i64,
    pub subtotal: i64,
    /// The line's share of every discount.
    pub discount: i64,
    pub line_total: i64,
}

/// One discount applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DiscountView {
    /// `promotion` or `coupon`.
    pub source: String,
    pub id: Uuid,
    pub amount: i64,
}

/// A promotion or coupon not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefusalView {
    /// `promotion` or `coupon`.
    pub source: String,
    pub id: Uuid,
    /// `unknown_coupon`, `not_yours`, `not_claimed`, `not_yet_valid`, `expired`,
    /// `other_currency`, `min_spend_not_met`, `one_per_batch` or `excluded`.
    pub reason: String,
}

/// What a cart costs; amounts in minor units of `currency`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteView {
    pub currency: String,
    pub lines: Vec<QuoteLineView>,
    pub subtotal: i64,
    pub discounts: Vec<DiscountView>,
    pub total: i64,
    pub refusals: Vec<RefusalView>,
    /// The instant priced at.
    pub priced_at: DateTime<Utc>,
}

fn name_of<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Prices a cart now (customer): catalog prices, the promotions that apply, then the coupons
/// chosen. Direct cuts first, thresholds in priority order judged after them (an exclusive
/// promotion that applies excludes the others), then coupons; percentages round down.
#[utoipa::path(post, path = "/api/v1/pricing/quote", tag = "coupons", request_body = QuoteCart,
    security(("bearer" = [])),
    responses((status = 200, body = QuoteView),
               (status = 404, description = "problem urn:ordo:problem:unknown_sku: a SKU not in the catalog"),
               (status = 422, description = "invalid items, or lines in several currencies")))]
pub async fn quote(
    State(state): State<AppState>,
    user: CustomerUser,
    ApiJson(body): ApiJson<QuoteCart>,
) -> Result<ApiJson<QuoteView>, ApiError> {
    if body.items.is_empty() || body.items.len() > 100 {
        return Err(ApiError::invalid("items", "a cart has 1 to 100 items"));
    }
    if body.coupon_ids.len() > 10 {
        return Err(ApiError::invalid("coupon_ids", "at most 10 coupons"));
    }
    let internal = |e: sqlx::Error| ApiError::Internal(e.into());
    let mut lines: Vec<PriceLine> = Vec::with_capacity(body.items.len());
    for (index, item) in body.items.iter().enumerate() {
        let sku = Sku::parse(&item.sku)
            .map_err(|e| ApiError::invalid(format!("items[{index}].sku"), e.to_string()))?;
        let quantity = Quantity::parse(item.quantity)
            .map_err(|e| ApiError::invalid(format!("items[{index}].quantity"), e.to_string()))?;
        if lines.iter().any(|line| line.sku == sku) {
            return Err(ApiError::invalid(
                format!("items[{index}].sku"),
                format!("{sku} appears twice; put the whole quantity on one line"),
            ));
        }
        let unknown = || ApiError::UnknownReference {
            code: "unknown_sku",
            detail: format!("no product {sku} in the catalog"),
        };
        let product_id = catalog::product_of_sku(&state.pool, sku.as_str())
            .await
            .map_err(internal)?
            .ok_or_else(unknown)?;
        let (product, _) = state.products.load(&product_id).await.map_err(api_error)?;
        let offer = product.sku(&sku).ok_or_else(unknown)?;
        lines.push(PriceLine {
            sku: sku.clone(),
            quantity,
            unit_price: offer.spec.price.clone(),
        });
    }
    let coupon_ids: Vec<CouponId> = body
        .coupon_ids
        .iter()
        .map(|id| CouponId::from(*id))
        .collect();
    let now = Utc::now();
    let quote = state
        .offers
        .quote(UserId::from(user.user_id), None, &lines, &coupon_ids, now)
        .await
        .map_err(|err| match err {
            OffersError::Pricing(err) => ApiError::Unprocessable {
                code: "unpriceable_cart",
                detail: err.to_string(),
            },
            other => ApiError::Internal(other.into()),
        })?;
    Ok(ApiJson(QuoteView {
        currency: quote.currency.to_string(),
        lines: quote
            .lines
            .iter()
            .map(|l| QuoteLineView {
                sku: l.sku.to_string(),
                quantity: l.quantity.get(),
                unit_price: l.unit_price.amount_minor(),
                subtotal: l.subtotal.amount_minor(),
                discount: l.discount.amount_minor(),
                line_total: l.line_total.amount_minor(),
            })
            .collect(),
        subtotal: quote.subtotal.amount_minor(),
        discounts: quote
            .discounts
            .iter()
            .map(|d| DiscountView {
                source: name_of::<DiscountSource>(d.source),
                id: d.id,
                amount: d.amount.amount_minor(),
            })
            .collect(),
        total: quote.total.amount_minor(),
        refusals: quote
            .refusals
            .iter()
            .map(|r| RefusalView {
                source: name_of::<DiscountSource>(r.source),
                id: r.id,
                reason: name_of::<RefusalReason>(r.reason),
            })
            .collect(),
        priced_at: now,
    }))
}
