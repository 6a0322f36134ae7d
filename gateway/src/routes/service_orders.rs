//! Service orders of the marketplace: a customer publishes one, an admin approves or
//! rejects it, a matching verified provider accepts it (first come, first served), the
//! customer pays into escrow, the provider starts and completes the work, the customer
//! confirms and reviews; the customer or an admin cancels. Every route sends one command;
//! the service order saga does the rest (attaching and charging the payment, releasing the
//! payout, refunding). One order is read from the write side with its personal values
//! opened; lists come from the read model.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ordo_aggregates::common::{
    Currency, Money, PaymentId, PersonalText, Reason, ServiceOrderId, Title, UserId,
};
use ordo_aggregates::payment::PaymentCommand;
use ordo_aggregates::provider::{ServiceArea, ServiceType};
use ordo_aggregates::review::{flags, ReviewStatus};
use ordo_aggregates::service_order::{
    self, CancelledBy, Review, ReviewDimensions, ServiceOrder, ServiceOrderCommand,
    ServiceOrderStatus, ServiceRequest, Stars,
};
pub use ordo_projections::queries::marketplace::ServiceReviewSummary;
use ordo_projections::queries::marketplace::{self as queries, ServiceOrderSummary};
use ordo_projections::queries::page::PageRequest;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::api_error;
use crate::identity::{AdminUser, AuthUser, CustomerUser, ProviderUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::routes::providers::Limit;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/service-orders",
            post(publish_service_order).get(list_service_orders),
        )
        .route("/service-orders/{service_order_id}", get(get_service_order))
        .route(
            "/service-orders/{service_order_id}/accept",
            post(accept_service_order),
        )
        .route(
            "/service-orders/{service_order_id}/pay",
            post(pay_service_order),
        )
        .route(
            "/service-orders/{service_order_id}/start",
            post(start_service_order),
        )
        .route(
            "/service-orders/{service_order_id}/complete",
            post(complete_service_order),
        )
        .route(
            "/service-orders/{service_order_id}/confirm",
            post(confirm_service_order),
        )
        .route(
            "/service-orders/{service_order_id}/cancel",
            post(cancel_service_order),
        )
        .route(
            "/service-orders/{service_order_id}/review",
            post(review_service_order),
        )
        .route(
            "/admin/service-orders/{service_order_id}/approve",
            post(approve_service_order),
        )
        .route(
            "/admin/service-orders/{service_order_id}/reject",
            post(reject_service_order),
        )
        .route("/admin/service-reviews", get(service_review_queue))
        .route("/admin/service-orders", get(admin_service_orders))
        .route(
            "/admin/service-orders/{service_order_id}/review/publish",
            post(publish_service_review),
        )
        .route(
            "/admin/service-orders/{service_order_id}/review/reject",
            post(reject_service_review),
        )
}

/// A service order to publish.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PublishServiceOrder {
    /// 1 to 200 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 200,
        example = "Fix the kitchen sink",
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub title: String,
    /// 1 to 5000 characters.
    #[schema(
        min_length = 1,
        max_length = 5000,
        example = "It drips all night.",
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub description: String,
    /// 1 to 40 letters, digits, '_' or '-'.
    #[schema(
        min_length = 1,
        max_length = 40,
        example = "plumbing",
        pattern = r"^[A-Za-z0-9_-]{1,40}$"
    )]
    pub service_type: String,
    /// Minor units of `currency`, 1 to 1,000,000,000.
    #[schema(minimum = 1, maximum = 1_000_000_000, example = 8000)]
    pub price: i64,
    /// Three letters.
    #[schema(
        min_length = 3,
        max_length = 3,
        example = "EUR",
        pattern = "^[A-Za-z]{3}$"
    )]
    pub currency: String,
    /// NORTH, SOUTH, EAST, WEST or MID.
    #[schema(example = "NORTH", pattern = "^(NORTH|SOUTH|EAST|WEST|MID)$")]
    pub location: String,
    /// 1 to 300 characters.
    #[schema(
        min_length = 1,
        max_length = 300,
        example = "1 Main Street, 2nd floor",
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub address: String,
}

