//! Bookings of seats and their tickets: fans book, pay, cancel and read their own; admins
//! refund and check tickets in at the entrance.
//!
//! Booking is priced by the booking saga from the Show aggregate and decided by one step on
//! the seat area's single writer, the reservation, which carries the booking
//! ([`ordo_sagas::BookingSaga::book`]): the answer is the write side's decision (pending
//! payment with its deadline, or sold out with nothing recorded) without waiting for any
//! read model; in a flash sale every fan gets a definite answer as soon as the hot seat
//! area's batch commits. Paying sends one command, the payment's `Create`; the saga attaches
//! the payment to the booking and charges it.

use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use ordo_aggregates::booking::{
    Booking, BookingCommand, BookingError, BookingRequest, BookingStatus,
};
use ordo_aggregates::common::{AreaId, BookingId, PaymentId, Reason, SessionId, TicketId, UserId};
use ordo_aggregates::payment::{PaymentCommand, PaymentStatus};
use ordo_projections::queries::bookings;
pub use ordo_projections::queries::bookings::{BookingSummary, RefundRequestSummary};
use ordo_projections::queries::page::PageRequest;
use ordo_sagas::booking::{Booked, QuoteError, SOLD_OUT};
use ordo_sagas::StepError;
use ordo_store::{CommandError, CommandMetadata};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::api_error;
use crate::consistency::PreferWait;
use crate::identity::{AdminUser, AuthUser, CustomerUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::routes::orders::idempotency_key;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bookings", get(list_bookings).post(create_booking))
        .route("/bookings/{booking_id}", get(get_booking))
        .route("/bookings/{booking_id}/pay", post(pay_booking))
        .route("/bookings/{booking_id}/cancel", post(cancel_booking))
        .route("/bookings/{booking_id}/refund", post(refund_booking))
        .route(
            "/bookings/{booking_id}/refund-request",
            post(request_refund),
        )
        .route(
            "/bookings/{booking_id}/refund-request/withdraw",
            post(withdraw_refund_request),
        )
        .route("/admin/bookings/refund-requests", get(list_refund_requests))
        .route(
            "/admin/bookings/{booking_id}/refund-request/approve",
            post(approve_refund_request),
        )
        .route(
            "/admin/bookings/{booking_id}/refund-request/reject",
            post(reject_refund_request),
        )
        .route("/tickets/{ticket_id}/qr.png", get(ticket_qr))
        .route("/tickets/{ticket_id}/check-in", post(check_in))
}

/// A booking request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateBooking {
    #[schema(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub session_id: Uuid,
    /// 1 to 64 letters, digits, '-' or '_'.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub seat_area_id: String,
    /// 1 to the most seats per booking (ORDO_MAX_TICKETS_PER_BOOKING, 6 by default; the
    /// served document states the configured maximum).
    #[schema(minimum = 1, maximum = 6)]
    pub quantity: i64,
}

/// The decision on a booking request.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingAccepted {
    pub booking_id: Uuid,
    /// pending_payment (seats held); pending only if the decision is delayed. A sold-out
    /// area answers 409 `urn:ordo:problem:sold_out` instead.
    pub status: String,
    /// Total in minor units.
    pub total_amount: i64,
    pub currency: String,
    /// Payment deadline, when seats are held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Why it was rejected, should a delayed decision come to that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A ticket of a paid booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub ticket_id: Uuid,
    /// URL of the QR code image (PNG).
    pub qr_code: String,
    /// What the QR code encodes, signed: present it at the entrance.
    pub qr_payload: String,
    pub checked_in: bool,
}

/// A booking as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    pub booking_id: Uuid,
    pub customer_id: Uuid,
    pub show_id: Uuid,
    pub session_id: Uuid,
    pub seat_area_id: String,
    pub quantity: u32,
    /// pending, pending_payment, paid, completed, rejected, cancelled, expired or refunded.
    pub status: String,
    pub total_amount: i64,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    /// One per seat once paid.
    pub tickets: Vec<TicketView>,
    /// The owner's latest refund request, once one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_request: Option<RefundRequestView>,
    pub version: i64,
}

/// Where the owner's refund request of a booking stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundRequestView {
    /// requested (waiting for an admin), withdrawn, rejected or approved (refunded).
    pub status: String,
    /// Why, in the owner's words.
    pub reason: String,
    /// Why an admin rejected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
}

