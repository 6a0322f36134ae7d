//! Pricing a checkout: what `POST /api/v1/orders/prepare` shows and `POST /api/v1/orders`
//! places. Both take the same request (items, or the caller's cart; coupons; an address),
//! read the catalog's write side for prices and sale facts, price the lines with the active
//! promotions and the coupons chosen ([`crate::offers::Offers::quote`]), add the shipping
//! fee ([`shipping_fee`]) and copy the address chosen from the customer's profile.
//!
//! A preview is stored as a quote (`checkout_quotes`, migration 0075) owned by the customer
//! for [`QUOTE_TTL_MINUTES`]; an order placed from a quote is priced again and refused with
//! `urn:ordo:problem:price_changed`, carrying a new quote, when anything it shows differs.

use chrono::{DateTime, Duration, Utc};
use ordo_aggregates::common::{AddressId, CouponId, Money, Quantity, Sku, UserId};
use ordo_aggregates::customer::PostalAddress;
use ordo_aggregates::order::{
    check_sale, LineDiscount, OrderDiscount, OrderLine, OrderPricing, SaleFacts,
};
use ordo_aggregates::pricing::{DiscountSource, PriceLine, Quote, RefusalReason};
use ordo_aggregates::shipping::{ShippingFee, ShippingRules};
use ordo_store::catalog;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::api_error;
use crate::offers::OffersError;
use crate::problem::ApiError;
use crate::routes::carts::customer_cart_id;
use crate::routes::coupons::{DiscountView, QuoteLineView, RefusalView};
use crate::state::AppState;

/// How long a quote can be ordered from.
pub const QUOTE_TTL_MINUTES: i64 = 15;
/// Most lines in one checkout.
pub const MAX_LINES: usize = 100;
/// Most coupons in one checkout.
pub const MAX_COUPONS: usize = 10;

/// The delivery fee of an order: the shipping rules' fee ([`ShippingRules::fee`]) for the
/// goods' weight, worth what they cost after discounts, delivered to `province` (`None`
/// before an address is chosen). The shipping quote, the preview and the order all take
/// their fee from here, read from the rules' write side.
pub fn shipping_fee(
    rules: &ShippingRules,
    goods_after_discounts: &Money,
    weight_grams: u64,
    province: Option<&str>,
) -> ShippingFee {
    rules.fee(province, weight_grams, goods_after_discounts)
}

/// One line of a checkout.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckoutItem {
    /// 1 to 64 letters, digits, '-' or '_' (case does not matter).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub sku: String,
    /// 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
}

/// What to check out: `items`, or `from_cart: true` for the caller's cart; the coupons to
/// apply, in order; the address to deliver to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CheckoutRequest {
    /// The lines: each SKU at most once, 1 to 100 (absent with `from_cart`).
    #[serde(default)]
    #[schema(min_items = 1, max_items = 100)]
    pub items: Option<Vec<CheckoutItem>>,
    /// Take the lines from the caller's cart.
    #[serde(default)]
    pub from_cart: bool,
    /// Coupons to apply, in order (at most 10).
    #[serde(default)]
    #[schema(max_items = 10)]
    pub coupon_ids: Vec<Uuid>,
    /// One of the caller's addresses.
    #[serde(default)]
    pub address_id: Option<Uuid>,
}

/// A priced checkout.
pub struct PricedCheckout {
    /// The lines at catalog prices.
    pub lines: Vec<OrderLine>,
    /// The catalog's facts of their SKUs (the ledger counts not yet read).
    pub sale_facts: Vec<SaleFacts>,
    /// The pricing engine's answer.
    pub quote: Quote,
    /// The delivery fee.
    pub shipping_fee: Money,
    /// The shipping rule that gave the fee, if any.
    pub shipping_rule: Option<String>,
    /// The goods' weight, from their SKUs.
    pub weight_grams: u64,
    /// What the customer pays.
    pub total: Money,
    /// The address chosen, as the profile holds it (sealed).
    pub address: Option<PostalAddress>,
    /// Whether the lines came from the cart.
    pub from_cart: bool,
}

impl PricedCheckout {
    /// The breakdown the order records.
    pub fn pricing(&self, quote_id: Option<Uuid>) -> OrderPricing {
        OrderPricing {
            quote_id,
            subtotal: self.quote.subtotal.clone(),
            line_discounts: self
                .quote
                .lines
                .iter()
                .filter(|l| l.discount.amount_minor() > 0)
                .map(|l| LineDiscount {
                    sku: l.sku.clone(),
                    discount: l.discount.clone(),
                })
                .collect(),
            discounts: self
                .quote
                .discounts
                .iter()
                .map(|d| OrderDiscount {
                    source: d.source,
                    id: d.id,
                    amount: d.amount.clone(),
                })
                .collect(),
            shipping_fee: self.shipping_fee.clone(),
        }
    }