/// A service order published.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceOrderPublished {
    pub order_id: Uuid,
    /// `pending_review`.
    pub status: String,
    pub message: String,
}

/// The payout of a service order's escrow to its provider.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayoutView {
    pub payout_id: Uuid,
    pub provider_id: Uuid,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
}

/// A review, as the order shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    /// published, pending_moderation (it holds a sensitive word: an admin decides) or
    /// rejected; only a published review counts in the provider's rating.
    pub status: String,
    pub rating: u8,
    pub comment: Option<String>,
    pub dimensions: ReviewDimensionsBody,
}

/// One service order. A personal value is null once erased.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceOrderView {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub provider_id: Option<Uuid>,
    pub title: String,
    pub description: Option<String>,
    pub service_type: String,
    /// Minor units of `currency`.
    pub price: i64,
    pub currency: String,
    pub location: String,
    pub address: Option<String>,
    pub status: String,
    /// The payment attached last.
    pub payment_id: Option<Uuid>,
    /// What is held in escrow (minor units), once paid.
    pub escrow: Option<i64>,
    pub payout: Option<PayoutView>,
    /// What went back to the customer (minor units), once refunded.
    pub refunded: Option<i64>,
    pub cancelled_by: Option<String>,
    pub reason: Option<String>,
    pub review: Option<ReviewView>,
    /// The order's version on the write side.
    pub version: i64,
}

/// Service orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceOrderList {
    pub service_orders: Vec<ServiceOrderSummary>,
    /// Where the next page starts; null on the last page.
    pub next_cursor: Option<String>,
}

/// How the customer pays (through the same provider as goods).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PayServiceOrder {
    /// `card`, `alipay`...: 1 to 50 characters (surrounding spaces are dropped).
    #[schema(
        max_length = 50,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub payment_method: String,
    /// The payment method's token (sandbox: tok_success, tok_decline): 1 to 200 characters
    /// (surrounding spaces are dropped).
    #[schema(
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub payment_token: String,
}

/// A payment started for a service order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServicePaymentAccepted {
    pub order_id: Uuid,
    pub payment_id: Uuid,
}

/// Why an order is rejected or cancelled.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReasonBody {
    /// 1 to 500 characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub reason: Option<String>,
}

/// The three rated aspects, 1 to 5 each.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewDimensionsBody {
    #[schema(minimum = 1, maximum = 5)]
    pub professionalism: i64,
    #[schema(minimum = 1, maximum = 5)]
    pub attitude: i64,
    #[schema(minimum = 1, maximum = 5)]
    pub punctuality: i64,
}

/// A review of the provider of a completed order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReviewBody {
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i64,
    /// At most 2000 characters.
    #[serde(default)]
    #[schema(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub comment: String,
    pub dimensions: ReviewDimensionsBody,
}

fn invalid(err: ordo_aggregates::common::ParseError) -> ApiError {
    ApiError::invalid(err.field(), err.message())
}

fn not_found(raw: &str) -> ApiError {
    ApiError::NotFound(format!("no service order {raw}"))
}

fn order_id_of(raw: &str) -> Result<ServiceOrderId, ApiError> {
    raw.parse().map_err(|_| not_found(raw))
}

/// The order, if the caller may see it: its customer, its accepting provider, or an admin.
async fn visible(
    state: &AppState,
    user: &AuthUser,
    raw: &str,
) -> Result<(ServiceOrderId, ServiceOrder, i64), ApiError> {
    let order_id = order_id_of(raw)?;
    match state.marketplace.service_order(order_id).await? {
        Some((order, version)) if user.is_admin() || order.is_party(UserId::from(user.user_id)) => {
            Ok((order_id, order, version))
        }
        _ => Err(not_found(raw)),
    }
}

/// The order, if the caller is its customer (or an admin).
async fn owned(
    state: &AppState,
    user: &AuthUser,
    raw: &str,
) -> Result<(ServiceOrderId, ServiceOrder, i64), ApiError> {
    let (order_id, order, version) = visible(state, user, raw).await?;
    let customer = order.request().map(|r| *r.customer_id.as_uuid());
    if user.is_admin() || customer == Some(user.user_id) {
        Ok((order_id, order, version))
    } else {
        Err(not_found(raw))
    }
}

