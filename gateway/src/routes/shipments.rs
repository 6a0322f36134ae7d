//! Fulfilment over HTTP: admins pick and ship an order's shipment, carriers post signed
//! tracking updates, customers read their shipments and confirm receipt of their orders.
//! The fulfilment process (`ordo_sagas::fulfilment`) does the rest: it creates the
//! shipment of a paid order, and moves the order to shipped, delivered and completed.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use ordo_aggregates::common::UserId;
use ordo_aggregates::order::{OrderCommand, OrderStatus};
use ordo_aggregates::shipment::{CarrierCode, ShipmentCommand, TrackingNumber, TrackingStatus};
use ordo_payments::signature::{self, SIGNATURE_HEADER};
use ordo_projections::queries::shipments;
pub use ordo_projections::queries::shipments::{ShipmentView, TrackingView};
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::api_error;
use crate::identity::{AdminUser, AuthUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/shipments/{shipment_id}/pick", post(pick_shipment))
        .route("/admin/shipments/{shipment_id}/ship", post(ship_shipment))
        .route("/shipments/{shipment_id}", get(get_shipment))
        .route("/shipments/{shipment_id}/tracking", post(tracking_update))
        .route("/orders/{order_id}/confirm-receipt", post(confirm_receipt))
}

/// How a picked shipment leaves.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ShipShipment {
    /// The carrier's code (`sandbox`: the carrier Ordo plays itself, which then reports the
    /// parcel in transit and delivered).
    #[schema(pattern = r"^\s*[a-z0-9_-]{1,32}\s*$")]
    pub carrier: String,
    /// The carrier's tracking number.
    #[schema(pattern = r"^\s*[A-Za-z0-9-]{1,64}\s*$")]
    pub tracking_no: String,
}

/// A shipment command's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentWritten {
    pub shipment_id: Uuid,
    /// The shipment's status after the command.
    pub status: String,
    /// The shipment's version after the command.
    pub version: i64,
    /// False when the command repeated what was already done.
    pub changed: bool,
}

/// A carrier's tracking update, signed like the payment provider's callbacks.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TrackingUpdate {
    /// The shipment (the same as in the path).
    pub shipment_id: Uuid,
    /// The tracking number the shipment left with.
    pub tracking_no: String,
    /// What the carrier reports.
    #[schema(pattern = "^(in_transit|delivered|exception)$")]
    pub status: String,
    /// When, by the carrier's clock.
    pub at: DateTime<Utc>,
}

/// A completed order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptConfirmed {
    pub order_id: Uuid,
    /// `completed`.
    pub status: String,
    /// The order's version after the confirmation.
    pub version: i64,
}

fn shipment_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no shipment {raw}")))
}

async fn execute(
    state: &AppState,
    shipment_id: Uuid,
    command: ShipmentCommand,
    metadata: CommandMetadata,
) -> Result<ShipmentWritten, ApiError> {
    let committed = state
        .shipments
        .execute(&shipment_id.to_string(), command, metadata)
        .await
        .map_err(api_error)?;
    let (shipment, _) = state
        .shipments
        .load(&shipment_id.to_string())
        .await
        .map_err(api_error)?;
    Ok(ShipmentWritten {
        shipment_id,
        status: shipment
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        version: committed.version,
        changed: !committed.events.is_empty(),
    })
}

/// Refuses to move the goods of an order refunded before they left: its customer has their
/// money back, so nothing ships.
async fn refuse_if_refunded(state: &AppState, shipment_id: Uuid) -> Result<(), ApiError> {
    let (shipment, _) = state
        .shipments
        .load(&shipment_id.to_string())
        .await
        .map_err(api_error)?;
    let Some(order_id) = shipment.order_id() else {
        return Ok(());
    };
    let (order, _) = state
        .orders
        .load(&order_id.to_string())
        .await
        .map_err(api_error)?;
    if order.status() == Some(OrderStatus::Refunded) {
        return Err(ApiError::Refused {
            code: "order_refunded",
            detail: format!("order {order_id} was refunded: its goods do not ship"),
        });
    }
    Ok(())
}

/// Picks a shipment (admin): its goods left the warehouse (出库). Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/shipments/{shipment_id}/pick", tag = "shipments",
    security(("bearer" = [])),
    responses((status = 200, body = ShipmentWritten), (status = 404, description = "no such shipment"),
               (status = 409, description = "the shipment is past picking, or its order was refunded (order_refunded)")))]
pub async fn pick_shipment(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw_id): Path<String>,
) -> Result<ApiJson<ShipmentWritten>, ApiError> {
    let id = shipment_id(&raw_id)?;
    refuse_if_refunded(&state, id).await?;
    let metadata = CommandMetadata::from_request(&request_id, Some(admin.user_id));
    Ok(ApiJson(
        execute(&state, id, ShipmentCommand::Pick, metadata).await?,
    ))
}