    /// The quote as the customer sees it.
    pub fn view(&self, quote_id: Uuid, expires_at: DateTime<Utc>) -> CheckoutQuote {
        let quote = &self.quote;
        CheckoutQuote {
            quote_id,
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
                    source: name_of(d.source),
                    id: d.id,
                    amount: d.amount.amount_minor(),
                })
                .collect(),
            refusals: quote
                .refusals
                .iter()
                .map(|r| RefusalView {
                    source: name_of(r.source),
                    id: r.id,
                    reason: name_of::<RefusalReason>(r.reason),
                })
                .collect(),
            shipping_fee: self.shipping_fee.amount_minor(),
            total: self.total.amount_minor(),
            currency: quote.currency.to_string(),
            expires_at,
        }
    }
}

/// A checkout preview; amounts in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckoutQuote {
    /// Order from it with `POST /api/v1/orders {quote_id}` before `expires_at`.
    pub quote_id: Uuid,
    pub lines: Vec<QuoteLineView>,
    pub subtotal: i64,
    pub discounts: Vec<DiscountView>,
    /// Promotions and coupons not applied, and why.
    pub refusals: Vec<RefusalView>,
    pub shipping_fee: i64,
    /// What the customer pays: subtotal less the discounts plus shipping.
    pub total: i64,
    pub currency: String,
    pub expires_at: DateTime<Utc>,
}

impl CheckoutQuote {
    /// Whether two quotes show the same prices (ids and expiry aside).
    pub fn same_prices(&self, other: &CheckoutQuote) -> bool {
        self.lines == other.lines
            && self.subtotal == other.subtotal
            && self.discounts == other.discounts
            && self.shipping_fee == other.shipping_fee
            && self.total == other.total
            && self.currency == other.currency
    }
}

fn name_of<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn internal(err: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(err.into())
}

