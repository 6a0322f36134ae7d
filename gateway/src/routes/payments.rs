//! Paying for orders and cancelling them, the provider's callbacks, and payments as their
//! owners see them.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ordo_aggregates::common::{Currency, Money, PaymentId, RefundId, UserId};
use ordo_aggregates::order::{OrderCommand, OrderStatus};
use ordo_aggregates::payment::{PaymentCommand, PaymentStatus};
use ordo_projections::queries::payments;
pub use ordo_projections::queries::payments::PaymentView;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::api_error;
use crate::consistency::{self, PreferWait};
use crate::identity::{AdminUser, AuthUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::state::AppState;
use ordo_payments::signature::{self, SIGNATURE_HEADER};

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders/{order_id}/pay", post(pay_order))
        .route("/orders/{order_id}/cancel", post(cancel_order))
        .route("/orders/{order_id}/refund", post(refund_order))
        .route("/payments/{payment_id}", get(get_payment))
        .route("/payments/{payment_id}/refund", post(refund_payment))
        .route("/payments/{payment_id}/callbacks", post(payment_callback))
}

/// How the customer pays.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PayOrder {
    /// `card`, `alipay`...: 1 to 50 characters (surrounding spaces are dropped).
    #[schema(
        max_length = 50,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub payment_method: String,
    /// The token the payment method produced (sandbox: tok_success, tok_decline,
    /// tok_timeout, tok_duplicate): 1 to 200 characters.
    #[schema(
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub payment_token: String,
}

/// Part or all of a captured payment to give back.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefundPayment {
    /// Amount to give back, in minor units of the payment's currency.
    #[schema(minimum = 1, maximum = 100_000_000_000i64)]
    pub amount: i64,
    /// Why (1 to 200 characters).
    #[schema(
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub reason: String,
    /// The refund's id: repeating a refund with the same id gives nothing back twice.
    /// Without it, the `Idempotency-Key` header names the refund; without either, every
    /// request is a new refund.
    #[serde(default)]
    pub refund_id: Option<Uuid>,
}

/// A refund recorded on a payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentRefundAccepted {
    pub payment_id: Uuid,
    pub refund_id: Uuid,
    /// This refund, in minor units.
    pub amount: i64,
    /// Every refund of the payment so far, this one included, in minor units.
    pub total_refunded: i64,
    pub currency: String,
    /// `partially_refunded` or `refunded`.
    pub status: String,
}

/// A payment started.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentAccepted {
    pub payment_id: Uuid,
    /// `created` until the provider answers; with `Prefer: wait=N`, the order's status reached.
    pub status: String,
    /// The order's status when answering.
    pub order_status: String,
}

/// What the provider posts back, signed with
/// `Ordo-Signature: t=<unix seconds>,v1=<hex of HMAC-SHA256("<t>.<body>")>`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProviderCallback {
    pub payment_id: Uuid,
    pub provider_ref: String,
    /// `captured`, `authorized` or `failed`.
    pub status: String,
    /// Amount in minor units.
    pub amount: i64,
    pub currency: String,
    pub reason: Option<String>,
}

/// The order as its owner may act on it, from the write side.
async fn owned_order(
    state: &AppState,
    user: &AuthUser,
    order_id: &str,
) -> Result<(Uuid, ordo_aggregates::order::Order), ApiError> {
    let not_found = || ApiError::NotFound(format!("no order {order_id}"));
    let id: Uuid = order_id.parse().map_err(|_| not_found())?;
    let (order, version) = state
        .orders
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    let owner = order.customer_id().map(|c| *c.as_uuid());
    if version == 0 || (owner != Some(user.user_id) && !user.is_admin()) {
        return Err(not_found());
    }
    Ok((id, order))
}

/// The method and token of a pay request (orders and bookings), trimmed and checked.
pub(crate) fn payment_details<'a>(
    method: &'a str,
    token: &'a str,
) -> Result<(&'a str, &'a str), ApiError> {
    let method = method.trim();
    if method.is_empty() || method.chars().count() > 50 {
        return Err(ApiError::invalid(
            "payment_method",
            "payment_method must be 1 to 50 characters",
        ));
    }
    let token = token.trim();
    if token.is_empty() || token.chars().count() > 200 {
        return Err(ApiError::invalid(
            "payment_token",
            "payment_token must be 1 to 200 characters",
        ));
    }
    Ok((method, token))
}

