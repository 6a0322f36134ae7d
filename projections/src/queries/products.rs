//! Reads of the `products` read model: one SKU with its product's fields, and the catalog
//! by SKU (SKUs on sale only).

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::page::{Page, PageRequest};
use super::{PgPool, QueryResult};

/// A SKU as shoppers see it, with the fields of its product.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ProductView {
    pub sku: String,
    /// The product (SPU) the SKU belongs to; for a single-SKU product, the SKU itself.
    pub product_id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    /// The category of the catalog's tree, if the product is filed under one.
    pub category_id: Option<Uuid>,
    /// Specification values, such as `{"colour": "black", "size": "M"}`.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// Price in minor units.
    pub price: i64,
    pub currency: String,
    /// Shipping weight in grams, when known.
    pub weight_grams: Option<i64>,
    /// Most units one customer may order, when limited.
    pub max_per_customer: Option<i64>,
    /// False once delisted: it cannot be ordered.
    pub on_sale: bool,
    /// The product's pictures and videos, in order.
    pub media: Vec<String>,
    /// The product's version (its last event's sequence).
    pub version: i64,
}

const SELECT: &str = "SELECT sku, product_id, name, description, category, category_id, spec,
        price_minor AS price, currency, weight_grams, max_per_customer, on_sale, media, version
    FROM products";

/// The SKU `sku`, if the catalog has it (delisted or not).
pub async fn find(pool: &PgPool, sku: &str) -> QueryResult<Option<ProductView>> {
    Ok(sqlx::query_as(&format!("{SELECT} WHERE sku = $1"))
        .bind(sku)
        .fetch_optional(pool)
        .await?)
}

/// Whether the catalog has a product with this SKU.
pub async fn exists(pool: &PgPool, sku: &str) -> QueryResult<bool> {
    let known: Option<(String,)> = sqlx::query_as("SELECT sku FROM products WHERE sku = $1")
        .bind(sku)
        .fetch_optional(pool)
        .await?;
    Ok(known.is_some())
}

/// A page of SKUs on sale in SKU order, of one category label when `category` is given,
/// of one tree category when `category_id` is.
pub async fn list(
    pool: &PgPool,
    category: Option<&str>,
    category_id: Option<Uuid>,
    page: &PageRequest<String>,
) -> QueryResult<Page<ProductView>> {
    let rows: Vec<ProductView> = sqlx::query_as(&format!(
        "{SELECT}
         WHERE on_sale AND ($1::text IS NULL OR category = $1)
           AND ($2::uuid IS NULL OR category_id = $2) AND ($3::text IS NULL OR sku > $3)
         ORDER BY sku LIMIT $4"
    ))
    .bind(category)
    .bind(category_id)
    .bind(page.after.as_deref())
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |product| product.sku.clone()))
}