/// Why the owner asks for a refund, or why an admin rejects the request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefundRequestReason {
    /// 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
}

/// A page of open refund requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundRequestPage {
    pub refund_requests: Vec<RefundRequestSummary>,
    pub next_cursor: Option<String>,
}

/// A page of bookings, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingPage {
    pub bookings: Vec<BookingSummary>,
    pub next_cursor: Option<String>,
}

/// Paging of the booking list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct BookingPaging {
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// How the fan pays.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PayBooking {
    /// `card`, `alipay`...: 1 to 50 characters (surrounding spaces are dropped).
    #[schema(
        max_length = 50,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub payment_method: String,
    /// The payment method's token (sandbox: tok_success, tok_decline, tok_timeout...): 1
    /// to 200 characters.
    #[schema(
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub payment_token: String,
}

/// Why a booking is refunded.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RefundBooking {
    pub reason: Option<String>,
}

/// A scanned ticket.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckIn {
    /// The payload read from the QR code: `<ticket id>|<booking id>|<session id>|<signature>`.
    #[schema(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\|[0-9a-fA-F]{64}$"
    )]
    pub qr_payload: String,
}

/// A ticket admitted.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckedIn {
    pub ticket_id: Uuid,
    pub booking_id: Uuid,
    pub status: String,
}

/// Books seats in one area of a session (customer), at the price the show has now. The
/// seats are reserved before the answer: 202 `pending_payment` with the payment deadline,
/// or 409 problem `urn:ordo:problem:sold_out` when too few seats are left (nothing is
/// recorded for it).
/// `Prefer: wait=N` is accepted; the answer is decided either way.
#[utoipa::path(post, path = "/api/v1/bookings", tag = "bookings", request_body = CreateBooking,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"),
           ("Prefer" = Option<String>, Header, description = "wait=N")),
    responses((status = 202, body = BookingAccepted),
              (status = 409, description = "problem urn:ordo:problem:sold_out: too few seats left"),
              (status = 404, description = "problem urn:ordo:problem:unknown_seat_area: no such session or seat area"),
              (status = 422, description = "too many tickets")))]
