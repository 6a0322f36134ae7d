//! Catalog products: admins create, change, list and delist them; anyone browses them.
//!
//! A product (SPU) has one or more SKUs. `POST /products` takes either the single-SKU form
//! (`sku`, `price`, `currency`: the product is identified by its SKU) or `skus`, a list.
//! Routes under `/products/{sku}` name a SKU; the product it belongs to is found in the
//! write side's SKU index (`ordo_store::catalog`), never in a read model.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::BTreeMap;

use ordo_aggregates::common::{
    Category, CategoryId, Currency, Description, MediaUrl, Money, ProductId, ProductName, Quantity,
    Sku, SpecName, SpecValue,
};
use ordo_aggregates::product::{ProductCommand, SkuLimit, SkuPrice, SkuSpec};
use ordo_projections::queries::page::PageRequest;
use ordo_projections::queries::products;
pub use ordo_projections::queries::products::ProductView;
use ordo_store::catalog::{self, WriteLock};
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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
        .route("/products/{sku}/delist", post(delist_sku))
        .route("/products/{sku}/list", post(list_sku))
}

/// A new product: either one SKU (`sku`, `price`, `currency`, and optionally
/// `weight_grams`, `max_per_customer`) or a list of `skus`, not both.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProduct {
    /// The product's id (letters, digits, '-' or '_', stored upper-case); defaults to the
    /// SKU in the single-SKU form, required with `skus`.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub product_id: Option<String>,
    /// Single-SKU form: the stock keeping unit (1 to 64 letters, digits, '-' or '_').
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub sku: Option<String>,
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
    /// Category label, used for browsing: 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub category: String,
    /// The category of the tree to file the product under.
    #[schema(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub category_id: Option<Uuid>,
    /// Picture and video URLs (http or https, at most 2,000 characters, no spaces), in
    /// display order.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub media: Vec<String>,
    /// Single-SKU form: price in minor units (cents), above zero.
    #[schema(minimum = 1)]
    pub price: Option<i64>,
    /// Single-SKU form: ISO 4217 currency code (3 letters).
    #[schema(pattern = r"^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// Single-SKU form: weight in grams.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub weight_grams: Option<i64>,
    /// Single-SKU form: most units one customer may order.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_per_customer: Option<i64>,
    /// The SKUs, 1 to 100.
    #[schema(min_items = 1, max_items = 100)]
    pub skus: Option<Vec<NewSku>>,
}

/// One SKU of a new product.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewSku {
    /// Stock keeping unit: 1 to 64 letters, digits, '-' or '_' (stored upper-case).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub sku: String,
    /// Specification values, such as `{"colour": "black", "size": "M"}` (at most 10; names
    /// 1 to 40 characters, values 1 to 100).
    #[serde(default)]
    pub spec: BTreeMap<String, String>,
    /// Price in minor units (cents), above zero.
    #[schema(minimum = 1)]
    pub price: i64,
    /// ISO 4217 currency code (3 letters).
    #[schema(pattern = r"^[A-Za-z]{3}$")]
    pub currency: String,
    /// Weight in grams.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub weight_grams: Option<i64>,
    /// Most units one customer may order over their orders that were not cancelled,
    /// rejected or expired.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_per_customer: Option<i64>,
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
    /// New price of this SKU in minor units, above zero, with `currency`.
    #[schema(minimum = 1)]
    pub price: Option<i64>,
    /// ISO 4217 currency code (3 letters), with `price`.
    #[schema(pattern = r"^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// The product's new media (the whole list, in display order).
    #[schema(max_items = 20)]
    pub media: Option<Vec<String>>,
    /// This SKU's new purchase limit per customer; `null` lifts it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000)]
    pub max_per_customer: Option<Option<i64>>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
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
    /// The SKU named (the first SKU of a new product).
    pub sku: String,
    /// The product it belongs to.
    pub product_id: String,
    /// The version the command produced; send `Prefer: wait=N` on a later GET to read it.
    pub version: i64,
}

/// Filters of the product list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ProductFilter {
    /// Only this category label.
    pub category: Option<String>,
    /// Only this category of the tree.
    #[param(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub category_id: Option<Uuid>,
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

