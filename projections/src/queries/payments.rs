//! Reads of the `payments` read model: one payment, and how an order and one of its
//! payments stand (what `Prefer: wait` on paying polls).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{PgPool, QueryResult};

/// A payment as its owner sees it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct PaymentView {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    #[serde(skip)]
    pub customer_id: Uuid,
    /// created, authorized, captured, failed, voided, partially_refunded or refunded.
    pub status: String,
    /// Amount in minor units.
    pub amount: i64,
    pub currency: String,
    pub method: String,
    pub provider_ref: Option<String>,
    /// Refunded so far, in minor units.
    pub refunded: i64,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// The statuses of an order and of one of its payments, in the read models.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentProgress {
    /// The order's status.
    pub order_status: String,
    /// The payment's status; `None` until the payment reached the read model.
    pub payment_status: Option<String>,
}

/// The payment with this id, whoever owns it.
pub async fn find(pool: &PgPool, payment_id: Uuid) -> QueryResult<Option<PaymentView>> {
    Ok(sqlx::query_as(
        "SELECT payment_id, order_id, customer_id, status, amount_minor AS amount, currency, method, provider_ref,
                refunded_minor AS refunded, reason, created_at, updated_at, version
         FROM payments WHERE payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(pool)
    .await?)
}

/// How `order_id` and its payment `payment_id` stand; `None` until the order reached the
/// read model.
pub async fn progress(
    pool: &PgPool,
    order_id: Uuid,
    payment_id: Uuid,
) -> QueryResult<Option<PaymentProgress>> {
    Ok(sqlx::query_as(
        "SELECT o.status AS order_status, p.status AS payment_status
         FROM orders o LEFT JOIN payments p ON p.payment_id = $2 WHERE o.order_id = $1",
    )
    .bind(order_id)
    .bind(payment_id)
    .fetch_optional(pool)
    .await?)
}
