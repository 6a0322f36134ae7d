//! Catalog products: admins create and change them; anyone browses them.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ordo_aggregates::common::{Category, Currency, Description, Money, ProductName, Sku};
use ordo_aggregates::product::ProductCommand;
use ordo_projections::queries::page::PageRequest;
use ordo_projections::queries::products;
pub use ordo_projections::queries::products::ProductView;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::commands::api_error;
use crate::consistency::{self, PreferWait};
use crate::identity::{AdminUser, AuthUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", post(create_product).get(list_products))
        .route("/products/{sku}", get(get_product).patch(update_product))
}

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProduct {
    /// Stock keeping unit: 1 to 64 letters, digits, '-' or '_' (stored upper-case).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub sku: String,
    /// Display name: 1 to 200 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Longer description: at most 5,000 characters.
    #[serde(default)]
    #[schema(
        max_length = 5000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub description: String,
    /// Category, used for browsing: 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub category: String,
    /// Price in minor units (cents).
    #[schema(minimum = 0)]
    pub price: i64,
    /// ISO 4217 currency code (3 letters).
    #[schema(pattern = r"^[A-Za-z]{3}$")]
    pub currency: String,
}

/// Changes to a product; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProduct {
    /// 1 to 200 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// At most 5,000 characters.
    #[schema(
        max_length = 5000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub description: Option<String>,
    /// 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub category: Option<String>,
    /// New price in minor units, with `currency`.
    #[schema(minimum = 0)]
    pub price: Option<i64>,
    /// ISO 4217 currency code (3 letters), with `price`.
    #[schema(pattern = r"^[A-Za-z]{3}$")]
    pub currency: Option<String>,
}

/// A page of products.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub products: Vec<ProductView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The answer to a product command.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductWritten {
    pub sku: String,
    /// The version the command produced; send `Prefer: wait=N` on a later GET to read it.
    pub version: i64,
}

/// Filters of the product list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ProductFilter {
    /// Only this category.
    pub category: Option<String>,
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^([2-6][0-9a-f]|7[0-9a-e])+$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn parse_money(price: i64, currency: &str) -> Result<Money, ApiError> {
    let currency =
        Currency::parse(currency).map_err(|e| ApiError::invalid("currency", e.to_string()))?;
    Money::new(price, currency).map_err(|e| ApiError::invalid("price", e.to_string()))
}

/// Creates a product (admin).
#[utoipa::path(post, path = "/api/v1/products", tag = "products", request_body = CreateProduct,
    security(("bearer" = [])),
    responses((status = 201, body = ProductWritten), (status = 409, description = "SKU exists"),
               (status = 422, description = "invalid field")))]
pub async fn create_product(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<CreateProduct>,
) -> Result<Response, ApiError> {
    let sku = Sku::parse(&body.sku).map_err(|e| ApiError::invalid("sku", e.to_string()))?;
    let command = ProductCommand::Create {
        sku: sku.clone(),
        name: ProductName::parse(&body.name)
            .map_err(|e| ApiError::invalid("name", e.to_string()))?,
        description: Description::parse(&body.description)
            .map_err(|e| ApiError::invalid("description", e.to_string()))?,
        category: Category::parse(&body.category)
            .map_err(|e| ApiError::invalid("category", e.to_string()))?,
        price: parse_money(body.price, &body.currency)?,
    };
    let committed = state
        .products
        .execute(
            sku.as_str(),
            command,
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    consistency::record_write(
        &state.pool,
        user.user_id,
        "product",
        sku.as_str(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/products/{sku}"))],
        ApiJson(ProductWritten {
            sku: sku.to_string(),
            version: committed.version,
        }),
    )
        .into_response())
}

/// Changes a product (admin).
#[utoipa::path(patch, path = "/api/v1/products/{sku}", tag = "products", request_body = UpdateProduct,
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, body = ProductWritten), (status = 404, description = "no such product")))]
pub async fn update_product(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<UpdateProduct>,
) -> Result<ApiJson<ProductWritten>, ApiError> {
    let sku = Sku::parse(&sku).map_err(|e| ApiError::invalid("sku", e.to_string()))?;
    let price = match (body.price, body.currency.as_deref()) {
        (None, None) => None,
        (Some(price), Some(currency)) => Some(parse_money(price, currency)?),
        _ => {
            return Err(ApiError::invalid(
                "price",
                "price and currency must be given together",
            ))
        }
    };
    let command = ProductCommand::Update {
        name: body
            .name
            .as_deref()
            .map(ProductName::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("name", e.to_string()))?,
        description: body
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("description", e.to_string()))?,
        category: body
            .category
            .as_deref()
            .map(Category::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("category", e.to_string()))?,
        price,
    };
    let committed = state
        .products
        .execute(
            sku.as_str(),
            command,
            CommandMetadata::from_request(&request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    consistency::record_write(
        &state.pool,
        user.user_id,
        "product",
        sku.as_str(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(ApiJson(ProductWritten {
        sku: sku.to_string(),
        version: committed.version,
    }))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{sku}", tag = "products",
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, body = ProductView), (status = 404, description = "no such product")))]
pub async fn get_product(
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
            "projection-products",
            "product",
            timeout,
        )
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let product = products::find(&state.pool, sku.as_str()).await?;
    let product = product.ok_or_else(|| ApiError::NotFound(format!("no product {sku}")))?;
    let mut response = ApiJson(product).into_response();
    if let Some(applied) = wait.applied() {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

/// Products, by SKU, optionally of one category.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ProductFilter),
    responses((status = 200, body = ProductPage)))]
pub async fn list_products(
    State(state): State<AppState>,
    Query(filter): Query<ProductFilter>,
) -> Result<ApiJson<ProductPage>, ApiError> {
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    let page = products::list(&state.pool, filter.category.as_deref(), &page).await?;
    Ok(ApiJson(ProductPage {
        products: page.items,
        next_cursor: page.next_cursor,
    }))
}