fn parse_sku(
    field: &str,
    sku: &str,
    spec: BTreeMap<String, String>,
    price: i64,
    currency: &str,
    weight_grams: Option<i64>,
    max_per_customer: Option<i64>,
) -> Result<SkuSpec, ApiError> {
    let invalid = |name: &str, e: String| ApiError::invalid(format!("{field}{name}"), e);
    if spec.len() > ordo_aggregates::product::MAX_SPECS {
        return Err(invalid("spec", "at most 10 specification values".into()));
    }
    let spec = spec
        .iter()
        .map(|(k, v)| Ok((SpecName::parse(k)?, SpecValue::parse(v)?)))
        .collect::<Result<BTreeMap<_, _>, ordo_aggregates::common::ParseError>>()
        .map_err(|e| invalid("spec", e.to_string()))?;
    if price <= 0 {
        return Err(invalid("price", "price must be above zero".into()));
    }
    Ok(SkuSpec {
        sku: Sku::parse(sku).map_err(|e| invalid("sku", e.to_string()))?,
        spec,
        price: parse_money(price, currency)?,
        weight_grams: weight_grams
            .map(|w| {
                u32::try_from(w)
                    .ok()
                    .filter(|w| *w <= ordo_aggregates::product::MAX_WEIGHT_GRAMS)
                    .ok_or_else(|| {
                        invalid(
                            "weight_grams",
                            "weight_grams must be 0 to 1000000000".into(),
                        )
                    })
            })
            .transpose()?,
        max_per_customer: max_per_customer
            .map(Quantity::parse)
            .transpose()
            .map_err(|_| {
                invalid(
                    "max_per_customer",
                    "max_per_customer must be 1 to 1000000".into(),
                )
            })?,
    })
}

/// Turns the body into the product's id and SKUs.
fn parse_skus(body: &mut CreateProduct) -> Result<(ProductId, Vec<SkuSpec>), ApiError> {
    let single = body.sku.is_some()
        || body.price.is_some()
        || body.currency.is_some()
        || body.weight_grams.is_some()
        || body.max_per_customer.is_some();
    match (body.skus.take(), single) {
        (Some(_), true) => Err(ApiError::invalid(
            "skus",
            "give either sku, price and currency, or skus, not both",
        )),
        (None, false) => Err(ApiError::invalid(
            "sku",
            "give sku, price and currency, or skus",
        )),
        (None, true) => {
            let (Some(sku), Some(price), Some(currency)) =
                (body.sku.as_deref(), body.price, body.currency.as_deref())
            else {
                return Err(ApiError::invalid(
                    "sku",
                    "the single-SKU form needs sku, price and currency",
                ));
            };
            let spec = parse_sku(
                "",
                sku,
                BTreeMap::new(),
                price,
                currency,
                body.weight_grams,
                body.max_per_customer,
            )?;
            let product_id = match body.product_id.as_deref() {
                Some(id) => ProductId::parse(id)
                    .map_err(|e| ApiError::invalid("product_id", e.to_string()))?,
                None => ProductId::of_single_sku(&spec.sku),
            };
            Ok((product_id, vec![spec]))
        }
        (Some(skus), false) => {
            let product_id = body
                .product_id
                .as_deref()
                .ok_or_else(|| ApiError::invalid("product_id", "product_id is required with skus"))
                .and_then(|id| {
                    ProductId::parse(id).map_err(|e| ApiError::invalid("product_id", e.to_string()))
                })?;
            if skus.is_empty() || skus.len() > ordo_aggregates::product::MAX_SKUS {
                return Err(ApiError::invalid("skus", "a product has 1 to 100 SKUs"));
            }
            let skus = skus
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    parse_sku(
                        &format!("skus[{i}]."),
                        &s.sku,
                        s.spec,
                        s.price,
                        &s.currency,
                        s.weight_grams,
                        s.max_per_customer,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((product_id, skus))
        }
    }
}

/// Creates a product with its SKUs (admin).
#[utoipa::path(post, path = "/api/v1/products", tag = "products", request_body = CreateProduct,
    security(("bearer" = [])),
    responses((status = 201, body = ProductWritten),
               (status = 404, description = "problem urn:ordo:problem:unknown_category: no such category"),
               (status = 409, description = "product or SKU exists"),
               (status = 422, description = "invalid field or duplicate SKU")))]
