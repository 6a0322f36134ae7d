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
use axum::routing::get;
use axum::Router;
use ordo_aggregates::common::{OrderId, Quantity, Sku, UserId};
use ordo_aggregates::order::{OrderCommand, OrderLine, SaleFacts};
use ordo_projections::queries::orders;
pub use ordo_projections::queries::orders::{OrderLineView, OrderView};
use ordo_projections::queries::page::PageRequest;
use ordo_store::catalog::{self, WriteLock};
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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
        .route("/orders/{order_id}", get(get_order))
}

/// A new order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlaceOrder {
    /// The lines, 1 to 100: each SKU at most once.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<OrderItem>,
}

/// One line of a new order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OrderItem {
    /// 1 to 64 letters, digits, '-' or '_' (case does not matter).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub sku: String,
    /// 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
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

/// Places an order (customer). Prices are taken from the catalog now; stock is reserved by
/// the checkout saga. With `Idempotency-Key`, repeating the request places nothing new.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = PlaceOrder,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"),
           ("Prefer" = Option<String>, Header, description = "wait=N: answer once the order is decided")),
    responses((status = 202, body = OrderAccepted),
               (status = 404, description = "problem urn:ordo:problem:unknown_sku: a SKU not in the catalog"),
               (status = 409, description = "a SKU is not on sale, or beyond its purchase limit"),
               (status = 422, description = "invalid items")))]
pub async fn place_order(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    wait: PreferWait,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceOrder>,
) -> Result<Response, ApiError> {
    if body.items.is_empty() {
        return Err(ApiError::invalid(
            "items",
            "an order needs at least one item",
        ));
    }
    if body.items.len() > 100 {
        return Err(ApiError::invalid("items", "an order has at most 100 items"));
    }
    let order_id = match idempotency_key(&headers)? {
        // The same key from the same customer always names the same order, so a repeated
        // request is a no-op on the aggregate (and a different body with it is refused).
        Some(key) => Uuid::new_v5(&user.user_id, key.as_bytes()),
        None => Uuid::new_v4(),
    };
    let internal = |e: sqlx::Error| ApiError::Internal(e.into());
    let mut lines = Vec::with_capacity(body.items.len());
    let mut sale_facts = Vec::with_capacity(body.items.len());
    for (index, item) in body.items.iter().enumerate() {
        let sku = Sku::parse(&item.sku)
            .map_err(|e| ApiError::invalid(format!("items[{index}].sku"), e.to_string()))?;
        let quantity = Quantity::parse(item.quantity)
            .map_err(|e| ApiError::invalid(format!("items[{index}].quantity"), e.to_string()))?;
        if lines.iter().any(|line: &OrderLine| line.sku == sku) {
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
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 255 => Ok(Some(key.to_string())),
        _ => Err(ApiError::invalid(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// One order (its customer or an admin; anyone else is told it does not exist).
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
    let order = orders::find(&state.pool, id)
        .await?
        .filter(|order| order.customer_id == user.user_id || user.is_admin())
        .ok_or_else(not_found)?;
    let mut response = ApiJson(order).into_response();
    if let Some(applied) = wait.applied() {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
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
    let page = orders::list_for_customer(&state.pool, user.user_id, &page).await?;
    Ok(ApiJson(OrderPage {
        orders: page.items,
        next_cursor: page.next_cursor,
    }))
}
