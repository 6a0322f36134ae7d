//! Inventory levels: admins restock and set safety thresholds; anyone reads on hand,
//! reserved and available.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use ordo_aggregates::common::{Quantity, Sku};
use ordo_aggregates::inventory::{InventoryCommand, InventoryEvent};
use ordo_projections::queries::inventory;
pub use ordo_projections::queries::inventory::InventoryView;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::commands::api_error;
use crate::consistency::{self, PreferWait};
use crate::identity::{AdminUser, AuthUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inventory/{sku}", get(get_inventory))
        .route("/inventory/{sku}/restock", post(restock))
        .route(
            "/inventory/{sku}/safety-threshold",
            put(set_safety_threshold),
        )
}

/// Stock arriving.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Restock {
    /// How many units arrive (1 to 1,000,000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
}

/// The answer to a restock.
#[derive(Debug, Serialize, ToSchema)]
pub struct Restocked {
    pub sku: String,
    /// Units on hand after the restock.
    pub on_hand: i64,
    /// The version the command produced.
    pub version: i64,
}

/// Adds stock to a product (admin).
#[utoipa::path(post, path = "/api/v1/inventory/{sku}/restock", tag = "inventory", request_body = Restock,
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, body = Restocked), (status = 404, description = "no such product"),
               (status = 422, description = "invalid quantity")))]
pub async fn restock(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<Restock>,
) -> Result<ApiJson<Restocked>, ApiError> {
    let sku = Sku::parse(&sku).map_err(|e| ApiError::invalid("sku", e.to_string()))?;
    let quantity =
        Quantity::parse(body.quantity).map_err(|e| ApiError::invalid("quantity", e.to_string()))?;
    // Stock only exists for products of the catalog; the write side is the authority.
    let owner = ordo_store::catalog::product_of_sku(&state.pool, sku.as_str())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if owner.is_none() {
        return Err(ApiError::NotFound(format!("no product {sku}")));
    }
    let committed = state
        .inventory
        .execute(
            sku.as_str(),
            InventoryCommand::Restock {
                sku: sku.clone(),
                quantity,
            },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    consistency::record_write(
        &state.pool,
        user.user_id,
        "inventory",
        sku.as_str(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    // The restock's own event says what is on hand after it.
    let on_hand = committed.events.iter().rev().find_map(|event| match event {
        InventoryEvent::Restocked { on_hand, .. } => Some(*on_hand),
        _ => None,
    });
    let on_hand = match on_hand {
        Some(on_hand) => on_hand,
        None => {
            let (item, _) = state
                .inventory
                .load(sku.as_str())
                .await
                .map_err(api_error)?;
            item.on_hand()
        }
    };
    Ok(ApiJson(Restocked {
        sku: sku.to_string(),
        on_hand: on_hand as i64,
        version: committed.version,
    }))
}

/// A safety threshold.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SafetyThreshold {
    /// Falling below this many available units notifies the admins, once per crossing
    /// (0 to 1,000,000; 0: no threshold).
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub threshold: i64,
}

/// The answer to setting a safety threshold.
#[derive(Debug, Serialize, ToSchema)]
pub struct SafetyThresholdSet {
    pub sku: String,
    pub safety_threshold: i64,
    /// Units available now.
    pub available: i64,
    /// Whether they are below the threshold now.
    pub below_threshold: bool,
    /// The version the command produced.
    pub version: i64,
}

/// Sets a SKU's safety threshold (安全库存) (admin): whenever the units available fall
/// below it, every admin's inbox says so, once per crossing.
#[utoipa::path(put, path = "/api/v1/inventory/{sku}/safety-threshold", tag = "inventory", request_body = SafetyThreshold,
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, body = SafetyThresholdSet), (status = 404, description = "no such product")))]
pub async fn set_safety_threshold(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<SafetyThreshold>,
) -> Result<ApiJson<SafetyThresholdSet>, ApiError> {
    let sku = Sku::parse(&sku).map_err(|e| ApiError::invalid("sku", e.to_string()))?;
    let threshold = u32::try_from(body.threshold)
        .ok()
        .filter(|t| *t <= 1_000_000)
        .ok_or_else(|| ApiError::invalid("threshold", "threshold must be 0 to 1000000"))?;
    let owner = ordo_store::catalog::product_of_sku(&state.pool, sku.as_str())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if owner.is_none() {
        return Err(ApiError::NotFound(format!("no product {sku}")));
    }
    let committed = state
        .inventory
        .execute(
            sku.as_str(),
            InventoryCommand::SetSafetyThreshold {
                sku: sku.clone(),
                threshold,
            },
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    let (item, version) = state
        .inventory
        .load(sku.as_str())
        .await
        .map_err(api_error)?;
    Ok(ApiJson(SafetyThresholdSet {
        sku: sku.to_string(),
        safety_threshold: i64::from(item.safety_threshold()),
        available: i64::try_from(item.available()).unwrap_or(i64::MAX),
        below_threshold: item.below_threshold(),
        version: version.max(committed.version),
    }))
}

/// Stock of one SKU.
#[utoipa::path(get, path = "/api/v1/inventory/{sku}", tag = "inventory",
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, body = InventoryView), (status = 404, description = "no such product")))]
pub async fn get_inventory(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    wait: PreferWait,
    Path(sku): Path<String>,
) -> Result<Response, ApiError> {
    let sku = Sku::parse(&sku).map_err(|e| ApiError::invalid("sku", e.to_string()))?;
    if let (Some(timeout), Some(user)) = (wait.0, user.as_ref()) {
        consistency::wait_for_last_write(
            &state.pool,
            user.user_id,
            "projection-inventory",
            "inventory",
            timeout,
        )
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let view = inventory::level(&state.pool, sku.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no product {sku}")))?;
    let mut response = ApiJson(view).into_response();
    if let Some(applied) = wait.applied() {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}