async fn execute(
    state: &AppState,
    order_id: ServiceOrderId,
    caller: Uuid,
    request_id: &str,
    command: ServiceOrderCommand,
) -> Result<i64, ApiError> {
    Ok(state
        .marketplace
        .service_orders
        .execute(
            &order_id.to_string(),
            command,
            CommandMetadata::from_request(request_id, Some(caller)),
        )
        .await
        .map_err(api_error)?
        .version)
}

async fn view_of(state: &AppState, order_id: ServiceOrderId) -> Result<ServiceOrderView, ApiError> {
    let (order, version) = state
        .marketplace
        .service_order(order_id)
        .await?
        .ok_or_else(|| not_found(&order_id.to_string()))?;
    let order = state.marketplace.open(&order).await?;
    let request = order
        .request()
        .expect("an existing service order has its request");
    let text = |t: &PersonalText| t.clear_value().map(str::to_owned);
    Ok(ServiceOrderView {
        order_id: *order_id.as_uuid(),
        customer_id: *request.customer_id.as_uuid(),
        provider_id: order.provider_id().map(|p| *p.as_uuid()),
        title: request.title.to_string(),
        description: text(&request.description),
        service_type: request.service_type.to_string(),
        price: request.price.amount_minor(),
        currency: request.price.currency().to_string(),
        location: request.location.to_string(),
        address: text(&request.address),
        status: order
            .status()
            .unwrap_or(ServiceOrderStatus::PendingReview)
            .as_str()
            .to_owned(),
        payment_id: order.payment_id().map(|p| *p.as_uuid()),
        escrow: order.escrow().map(Money::amount_minor),
        payout: order.payout().map(|p| PayoutView {
            payout_id: *p.payout_id.as_uuid(),
            provider_id: *p.provider_id.as_uuid(),
            amount: p.amount.amount_minor(),
            currency: p.amount.currency().to_string(),
        }),
        refunded: order.refunded().map(|(_, amount)| amount.amount_minor()),
        cancelled_by: order.cancelled_by().map(|by| {
            match by {
                CancelledBy::Customer => "customer",
                CancelledBy::Admin => "admin",
            }
            .to_owned()
        }),
        reason: order.reason().map(|r| r.to_string()),
        review: order.review().map(|r| ReviewView {
            status: order
                .review_status()
                .unwrap_or(ReviewStatus::Published)
                .as_str()
                .to_owned(),
            rating: r.rating.get(),
            comment: text(&r.comment),
            dimensions: ReviewDimensionsBody {
                professionalism: i64::from(r.dimensions.professionalism.get()),
                attitude: i64::from(r.dimensions.attitude.get()),
                punctuality: i64::from(r.dimensions.punctuality.get()),
            },
        }),
        version,
    })
}

/// Publishes a service order; it waits for an admin's review.
#[utoipa::path(post, path = "/api/v1/service-orders", tag = "marketplace",
    request_body = PublishServiceOrder, security(("bearer" = [])),
    responses((status = 201, body = ServiceOrderPublished,
               headers(("Location" = String, description = "the order")))))]
pub async fn publish_service_order(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<PublishServiceOrder>,
) -> Result<Response, ApiError> {
    let subject = UserId::from(user.user_id);
    let currency = Currency::parse(&body.currency).map_err(invalid)?;
    if !(1..=1_000_000_000).contains(&body.price) {
        return Err(ApiError::invalid(
            "price",
            "price must be 1 to 1000000000 (minor units)",
        ));
    }
    let request = ServiceRequest {
        customer_id: subject,
        title: Title::parse(&body.title).map_err(invalid)?,
        description: service_order::parse_description(subject, &body.description)
            .map_err(invalid)?,
        service_type: ServiceType::parse(&body.service_type).map_err(invalid)?,
        price: Money::new(body.price, currency)
            .map_err(|_| ApiError::invalid("price", "price must be more than zero"))?,
        location: ServiceArea::parse(&body.location, "location").map_err(invalid)?,
        address: service_order::parse_address(subject, &body.address).map_err(invalid)?,
    };
    let order_id = ServiceOrderId::new_v4();
    execute(
        &state,
        order_id,
        user.user_id,
        &request_id,
        ServiceOrderCommand::Publish(request),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/service-orders/{order_id}"),
        )],
        ApiJson(ServiceOrderPublished {
            order_id: *order_id.as_uuid(),
            status: ServiceOrderStatus::PendingReview.as_str().to_owned(),
            message: "the order waits for review; matching providers are told once it is approved"
                .to_owned(),
        }),
    )
        .into_response())
}