pub async fn create_product(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    ApiJson(mut body): ApiJson<CreateProduct>,
) -> Result<Response, ApiError> {
    let (product_id, skus) = parse_skus(&mut body)?;
    if body.media.len() > ordo_aggregates::product::MAX_MEDIA {
        return Err(ApiError::invalid("media", "a product has at most 20 media"));
    }
    let media = body
        .media
        .iter()
        .map(|m| MediaUrl::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid("media", e.to_string()))?;
    // Filing under a tree category holds the tree's lock until the product commits, so the
    // category cannot be deleted between the check and the commit.
    let tree_lock = match body.category_id {
        Some(_) => Some(
            WriteLock::category_tree(&state.pool)
                .await
                .map_err(|e| ApiError::Internal(e.into()))?,
        ),
        None => None,
    };
    let created = create_checked(&state, &user, &request_id, body, product_id, skus, media).await;
    if let Some(lock) = tree_lock {
        lock.release()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    created
}

/// Checks what the new product refers to on the write side, then creates it.
async fn create_checked(
    state: &AppState,
    user: &AdminUser,
    request_id: &str,
    body: CreateProduct,
    product_id: ProductId,
    skus: Vec<SkuSpec>,
    media: Vec<MediaUrl>,
) -> Result<Response, ApiError> {
    if let Some(id) = body.category_id {
        let known = catalog::category_path(&state.pool, id)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        if known.is_none() {
            return Err(ApiError::UnknownReference {
                code: "unknown_category",
                detail: format!("no category {id}"),
            });
        }
    }
    // A SKU belongs to one product: refuse one another product owns (the index's key
    // refuses a racing one at commit).
    let codes: Vec<String> = skus.iter().map(|s| s.sku.to_string()).collect();
    for taken in catalog::skus_taken(&state.pool, &codes)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
    {
        let owner = catalog::product_of_sku(&state.pool, &taken)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        if owner.as_deref() != Some(product_id.as_str()) {
            return Err(ApiError::Refused {
                code: "sku_taken",
                detail: format!("sku {taken} belongs to another product"),
            });
        }
    }
    let first_sku = skus[0].sku.clone();
    let command = ProductCommand::Create {
        product_id: product_id.clone(),
        name: ProductName::parse(&body.name)
            .map_err(|e| ApiError::invalid("name", e.to_string()))?,
        description: Description::parse(&body.description)
            .map_err(|e| ApiError::invalid("description", e.to_string()))?,
        category: Category::parse(&body.category)
            .map_err(|e| ApiError::invalid("category", e.to_string()))?,
        category_id: body.category_id.map(CategoryId::from),
        media,
        skus,
    };
    let committed = state
        .products
        .execute(
            product_id.as_str(),
            command,
            CommandMetadata::from_request(request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    consistency::record_write(
        &state.pool,
        user.user_id,
        "product",
        product_id.as_str(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/products/{first_sku}"))],
        ApiJson(ProductWritten {
            sku: first_sku.to_string(),
            product_id: product_id.to_string(),
            version: committed.version,
        }),
    )
        .into_response())
}

/// The product that owns the SKU in the path, from the write side's SKU index.
async fn owner_of(state: &AppState, sku: &str) -> Result<(Sku, ProductId), ApiError> {
    let sku = Sku::parse(sku).map_err(|e| ApiError::invalid("sku", e.to_string()))?;
    let owner = catalog::product_of_sku(&state.pool, sku.as_str())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .ok_or_else(|| ApiError::NotFound(format!("no product {sku}")))?;
    let product_id = ProductId::parse(&owner).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((sku, product_id))
}

/// Runs one command on the product owning `sku` and records the write for `Prefer: wait`.
async fn run(
    state: &AppState,
    user_id: Uuid,
    request_id: &str,
    sku: Sku,
    product_id: ProductId,
    command: ProductCommand,
) -> Result<ProductWritten, ApiError> {
    let committed = state
        .products
        .execute(
            product_id.as_str(),
            command,
            CommandMetadata::from_request(request_id, Some(user_id)),
        )
        .await
        .map_err(api_error)?;
    consistency::record_write(
        &state.pool,
        user_id,
        "product",
        product_id.as_str(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(ProductWritten {
        sku: sku.to_string(),
        product_id: product_id.to_string(),
        version: committed.version,
    })
}

/// Changes the product of a SKU: its name, description, category or media, and the SKU's
/// price or purchase limit (admin).
#[utoipa::path(patch, path = "/api/v1/products/{sku}", tag = "products", request_body = UpdateProduct,
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, body = ProductWritten), (status = 404, description = "no such product"),
               (status = 422, description = "invalid field")))]
pub async fn update_product(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<UpdateProduct>,
) -> Result<ApiJson<ProductWritten>, ApiError> {
    let (sku, product_id) = owner_of(&state, &sku).await?;
    let price = match (body.price, body.currency.as_deref()) {
        (None, None) => None,
        (Some(price), Some(_)) if price <= 0 => {
            return Err(ApiError::invalid("price", "price must be above zero"))
        }
        (Some(price), Some(currency)) => Some(SkuPrice {
            sku: sku.clone(),
            price: parse_money(price, currency)?,
        }),
        _ => {
            return Err(ApiError::invalid(
                "price",
                "price and currency must be given together",
            ))
        }
    };
    let media = match &body.media {
        Some(media) if media.len() > ordo_aggregates::product::MAX_MEDIA => {
            return Err(ApiError::invalid("media", "a product has at most 20 media"))
        }
        Some(media) => Some(
            media
                .iter()
                .map(|m| MediaUrl::parse(m))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::invalid("media", e.to_string()))?,
        ),
        None => None,
    };
    let limit = body
        .max_per_customer
        .map(|limit| {
            let max_per_customer = limit.map(Quantity::parse).transpose().map_err(|_| {
                ApiError::invalid("max_per_customer", "max_per_customer must be 1 to 1000000")
            })?;
            Ok::<_, ApiError>(SkuLimit {
                sku: sku.clone(),
                max_per_customer,
            })
        })
        .transpose()?;
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
        media,
        limit,
    };
    run(&state, user.user_id, &request_id, sku, product_id, command)
        .await
        .map(ApiJson)
}