pub async fn create_booking(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    wait: PreferWait,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBooking>,
) -> Result<Response, ApiError> {
    let ticketing = &state.ticketing;
    let area_id = AreaId::parse(&body.seat_area_id)
        .map_err(|e| ApiError::invalid("seat_area_id", e.to_string()))?;
    let quantity = u32::try_from(body.quantity)
        .map_err(|_| ApiError::invalid("quantity", "quantity must be a positive number"))?;
    let session_id = SessionId::from(body.session_id);
    let booking_id = match idempotency_key(&headers)? {
        Some(key) => Uuid::new_v5(&user.user_id, format!("booking:{key}").as_bytes()),
        None => Uuid::new_v4(),
    };
    let metadata = CommandMetadata::from_request(&request_id, Some(user.user_id));
    let sold_out = |detail: String| ApiError::Refused {
        code: SOLD_OUT,
        detail,
    };
    let quote = ticketing
        .saga
        .quote(session_id, &area_id)
        .await
        .map_err(|err| match err {
            QuoteError::UnknownSeatArea { .. } => ApiError::UnknownReference {
                code: "unknown_seat_area",
                detail: err.to_string(),
            },
            QuoteError::Failed(err) => ApiError::Internal(err),
        })?;
    let request = BookingRequest::new(
        BookingId::from(booking_id),
        UserId::from(user.user_id),
        quote.show_id,
        session_id,
        area_id.clone(),
        quantity,
        quote.unit_price,
        ticketing.settings.max_per_booking,
    )
    .map_err(|err| api_error(CommandError::Rejected(err)))?;
    let decision = match ticketing.saga.book(&request, metadata).await {
        Ok(Booked::Decided(decision)) => Some(decision),
        // Recorded pending: the saga reserves the seats from its event.
        Ok(Booked::Pending) => None,
        Ok(Booked::SoldOut) => {
            return Err(sold_out(format!(
                "sold out: fewer than {quantity} seat(s) left in {area_id}"
            )))
        }
        Ok(Booked::AlreadyRequested(detail)) => {
            return Err(ApiError::Refused {
                code: BookingError::AlreadyRequested.code(),
                detail,
            })
        }
        Err(StepError::Failed(err)) => return Err(ApiError::Internal(err)),
        Err(StepError::Refused { code, detail }) => {
            return Err(ApiError::Internal(anyhow::anyhow!("{code}: {detail}")))
        }
    };
    if let Some(decision) = &decision {
        if decision.status == BookingStatus::Rejected {
            return Err(sold_out(format!(
                "sold out: fewer than {quantity} seat(s) left in {area_id}; booking {booking_id} is rejected"
            )));
        }
    }
    let total = request.total;
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/bookings/{booking_id}"))],
        ApiJson(BookingAccepted {
            booking_id,
            status: decision
                .as_ref()
                .map(|d| d.status.as_str())
                .unwrap_or("pending")
                .to_string(),
            total_amount: total.amount_minor(),
            currency: total.currency().to_string(),
            expires_at: decision.as_ref().and_then(|d| d.expires_at),
            reason: decision.and_then(|d| d.reason),
        }),
    )
        .into_response();
    if let Some(applied) = wait.applied() {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

/// The booking from the write side, when the caller owns it or is an admin.
async fn owned_booking(
    state: &AppState,
    user: &AuthUser,
    booking_id: &str,
) -> Result<(Uuid, Booking, i64), ApiError> {
    let not_found = || ApiError::NotFound(format!("no booking {booking_id}"));
    let id: Uuid = booking_id.parse().map_err(|_| not_found())?;
    let (booking, version) = state
        .ticketing
        .bookings
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    let owner = booking.customer_id().map(|c| *c.as_uuid());
    if version == 0 || (owner != Some(user.user_id) && !user.is_admin()) {
        return Err(not_found());
    }
    Ok((id, booking, version))
}

fn view(state: &AppState, booking_id: Uuid, booking: &Booking, version: i64) -> BookingView {
    let request = booking
        .request()
        .expect("an existing booking has its request");
    let status = booking.status().unwrap_or(BookingStatus::Pending);
    let tickets = booking
        .tickets()
        .iter()
        .map(|ticket| TicketView {
            ticket_id: *ticket.as_uuid(),
            qr_code: state.ticketing.qr_url(*ticket),
            qr_payload: state.ticketing.signer.qr_payload(
                *ticket,
                BookingId::from(booking_id),
                request.session_id,
            ),
            checked_in: booking.checked_in().contains(ticket),
        })
        .collect();
    BookingView {
        booking_id,
        customer_id: *request.customer_id.as_uuid(),
        show_id: *request.show_id.as_uuid(),
        session_id: *request.session_id.as_uuid(),
        seat_area_id: request.area_id.to_string(),
        quantity: request.quantity,
        status: status.as_str().to_string(),
        total_amount: request.total.amount_minor(),
        currency: request.total.currency().to_string(),
        expires_at: booking.expires_at(),
        reason: booking.reason().map(str::to_string),
        payment_id: booking.attached_payment().map(|p| *p.as_uuid()),
        tickets,
        refund_request: booking.refund_request().map(|r| RefundRequestView {
            status: r.status.as_str().to_string(),
            reason: r.reason.clone(),
            rejection_reason: r.rejection_reason.clone(),
        }),
        version,
    }
}

/// One booking, with its tickets once paid (its owner or an admin). Read from the write
/// side, so it is always current.
#[utoipa::path(get, path = "/api/v1/bookings/{booking_id}", tag = "bookings",
    security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, description = "no such booking")))]
pub async fn get_booking(
    State(state): State<AppState>,
    user: AuthUser,
    Path(booking_id): Path<String>,
) -> Result<ApiJson<BookingView>, ApiError> {
    let (id, booking, version) = owned_booking(&state, &user, &booking_id).await?;
    Ok(ApiJson(view(&state, id, &booking, version)))
}

/// The caller's bookings, newest first.
#[utoipa::path(get, path = "/api/v1/bookings", tag = "bookings", params(BookingPaging),
    security(("bearer" = [])),
    responses((status = 200, body = BookingPage)))]
