//! Reads of the `shipments` and `shipment_tracking` read models: one shipment, and the
//! shipments of some orders, each with its tracking updates in the order they came.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{PgPool, QueryResult};

/// A shipment as its customer (or an admin) sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShipmentView {
    pub shipment_id: Uuid,
    pub order_id: Uuid,
    #[serde(skip)]
    pub customer_id: Uuid,
    /// created, picked, shipped, in_transit, delivered, exception or cancelled.
    pub status: String,
    /// The carrier, once shipped.
    pub carrier: Option<String>,
    /// Its tracking number, once shipped.
    pub tracking_no: Option<String>,
    /// What the carrier reported, in the order it arrived.
    pub tracking: Vec<TrackingView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The shipment's version in this read model.
    pub version: i64,
}

/// One tracking update.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrackingView {
    /// in_transit, delivered or exception.
    pub status: String,
    /// When, by the carrier's clock.
    pub at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ShipmentRow {
    shipment_id: Uuid,
    order_id: Uuid,
    customer_id: Uuid,
    status: String,
    carrier: Option<String>,
    tracking_no: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

#[derive(sqlx::FromRow)]
struct TrackingRow {
    shipment_id: Uuid,
    status: String,
    at: DateTime<Utc>,
}

/// The shipment with this id.
pub async fn find(pool: &PgPool, shipment_id: Uuid) -> QueryResult<Option<ShipmentView>> {
    Ok(load(pool, Some(shipment_id), &[]).await?.pop())
}

/// The shipments of these orders, oldest first.
pub async fn of_orders(pool: &PgPool, order_ids: &[Uuid]) -> QueryResult<Vec<ShipmentView>> {
    if order_ids.is_empty() {
        return Ok(Vec::new());
    }
    load(pool, None, order_ids).await
}

async fn load(
    pool: &PgPool,
    shipment_id: Option<Uuid>,
    order_ids: &[Uuid],
) -> QueryResult<Vec<ShipmentView>> {
    let rows: Vec<ShipmentRow> = sqlx::query_as(
        "SELECT shipment_id, order_id, customer_id, status, carrier, tracking_no, created_at,
                updated_at, version
         FROM shipments
         WHERE ($1::uuid IS NOT NULL AND shipment_id = $1) OR order_id = ANY($2)
         ORDER BY created_at, shipment_id",
    )
    .bind(shipment_id)
    .bind(order_ids)
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.shipment_id).collect();
    let tracking: Vec<TrackingRow> = sqlx::query_as(
        "SELECT shipment_id, status, at FROM shipment_tracking
         WHERE shipment_id = ANY($1) ORDER BY shipment_id, sequence",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ShipmentView {
            tracking: tracking
                .iter()
                .filter(|t| t.shipment_id == r.shipment_id)
                .map(|t| TrackingView {
                    status: t.status.clone(),
                    at: t.at,
                })
                .collect(),
            shipment_id: r.shipment_id,
            order_id: r.order_id,
            customer_id: r.customer_id,
            status: r.status,
            carrier: r.carrier,
            tracking_no: r.tracking_no,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
        .collect())
}