/// Ships a picked shipment (admin) with its carrier and tracking number; the order becomes
/// `shipped`. With carrier `sandbox`, the sandbox carrier then reports it in transit and
/// delivered. Repeating it with the same carrier and number is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/shipments/{shipment_id}/ship", tag = "shipments",
    request_body = ShipShipment, security(("bearer" = [])),
    responses((status = 200, body = ShipmentWritten), (status = 404, description = "no such shipment"),
               (status = 409, description = "not picked yet, shipped with another carrier or number, or its order was refunded (order_refunded)"),
               (status = 422, description = "invalid carrier or tracking number")))]
pub async fn ship_shipment(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<ShipShipment>,
) -> Result<ApiJson<ShipmentWritten>, ApiError> {
    let id = shipment_id(&raw_id)?;
    let carrier =
        CarrierCode::parse(&body.carrier).map_err(|e| ApiError::invalid("carrier", e.message()))?;
    let tracking_no = TrackingNumber::parse(&body.tracking_no)
        .map_err(|e| ApiError::invalid("tracking_no", e.message()))?;
    refuse_if_refunded(&state, id).await?;
    let metadata = CommandMetadata::from_request(&request_id, Some(admin.user_id));
    Ok(ApiJson(
        execute(
            &state,
            id,
            ShipmentCommand::Ship {
                carrier,
                tracking_no,
            },
            metadata,
        )
        .await?,
    ))
}

/// One shipment with its tracking (its customer or an admin; anyone else is told it does
/// not exist).
#[utoipa::path(get, path = "/api/v1/shipments/{shipment_id}", tag = "shipments",
    security(("bearer" = [])),
    responses((status = 200, body = ShipmentView), (status = 404, description = "no such shipment")))]
pub async fn get_shipment(
    State(state): State<AppState>,
    user: AuthUser,
    Path(raw_id): Path<String>,
) -> Result<ApiJson<ShipmentView>, ApiError> {
    let id = shipment_id(&raw_id)?;
    shipments::find(&state.pool, id)
        .await?
        .filter(|s| s.customer_id == user.user_id || user.is_admin())
        .map(ApiJson)
        .ok_or_else(|| ApiError::NotFound(format!("no shipment {raw_id}")))
}

/// A carrier reports on a shipment. The timestamp and body must be signed with the carrier
/// secret (`Ordo-Signature: t=<unix>,v1=<hex>`); a bad, missing or stale signature changes
/// nothing (401). A repeated update is a no-op, and a late one never moves the shipment
/// backwards.
#[utoipa::path(post, path = "/api/v1/shipments/{shipment_id}/tracking", tag = "shipments",
    request_body = TrackingUpdate,
    responses((status = 200, body = ShipmentWritten, description = "applied (or already applied)"),
               (status = 401, description = "bad, missing or expired signature"),
               (status = 404, description = "no such shipment"),
               (status = 409, description = "the shipment has not shipped"),
               (status = 422, description = "another shipment, tracking number or status")))]
pub async fn tracking_update(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    signature::verify(&state.carrier_secret, &body, header, signature::now())
        .map_err(|err| ApiError::Unauthorized(err.to_string()))?;
    let update: TrackingUpdate =
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(e.to_string()))?;
    let id = shipment_id(&raw_id)?;
    if update.shipment_id != id {
        return Err(ApiError::invalid(
            "shipment_id",
            "the body names another shipment than the URL",
        ));
    }
    let status = TrackingStatus::parse(&update.status)
        .map_err(|e| ApiError::invalid("status", e.message()))?;
    let (shipment, version) = state
        .shipments
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    if version == 0 {
        return Err(ApiError::NotFound(format!("no shipment {id}")));
    }
    if let Some(number) = shipment.tracking_no() {
        if number.as_str() != update.tracking_no.trim() {
            return Err(ApiError::invalid(
                "tracking_no",
                "the shipment left with another tracking number",
            ));
        }
    }
    let written = execute(
        &state,
        id,
        ShipmentCommand::RecordTracking {
            status,
            at: update.at,
        },
        CommandMetadata::from_request(&request_id, None),
    )
    .await?;
    Ok((StatusCode::OK, ApiJson(written)).into_response())
}

/// The customer confirms receiving a shipped or delivered order (确认收货): it becomes
/// `completed`. Only the order's customer may (anyone else, admins included, is told it
/// does not exist). Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/confirm-receipt", tag = "orders",
    security(("bearer" = [])),
    responses((status = 200, body = ReceiptConfirmed), (status = 404, description = "no such order of the caller"),
               (status = 409, description = "the order has not shipped")))]
pub async fn confirm_receipt(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    Path(raw_id): Path<String>,
) -> Result<ApiJson<ReceiptConfirmed>, ApiError> {
    let order_id: Uuid = raw_id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no order {raw_id}")))?;
    let committed = state
        .orders
        .execute(
            &order_id.to_string(),
            OrderCommand::ConfirmReceipt {
                customer_id: UserId::from(user.user_id),
            },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    crate::consistency::record_write(
        &state.pool,
        user.user_id,
        "order",
        &order_id.to_string(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(ApiJson(ReceiptConfirmed {
        order_id,
        status: "completed".into(),
        version: committed.version,
    }))
}
