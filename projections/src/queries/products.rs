//! Reads of the `products` read model: one product, and the catalog by SKU.

use serde::Serialize;
use utoipa::ToSchema;

use super::page::{Page, PageRequest};
use super::{PgPool, QueryResult};

/// A product as shoppers see it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ProductView {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    /// Price in minor units.
    pub price: i64,
    pub currency: String,
    /// The product's version (its last event's sequence).
    pub version: i64,
}

/// The product with this SKU, if the catalog has it.
pub async fn find(pool: &PgPool, sku: &str) -> QueryResult<Option<ProductView>> {
    Ok(sqlx::query_as(
        "SELECT sku, name, description, category, price_minor AS price, currency, version
         FROM products WHERE sku = $1",
    )
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

/// A page of products in SKU order, of one category when `category` is given.
pub async fn list(
    pool: &PgPool,
    category: Option<&str>,
    page: &PageRequest<String>,
) -> QueryResult<Page<ProductView>> {
    let rows: Vec<ProductView> = sqlx::query_as(
        "SELECT sku, name, description, category, price_minor AS price, currency, version
         FROM products
         WHERE ($1::text IS NULL OR category = $1) AND ($2::text IS NULL OR sku > $2)
         ORDER BY sku LIMIT $3",
    )
    .bind(category)
    .bind(page.after.as_deref())
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |product| product.sku.clone()))
}
