//! Orders: customers place them and read their own; the checkout saga decides them.
//!
//! Placing an order reads the catalog's write side, never a read model: the SKU index
//! (`ordo_store::catalog`) names the product of each SKU, the product aggregate gives its
//! price, whether it is on sale and its purchase limit, and the purchase ledger (kept by a
//! trigger in the same transaction as the order events) gives the units the customer
//! already has on orders that were not cancelled, rejected or expired. The order aggregate
//! decides with those facts ([`SaleFacts`]). When a SKU has a limit, the customer's purchase
//! lock is held from reading the ledger until the order commits, so two orders placed at
//! once by one customer cannot both slip under the limit.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ordo_aggregates::cart::customer_cart_id;
use ordo_aggregates::common::{OrderId, UserId};
use ordo_aggregates::order::OrderCommand;
use ordo_projections::queries::orders;
pub use ordo_projections::queries::orders::{OrderLineView, OrderView};
use ordo_projections::queries::page::PageRequest;
use ordo_store::catalog::{self, WriteLock};
use ordo_store::personal::open_value;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::checkout::{self as pricing, CheckoutQuote, CheckoutRequest};
use crate::commands::api_error;
use crate::consistency::{self, PreferWait};
use crate::identity::{AuthUser, CustomerUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list_orders).post(place_order))
        .route("/orders/prepare", post(prepare_order))
        .route("/orders/{order_id}", get(get_order))
}

/// A new order: the same body as a checkout preview, or the `quote_id` of one.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlaceOrder {
    /// A preview to order exactly (the other fields are then ignored).
    #[serde(default)]
    pub quote_id: Option<Uuid>,
    /// What to order, as for a preview.
    #[serde(flatten)]
    pub checkout: CheckoutRequest,
}

/// The answer to a placed order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderAccepted {
    pub order_id: Uuid,
    /// `pending` until the checkout saga decides; with `Prefer: wait=N`, the status reached.
    pub status: String,
    /// The order's version after placement.
    pub version: i64,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderView>,
    pub next_cursor: Option<String>,
}

/// Paging of the order list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct OrderPaging {
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Places an order (customer) from items, the cart (`from_cart: true`, whose ordered lines
/// are then removed) or a preview's `quote_id`. Prices are taken from the catalog now, with
/// the promotions and coupons that apply; an order from a quote whose prices changed is
/// refused with `price_changed` and a new quote. Stock and coupons are locked by the
/// checkout saga. With `Idempotency-Key`, repeating the request places nothing new.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = PlaceOrder,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"),
           ("Prefer" = Option<String>, Header, description = "wait=N: answer once the order is decided")),
    responses((status = 202, body = OrderAccepted),
               (status = 404, description = "no such quote, or problem urn:ordo:problem:unknown_sku (a SKU not in the catalog) or unknown_address (not one of the caller's addresses)"),
               (status = 409, description = "a SKU is not on sale, beyond its purchase limit, a coupon does not apply, or the quote's prices changed (price_changed, with new_quote)"),
               (status = 422, description = "invalid items")))]
