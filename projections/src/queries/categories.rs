//! Reads of the `categories` read model: the whole tree, flat.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{PgPool, QueryResult};

/// Most categories [`all`] answers (the tree is admin-made and small).
pub const MAX_CATEGORIES: i64 = 1000;

/// A category of the catalog's tree.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct CategoryView {
    pub category_id: Uuid,
    pub name: String,
    /// The parent; absent for a root.
    pub parent_id: Option<Uuid>,
    /// The category's version (its last event's sequence).
    pub version: i64,
}

/// Every live category, roots first, then by name.
pub async fn all(pool: &PgPool) -> QueryResult<Vec<CategoryView>> {
    Ok(sqlx::query_as(
        "SELECT category_id, name, parent_id, version FROM categories
         ORDER BY parent_id NULLS FIRST, name, category_id LIMIT $1",
    )
    .bind(MAX_CATEGORIES)
    .fetch_all(pool)
    .await?)
}
