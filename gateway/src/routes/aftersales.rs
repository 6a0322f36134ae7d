//! After-sales (售后) over HTTP: a customer asks for a refund, a return or an exchange of
//! some lines of a delivered order (a refund only also before shipping), sends the goods
//! back and may withdraw before the decision; admins approve, reject and receive the
//! goods. The after-sales process (`ordo_sagas::aftersale`) does the rest: it refunds the
//! original payment, puts returned units back to stock and ships a replacement.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use ordo_aggregates::aftersale::{
    refund_lines, total_refund, AfterSaleCommand, AfterSaleKind, AfterSaleStatus, ReturnParcel,
    MAX_EVIDENCE,
};
use ordo_aggregates::common::{AfterSaleId, MediaUrl, Quantity, Reason, Sku, UserId};
use ordo_aggregates::order::{OrderCommand, OrderStatus};
use ordo_aggregates::shipment::{CarrierCode, TrackingNumber};
use ordo_projections::queries::aftersales;
pub use ordo_projections::queries::aftersales::{
    AfterSaleLineView, AfterSaleView, ReturnShipmentView,
};
use ordo_projections::queries::page::PageRequest;
use ordo_sagas::aftersale::{claimed_units_of, secure_units, AfterSaleStore, UnitsSecured};
use ordo_sagas::StepError;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::api_error;
use crate::identity::{AdminUser, AuthUser, CustomerUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/aftersales", get(list_aftersales).post(request_aftersale))
        .route("/aftersales/{aftersale_id}", get(get_aftersale))
        .route(
            "/aftersales/{aftersale_id}/return-shipment",
            post(ship_return),
        )
        .route("/aftersales/{aftersale_id}/withdraw", post(withdraw))
        .route("/admin/aftersales/{aftersale_id}/approve", post(approve))
        .route("/admin/aftersales/{aftersale_id}/reject", post(reject))
        .route("/admin/aftersales/{aftersale_id}/receive", post(receive))
}

/// What kind of after-sales service is asked for.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindParam {
    RefundOnly,
    ReturnRefund,
    Exchange,
}

impl From<KindParam> for AfterSaleKind {
    fn from(value: KindParam) -> Self {
        match value {
            KindParam::RefundOnly => AfterSaleKind::RefundOnly,
            KindParam::ReturnRefund => AfterSaleKind::ReturnRefund,
            KindParam::Exchange => AfterSaleKind::Exchange,
        }
    }
}

/// One line of a request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestLine {
    /// A SKU of the order.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub sku: String,
    /// Units concerned: at most those ordered less those earlier requests claim.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
}

/// An after-sales request. Each SKU on one line only.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestAfterSale {
    /// One of the caller's orders: delivered (within `ORDO_AFTERSALES_WINDOW` of delivery),
    /// or paid and not shipped yet for a refund only.
    pub order_id: Uuid,
    pub kind: KindParam,
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<RequestLine>,
    /// Why (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
    /// Photos or videos of the problem: http(s) URLs of at most 2000 characters.
    #[serde(default)]
    #[schema(max_items = 9)]
    pub evidence: Vec<String>,
}

/// A recorded request.
#[derive(Debug, Serialize, ToSchema)]
pub struct AfterSaleAccepted {
    pub aftersale_id: Uuid,
    /// `requested`.
    pub status: String,
    /// What approving it refunds, in minor units (nothing for an exchange).
    pub refund_amount: i64,
    pub currency: String,
    /// The request's version.
    pub version: i64,
}

/// A request's answer to a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct AfterSaleWritten {
    pub aftersale_id: Uuid,
    /// The request's status after the command.
    pub status: String,
    /// The request's version after the command.
    pub version: i64,
    /// False when the command repeated what was already done.
    pub changed: bool,
}

/// The parcel the goods go back in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReturnShipment {
    #[schema(pattern = r"^\s*[a-z0-9_-]{1,32}\s*$")]
    pub carrier: String,
    #[schema(pattern = r"^\s*[A-Za-z0-9-]{1,64}\s*$")]
    pub tracking_no: String,
}

/// Why a request is rejected.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectAfterSale {
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
}

/// A page of requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AfterSalePage {
    pub aftersales: Vec<AfterSaleView>,
    pub next_cursor: Option<String>,
}

/// Paging of the request list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AfterSalePaging {
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn aftersale_id(raw: &str) -> Result<AfterSaleId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no after-sales request {raw}")))
}

/// The request `raw`, if the caller may see it (its customer or an admin).
async fn visible(state: &AppState, user: &AuthUser, raw: &str) -> Result<AfterSaleId, ApiError> {
    let id = aftersale_id(raw)?;
    let (aftersale, version) = state
        .aftersales
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    let owner = aftersale.details().map(|d| *d.customer_id.as_uuid());
    if version == 0 || (owner != Some(user.user_id) && !user.is_admin()) {
        return Err(ApiError::NotFound(format!("no after-sales request {raw}")));
    }
    Ok(id)
}