/// Takes a SKU off sale (admin): it can no longer be ordered; browsing and search leave it
/// out. Delisting a delisted SKU changes nothing.
#[utoipa::path(post, path = "/api/v1/products/{sku}/delist", tag = "products",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, body = ProductWritten), (status = 404, description = "no such SKU")))]
pub async fn delist_sku(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(sku): Path<String>,
) -> Result<ApiJson<ProductWritten>, ApiError> {
    let (sku, product_id) = owner_of(&state, &sku).await?;
    let command = ProductCommand::Delist { sku: sku.clone() };
    run(&state, user.user_id, &request_id, sku, product_id, command)
        .await
        .map(ApiJson)
}

/// Puts a delisted SKU on sale again (admin). Listing a listed SKU changes nothing.
#[utoipa::path(post, path = "/api/v1/products/{sku}/list", tag = "products",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, body = ProductWritten), (status = 404, description = "no such SKU")))]
pub async fn list_sku(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(sku): Path<String>,
) -> Result<ApiJson<ProductWritten>, ApiError> {
    let (sku, product_id) = owner_of(&state, &sku).await?;
    let command = ProductCommand::List { sku: sku.clone() };
    run(&state, user.user_id, &request_id, sku, product_id, command)
        .await
        .map(ApiJson)
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

/// SKUs on sale, by SKU, optionally of one category.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ProductFilter),
    responses((status = 200, body = ProductPage)))]
pub async fn list_products(
    State(state): State<AppState>,
    Query(filter): Query<ProductFilter>,
) -> Result<ApiJson<ProductPage>, ApiError> {
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    let page = products::list(
        &state.pool,
        filter.category.as_deref(),
        filter.category_id,
        &page,
    )
    .await?;
    Ok(ApiJson(ProductPage {
        products: page.items,
        next_cursor: page.next_cursor,
    }))
}