pub async fn list_bookings(
    State(state): State<AppState>,
    user: AuthUser,
    Query(paging): Query<BookingPaging>,
) -> Result<ApiJson<BookingPage>, ApiError> {
    let page = PageRequest::parse(paging.cursor.as_deref(), paging.limit)?;
    let page = bookings::list_for_customer(&state.pool, user.user_id, &page).await?;
    Ok(ApiJson(BookingPage {
        bookings: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Pays a booking whose seats are held (its owner). The booking saga attaches the payment
/// and has the provider charge it; once the provider answers, the saga marks the booking
/// paid, commits the seats and issues the tickets. With
/// `Prefer: wait=N` the answer comes once the booking is paid (with its tickets) or the
/// payment failed.
#[utoipa::path(post, path = "/api/v1/bookings/{booking_id}/pay", tag = "bookings", request_body = PayBooking,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"),
           ("Prefer" = Option<String>, Header, description = "wait=N: answer once paid or failed")),
    responses((status = 202, body = BookingView), (status = 404, description = "no such booking"),
              (status = 409, description = "not pending payment, or a payment is in progress")))]
pub async fn pay_booking(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    wait: PreferWait,
    headers: HeaderMap,
    Path(booking_id): Path<String>,
    ApiJson(body): ApiJson<PayBooking>,
) -> Result<Response, ApiError> {
    let (method, token) =
        crate::routes::payments::payment_details(&body.payment_method, &body.payment_token)?;
    let (booking_id, booking, _) = owned_booking(&state, &user, &booking_id).await?;
    if booking.status() != Some(BookingStatus::PendingPayment) {
        let status = booking.status().map(|s| s.as_str()).unwrap_or("unknown");
        return Err(ApiError::Refused {
            code: "booking_not_payable",
            detail: format!("the booking is {status}, not pending payment"),
        });
    }
    let payment_id = crate::routes::payments::new_payment_id(&headers, &user, booking_id)?;
    crate::routes::payments::refuse_while_in_progress(
        &state,
        booking.attached_payment(),
        payment_id,
    )
    .await?;
    let request = booking
        .request()
        .expect("an existing booking has its request");
    let metadata = CommandMetadata::from_request(&request_id, Some(user.user_id));
    // One command: the booking saga attaches the payment to the booking, then charges it.
    crate::routes::payments::create_payment(
        &state,
        PaymentCommand::Create {
            payment_id: PaymentId::from(payment_id),
            order_id: booking_id,
            customer_id: request.customer_id,
            amount: request.total.clone(),
            method: method.to_string(),
            sealed_token: state
                .token_seal
                .seal(token)
                .map_err(|err| ApiError::invalid("payment_token", err.to_string()))?,
        },
        metadata,
    )
    .await?;
    let (booking, version) = match wait.0 {
        Some(timeout) => wait_for_payment(&state, booking_id, payment_id, timeout).await?,
        None => {
            let (b, v) = state
                .ticketing
                .bookings
                .load(&booking_id.to_string())
                .await
                .map_err(api_error)?;
            (b, v)
        }
    };
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/bookings/{booking_id}"))],
        ApiJson(view(&state, booking_id, &booking, version)),
    )
        .into_response();
    if let Some(applied) = wait.applied() {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

/// Polls the write side until the booking leaves pending payment or its payment failed.
async fn wait_for_payment(
    state: &AppState,
    booking_id: Uuid,
    payment_id: Uuid,
    timeout: Duration,
) -> Result<(Booking, i64), ApiError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let (booking, version) = state
            .ticketing
            .bookings
            .load(&booking_id.to_string())
            .await
            .map_err(api_error)?;
        if booking.status() != Some(BookingStatus::PendingPayment) || started.elapsed() >= timeout {
            return Ok((booking, version));
        }
        let (payment, _) = state
            .payments
            .load(&payment_id.to_string())
            .await
            .map_err(api_error)?;
        if matches!(
            payment.status(),
            Some(PaymentStatus::Failed | PaymentStatus::Voided)
        ) {
            return Ok((booking, version));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Cancels a booking before it is paid (its owner or an admin): the seats go back to sale
/// and a payment in progress is voided.
#[utoipa::path(post, path = "/api/v1/bookings/{booking_id}/cancel", tag = "bookings",
    security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, description = "no such booking"),
              (status = 409, description = "already paid or closed")))]
pub async fn cancel_booking(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    Path(booking_id): Path<String>,
) -> Result<ApiJson<BookingView>, ApiError> {
    let (id, _, _) = owned_booking(&state, &user, &booking_id).await?;
    let reason = if user.is_admin() {
        "cancelled by an admin"
    } else {
        "cancelled by the customer"
    };
    transition(
        &state,
        &user,
        &request_id,
        id,
        BookingCommand::Cancel {
            reason: reason.into(),
        },
    )
    .await
}