async fn execute(
    state: &AppState,
    user: &AuthUser,
    id: AfterSaleId,
    command: AfterSaleCommand,
    request_id: &str,
) -> Result<AfterSaleWritten, ApiError> {
    let committed = state
        .aftersales
        .execute(
            &id.to_string(),
            command,
            CommandMetadata::from_request(request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    crate::consistency::record_write(
        &state.pool,
        user.user_id,
        "aftersale",
        &id.to_string(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let (aftersale, _) = state
        .aftersales
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    // A withdrawn or rejected request gives its units back before the answer, so that the
    // customer may ask about them again at once (the after-sales process repeats it).
    if let (Some(AfterSaleStatus::Withdrawn | AfterSaleStatus::Rejected), Some(details)) =
        (aftersale.status(), aftersale.details())
    {
        state
            .orders
            .execute(
                &details.order_id.to_string(),
                OrderCommand::ReleaseAfterSaleUnits { aftersale_id: id },
                CommandMetadata::from_request(request_id, Some(user.user_id)),
            )
            .await
            .map_err(api_error)?;
    }
    Ok(AfterSaleWritten {
        aftersale_id: *id.as_uuid(),
        status: aftersale
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        version: committed.version,
        changed: !committed.events.is_empty(),
    })
}

/// Asks for a refund, a return or an exchange of some lines of one of the caller's orders
/// (customer). Allowed within `ORDO_AFTERSALES_WINDOW` (7 days) of delivery, or for a
/// refund only before the order ships. Each line refunds what it paid: its units' share
/// of the line after its discounts; never more than the payment captured and has not
/// refunded yet.
#[utoipa::path(post, path = "/api/v1/aftersales", tag = "aftersales", request_body = RequestAfterSale,
    security(("bearer" = [])),
    responses((status = 201, body = AfterSaleAccepted),
               (status = 404, description = "no such order of the caller's (unknown_order), or a SKU it does not hold (not_in_order)"),
               (status = 409, description = "the order is not eligible (aftersale_not_allowed: not delivered, past the window, refunded...), more units than left (quantity_exceeded), or more than the payment can still refund (refund_exceeds_captured)"),
               (status = 422, description = "invalid lines, reason or evidence, or a SKU named twice")))]
pub async fn request_aftersale(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<RequestAfterSale>,
) -> Result<Response, ApiError> {
    let kind = AfterSaleKind::from(body.kind);
    let reason =
        Reason::parse(&body.reason).map_err(|e| ApiError::invalid("reason", e.message()))?;
    if body.evidence.len() > MAX_EVIDENCE {
        return Err(ApiError::invalid("evidence", "at most 9 evidence links"));
    }
    let evidence = body
        .evidence
        .iter()
        .map(|url| MediaUrl::parse(url).map_err(|e| ApiError::invalid("evidence", e.message())))
        .collect::<Result<Vec<_>, _>>()?;
    let requested = body
        .lines
        .iter()
        .map(|line| {
            let sku = Sku::parse(&line.sku).map_err(|e| ApiError::invalid("sku", e.message()))?;
            let quantity = Quantity::parse(line.quantity)
                .map_err(|e| ApiError::invalid("quantity", e.message()))?;
            Ok((sku, quantity))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let unknown_order = || ApiError::UnknownReference {
        code: "unknown_order",
        detail: format!("no order {} of yours", body.order_id),
    };
    let (order, version) = state
        .orders
        .load(&body.order_id.to_string())
        .await
        .map_err(api_error)?;
    let customer_id = order.customer_id().ok_or_else(unknown_order)?;
    if version == 0 || *customer_id.as_uuid() != user.user_id {
        return Err(unknown_order());
    }
    let not_allowed = |detail: String| ApiError::Refused {
        code: "aftersale_not_allowed",
        detail,
    };
    let status = order.status().ok_or_else(unknown_order)?;
    match status {
        OrderStatus::Paid if kind == AfterSaleKind::RefundOnly => {}
        OrderStatus::Paid | OrderStatus::Shipped => {
            return Err(not_allowed(format!(
                "a {} can be asked for once the order is delivered",
                kind.as_str()
            )))
        }
        OrderStatus::Delivered | OrderStatus::Completed => {
            if let Some(delivered_at) = order.delivered_at() {
                let window = chrono::Duration::from_std(state.aftersales_window)
                    .unwrap_or(chrono::Duration::days(7));
                if Utc::now() > delivered_at + window {
                    return Err(not_allowed(
                        "the after-sales window of the order's delivery has passed".into(),
                    ));
                }
            }
        }
        other => {
            return Err(not_allowed(format!(
                "the order is {}, not paid or delivered",
                other.as_str()
            )))
        }
    }
    let payment_id = order
        .attached_payment()
        .ok_or_else(|| not_allowed("the order has no payment".into()))?;
    // The write side's claims: a request withdrawn or rejected a moment ago gave its
    // units back already, whatever the read models show yet.
    let claimed: BTreeMap<Sku, u32> = order.claimed_units();
    let lines = refund_lines(order.lines(), order.pricing(), &requested, &claimed).map_err(
        |err| match err.kind() {
            ordo_aggregates::common::ErrorKind::Refused => ApiError::Refused {
                code: err.code(),
                detail: err.to_string(),
            },
            ordo_aggregates::common::ErrorKind::UnknownReference
            | ordo_aggregates::common::ErrorKind::NotFound => ApiError::UnknownReference {
                code: err.code(),
                detail: err.to_string(),
            },
            ordo_aggregates::common::ErrorKind::Invalid => {
                ApiError::invalid("lines", err.to_string())
            }
        },
    )?;
    let refund =
        total_refund(&lines).ok_or_else(|| ApiError::invalid("lines", "invalid amounts"))?;
    if kind.refunds() {
        let (payment, _) = state
            .payments
            .load(&payment_id.to_string())
            .await
            .map_err(api_error)?;
        let captured = payment.captured().map(|m| m.amount_minor()).unwrap_or(0);
        let refunded = payment
            .total_refunded()
            .map(|m| m.amount_minor())
            .unwrap_or(0);
        if refund.amount_minor() > captured - refunded {
            return Err(ApiError::Refused {
                code: "refund_exceeds_captured",
                detail: format!(
                    "the lines refund {} but the payment can refund only {} more",
                    refund.amount_minor(),
                    captured - refunded
                ),
            });
        }
    }
    let id = AfterSaleId::new_v4();
    let units = claimed_units_of(&lines);
    let metadata = CommandMetadata::from_request(&request_id, Some(user.user_id));
    let committed = state
        .aftersales
        .execute(
            &id.to_string(),
            AfterSaleCommand::Request {
                aftersale_id: id,
                order_id: body.order_id.into(),
                customer_id: UserId::from(user.user_id),
                payment_id,
                kind,
                lines,
                reason,
                evidence,
            },
            metadata.clone(),
        )
        .await
        .map_err(api_error)?;
    // The order grants each unit to one open request: a request that raced another for the
    // same units and lost is rejected, and told so here. The after-sales process makes the
    // same claim (a no-op by then), so a crash right here still ends claimed or rejected.
    let port = AfterSaleStore {
        aftersales: state.aftersales.clone(),
        inventory: state.inventory.clone(),
        payments: state.payments.clone(),
        shipments: state.shipments.clone(),
        orders: state.orders.clone(),
    };
    let secured = secure_units(&port, id, body.order_id.into(), units, metadata)
        .await
        .map_err(|err| match err {
            StepError::Failed(err) => ApiError::Internal(err),
            StepError::Refused { code, detail } => ApiError::Internal(anyhow::anyhow!(
                "the after-sales request could not be rejected ({code}): {detail}"
            )),
        })?;
    if let UnitsSecured::Refused { code, detail } = secured {
        return Err(ApiError::Refused {
            code: if code == "quantity_exceeded" {
                "quantity_exceeded"
            } else {
                "aftersale_not_allowed"
            },
            detail,
        });
    }
    crate::consistency::record_write(
        &state.pool,
        user.user_id,
        "aftersale",
        &id.to_string(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/aftersales/{id}"))],
        ApiJson(AfterSaleAccepted {
            aftersale_id: *id.as_uuid(),
            status: "requested".into(),
            refund_amount: if kind.refunds() {
                refund.amount_minor()
            } else {
                0
            },
            currency: refund.currency().as_str().to_string(),
            version: committed.version,
        }),
    )
        .into_response())
}

/// The caller's requests, newest first (an admin sees everyone's).
#[utoipa::path(get, path = "/api/v1/aftersales", tag = "aftersales", params(AfterSalePaging),
    security(("bearer" = [])),
    responses((status = 200, body = AfterSalePage), (status = 422, description = "bad cursor or limit")))]
pub async fn list_aftersales(
    State(state): State<AppState>,
    user: AuthUser,
    Query(paging): Query<AfterSalePaging>,
) -> Result<ApiJson<AfterSalePage>, ApiError> {
    let page = PageRequest::parse(paging.cursor.as_deref(), paging.limit)?;
    let owner = (!user.is_admin()).then_some(user.user_id);
    let page = aftersales::list(&state.pool, owner, &page).await?;
    Ok(ApiJson(AfterSalePage {
        aftersales: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One request (its customer or an admin; anyone else is told it does not exist).
#[utoipa::path(get, path = "/api/v1/aftersales/{aftersale_id}", tag = "aftersales",
    security(("bearer" = [])),
    responses((status = 200, body = AfterSaleView), (status = 404, description = "no such request")))]
pub async fn get_aftersale(
    State(state): State<AppState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> Result<ApiJson<AfterSaleView>, ApiError> {
    let id = aftersale_id(&raw)?;
    aftersales::find(&state.pool, *id.as_uuid())
        .await?
        .filter(|view| view.customer_id == user.user_id || user.is_admin())
        .map(ApiJson)
        .ok_or_else(|| ApiError::NotFound(format!("no after-sales request {raw}")))
}

/// The customer sent the goods back (return and refund, exchange; once approved).
/// Repeating it with the same parcel is a no-op.
#[utoipa::path(post, path = "/api/v1/aftersales/{aftersale_id}/return-shipment", tag = "aftersales",
    request_body = ReturnShipment, security(("bearer" = [])),
    responses((status = 200, body = AfterSaleWritten), (status = 404, description = "no such request of the caller's"),
               (status = 409, description = "not awaiting the goods, or sent in another parcel"),
               (status = 422, description = "invalid carrier or tracking number")))]
pub async fn ship_return(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<ReturnShipment>,
) -> Result<ApiJson<AfterSaleWritten>, ApiError> {
    let id = visible(&state, &user, &raw).await?;
    let carrier =
        CarrierCode::parse(&body.carrier).map_err(|e| ApiError::invalid("carrier", e.message()))?;
    let tracking_no = TrackingNumber::parse(&body.tracking_no)
        .map_err(|e| ApiError::invalid("tracking_no", e.message()))?;
    let command = AfterSaleCommand::ShipReturn {
        by: UserId::from(user.user_id),
        parcel: ReturnParcel {
            carrier,
            tracking_no,
        },
    };
    Ok(ApiJson(
        execute(&state, &user, id, command, &request_id).await?,
    ))
}

/// The customer withdraws the request before it is decided. Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/aftersales/{aftersale_id}/withdraw", tag = "aftersales",
    security(("bearer" = [])),
    responses((status = 200, body = AfterSaleWritten), (status = 404, description = "no such request of the caller's"),
               (status = 409, description = "already decided")))]
pub async fn withdraw(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<AfterSaleWritten>, ApiError> {
    let id = visible(&state, &user, &raw).await?;
    let command = AfterSaleCommand::Withdraw {
        by: UserId::from(user.user_id),
    };
    Ok(ApiJson(
        execute(&state, &user, id, command, &request_id).await?,
    ))
}

/// Approves a request (admin): a refund only is refunded at once; a return waits for the
/// goods. Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/aftersales/{aftersale_id}/approve", tag = "aftersales",
    security(("bearer" = [])),
    responses((status = 200, body = AfterSaleWritten), (status = 404, description = "no such request"),
               (status = 409, description = "withdrawn or rejected")))]
