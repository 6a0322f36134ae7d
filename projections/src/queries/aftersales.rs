//! Reads of the `aftersales` read model: one request, a customer's requests and every
//! request (admins), newest first; and the units of an order's lines that requests still
//! claim.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::page::{NewestFirst, Page, PageRequest};
use super::{PgPool, QueryResult};

/// An after-sales request as its customer (or an admin) sees it; amounts in minor units.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AfterSaleView {
    pub aftersale_id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// The payment a refund goes back to.
    pub payment_id: Uuid,
    /// refund_only, return_refund or exchange.
    pub kind: String,
    /// requested, withdrawn, rejected, approved, awaiting_return, received, refunded,
    /// refund_failed, replacing or closed.
    pub status: String,
    pub lines: Vec<AfterSaleLineView>,
    /// The sum of the lines' refunds (nothing is refunded for an exchange).
    pub refund_amount: i64,
    pub currency: String,
    pub reason: String,
    pub evidence: Vec<String>,
    /// Why an admin rejected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    /// The parcel the goods were sent back in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_shipment: Option<ReturnShipmentView>,
    /// The payment's refund, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<Uuid>,
    /// Why the payment refused the refund.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_error: Option<String>,
    /// The replacement's shipment (exchange), followed like any shipment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement_shipment_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The request's version in this read model.
    pub version: i64,
}

/// One line of a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AfterSaleLineView {
    pub sku: String,
    pub quantity: i64,
    /// What these units refund, in minor units.
    pub refund: i64,
}

/// A return parcel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReturnShipmentView {
    pub carrier: String,
    pub tracking_no: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    aftersale_id: Uuid,
    order_id: Uuid,
    customer_id: Uuid,
    payment_id: Uuid,
    kind: String,
    status: String,
    lines: serde_json::Value,
    refund_minor: i64,
    currency: String,
    reason: String,
    evidence: serde_json::Value,
    rejection_reason: Option<String>,
    return_carrier: Option<String>,
    return_tracking_no: Option<String>,
    refund_id: Option<Uuid>,
    refund_error: Option<String>,
    replacement_shipment_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for AfterSaleView {
    fn from(r: Row) -> Self {
        AfterSaleView {
            aftersale_id: r.aftersale_id,
            order_id: r.order_id,
            customer_id: r.customer_id,
            payment_id: r.payment_id,
            kind: r.kind,
            status: r.status,
            lines: serde_json::from_value(r.lines).unwrap_or_default(),
            refund_amount: r.refund_minor,
            currency: r.currency,
            reason: r.reason,
            evidence: serde_json::from_value(r.evidence).unwrap_or_default(),
            rejection_reason: r.rejection_reason,
            return_shipment: r.return_carrier.zip(r.return_tracking_no).map(
                |(carrier, tracking_no)| ReturnShipmentView {
                    carrier,
                    tracking_no,
                },
            ),
            refund_id: r.refund_id,
            refund_error: r.refund_error,
            replacement_shipment_id: r.replacement_shipment_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

const COLUMNS: &str = "aftersale_id, order_id, customer_id, payment_id, kind, status, lines,
    refund_minor, currency, reason, evidence, rejection_reason, return_carrier,
    return_tracking_no, refund_id, refund_error, replacement_shipment_id, version, created_at,
    updated_at";

/// The request with this id.
pub async fn find(pool: &PgPool, aftersale_id: Uuid) -> QueryResult<Option<AfterSaleView>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM aftersales WHERE aftersale_id = $1"
    ))
    .bind(aftersale_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(AfterSaleView::from))
}

/// A page of the requests of `customer_id` (every request when `None`), newest first.
pub async fn list(
    pool: &PgPool,
    customer_id: Option<Uuid>,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<AfterSaleView>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM aftersales
         WHERE ($1::uuid IS NULL OR customer_id = $1)
           AND ($2::timestamptz IS NULL OR (created_at, aftersale_id) < ($2, $3::uuid))
         ORDER BY created_at DESC, aftersale_id DESC LIMIT $4"
    ))
    .bind(customer_id)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    let views: Vec<AfterSaleView> = rows.into_iter().map(AfterSaleView::from).collect();
    Ok(Page::cut(views, page.limit, |view| NewestFirst {
        at: view.created_at,
        id: view.aftersale_id,
    }))
}