/// The id of the payment a pay request for `payable` (an order or booking) creates:
/// derived from the caller's `Idempotency-Key`, so that a repeat finds the same payment.
pub(crate) fn new_payment_id(
    headers: &HeaderMap,
    user: &AuthUser,
    payable: Uuid,
) -> Result<Uuid, ApiError> {
    Ok(match crate::routes::orders::idempotency_key(headers)? {
        Some(key) => Uuid::new_v5(&user.user_id, format!("pay:{payable}:{key}").as_bytes()),
        None => Uuid::new_v4(),
    })
}

/// Refuses a new payment while `previous`, another payment of the same order or booking,
/// may still take the customer's money.
pub(crate) async fn refuse_while_in_progress(
    state: &AppState,
    previous: Option<PaymentId>,
    payment_id: Uuid,
) -> Result<(), ApiError> {
    let Some(previous) = previous.filter(|p| *p.as_uuid() != payment_id) else {
        return Ok(());
    };
    let (payment, _) = state
        .payments
        .load(&previous.to_string())
        .await
        .map_err(api_error)?;
    if matches!(
        payment.status(),
        Some(PaymentStatus::Created | PaymentStatus::Authorized)
    ) {
        return Err(ApiError::Refused {
            code: "payment_in_progress",
            detail: format!("payment {previous} is still in progress"),
        });
    }
    Ok(())
}

/// Creates the payment; the order or booking was told of it first.
pub(crate) async fn create_payment(
    state: &AppState,
    create: PaymentCommand,
    metadata: CommandMetadata,
) -> Result<(), ApiError> {
    let PaymentCommand::Create { payment_id, .. } = &create else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "not a payment creation"
        )));
    };
    state
        .payments
        .execute(&payment_id.to_string(), create, metadata)
        .await
        .map(drop)
        .map_err(api_error)
}

/// Pays an order awaiting payment (its customer). The provider answers later; the
/// checkout saga then marks the order paid and commits its stock.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/pay", tag = "payments", request_body = PayOrder,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"),
           ("Prefer" = Option<String>, Header, description = "wait=N: answer once the order is paid or no longer payable")),
    responses((status = 202, body = PaymentAccepted), (status = 404, description = "no such order"),
               (status = 409, description = "order not awaiting payment, or a payment is in progress")))]
pub async fn pay_order(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    wait: PreferWait,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<PayOrder>,
) -> Result<Response, ApiError> {
    let (method, token) = payment_details(&body.payment_method, &body.payment_token)?;
    let (order_id, order) = owned_order(&state, &user, &order_id).await?;
    let payment_id = new_payment_id(&headers, &user, order_id)?;
    if order.status() != Some(OrderStatus::AwaitingPayment) {
        let status = order.status().map(|s| s.as_str()).unwrap_or("unknown");
        return Err(ApiError::Refused {
            code: "order_not_payable",
            detail: format!("the order is {status}, not awaiting payment"),
        });
    }
    refuse_while_in_progress(&state, order.attached_payment(), payment_id).await?;
    let amount = order
        .total()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("order {order_id} has no total")))?;
    let metadata = CommandMetadata::from_request(&request_id, Some(user.user_id));
    // Attach first: a payment that exists is always one the order knows about.
    state
        .orders
        .execute(
            &order_id.to_string(),
            OrderCommand::AttachPayment {
                payment_id: PaymentId::from(payment_id),
            },
            metadata.clone(),
        )
        .await
        .map_err(api_error)?;
    let customer = order
        .customer_id()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("order without customer")))?;
    create_payment(
        &state,
        PaymentCommand::Create {
            payment_id: PaymentId::from(payment_id),
            order_id,
            customer_id: UserId::from(*customer.as_uuid()),
            amount,
            method: method.to_string(),
            sealed_token: state
                .token_seal
                .seal(token)
                .map_err(|err| ApiError::invalid("payment_token", err.to_string()))?,
        },
        metadata,
    )
    .await?;
    let mut order_status = OrderStatus::AwaitingPayment.as_str().to_string();
    let mut status = "created".to_string();
    if let Some(timeout) = wait.0 {
        (order_status, status) =
            wait_for_payment_outcome(&state, order_id, payment_id, timeout).await?;
    }
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/payments/{payment_id}"))],
        ApiJson(PaymentAccepted {
            payment_id,
            status,
            order_status,
        }),
    )
        .into_response();
    if let Some(applied) = wait.applied() {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

/// Waits until the order leaves `awaiting_payment` in the read model, or the payment is
/// declined (the order then still awaits a payment).
async fn wait_for_payment_outcome(
    state: &AppState,
    order_id: Uuid,
    payment_id: Uuid,
    timeout: Duration,
) -> Result<(String, String), ApiError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let progress = payments::progress(&state.pool, order_id, payment_id).await?;
        if let Some(progress) = progress {
            // A declined payment leaves the order awaiting payment: the answer is decided.
            let declined = matches!(
                progress.payment_status.as_deref(),
                Some("failed" | "voided")
            );
            if progress.order_status != "awaiting_payment"
                || declined
                || started.elapsed() >= timeout
            {
                return Ok((
                    progress.order_status,
                    progress.payment_status.unwrap_or_else(|| "created".into()),
                ));
            }
        } else if started.elapsed() >= timeout {
            return Ok(("awaiting_payment".into(), "created".into()));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Cancels an order before it is paid (its customer). Stock is released and an unfinished
/// payment voided by the checkout saga.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", tag = "orders",
    security(("bearer" = [])),
    responses((status = 202, description = "cancelled"), (status = 404, description = "no such order"),
               (status = 409, description = "already paid or decided")))]