pub async fn approve(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<AfterSaleWritten>, ApiError> {
    let id = visible(&state, &admin, &raw).await?;
    Ok(ApiJson(
        execute(&state, &admin, id, AfterSaleCommand::Approve, &request_id).await?,
    ))
}

/// Rejects a request (admin) with a reason. Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/aftersales/{aftersale_id}/reject", tag = "aftersales",
    request_body = RejectAfterSale, security(("bearer" = [])),
    responses((status = 200, body = AfterSaleWritten), (status = 404, description = "no such request"),
               (status = 409, description = "already decided or withdrawn"),
               (status = 422, description = "invalid reason")))]
pub async fn reject(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<RejectAfterSale>,
) -> Result<ApiJson<AfterSaleWritten>, ApiError> {
    let id = visible(&state, &admin, &raw).await?;
    let reason =
        Reason::parse(&body.reason).map_err(|e| ApiError::invalid("reason", e.message()))?;
    Ok(ApiJson(
        execute(
            &state,
            &admin,
            id,
            AfterSaleCommand::Reject { reason },
            &request_id,
        )
        .await?,
    ))
}

/// The goods came back and were inspected (admin): their units go back to stock, then the
/// refund or the replacement follows. Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/aftersales/{aftersale_id}/receive", tag = "aftersales",
    security(("bearer" = [])),
    responses((status = 200, body = AfterSaleWritten), (status = 404, description = "no such request"),
               (status = 409, description = "not awaiting goods (a refund only, not approved yet...)")))]
pub async fn receive(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<AfterSaleWritten>, ApiError> {
    let id = visible(&state, &admin, &raw).await?;
    Ok(ApiJson(
        execute(&state, &admin, id, AfterSaleCommand::Receive, &request_id).await?,
    ))
}