/// The caller's service orders, newest first: those they published (customers) or
/// accepted (providers).
#[utoipa::path(get, path = "/api/v1/service-orders", tag = "marketplace",
    params(Limit), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderList)))]
pub async fn list_service_orders(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<Limit>,
) -> Result<ApiJson<ServiceOrderList>, ApiError> {
    let page = PageRequest::parse(query.cursor.as_deref(), query.limit)?;
    let page = queries::service_orders_of(&state.pool, user.user_id, &page).await?;
    Ok(ApiJson(ServiceOrderList {
        service_orders: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One service order, for its customer, its accepting provider and admins.
#[utoipa::path(get, path = "/api/v1/service-orders/{service_order_id}", tag = "marketplace",
    params(("service_order_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order, or not the caller's")))]
pub async fn get_service_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    let (order_id, _, _) = visible(&state, &user, &raw).await?;
    Ok(ApiJson(view_of(&state, order_id).await?))
}

/// Accepts an approved order: the first matching verified provider wins; every later one
/// is refused with `urn:ordo:problem:already_accepted`.
#[utoipa::path(post, path = "/api/v1/service-orders/{service_order_id}/accept", tag = "marketplace",
    params(("service_order_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order"),
              (status = 409, description = "accepted by another provider (`urn:ordo:problem:already_accepted`), the provider is not verified (`provider_not_verified`) or does not match (`provider_not_matching`), or the order is not open (`transition_not_allowed`)")))]
pub async fn accept_service_order(
    State(state): State<AppState>,
    user: ProviderUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    let order_id = order_id_of(&raw)?;
    if state.marketplace.service_order(order_id).await?.is_none() {
        return Err(not_found(&raw));
    }
    let provider_id = UserId::from(user.user_id);
    // The provider's own aggregate says what they are qualified for; the order decides.
    let (provider, _) = state.marketplace.provider(provider_id).await?;
    execute(
        &state,
        order_id,
        user.user_id,
        &request_id,
        ServiceOrderCommand::Accept {
            provider_id,
            qualification: provider.qualification(),
        },
    )
    .await?;
    Ok(ApiJson(view_of(&state, order_id).await?))
}

/// Pays an accepted order: the money is held in escrow until the work is confirmed. Answers
/// 202: the saga attaches the payment and has the provider charge it.
#[utoipa::path(post, path = "/api/v1/service-orders/{service_order_id}/pay", tag = "marketplace",
    params(("service_order_id" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$")),
    request_body = PayServiceOrder, security(("bearer" = [])),
    responses((status = 202, body = ServicePaymentAccepted,
               headers(("Location" = String, description = "the order"))),
              (status = 404, description = "no such order, or not the caller's"),
              (status = 409, description = "not accepted, paid already (`urn:ordo:problem:service_order_not_payable`), or a payment is in progress")))]
