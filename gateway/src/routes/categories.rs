//! The catalog's category tree: admins create, rename, move and delete categories; anyone
//! reads the tree.
//!
//! The facts a tree command needs about other categories (the new parent's path to the
//! root, what is filed under a category) are read from the write side's category tree
//! (`ordo_store::catalog`) while the tree's lock is held, and the lock is released after
//! the command commits, so two moves racing cannot together make a cycle, and a product
//! filed under a category while it is deleted (product creation takes the same lock) cannot
//! be left under a deleted category.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::Router;
use ordo_aggregates::category::{CategoryCommand, DeleteFacts, ParentPath};
use ordo_aggregates::common::{CategoryId, CategoryName};
use ordo_projections::queries::categories;
pub use ordo_projections::queries::categories::CategoryView;
use ordo_store::catalog::{self, WriteLock};
use ordo_store::CommandMetadata;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::api_error;
use crate::consistency;
use crate::identity::AdminUser;
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/categories", get(list_categories).post(create_category))
        .route(
            "/categories/{category_id}",
            patch(change_category).delete(delete_category),
        )
}

/// A new category.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCategory {
    /// Its name: 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Its parent; absent or null for a root.
    #[schema(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub parent_id: Option<Uuid>,
}

/// Changes to a category; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeCategory {
    /// A new name: 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// A new parent; `null` makes the category a root.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>, pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub parent_id: Option<Option<Uuid>>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

/// The answer to a category command.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryWritten {
    pub category_id: Uuid,
    /// The version the command produced.
    pub version: i64,
}

/// The tree, flat: roots first, then by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub categories: Vec<CategoryView>,
}

fn internal(err: sqlx::Error) -> ApiError {
    ApiError::Internal(err.into())
}

/// The path of the new parent, or a refusal when it does not exist.
async fn parent_path(state: &AppState, parent: Uuid) -> Result<ParentPath, ApiError> {
    let path = catalog::category_path(&state.pool, parent)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::UnknownReference {
            code: "unknown_category",
            detail: format!("no category {parent}"),
        })?;
    Ok(ParentPath(path.into_iter().map(CategoryId::from).collect()))
}

async fn run(
    state: &AppState,
    user: &AdminUser,
    request_id: &str,
    id: Uuid,
    command: CategoryCommand,
) -> Result<i64, ApiError> {
    let committed = state
        .categories
        .execute(
            &id.to_string(),
            command,
            CommandMetadata::from_request(request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    consistency::record_write(
        &state.pool,
        user.user_id,
        "category",
        &id.to_string(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(committed.version)
}

/// Runs `decide` with the tree's lock held, releasing it afterwards whatever the outcome.
async fn with_tree_lock<T>(
    state: &AppState,
    decide: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let lock = WriteLock::category_tree(&state.pool)
        .await
        .map_err(internal)?;
    let outcome = decide.await;
    lock.release().await.map_err(internal)?;
    outcome
}

/// Creates a category (admin).
#[utoipa::path(post, path = "/api/v1/categories", tag = "categories", request_body = CreateCategory,
    security(("bearer" = [])),
    responses((status = 201, body = CategoryWritten),
               (status = 409, description = "the tree would be too deep"),
               (status = 404, description = "problem urn:ordo:problem:unknown_category: no such parent"),
               (status = 422, description = "invalid name")))]
pub async fn create_category(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<CreateCategory>,
) -> Result<Response, ApiError> {
    let name =
        CategoryName::parse(&body.name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
    let id = Uuid::new_v4();
    let version = with_tree_lock(&state, async {
        let parent = match body.parent_id {
            Some(parent) => Some(parent_path(&state, parent).await?),
            None => None,
        };
        let command = CategoryCommand::Create {
            category_id: CategoryId::from(id),
            name,
            parent,
        };
        run(&state, &user, &request_id, id, command).await
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/categories/{id}"))],
        ApiJson(CategoryWritten {
            category_id: id,
            version,
        }),
    )
        .into_response())
}

/// Renames a category or moves it under another parent (admin).
#[utoipa::path(patch, path = "/api/v1/categories/{category_id}", tag = "categories",
    request_body = ChangeCategory, security(("bearer" = [])),
    responses((status = 200, body = CategoryWritten), (status = 404, description = "no such category"),
               (status = 409, description = "the move would make a cycle or too deep a tree"),
               (status = 404, description = "problem urn:ordo:problem:unknown_category: no such parent"),
               (status = 422, description = "invalid name")))]
pub async fn change_category(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(category_id): Path<String>,
    ApiJson(body): ApiJson<ChangeCategory>,
) -> Result<ApiJson<CategoryWritten>, ApiError> {
    let id: Uuid = category_id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no category {category_id}")))?;
    let name = body
        .name
        .as_deref()
        .map(CategoryName::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("name", e.to_string()))?;
    let version = with_tree_lock(&state, async {
        let parent = match body.parent_id {
            None => None,
            Some(None) => Some(None),
            Some(Some(parent)) => Some(Some(parent_path(&state, parent).await?)),
        };
        run(
            &state,
            &user,
            &request_id,
            id,
            CategoryCommand::Change { name, parent },
        )
        .await
    })
    .await?;
    Ok(ApiJson(CategoryWritten {
        category_id: id,
        version,
    }))
}

/// Deletes a category (admin). A category with subcategories or products is refused with
/// `category_not_empty`: move or delete them first.
#[utoipa::path(delete, path = "/api/v1/categories/{category_id}", tag = "categories",
    security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such category"),
               (status = 409, description = "the category has subcategories or products")))]
pub async fn delete_category(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    Path(category_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: Uuid = category_id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no category {category_id}")))?;
    with_tree_lock(&state, async {
        let (children, products) = catalog::category_contents(&state.pool, id)
            .await
            .map_err(internal)?;
        let facts = DeleteFacts { children, products };
        run(
            &state,
            &user,
            &request_id,
            id,
            CategoryCommand::Delete { facts },
        )
        .await
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The category tree (anyone).
#[utoipa::path(get, path = "/api/v1/categories", tag = "categories",
    responses((status = 200, body = CategoryList)))]
pub async fn list_categories(
    State(state): State<AppState>,
) -> Result<ApiJson<CategoryList>, ApiError> {
    Ok(ApiJson(CategoryList {
        categories: categories::all(&state.pool).await?,
    }))
}