/// Refunds a paid booking (admin): the payment is refunded, the seats return to sale and
/// the tickets no longer admit anyone.
#[utoipa::path(post, path = "/api/v1/bookings/{booking_id}/refund", tag = "bookings",
    request_body = RefundBooking, security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, description = "no such booking"),
              (status = 409, description = "not paid")))]
pub async fn refund_booking(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(booking_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<ApiJson<BookingView>, ApiError> {
    // The body is optional: an empty one means no reason given.
    let body: RefundBooking = if body.iter().all(u8::is_ascii_whitespace) {
        RefundBooking::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(e.to_string()))?
    };
    let (id, _, _) = owned_booking(&state, &user, &booking_id).await?;
    let reason = body
        .reason
        .map(|r| r.trim().chars().take(500).collect::<String>())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "refunded by an admin".into());
    transition(
        &state,
        &user,
        &request_id,
        id,
        BookingCommand::Refund { reason },
    )
    .await
}

/// Asks for a refund of a paid booking (its owner) whose tickets were not used; an admin
/// approves or rejects it. Repeating the same request is a no-op; after a rejection no new
/// request is taken, after a withdrawal one is.
#[utoipa::path(post, path = "/api/v1/bookings/{booking_id}/refund-request", tag = "bookings",
    request_body = RefundRequestReason, security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, description = "no such booking"),
              (status = 409, description = "not paid, a ticket was checked in, or already requested or rejected"),
              (status = 422, description = "invalid reason")))]
pub async fn request_refund(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    Path(booking_id): Path<String>,
    ApiJson(body): ApiJson<RefundRequestReason>,
) -> Result<ApiJson<BookingView>, ApiError> {
    let id = booking_of_owner(&state, &user, &booking_id).await?;
    let reason = refund_reason(&body)?;
    transition(
        &state,
        &user,
        &request_id,
        id,
        BookingCommand::RequestRefund { reason },
    )
    .await
}

/// Takes back an open refund request (its owner). Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/bookings/{booking_id}/refund-request/withdraw", tag = "bookings",
    security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, description = "no such booking"),
              (status = 409, description = "no refund request is open")))]
pub async fn withdraw_refund_request(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    Path(booking_id): Path<String>,
) -> Result<ApiJson<BookingView>, ApiError> {
    let id = booking_of_owner(&state, &user, &booking_id).await?;
    transition(
        &state,
        &user,
        &request_id,
        id,
        BookingCommand::WithdrawRefundRequest,
    )
    .await
}

/// The open refund requests, newest first (admin).
#[utoipa::path(get, path = "/api/v1/admin/bookings/refund-requests", tag = "bookings",
    params(BookingPaging), security(("bearer" = [])),
    responses((status = 200, body = RefundRequestPage)))]
pub async fn list_refund_requests(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(paging): Query<BookingPaging>,
) -> Result<ApiJson<RefundRequestPage>, ApiError> {
    let page = PageRequest::parse(paging.cursor.as_deref(), paging.limit)?;
    let page = bookings::open_refund_requests(&state.pool, &page).await?;
    Ok(ApiJson(RefundRequestPage {
        refund_requests: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Grants the open refund request (admin): the booking is refunded as by
/// `POST /bookings/{id}/refund`. Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/bookings/{booking_id}/refund-request/approve", tag = "bookings",
    security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, description = "no such booking"),
              (status = 409, description = "no refund request is open")))]
pub async fn approve_refund_request(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(booking_id): Path<String>,
) -> Result<ApiJson<BookingView>, ApiError> {
    let (id, _, _) = owned_booking(&state, &admin, &booking_id).await?;
    transition(
        &state,
        &admin,
        &request_id,
        id,
        BookingCommand::ApproveRefundRequest,
    )
    .await
}

/// Refuses the open refund request with a reason (admin); the booking stays paid and its
/// owner cannot ask again. Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/bookings/{booking_id}/refund-request/reject", tag = "bookings",
    request_body = RefundRequestReason, security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, description = "no such booking"),
              (status = 409, description = "no refund request is open"),
              (status = 422, description = "invalid reason")))]