pub async fn pay_service_order(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<PayServiceOrder>,
) -> Result<Response, ApiError> {
    let (method, token) =
        crate::routes::payments::payment_details(&body.payment_method, &body.payment_token)?;
    let (order_id, order, _) = owned(&state, &user, &raw).await?;
    let status = order.status().unwrap_or(ServiceOrderStatus::PendingReview);
    if status != ServiceOrderStatus::Accepted {
        return Err(ApiError::Refused {
            code: "service_order_not_payable",
            detail: format!("the service order is {status}, not accepted"),
        });
    }
    let request = order.request().expect("an existing order has its request");
    let payment_id = crate::routes::payments::new_payment_id(&headers, &user, *order_id.as_uuid())?;
    crate::routes::payments::refuse_while_in_progress(&state, order.payment_id(), payment_id)
        .await?;
    // One command: the service order saga attaches the payment, then charges it.
    crate::routes::payments::create_payment(
        &state,
        PaymentCommand::Create {
            payment_id: PaymentId::from(payment_id),
            order_id: *order_id.as_uuid(),
            customer_id: request.customer_id,
            amount: request.price.clone(),
            method: method.to_string(),
            sealed_token: state
                .token_seal
                .seal(token)
                .map_err(|err| ApiError::invalid("payment_token", err.to_string()))?,
        },
        CommandMetadata::from_request(&request_id, Some(user.user_id)),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        [(
            header::LOCATION,
            format!("/api/v1/service-orders/{order_id}"),
        )],
        ApiJson(ServicePaymentAccepted {
            order_id: *order_id.as_uuid(),
            payment_id,
        }),
    )
        .into_response())
}

async fn provider_step(
    state: &AppState,
    user: &ProviderUser,
    request_id: &str,
    raw: &str,
    command: fn(UserId) -> ServiceOrderCommand,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    let (order_id, order, _) = visible(state, user, raw).await?;
    if order.provider_id() != Some(UserId::from(user.user_id)) {
        // An admin sees the order but does not do the work.
        return Err(ApiError::Refused {
            code: "not_the_provider",
            detail: "only the provider who accepted the order starts and completes the work".into(),
        });
    }
    execute(
        state,
        order_id,
        user.user_id,
        request_id,
        command(UserId::from(user.user_id)),
    )
    .await?;
    Ok(ApiJson(view_of(state, order_id).await?))
}

/// The accepting provider starts the work on a paid order.
#[utoipa::path(post, path = "/api/v1/service-orders/{service_order_id}/start", tag = "marketplace",
    params(("service_order_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order, or not the caller's"),
              (status = 409, description = "not paid (`urn:ordo:problem:transition_not_allowed`), or the caller is an admin, not the accepting provider (`not_the_provider`)")))]
pub async fn start_service_order(
    State(state): State<AppState>,
    user: ProviderUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    provider_step(&state, &user, &request_id, &raw, |provider_id| {
        ServiceOrderCommand::Start { provider_id }
    })
    .await
}

/// The accepting provider marks the work done; the customer then confirms it, or it
/// confirms itself after `ORDO_SERVICE_CONFIRM_AFTER`.
#[utoipa::path(post, path = "/api/v1/service-orders/{service_order_id}/complete", tag = "marketplace",
    params(("service_order_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order, or not the caller's"),
              (status = 409, description = "not in progress (`urn:ordo:problem:transition_not_allowed`), or the caller is an admin, not the accepting provider (`not_the_provider`)")))]
pub async fn complete_service_order(
    State(state): State<AppState>,
    user: ProviderUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    provider_step(&state, &user, &request_id, &raw, |provider_id| {
        ServiceOrderCommand::Complete { provider_id }
    })
    .await
}

/// The customer confirms the work: the escrow is released to the provider.
#[utoipa::path(post, path = "/api/v1/service-orders/{service_order_id}/confirm", tag = "marketplace",
    params(("service_order_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order, or not the caller's"),
              (status = 409, description = "not done (`urn:ordo:problem:transition_not_allowed`)")))]
pub async fn confirm_service_order(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    let (order_id, _, _) = owned(&state, &user, &raw).await?;
    execute(
        &state,
        order_id,
        user.user_id,
        &request_id,
        ServiceOrderCommand::Confirm { automatic: false },
    )
    .await?;
    Ok(ApiJson(view_of(&state, order_id).await?))
}

/// Cancels an order: its customer before the work starts, an admin at any point before
/// the payout; what was paid is refunded.
#[utoipa::path(post, path = "/api/v1/service-orders/{service_order_id}/cancel", tag = "marketplace",
    params(("service_order_id" = String, Path)), request_body = ReasonBody, security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order, or not the caller's"),
              (status = 409, description = "too late to cancel (`urn:ordo:problem:transition_not_allowed`)")))]