/// Prices `request` for `user` now. Refuses (problem+json) unknown or delisted SKUs, lines
/// beyond a purchase limit (counting the customer's other orders), an unknown address and
/// an empty cart. Coupons that do not apply are listed in the quote's refusals.
pub async fn price(
    state: &AppState,
    user: Uuid,
    request: &CheckoutRequest,
    now: DateTime<Utc>,
) -> Result<PricedCheckout, ApiError> {
    if request.coupon_ids.len() > MAX_COUPONS {
        return Err(ApiError::invalid("coupon_ids", "at most 10 coupons"));
    }
    let items: Vec<(String, i64)> = match (&request.items, request.from_cart) {
        (Some(_), true) => {
            return Err(ApiError::invalid(
                "items",
                "give either items or from_cart, not both",
            ))
        }
        (Some(items), false) => items.iter().map(|i| (i.sku.clone(), i.quantity)).collect(),
        (None, true) => {
            let (cart, _) = state
                .carts
                .load(&customer_cart_id(user).to_string())
                .await
                .map_err(api_error)?;
            let lines: Vec<(String, i64)> = cart
                .lines()
                .iter()
                .map(|(sku, q)| (sku.to_string(), i64::from(*q)))
                .collect();
            if lines.is_empty() {
                return Err(ApiError::Refused {
                    code: "empty_cart",
                    detail: "the cart has no line to order".into(),
                });
            }
            lines
        }
        (None, false) => {
            return Err(ApiError::invalid(
                "items",
                "an order needs at least one item, or from_cart: true",
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::invalid(
            "items",
            "an order needs at least one item",
        ));
    }
    if items.len() > MAX_LINES {
        return Err(ApiError::invalid("items", "an order has at most 100 items"));
    }
    let mut lines: Vec<OrderLine> = Vec::with_capacity(items.len());
    let mut weight_grams = 0u64;
    let mut sale_facts = Vec::with_capacity(items.len());
    for (index, (raw_sku, raw_quantity)) in items.iter().enumerate() {
        let sku = Sku::parse(raw_sku)
            .map_err(|e| ApiError::invalid(format!("items[{index}].sku"), e.to_string()))?;
        let quantity = Quantity::parse(*raw_quantity)
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
        // The catalog's write side is the authority on prices at placement.
        let product_id = catalog::product_of_sku(&state.pool, sku.as_str())
            .await
            .map_err(internal)?
            .ok_or_else(unknown)?;
        let (product, _) = state.products.load(&product_id).await.map_err(api_error)?;
        let offer = product.sku(&sku).ok_or_else(unknown)?;
        weight_grams = weight_grams.saturating_add(
            u64::from(offer.spec.weight_grams.unwrap_or(0))
                .saturating_mul(u64::from(quantity.get())),
        );
        lines.push(OrderLine {
            sku: sku.clone(),
            quantity,
            unit_price: offer.spec.price.clone(),
        });
        sale_facts.push(SaleFacts {
            sku,
            on_sale: offer.on_sale,
            max_per_customer: offer.spec.max_per_customer,
            already_ordered: 0,
        });
    }
    // The same checks the order will make, so a preview explains every refusal up front.
    let mut counted = sale_facts.clone();
    for facts in counted.iter_mut() {
        if facts.max_per_customer.is_some() {
            facts.already_ordered =
                catalog::units_ordered(&state.pool, user, facts.sku.as_str(), Uuid::nil())
                    .await
                    .map_err(internal)?;
        }
    }
    check_sale(&lines, &counted).map_err(|err| ApiError::Refused {
        code: err.code(),
        detail: err.to_string(),
    })?;
    let mut province = None;
    let address = match request.address_id {
        None => None,
        Some(address_id) => {
            let (customer, _) = state
                .profiles
                .customers
                .load(&user.to_string())
                .await
                .map_err(api_error)?;
            let stored = customer
                .address(AddressId::from(address_id))
                .filter(|a| !a.address.recipient.is_erased())
                .ok_or_else(|| ApiError::UnknownReference {
                    code: "unknown_address",
                    detail: format!("no address {address_id} in your profile"),
                })?;
            // The fee depends on the province: opened from the profile's write side.
            province = state
                .profiles
                .address_snapshot(UserId::from(user), AddressId::from(address_id))
                .await
                .map_err(internal)?
                .map(|a| a.province);
            Some(stored.address.clone())
        }
    };
    let price_lines: Vec<PriceLine> = lines
        .iter()
        .map(|l| PriceLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price.clone(),
        })
        .collect();
    let coupon_ids: Vec<CouponId> = request
        .coupon_ids
        .iter()
        .map(|id| CouponId::from(*id))
        .collect();
    let quote = state
        .offers
        .quote(UserId::from(user), None, &price_lines, &coupon_ids, now)
        .await
        .map_err(|err| match err {
            OffersError::Pricing(err) => ApiError::Unprocessable {
                code: "unpriceable_cart",
                detail: err.to_string(),
            },
            other => internal(other),
        })?;
    let (rules, _) = ordo_store::shipping::load(&state.pool)
        .await
        .map_err(ApiError::Internal)?;
    let ShippingFee {
        fee: shipping_fee,
        rule: shipping_rule,
    } = shipping_fee(&rules, &quote.total, weight_grams, province.as_deref());
    let total = quote
        .total
        .checked_add(&shipping_fee)
        .map_err(|e| internal(anyhow::anyhow!("{e:?}")))?;
    Ok(PricedCheckout {
        lines,
        sale_facts,
        quote,
        shipping_fee,
        shipping_rule,
        weight_grams,
        total,
        address,
        from_cart: request.from_cart,
    })
}

/// Refuses an order whose coupons do not all apply: each coupon named must be in the
/// discounts, else the order says which and why.
pub fn require_coupons(priced: &PricedCheckout, request: &CheckoutRequest) -> Result<(), ApiError> {
    let applied = priced.quote.applied_coupons();
    let refused: Vec<String> = request
        .coupon_ids
        .iter()
        .filter(|id| !applied.contains(&CouponId::from(**id)))
        .map(|id| {
            let reason = priced
                .quote
                .refusals
                .iter()
                .find(|r| r.source == DiscountSource::Coupon && r.id == *id)
                .map(|r| name_of::<RefusalReason>(r.reason))
                .unwrap_or_else(|| "not_applicable".into());
            format!("coupon {id}: {reason}")
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Refused {
            code: "coupon_not_applicable",
            detail: refused.join("; "),
        })
    }
}

/// A stored quote.
pub struct StoredQuote {
    /// The request it priced.
    pub request: CheckoutRequest,
    /// What it showed.
    pub quoted: CheckoutQuote,
}

/// Stores a new quote of `priced` for `customer` and returns its view.
pub async fn store_quote(
    pool: &PgPool,
    customer: Uuid,
    request: &CheckoutRequest,
    priced: &PricedCheckout,
    now: DateTime<Utc>,
) -> Result<CheckoutQuote, ApiError> {
    let quote_id = Uuid::new_v4();
    let expires_at = now + Duration::minutes(QUOTE_TTL_MINUTES);
    let view = priced.view(quote_id, expires_at);
    sqlx::query(
        "INSERT INTO checkout_quotes (quote_id, customer_id, request, quoted, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(quote_id)
    .bind(customer)
    .bind(serde_json::to_value(request).map_err(internal)?)
    .bind(serde_json::to_value(&view).map_err(internal)?)
    .bind(expires_at)
    .execute(pool)
    .await
    .map_err(internal)?;
    Ok(view)
}

/// The quote `quote_id` of `customer`; anyone else's, or none, is not found.
pub async fn load_quote(
    pool: &PgPool,
    customer: Uuid,
    quote_id: Uuid,
) -> Result<StoredQuote, ApiError> {
    let row: Option<(serde_json::Value, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT request, quoted, expires_at FROM checkout_quotes
          WHERE quote_id = $1 AND customer_id = $2",
    )
    .bind(quote_id)
    .bind(customer)
    .fetch_optional(pool)
    .await
    .map_err(internal)?;
    let (request, quoted, expires_at) =
        row.ok_or_else(|| ApiError::NotFound(format!("no quote {quote_id}")))?;
    let mut quoted: CheckoutQuote = serde_json::from_value(quoted).map_err(internal)?;
    // The column is the authority on expiry.
    quoted.expires_at = expires_at;
    Ok(StoredQuote {
        request: serde_json::from_value(request).map_err(internal)?,
        quoted,
    })
}