pub async fn reject_refund_request(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(booking_id): Path<String>,
    ApiJson(body): ApiJson<RefundRequestReason>,
) -> Result<ApiJson<BookingView>, ApiError> {
    let (id, _, _) = owned_booking(&state, &admin, &booking_id).await?;
    let reason = refund_reason(&body)?;
    transition(
        &state,
        &admin,
        &request_id,
        id,
        BookingCommand::RejectRefundRequest { reason },
    )
    .await
}

/// The booking when the caller is its owner (an admin decides requests, never makes them).
async fn booking_of_owner(
    state: &AppState,
    user: &AuthUser,
    booking_id: &str,
) -> Result<Uuid, ApiError> {
    let (id, booking, _) = owned_booking(state, user, booking_id).await?;
    if booking.customer_id().map(|c| *c.as_uuid()) != Some(user.user_id) {
        return Err(ApiError::NotFound(format!("no booking {booking_id}")));
    }
    Ok(id)
}

fn refund_reason(body: &RefundRequestReason) -> Result<String, ApiError> {
    Reason::parse(&body.reason)
        .map(|r| r.as_str().to_string())
        .map_err(|e| ApiError::invalid("reason", e.message()))
}

async fn transition(
    state: &AppState,
    user: &AuthUser,
    request_id: &str,
    booking_id: Uuid,
    command: BookingCommand,
) -> Result<ApiJson<BookingView>, ApiError> {
    let bookings = &state.ticketing.bookings;
    bookings
        .execute(
            &booking_id.to_string(),
            command,
            CommandMetadata::from_request(request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    let (booking, version) = bookings
        .load(&booking_id.to_string())
        .await
        .map_err(api_error)?;
    Ok(ApiJson(view(state, booking_id, &booking, version)))
}

/// A ticket's QR code as a PNG image (the ticket's owner or an admin).
#[utoipa::path(get, path = "/api/v1/tickets/{ticket_id}/qr.png", tag = "bookings",
    security(("bearer" = [])),
    responses((status = 200, content_type = "image/png", description = "the QR code"),
              (status = 404, description = "no such ticket")))]
pub async fn ticket_qr(
    State(state): State<AppState>,
    user: AuthUser,
    Path(ticket_id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no ticket {ticket_id}"));
    let id: Uuid = ticket_id.parse().map_err(|_| not_found())?;
    let holder = bookings::ticket_holder(&state.pool, id)
        .await?
        .filter(|holder| holder.customer_id == user.user_id || user.is_admin())
        .ok_or_else(not_found)?;
    let payload = state.ticketing.signer.qr_payload(
        TicketId::from(id),
        BookingId::from(holder.booking_id),
        SessionId::from(holder.session_id),
    );
    let png = ordo_identity::tickets::qr_png(&payload).map_err(ApiError::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

/// Admits a ticket at the entrance (admin): the QR payload's signature must be valid; a
/// ticket is admitted once, and a refunded booking's tickets are refused.
#[utoipa::path(post, path = "/api/v1/tickets/{ticket_id}/check-in", tag = "bookings",
    request_body = CheckIn, security(("bearer" = [])),
    responses((status = 200, body = CheckedIn),
              (status = 404, description = "problem urn:ordo:problem:invalid_ticket: the QR payload is not this ticket's, as this system issued it"),
              (status = 409, description = "already checked in, or the booking is not paid")))]
pub async fn check_in(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(ticket_id): Path<String>,
    ApiJson(body): ApiJson<CheckIn>,
) -> Result<ApiJson<CheckedIn>, ApiError> {
    let forged = || ApiError::UnknownReference {
        code: "invalid_ticket",
        detail: "the QR payload is not a ticket this system issued".into(),
    };
    let signed = state
        .ticketing
        .signer
        .verify(&body.qr_payload)
        .ok_or_else(forged)?;
    if signed.ticket_id.to_string() != ticket_id.trim() {
        return Err(forged());
    }
    state
        .ticketing
        .bookings
        .execute(
            &signed.booking_id.to_string(),
            BookingCommand::CheckIn {
                ticket_id: signed.ticket_id,
            },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    Ok(ApiJson(CheckedIn {
        ticket_id: *signed.ticket_id.as_uuid(),
        booking_id: *signed.booking_id.as_uuid(),
        status: "checked_in".into(),
    }))
}