pub async fn cancel_service_order(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    let (order_id, _, _) = owned(&state, &user, &raw).await?;
    let reason = body
        .reason
        .as_deref()
        .map(Reason::parse)
        .transpose()
        .map_err(invalid)?;
    let by = if user.is_admin() {
        CancelledBy::Admin
    } else {
        CancelledBy::Customer
    };
    execute(
        &state,
        order_id,
        user.user_id,
        &request_id,
        ServiceOrderCommand::Cancel { by, reason },
    )
    .await?;
    Ok(ApiJson(view_of(&state, order_id).await?))
}

/// The customer reviews the provider of a completed order, once.
#[utoipa::path(post, path = "/api/v1/service-orders/{service_order_id}/review", tag = "marketplace",
    params(("service_order_id" = String, Path)), request_body = ReviewBody, security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order, or not the caller's"),
              (status = 409, description = "reviewed already (`urn:ordo:problem:already_reviewed`) or not completed (`transition_not_allowed`)")))]
pub async fn review_service_order(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    let (order_id, order, _) = owned(&state, &user, &raw).await?;
    let subject = order
        .request()
        .map(|r| r.customer_id)
        .unwrap_or(UserId::from(user.user_id));
    let review = Review {
        rating: Stars::parse(body.rating, "rating").map_err(invalid)?,
        comment: service_order::parse_comment(subject, &body.comment).map_err(invalid)?,
        dimensions: ReviewDimensions {
            professionalism: Stars::parse(body.dimensions.professionalism, "professionalism")
                .map_err(invalid)?,
            attitude: Stars::parse(body.dimensions.attitude, "attitude").map_err(invalid)?,
            punctuality: Stars::parse(body.dimensions.punctuality, "punctuality")
                .map_err(invalid)?,
        },
    };
    let flagged = flags(&body.comment, &state.review_blocked_words);
    execute(
        &state,
        order_id,
        user.user_id,
        &request_id,
        ServiceOrderCommand::Review { review, flagged },
    )
    .await?;
    Ok(ApiJson(view_of(&state, order_id).await?))
}

async fn admin_step(
    state: &AppState,
    admin: &AdminUser,
    request_id: &str,
    raw: &str,
    command: ServiceOrderCommand,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    let (order_id, _, _) = visible(state, admin, raw).await?;
    execute(state, order_id, admin.user_id, request_id, command).await?;
    Ok(ApiJson(view_of(state, order_id).await?))
}

/// Approves an order waiting for review: matching verified providers see it and are told.
#[utoipa::path(post, path = "/api/v1/admin/service-orders/{service_order_id}/approve", tag = "marketplace",
    params(("service_order_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order"),
              (status = 409, description = "not pending review (`urn:ordo:problem:transition_not_allowed`)")))]
pub async fn approve_service_order(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    admin_step(
        &state,
        &admin,
        &request_id,
        &raw,
        ServiceOrderCommand::Approve,
    )
    .await
}

/// Rejects an order waiting for review.
#[utoipa::path(post, path = "/api/v1/admin/service-orders/{service_order_id}/reject", tag = "marketplace",
    params(("service_order_id" = String, Path)), request_body = RejectServiceOrder, security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order"),
              (status = 409, description = "not pending review (`urn:ordo:problem:transition_not_allowed`)")))]
pub async fn reject_service_order(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<RejectServiceOrder>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    let reason = Reason::parse(&body.reason).map_err(invalid)?;
    admin_step(
        &state,
        &admin,
        &request_id,
        &raw,
        ServiceOrderCommand::Reject { reason },
    )
    .await
}

/// Which service orders an admin lists, and its paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ServiceOrderQuery {
    /// The orders' status: pending_review (the default: waiting for an admin), pending,
    /// accepted, paid, in_progress, done, completed, reviewed, rejected or cancelled.
    #[param(
        pattern = r"^(pending_review|pending|accepted|paid|in_progress|done|completed|reviewed|rejected|cancelled)$"
    )]
    pub status: Option<String>,
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