pub async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    Path(order_id): Path<String>,
) -> Result<Response, ApiError> {
    let (order_id, _) = owned_order(&state, &user, &order_id).await?;
    let committed = state
        .orders
        .execute(
            &order_id.to_string(),
            OrderCommand::Cancel {
                reason: "cancelled_by_customer".into(),
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
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/orders/{order_id}"))],
        ApiJson(serde_json::json!({"order_id": order_id, "status": "cancelled", "version": committed.version})),
    )
        .into_response())
}

/// Refunds a paid order (admin): the order becomes `refunded` at once, and the checkout
/// saga refunds its payment in full with the provider.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/refund", tag = "orders",
    security(("bearer" = [])),
    responses((status = 202, description = "refunded; the payment follows"),
               (status = 404, description = "no such order"),
               (status = 409, description = "the order is not paid")))]
pub async fn refund_order(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(order_id): Path<String>,
) -> Result<Response, ApiError> {
    let (order_id, order) = owned_order(&state, &user, &order_id).await?;
    let payment_id = order.attached_payment().ok_or_else(|| ApiError::Refused {
        code: "order_not_paid",
        detail: "the order has no payment to refund".into(),
    })?;
    let committed = state
        .orders
        .execute(
            &order_id.to_string(),
            OrderCommand::MarkRefunded {
                payment_id,
                reason: "refunded_by_admin".into(),
            },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/orders/{order_id}"))],
        ApiJson(serde_json::json!({"order_id": order_id, "status": "refunded", "version": committed.version})),
    )
        .into_response())
}

/// Refunds part or all of a captured payment (admin), whatever it paid for. The payment
/// never gives back more than it captured in total; a refund repeated with its id is a
/// no-op; the provider is told by the process that owns the payment.
#[utoipa::path(post, path = "/api/v1/payments/{payment_id}/refund", tag = "payments", request_body = RefundPayment,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "names the refund when the body gives no refund_id: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$")),
    responses((status = 202, body = PaymentRefundAccepted), (status = 404, description = "no such payment"),
               (status = 409, description = "not captured, more than what is left to refund, or the refund id was used with another amount")))]
