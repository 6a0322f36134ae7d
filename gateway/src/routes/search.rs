//! `GET /api/v1/search`: products (and shows) by relevance, with filters, facet counts and
//! a cursor; answered by Elasticsearch when configured, else by Postgres.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;

use ordo_projections::search::{SearchError, SearchPage, SearchParams, SearchQuery};

use crate::problem::{ApiError, ApiJson};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

/// Searches the catalog. `q` tolerates typos; an exact title ranks first. Facets count
/// every match per category and city (each ignoring its own filter).
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchParams),
    responses((status = 200, body = SearchPage),
              (status = 422, description = "invalid parameter, e.g. min_price above max_price or an unknown type")))]
pub async fn search(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> Result<ApiJson<SearchPage>, ApiError> {
    let query = SearchQuery::parse(params)?;
    match state.search.search(&query).await {
        Ok(page) => Ok(ApiJson(page)),
        Err(SearchError::Database(err)) => Err(ApiError::Internal(err.into())),
        Err(SearchError::Unavailable(_)) => Err(ApiError::Unavailable {
            detail: "search is temporarily unavailable".into(),
            retry_after_secs: 5,
        }),
    }
}
