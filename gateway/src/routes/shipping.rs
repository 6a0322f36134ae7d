//! Shipping fees: the rules an admin sets (`PUT /admin/shipping/rules`, replacing them
//! whole) and the fee of a delivery (`POST /shipping/quote`), priced by the checkout's own
//! calculation, so a quote, a preview and the order placed agree.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use ordo_aggregates::common::Currency;
use ordo_aggregates::shipping::{ShippingRule, ShippingRules};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::checkout::{self, CheckoutItem, CheckoutRequest};
use crate::identity::{AdminUser, CustomerUser};
use crate::problem::{ApiError, ApiJson};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/shipping/rules", get(get_rules).put(replace_rules))
        .route("/shipping/quote", post(quote))
}

/// One shipping rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShippingRuleBody {
    /// Its name (1 to 50 characters), unique in the set; shown with the fee it gives.
    #[schema(min_length = 1, max_length = 50)]
    pub name: String,
    /// The provinces it serves (as written in addresses, case aside), each in one rule
    /// only; none: every province no other rule names (at most one such rule).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub provinces: Vec<String>,
    /// The fee up to `base_weight_grams`, in minor units.
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub base_fee: i64,
    /// The weight the base fee covers, in grams.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub base_weight_grams: u32,
    /// The fee of each started kilogram beyond the base weight, in minor units.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub fee_per_extra_kg: i64,
    /// Free shipping once the goods (after discounts) reach this amount, in minor units.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub free_over: Option<i64>,
}

/// The whole rule set.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReplaceShippingRules {
    /// The currency of every fee and threshold (ISO 4217); orders in another currency ship
    /// free.
    #[schema(pattern = r"^[A-Za-z]{3}$")]
    pub currency: String,
    /// The rules, at most 50.
    #[schema(max_items = 50)]
    pub rules: Vec<ShippingRuleBody>,
}

/// The rules in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShippingRulesView {
    /// `null` until rules are set.
    pub currency: Option<String>,
    pub rules: Vec<ShippingRuleBody>,
    pub version: i64,
}

/// What to quote: the lines and, optionally, the address to deliver to.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ShippingQuoteRequest {
    /// The lines: each SKU at most once, 1 to 100.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<CheckoutItem>,
    /// One of the caller's addresses; without it the rule for every other province prices.
    #[serde(default)]
    pub address_id: Option<Uuid>,
}

/// The fee of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShippingQuoteView {
    /// In minor units of `currency`.
    pub shipping_fee: i64,
    pub currency: String,
    /// The rule applied; `null` when none applies (the delivery is free).
    pub rule: Option<String>,
    /// The goods' weight, from their SKUs' `weight_grams`.
    pub weight_grams: u64,
}

fn body_of(rule: &ShippingRule) -> ShippingRuleBody {
    ShippingRuleBody {
        name: rule.name.clone(),
        provinces: rule.provinces.clone(),
        base_fee: rule.base_fee,
        base_weight_grams: rule.base_weight_grams,
        fee_per_extra_kg: rule.fee_per_extra_kg,
        free_over: rule.free_over,
    }
}

fn view(rules: &ShippingRules, version: i64) -> ShippingRulesView {
    ShippingRulesView {
        currency: rules.currency().map(|c| c.to_string()),
        rules: rules.rules().iter().map(body_of).collect(),
        version,
    }
}

/// The shipping rules in force (admin).
#[utoipa::path(get, path = "/api/v1/admin/shipping/rules", tag = "shipping",
    security(("bearer" = [])),
    responses((status = 200, body = ShippingRulesView)))]
pub async fn get_rules(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<ApiJson<ShippingRulesView>, ApiError> {
    let (rules, version) = ordo_store::shipping::load(&state.pool)
        .await
        .map_err(ApiError::Internal)?;
    Ok(ApiJson(view(&rules, version)))
}

/// Replaces every shipping rule (admin). Orders placed before keep the fee they were
/// placed with.
#[utoipa::path(put, path = "/api/v1/admin/shipping/rules", tag = "shipping", request_body = ReplaceShippingRules,
    security(("bearer" = [])),
    responses((status = 200, body = ShippingRulesView)))]
pub async fn replace_rules(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiJson(body): ApiJson<ReplaceShippingRules>,
) -> Result<ApiJson<ShippingRulesView>, ApiError> {
    let currency = Currency::parse(&body.currency)
        .map_err(|e| ApiError::invalid("currency", e.to_string()))?;
    let rules = body
        .rules
        .into_iter()
        .map(|r| ShippingRule {
            name: r.name.trim().to_string(),
            provinces: r.provinces.iter().map(|p| p.trim().to_string()).collect(),
            base_fee: r.base_fee,
            base_weight_grams: r.base_weight_grams,
            fee_per_extra_kg: r.fee_per_extra_kg,
            free_over: r.free_over,
        })
        .collect::<Vec<_>>();
    let rules = ShippingRules::new(currency, rules).map_err(|err| ApiError::Unprocessable {
        code: err.code(),
        detail: err.to_string(),
    })?;
    let version = ordo_store::shipping::replace(&state.pool, &rules, Some(admin.user_id))
        .await
        .map_err(ApiError::Internal)?;
    Ok(ApiJson(view(&rules, version)))
}

/// The shipping fee of some lines delivered to one of the caller's addresses (customer):
/// the checkout's own calculation, so the preview and the order placed show the same fee.
#[utoipa::path(post, path = "/api/v1/shipping/quote", tag = "shipping", request_body = ShippingQuoteRequest,
    security(("bearer" = [])),
    responses((status = 200, body = ShippingQuoteView),
               (status = 404, description = "an unknown SKU or address"),
               (status = 409, description = "a SKU not on sale, or beyond its purchase limit")))]
pub async fn quote(
    State(state): State<AppState>,
    user: CustomerUser,
    ApiJson(body): ApiJson<ShippingQuoteRequest>,
) -> Result<ApiJson<ShippingQuoteView>, ApiError> {
    let request = CheckoutRequest {
        items: Some(body.items),
        from_cart: false,
        coupon_ids: Vec::new(),
        address_id: body.address_id,
    };
    let priced = checkout::price(&state, user.user_id, &request, chrono::Utc::now()).await?;
    Ok(ApiJson(ShippingQuoteView {
        shipping_fee: priced.shipping_fee.amount_minor(),
        currency: priced.shipping_fee.currency().to_string(),
        rule: priced.shipping_rule.clone(),
        weight_grams: priced.weight_grams,
    }))
}
