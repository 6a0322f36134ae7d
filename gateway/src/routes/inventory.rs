//! Inventory levels: admins restock; anyone reads on hand, reserved and available.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ordo_aggregates::common::{Quantity, Sku};
use ordo_aggregates::inventory::InventoryCommand;
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
    let (item, _) = state
        .inventory
        .load(sku.as_str())
        .await
        .map_err(api_error)?;
    Ok(ApiJson(Restocked {
        sku: sku.to_string(),
        on_hand: item.on_hand() as i64,
        version: committed.version,
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
