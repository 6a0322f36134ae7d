//! Reads of the `orders`, `order_lines` and `order_discounts` read models: one order with
//! its price breakdown, a customer's orders newest first, and an order's status (what
//! `Prefer: wait` polls). The delivery address comes out sealed
//! ([`OrderView::sealed_address`]); whoever shows it opens it ([`OrderView::show_address`]).

use chrono::{DateTime, Utc};
use ordo_aggregates::common::PersonalText;
use ordo_aggregates::customer::PostalAddress;
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
    /// Sum of quantity times unit price over the lines, in minor units.
    pub subtotal: i64,
    /// The discounts applied, in the order applied.
    pub discounts: Vec<OrderDiscountView>,
    /// The delivery fee, in minor units.
    pub shipping_fee: i64,
    /// What the customer pays: subtotal less the discounts plus shipping, in minor units.
    pub total: i64,
    /// The same as `total`.
    pub total_amount: i64,
    pub currency: String,
    /// Where the order is delivered, as the address was when it was placed (values null
    /// once the customer was erased); absent for an order placed without an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<OrderAddressView>,
    /// The address as the read model keeps it, sealed with the customer's key.
    #[serde(skip)]
    #[schema(ignore)]
    pub sealed_address: Option<PostalAddress>,
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

/// One line of an order; amounts in minor units.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct OrderLineView {
    pub sku: String,
    pub quantity: i32,
    /// Unit price, as it was at placement.
    pub unit_price: i64,
    /// The line's share of the discounts.
    pub discount: i64,
    /// Quantity times unit price, less the discount.
    pub line_total: i64,
}

/// One discount of an order, in minor units.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDiscountView {
    /// `promotion` or `coupon`.
    pub source: String,
    /// The promotion's or the coupon's id.
    pub id: Uuid,
    pub amount: i64,
}

/// An order's delivery address; a value is null when the address has none, or once it was
/// erased.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrderAddressView {
    pub recipient: Option<String>,
    pub phone: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub detail: Option<String>,
    pub postal_code: Option<String>,
}

impl OrderAddressView {
    /// The view of an opened address: clear values as they are, erased ones null.
    pub fn of(address: &PostalAddress) -> Self {
        let text = |t: &PersonalText| t.clear_value().map(str::to_owned);
        Self {
            recipient: text(&address.recipient),
            phone: text(&address.phone),
            province: text(&address.province),
            city: text(&address.city),
            district: address.district.as_ref().and_then(text),
            detail: text(&address.detail),
            postal_code: address.postal_code.as_ref().and_then(text),
        }
    }
}

impl OrderView {
    /// Shows the delivery address `opened` from [`OrderView::sealed_address`].
    pub fn show_address(&mut self, opened: Option<&PostalAddress>) {
        self.delivery_address = opened.map(OrderAddressView::of);
    }
}

/// A row of `orders`, before its lines are added.
#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    customer_id: Uuid,
    status: String,
    total_minor: i64,
    subtotal_minor: Option<i64>,
    shipping_fee_minor: i64,
    delivery_address: Option<sqlx::types::Json<PostalAddress>>,
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
    discount_minor: i64,
}

/// A row of `order_discounts`.
#[derive(sqlx::FromRow)]
struct DiscountRow {
    order_id: Uuid,
    source: String,
    discount_id: Uuid,
    amount_minor: i64,
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
        "SELECT o.order_id, o.customer_id, o.status, o.total_minor, o.subtotal_minor,
                o.shipping_fee_minor, o.delivery_address, o.currency, o.reason,
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
        "SELECT order_id, sku, quantity, unit_price_minor, discount_minor FROM order_lines
         WHERE order_id = ANY($1) ORDER BY order_id, line_no",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let discounts: Vec<DiscountRow> = sqlx::query_as(
        "SELECT order_id, source, discount_id, amount_minor FROM order_discounts
         WHERE order_id = ANY($1) ORDER BY order_id, position",
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
                    discount: l.discount_minor,
                    line_total: i64::from(l.quantity) * l.unit_price_minor - l.discount_minor,
                })
                .collect(),
            discounts: discounts
                .iter()
                .filter(|d| d.order_id == r.order_id)
                .map(|d| OrderDiscountView {
                    source: d.source.clone(),
                    id: d.discount_id,
                    amount: d.amount_minor,
                })
                .collect(),
            subtotal: r.subtotal_minor.unwrap_or(r.total_minor),
            shipping_fee: r.shipping_fee_minor,
            total: r.total_minor,
            delivery_address: None,
            sealed_address: r.delivery_address.map(|a| a.0),
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
