//! Reads of the `bookings` and `tickets` read models: a customer's bookings newest first,
//! the open refund requests admins decide, and which booking and customer a ticket belongs to.
//!
//! One booking with its tickets is read from the write side (it is always current there),
//! so it has no query here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::page::{NewestFirst, Page, PageRequest};
use super::{PgPool, QueryResult};

/// A booking in the caller's list.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct BookingSummary {
    pub booking_id: Uuid,
    pub show_id: Uuid,
    pub session_id: Uuid,
    #[sqlx(rename = "area_id")]
    pub seat_area_id: String,
    pub quantity: i32,
    pub status: String,
    #[sqlx(rename = "total_minor")]
    pub total_amount: i64,
    pub currency: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub requested_at: DateTime<Utc>,
}

/// Whose a ticket is: its booking, session and customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketHolder {
    pub booking_id: Uuid,
    pub session_id: Uuid,
    pub customer_id: Uuid,
}

/// A page of the bookings `customer_id` requested, newest first.
pub async fn list_for_customer(
    pool: &PgPool,
    customer_id: Uuid,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<BookingSummary>> {
    let rows: Vec<BookingSummary> = sqlx::query_as(
        "SELECT booking_id, show_id, session_id, area_id, quantity, status, total_minor, currency,
                expires_at, requested_at
         FROM bookings
         WHERE customer_id = $1
           AND ($2::timestamptz IS NULL OR (requested_at, booking_id) < ($2, $3::uuid))
         ORDER BY requested_at DESC, booking_id DESC LIMIT $4",
    )
    .bind(customer_id)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |booking| NewestFirst {
        at: booking.requested_at,
        id: booking.booking_id,
    }))
}

/// Whose the ticket with this id is, if it was issued.
pub async fn ticket_holder(pool: &PgPool, ticket_id: Uuid) -> QueryResult<Option<TicketHolder>> {
    Ok(sqlx::query_as(
        "SELECT booking_id, session_id, customer_id FROM tickets WHERE ticket_id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(pool)
    .await?)
}

/// A booking whose owner asked for a refund, waiting for an admin.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct RefundRequestSummary {
    pub booking_id: Uuid,
    pub customer_id: Uuid,
    pub show_id: Uuid,
    pub session_id: Uuid,
    #[sqlx(rename = "area_id")]
    pub seat_area_id: String,
    pub quantity: i32,
    #[sqlx(rename = "total_minor")]
    pub total_amount: i64,
    pub currency: String,
    /// Why, in the owner's words.
    #[sqlx(rename = "refund_request_reason")]
    pub reason: Option<String>,
    /// When it was asked.
    #[sqlx(rename = "updated_at")]
    pub requested_at: DateTime<Utc>,
}

/// A page of the open refund requests, newest first (the admins' queue).
pub async fn open_refund_requests(
    pool: &PgPool,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<RefundRequestSummary>> {
    let rows: Vec<RefundRequestSummary> = sqlx::query_as(
        "SELECT booking_id, customer_id, show_id, session_id, area_id, quantity, total_minor,
                currency, refund_request_reason, updated_at
         FROM bookings
         WHERE refund_request = 'requested'
           AND ($1::timestamptz IS NULL OR (updated_at, booking_id) < ($1, $2::uuid))
         ORDER BY updated_at DESC, booking_id DESC LIMIT $3",
    )
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |request| NewestFirst {
        at: request.requested_at,
        id: request.booking_id,
    }))
}