pub async fn refund_payment(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
    ApiJson(body): ApiJson<RefundPayment>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no payment {payment_id}"));
    let id: Uuid = payment_id.parse().map_err(|_| not_found())?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::invalid(
            "reason",
            "reason must be 1 to 200 characters",
        ));
    }
    let (payment, version) = state
        .payments
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    let currency = match payment.amount() {
        Some(amount) if version > 0 => amount.currency().clone(),
        _ => return Err(not_found()),
    };
    let amount = Money::new(body.amount, currency)
        .map_err(|e| ApiError::invalid("amount", e.to_string()))?;
    let refund_id = match (
        body.refund_id,
        crate::routes::orders::idempotency_key(&headers)?,
    ) {
        (Some(refund_id), _) => refund_id,
        (None, Some(key)) => Uuid::new_v5(&id, format!("refund:{key}").as_bytes()),
        (None, None) => Uuid::new_v4(),
    };
    state
        .payments
        .execute(
            &id.to_string(),
            PaymentCommand::Refund {
                refund_id: RefundId::from(refund_id),
                amount: amount.clone(),
                reason: reason.to_string(),
            },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    let (payment, _) = state
        .payments
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/payments/{id}"))],
        ApiJson(PaymentRefundAccepted {
            payment_id: id,
            refund_id,
            amount: amount.amount_minor(),
            total_refunded: payment
                .total_refunded()
                .map(Money::amount_minor)
                .unwrap_or_default(),
            currency: amount.currency().to_string(),
            status: payment
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        }),
    )
        .into_response())
}

/// One payment (its customer or an admin).

#[utoipa::path(get, path = "/api/v1/payments/{payment_id}", tag = "payments",
    security(("bearer" = [])),
    responses((status = 200, body = PaymentView), (status = 404, description = "no such payment")))]
pub async fn get_payment(
    State(state): State<AppState>,
    user: AuthUser,
    Path(payment_id): Path<String>,
) -> Result<ApiJson<PaymentView>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no payment {payment_id}"));
    let id: Uuid = payment_id.parse().map_err(|_| not_found())?;
    let payment = payments::find(&state.pool, id).await?;
    payment
        .filter(|p| p.customer_id == user.user_id || user.is_admin())
        .map(ApiJson)
        .ok_or_else(not_found)
}

/// The provider reports a payment's outcome. The timestamp and body must be signed with
/// the provider's secret; a bad or missing signature, or one more than 5 minutes from now,
/// changes nothing (401); a repeated callback is a no-op.
#[utoipa::path(post, path = "/api/v1/payments/{payment_id}/callbacks", tag = "payments", request_body = ProviderCallback,
    responses((status = 200, description = "applied (or already applied)"), (status = 401, description = "bad, missing or expired signature"),
               (status = 404, description = "no such payment"), (status = 409, description = "refused by the payment")))]
pub async fn payment_callback(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    signature::verify(&state.payment_secret, &body, header, signature::now())
        .map_err(|err| ApiError::Unauthorized(err.to_string()))?;
    let callback: ProviderCallback =
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(e.to_string()))?;
    let id: Uuid = payment_id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no payment {payment_id}")))?;
    if callback.payment_id != id {
        return Err(ApiError::invalid(
            "payment_id",
            "the body names another payment than the URL",
        ));
    }
    let (payment, version) = state
        .payments
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    if version == 0 || payment.status().is_none() {
        return Err(ApiError::NotFound(format!("no payment {id}")));
    }
    let currency = Currency::parse(&callback.currency)
        .map_err(|e| ApiError::invalid("currency", e.to_string()))?;
    let amount = Money::new(callback.amount, currency)
        .map_err(|e| ApiError::invalid("amount", e.to_string()))?;
    let command = match callback.status.as_str() {
        "captured" => PaymentCommand::Capture {
            provider_ref: callback.provider_ref.clone(),
            amount,
        },
        "authorized" => PaymentCommand::Authorize {
            provider_ref: callback.provider_ref.clone(),
        },
        "failed" => PaymentCommand::Fail {
            reason: callback.reason.clone().unwrap_or_else(|| "declined".into()),
        },
        other => {
            return Err(ApiError::invalid(
                "status",
                format!("unknown status {other}"),
            ))
        }
    };
    let committed = state
        .payments
        .execute(
            &id.to_string(),
            command,
            CommandMetadata::from_request(&request_id, None),
        )
        .await
        .map_err(api_error)?;
    Ok((StatusCode::OK, ApiJson(serde_json::json!({"payment_id": id, "version": committed.version, "changed": !committed.events.is_empty()}))).into_response())
}