const SERVICE_ORDER_STATUSES: [&str; 10] = [
    "pending_review",
    "pending",
    "accepted",
    "paid",
    "in_progress",
    "done",
    "completed",
    "reviewed",
    "rejected",
    "cancelled",
];

/// Service orders by status, newest first (admin); by default those waiting for an admin's
/// review (approve or reject).
#[utoipa::path(get, path = "/api/v1/admin/service-orders", tag = "marketplace",
    params(ServiceOrderQuery), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderList), (status = 422, description = "unknown status, bad cursor or limit")))]
pub async fn admin_service_orders(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<ServiceOrderQuery>,
) -> Result<ApiJson<ServiceOrderList>, ApiError> {
    let status = query.status.as_deref().unwrap_or("pending_review");
    if !SERVICE_ORDER_STATUSES.contains(&status) {
        return Err(ApiError::invalid(
            "status",
            format!(
                "status must be one of {}",
                SERVICE_ORDER_STATUSES.join(", ")
            ),
        ));
    }
    let page = PageRequest::parse(query.cursor.as_deref(), query.limit)?;
    let page = queries::service_orders_with_status(&state.pool, status, &page).await?;
    Ok(ApiJson(ServiceOrderList {
        service_orders: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Which providers' reviews the moderation queue lists, and its paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ServiceReviewQuery {
    /// pending_moderation (the default), published or rejected.
    #[param(pattern = r"^(pending_moderation|published|rejected)$")]
    pub status: Option<String>,
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// A page of providers' reviews, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceReviewPage {
    pub reviews: Vec<ServiceReviewSummary>,
    pub next_cursor: Option<String>,
}

/// The providers' reviews by moderation status (admin), newest first; by default those
/// held for a sensitive word. The comment is read on the order itself.
#[utoipa::path(get, path = "/api/v1/admin/service-reviews", tag = "marketplace",
    params(ServiceReviewQuery), security(("bearer" = [])),
    responses((status = 200, body = ServiceReviewPage), (status = 422, description = "unknown status, bad cursor or limit")))]
pub async fn service_review_queue(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<ServiceReviewQuery>,
) -> Result<ApiJson<ServiceReviewPage>, ApiError> {
    let statuses: &[&str] = match query.status.as_deref() {
        None | Some("pending_moderation") => &["pending_moderation"],
        Some("published") => &["published"],
        Some("rejected") => &["rejected"],
        Some(_) => {
            return Err(ApiError::invalid(
                "status",
                "status must be pending_moderation, published or rejected",
            ))
        }
    };
    let page = PageRequest::parse(query.cursor.as_deref(), query.limit)?;
    let page = queries::service_reviews_with_status(&state.pool, statuses, &page).await?;
    Ok(ApiJson(ServiceReviewPage {
        reviews: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Publishes a provider's review held for a sensitive word (admin): it counts in the
/// provider's rating from then on. Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/service-orders/{service_order_id}/review/publish", tag = "marketplace",
    params(("service_order_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order"),
              (status = 409, description = "not reviewed (`urn:ordo:problem:not_reviewed`) or rejected (`invalid_transition`)")))]
pub async fn publish_service_review(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    admin_step(
        &state,
        &admin,
        &request_id,
        &raw,
        ServiceOrderCommand::PublishReview,
    )
    .await
}

/// Rejects a provider's review (admin), with a reason: it no longer counts in the
/// provider's rating. Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/service-orders/{service_order_id}/review/reject", tag = "marketplace",
    params(("service_order_id" = String, Path)), request_body = RejectServiceOrder, security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderView), (status = 404, description = "no such order"),
              (status = 409, description = "not reviewed (`urn:ordo:problem:not_reviewed`)"),
              (status = 422, description = "invalid reason")))]
pub async fn reject_service_review(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<RejectServiceOrder>,
) -> Result<ApiJson<ServiceOrderView>, ApiError> {
    let reason = Reason::parse(&body.reason).map_err(invalid)?;
    admin_step(
        &state,
        &admin,
        &request_id,
        &raw,
        ServiceOrderCommand::RejectReview { reason },
    )
    .await
}

/// Why an admin rejects an order (or its review).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectServiceOrder {
    /// 1 to 500 characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub reason: String,
}
