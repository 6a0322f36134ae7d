//! Reads of the `orders` and `order_lines` read models: one order, a customer's orders
//! newest first, and an order's status (what `Prefer: wait` polls).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::page::{NewestFirst, Page, PageRequest};
use super::shipments::{self, ShipmentView};
use super::{PgPool, QueryResult};

/// An order as its customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// pending, awaiting_payment, paid, shipped, delivered, completed, rejected, cancelled,
    /// expired or refunded.
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
    /// Its shipments once paid, with their tracking.
    pub shipments: Vec<ShipmentView>,
}

/// One line of an order.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct OrderLineView {
    pub sku: String,
    pub quantity: i32,
    /// Unit price in minor units, as it was at placement.
    pub unit_price: i64,
}

/// A row of `orders`, before its lines are added.
#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    customer_id: Uuid,
    status: String,
    total_minor: i64,
    currency: String,
    reason: Option<String>,
    short_skus: Vec<String>,
    payment_id: Option<Uuid>,
    placed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

/// A row of `order_lines`.
#[derive(sqlx::FromRow)]
struct LineRow {
    order_id: Uuid,
    sku: String,
    quantity: i32,
    unit_price_minor: i64,
}

/// The order with this id, whoever placed it.
pub async fn find(pool: &PgPool, order_id: Uuid) -> QueryResult<Option<OrderView>> {
    Ok(load(pool, Some(order_id), None, None, 1).await?.pop())
}

/// A page of the orders `customer_id` placed, newest first.
pub async fn list_for_customer(
    pool: &PgPool,
    customer_id: Uuid,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<OrderView>> {
    let orders = load(
        pool,
        None,
        Some(customer_id),
        page.after,
        page.rows_to_read(),
    )
    .await?;
    Ok(Page::cut(orders, page.limit, |order| NewestFirst {
        at: order.placed_at,
        id: order.order_id,
    }))
}

/// The status of the order in the read model, if it is there yet.
pub async fn status(pool: &PgPool, order_id: Uuid) -> QueryResult<Option<String>> {
    let status: Option<(String,)> = sqlx::query_as("SELECT status FROM orders WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(pool)
        .await?;
    Ok(status.map(|(status,)| status))
}

async fn load(
    pool: &PgPool,
    order_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    after: Option<NewestFirst>,
    limit: i64,
) -> QueryResult<Vec<OrderView>> {
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
    .bind(after.map(|a| a.at))
    .bind(after.map(|a| a.id))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.order_id).collect();
    let lines: Vec<LineRow> = sqlx::query_as(
        "SELECT order_id, sku, quantity, unit_price_minor FROM order_lines
         WHERE order_id = ANY($1) ORDER BY order_id, line_no",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let shipments = shipments::of_orders(pool, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| OrderView {
            items: lines
                .iter()
                .filter(|l| l.order_id == r.order_id)
                .map(|l| OrderLineView {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price_minor,
                })
                .collect(),
            order_id: r.order_id,
            customer_id: r.customer_id,
            status: r.status,
            total_amount: r.total_minor,
            currency: r.currency,
            reason: r.reason,
            short_skus: r.short_skus,
            payment_id: r.payment_id,
            placed_at: r.placed_at,
            updated_at: r.updated_at,
            version: r.version,
            shipments: shipments
                .iter()
                .filter(|s| s.order_id == r.order_id)
                .cloned()
                .collect(),
        })
        .collect())
}
