//! Orders: customers place them and read their own; the checkout saga decides them.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use ordo_aggregates::common::{OrderId, Quantity, Sku, UserId};
use ordo_aggregates::order::{OrderCommand, OrderLine};
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::api_error;
use crate::consistency::{self, PreferWait};
use crate::identity::{AuthUser, Role};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::routes::{decode_cursor, encode_cursor, page_limit};
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
    /// The lines: each SKU at most once.
    pub items: Vec<OrderItem>,
}

/// One line of a new order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OrderItem {
    pub sku: String,
    /// 1 to 1,000,000.
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

/// An order as its customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// pending, awaiting_payment, paid, rejected, cancelled, expired or refunded.
    pub status: String,
    pub items: Vec<OrderLineView>,
    /// Total in minor units.
    pub total_amount: i64,
    pub currency: String,
    /// Why it was rejected, cancelled or refunded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The SKUs that were short, for a rejected order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub short_skus: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The order's version in this read model.
    pub version: i64,
}

/// One line of an order.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct OrderLineView {
    pub sku: String,
    pub quantity: i32,
    /// Unit price in minor units, as it was at placement.
    pub unit_price: i64,
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
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    pub limit: Option<i64>,
}

/// Places an order (customer). Prices are taken from the catalog now; stock is reserved by
/// the checkout saga. With `Idempotency-Key`, repeating the request places nothing new.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = PlaceOrder,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key"),
           ("Prefer" = Option<String>, Header, description = "wait=N: answer once the order is decided")),
    responses((status = 202, body = OrderAccepted), (status = 422, description = "invalid items or unknown SKU")))]
pub async fn place_order(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    wait: PreferWait,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceOrder>,
) -> Result<Response, ApiError> {
    user.require_role(Role::Customer)?;
    if body.items.is_empty() {
        return Err(ApiError::invalid(
            "items",
            "an order needs at least one item",
        ));
    }
    if body.items.len() > 100 {
        return Err(ApiError::invalid("items", "an order has at most 100 items"));
    }
    let mut lines = Vec::with_capacity(body.items.len());
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
        // The catalog's write side is the authority on prices at placement.
        let (product, version) = state.products.load(sku.as_str()).await.map_err(api_error)?;
        if version == 0 {
            return Err(ApiError::Unprocessable {
                code: "unknown_sku",
                detail: format!("no product {sku} in the catalog"),
            });
        }
        let unit_price = product
            .price()
            .cloned()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("product {sku} has no price")))?;
        lines.push(OrderLine {
            sku,
            quantity,
            unit_price,
        });
    }
    let order_id = match idempotency_key(&headers)? {
        // The same key from the same customer always names the same order, so a repeated
        // request is a no-op on the aggregate (and a different body with it is refused).
        Some(key) => Uuid::new_v5(&user.user_id, key.as_bytes()),
        None => Uuid::new_v4(),
    };
    let committed = state
        .orders
        .execute(
            &order_id.to_string(),
            OrderCommand::Place {
                order_id: OrderId::from(order_id),
                customer_id: UserId::from(user.user_id),
                lines,
            },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
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
        let status: Option<(String,)> =
            sqlx::query_as("SELECT status FROM orders WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(&state.pool)
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
        match status {
            Some((status,)) if status != "pending" => return Ok(status),
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
    let order = load_orders(&state, Some(id), None, None, 1)
        .await?
        .pop()
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
    let limit = page_limit(paging.limit)?;
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
    let after = match paging.cursor.as_deref().map(decode_cursor).transpose()? {
        Some(cursor) => {
            let (at, id) = cursor
                .split_once('|')
                .and_then(|(at, id)| {
                    Some((at.parse::<DateTime<Utc>>().ok()?, id.parse::<Uuid>().ok()?))
                })
                .ok_or_else(|| {
                    ApiError::invalid("cursor", "cursor is not one this API gave out")
                })?;
            Some((at, id))
        }
        None => None,
    };
    let mut orders = load_orders(&state, None, Some(user.user_id), after, limit + 1).await?;
    let next_cursor = if orders.len() as i64 > limit {
        orders.truncate(limit as usize);
        orders
            .last()
            .map(|o| encode_cursor(&format!("{}|{}", o.placed_at.to_rfc3339(), o.order_id)))
    } else {
        None
    };
    Ok(ApiJson(OrderPage {
        orders,
        next_cursor,
    }))
}

type OrderRow = (
    Uuid,
    Uuid,
    String,
    i64,
    String,
    Option<String>,
    Vec<String>,
    Option<Uuid>,
    DateTime<Utc>,
    DateTime<Utc>,
    i64,
);

async fn load_orders(
    state: &AppState,
    order_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<OrderView>, ApiError> {
    let rows: Vec<OrderRow> = sqlx::query_as(
        "SELECT o.order_id, o.customer_id, o.status, o.total_minor, o.currency, o.reason,
                o.short_skus, o.payment_id, o.placed_at, o.updated_at, o.version
         FROM orders o
         WHERE ($1::uuid IS NULL OR o.order_id = $1)
           AND ($2::uuid IS NULL OR o.customer_id = $2)
           AND ($3::timestamptz IS NULL OR (o.placed_at, o.order_id) < ($3, $4::uuid))
         ORDER BY o.placed_at DESC, o.order_id DESC LIMIT $5",
    )
    .bind(order_id)
    .bind(customer_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&state.pool)
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let lines: Vec<(Uuid, String, i32, i64)> = sqlx::query_as(
        "SELECT order_id, sku, quantity, unit_price_minor FROM order_lines
         WHERE order_id = ANY($1) ORDER BY order_id, line_no",
    )
    .bind(&ids)
    .fetch_all(&state.pool)
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(rows
        .into_iter()
        .map(|r| OrderView {
            order_id: r.0,
            customer_id: r.1,
            status: r.2,
            total_amount: r.3,
            currency: r.4,
            reason: r.5,
            short_skus: r.6,
            payment_id: r.7,
            placed_at: r.8,
            updated_at: r.9,
            version: r.10,
            items: lines
                .iter()
                .filter(|l| l.0 == r.0)
                .map(|l| OrderLineView {
                    sku: l.1.clone(),
                    quantity: l.2,
                    unit_price: l.3,
                })
                .collect(),
        })
        .collect())
}