pub async fn place_order(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    wait: PreferWait,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceOrder>,
) -> Result<Response, ApiError> {
    let order_id = match idempotency_key(&headers)? {
        // The same key from the same customer always names the same order, so a repeated
        // request is a no-op on the aggregate (and a different body with it is refused).
        Some(key) => Uuid::new_v5(&user.user_id, key.as_bytes()),
        None => Uuid::new_v4(),
    };
    let internal = |e: sqlx::Error| ApiError::Internal(e.into());
    let now = chrono::Utc::now();
    let (request, shown) = match body.quote_id {
        Some(quote_id) => {
            let stored = pricing::load_quote(&state.pool, user.user_id, quote_id).await?;
            (stored.request, Some(stored.quoted))
        }
        None => (body.checkout, None),
    };
    let priced = pricing::price(&state, user.user_id, &request, now).await?;
    if let Some(shown) = &shown {
        let fresh = priced.view(shown.quote_id, shown.expires_at);
        if !fresh.same_prices(shown) || shown.expires_at <= now {
            let new_quote =
                pricing::store_quote(&state.pool, user.user_id, &request, &priced, now).await?;
            return Ok(price_changed(new_quote));
        }
    }
    pricing::require_coupons(&priced, &request)?;
    let order_pricing = priced.pricing(shown.as_ref().map(|q| q.quote_id));
    let lines = priced.lines.clone();
    let mut sale_facts = priced.sale_facts.clone();
    let limited = sale_facts.iter().any(|f| f.max_per_customer.is_some());
    let lock = if limited {
        Some(
            WriteLock::customer_purchases(&state.pool, user.user_id)
                .await
                .map_err(internal)?,
        )
    } else {
        None
    };
    let placed = async {
        for facts in sale_facts.iter_mut() {
            if facts.max_per_customer.is_some() {
                facts.already_ordered =
                    catalog::units_ordered(&state.pool, user.user_id, facts.sku.as_str(), order_id)
                        .await
                        .map_err(internal)?;
            }
        }
        state
            .orders
            .execute(
                &order_id.to_string(),
                OrderCommand::Place {
                    order_id: OrderId::from(order_id),
                    customer_id: UserId::from(user.user_id),
                    lines,
                    sale_facts,
                    pricing: Some(order_pricing),
                    delivery_address: priced.address.clone().map(Box::new),
                    // The checkout saga takes the ordered units out of the cart.
                    from_cart: priced
                        .from_cart
                        .then(|| customer_cart_id(UserId::from(user.user_id))),
                },
                CommandMetadata::from_request(&request_id, Some(user.user_id)),
            )
            .await
            .map_err(api_error)
    }
    .await;
    if let Some(lock) = lock {
        lock.release().await.map_err(internal)?;
    }
    let committed = placed?;
    consistency::record_write(
        &state.pool,
        user.user_id,
        "order",
        &order_id.to_string(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let mut status = "pending".to_string();
    if let Some(timeout) = wait.0 {
        status = wait_until_decided(&state, order_id, timeout).await?;
    }
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/orders/{order_id}"))],
        ApiJson(OrderAccepted {
            order_id,
            status,
            version: committed.version,
        }),
    )
        .into_response();
    if let Some(applied) = wait.applied() {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

/// `409 urn:ordo:problem:price_changed` with the new quote to order from.
fn price_changed(new_quote: CheckoutQuote) -> Response {
    let body = serde_json::json!({
        "type": "urn:ordo:problem:price_changed",
        "title": "Conflict",
        "status": 409,
        "detail": "the prices of the quote changed; order from the new quote",
        "new_quote": new_quote,
    });
    let mut response = (StatusCode::CONFLICT, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// Previews a checkout (customer): the lines at catalog prices, the promotions and coupons
/// that apply (and those that do not, with why), shipping and the total, kept as a quote
/// for 15 minutes. Delisted SKUs and lines beyond a purchase limit are refused.
#[utoipa::path(post, path = "/api/v1/orders/prepare", tag = "orders", request_body = CheckoutRequest,
    security(("bearer" = [])),
    responses((status = 200, body = CheckoutQuote),
               (status = 409, description = "a SKU is not on sale, beyond its purchase limit, or the cart is empty"),
               (status = 404, description = "problem urn:ordo:problem:unknown_sku (a SKU not in the catalog) or unknown_address (not one of the caller's addresses)"),
               (status = 422, description = "invalid items")))]
pub async fn prepare_order(
    State(state): State<AppState>,
    user: CustomerUser,
    ApiJson(body): ApiJson<CheckoutRequest>,
) -> Result<ApiJson<CheckoutQuote>, ApiError> {
    let now = chrono::Utc::now();
    let priced = pricing::price(&state, user.user_id, &body, now).await?;
    let quote = pricing::store_quote(&state.pool, user.user_id, &body, &priced, now).await?;
    Ok(ApiJson(quote))
}

/// Waits until the order's read model shows a status other than `pending`.
async fn wait_until_decided(
    state: &AppState,
    order_id: Uuid,
    timeout: std::time::Duration,
) -> Result<String, ApiError> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        let status = orders::status(&state.pool, order_id).await?;
        match status {
            Some(status) if status != "pending" => return Ok(status),
            _ if started.elapsed() >= timeout => return Ok("pending".into()),
            _ => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let visible = |b: &u8| (0x21..=0x7e).contains(b);
    let well_formed = (1..=255).contains(&bytes.len())
        && bytes.first().is_some_and(visible)
        && bytes.last().is_some_and(visible)
        && bytes.iter().all(|b| (0x20..=0x7e).contains(b));
    match value.to_str() {
        Ok(key) if well_formed => Ok(Some(key.to_string())),
        _ => Err(ApiError::invalid(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// One order (its customer or an admin; anyone else is told it does not exist), with the
/// price breakdown it was placed with (each line's unit price, discount and total; the
/// subtotal, the discounts, the shipping fee and the total) and its delivery address.
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders",
    security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 404, description = "no such order")))]
pub async fn get_order(
    State(state): State<AppState>,
    user: AuthUser,
    wait: PreferWait,
    Path(order_id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no order {order_id}"));
    let id: Uuid = order_id.parse().map_err(|_| not_found())?;
    if let Some(timeout) = wait.0 {
        consistency::wait_for_last_write(
            &state.pool,
            user.user_id,
            "projection-orders",
            "order",
            timeout,
        )
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let mut order = orders::find(&state.pool, id)
        .await?
        .filter(|order| order.customer_id == user.user_id || user.is_admin())
        .ok_or_else(not_found)?;
    open_address(&state, &mut order).await?;
    let mut response = ApiJson(order).into_response();
    if let Some(applied) = wait.applied() {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

/// Opens the order's sealed delivery address for its reader (erased values stay null).
async fn open_address(state: &AppState, order: &mut OrderView) -> Result<(), ApiError> {
    let opened = match &order.sealed_address {
        Some(sealed) => Some(
            open_value(state.profiles.vault.as_ref(), sealed)
                .await
                .map_err(|e| ApiError::Internal(e.into()))?,
        ),
        None => None,
    };
    order.show_address(opened.as_ref());
    Ok(())
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderPaging),
    security(("bearer" = [])),
    responses((status = 200, body = OrderPage)))]
pub async fn list_orders(
    State(state): State<AppState>,
    user: AuthUser,
    wait: PreferWait,
    Query(paging): Query<OrderPaging>,
) -> Result<ApiJson<OrderPage>, ApiError> {
    let page = PageRequest::parse(paging.cursor.as_deref(), paging.limit)?;
    if let Some(timeout) = wait.0 {
        consistency::wait_for_last_write(
            &state.pool,
            user.user_id,
            "projection-orders",
            "order",
            timeout,
        )
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let mut page = orders::list_for_customer(&state.pool, user.user_id, &page).await?;
    for order in page.items.iter_mut() {
        open_address(&state, order).await?;
    }
    Ok(ApiJson(OrderPage {
        orders: page.items,
        next_cursor: page.next_cursor,
    }))
}
