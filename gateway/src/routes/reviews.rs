//! Reviews over HTTP: the buyer of a delivered (or completed) order line reviews it once and
//! may add one follow-up; a review with a sensitive word (`ORDO_REVIEW_BLOCKED_WORDS`) waits
//! for an admin, who publishes or rejects it; any user may report a review, and
//! `ORDO_REVIEW_HIDE_AFTER_REPORTS` reports hide it until an admin decides. Shoppers read a
//! product's published reviews and its rating.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ordo_aggregates::common::{MediaUrl, Reason, ReviewComment, ReviewId, Sku, SpecName, UserId};
use ordo_aggregates::order::OrderStatus;
use ordo_aggregates::review::{
    flags, review_id_of, ReviewCommand, ReviewContent, MAX_DIMENSIONS, MAX_IMAGES,
};
use ordo_aggregates::service_order::Stars;
use ordo_projections::queries::page::PageRequest;
use ordo_projections::queries::reviews;
pub use ordo_projections::queries::reviews::{ProductRating, ReviewView};
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::api_error;
use crate::identity::{AdminUser, AuthUser, CustomerUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reviews", post(submit_review))
        .route("/reviews/{review_id}/follow-up", post(follow_up))
        .route("/reviews/{review_id}/report", post(report_review))
        .route("/admin/reviews", get(moderation_queue))
        .route("/admin/reviews/{review_id}/publish", post(publish_review))
        .route("/admin/reviews/{review_id}/reject", post(reject_review))
        .route("/products/{sku}/reviews", get(product_reviews))
        .route("/products/{sku}/rating", get(product_rating))
}

/// A review of one line of one of the caller's delivered orders.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubmitReview {
    pub order_id: Uuid,
    /// The line's SKU.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i64,
    /// At most 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub comment: String,
    /// Ratings of named aspects (1 to 40 characters each), 1 to 5 stars each; at most 10.
    #[serde(default)]
    pub dimensions: BTreeMap<String, i64>,
    /// Pictures: http(s) URLs of at most 2000 characters.
    #[serde(default)]
    #[schema(max_items = 9)]
    pub images: Vec<String>,
}

/// A written review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewWritten {
    pub review_id: Uuid,
    /// published, pending_moderation, rejected or hidden.
    pub status: String,
    /// Reports so far.
    pub reports: u32,
    /// The review's version.
    pub version: i64,
    /// False when the command repeated what was already done.
    pub changed: bool,
}

/// The buyer's follow-up.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FollowUp {
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub comment: String,
}

/// Why an admin rejects a review.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectReview {
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
}

/// A page of reviews, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewPage {
    pub reviews: Vec<ReviewView>,
    pub next_cursor: Option<String>,
}

/// Paging of the review list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ReviewPaging {
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Which reviews the moderation queue lists, and its paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ModerationQuery {
    /// pending_moderation, hidden (reported too often), published or rejected; without it,
    /// the reviews waiting for a decision (pending_moderation and hidden).
    #[param(pattern = r"^(pending_moderation|hidden|published|rejected)$")]
    pub status: Option<String>,
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// The moderation queue (admin): reviews by status, newest first; by default those waiting
/// for a decision (held for a sensitive word, or hidden by reports).
#[utoipa::path(get, path = "/api/v1/admin/reviews", tag = "reviews", params(ModerationQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ReviewPage), (status = 422, description = "unknown status, bad cursor or limit")))]
pub async fn moderation_queue(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<ModerationQuery>,
) -> Result<ApiJson<ReviewPage>, ApiError> {
    let statuses: &[&str] = match query.status.as_deref() {
        None => &["pending_moderation", "hidden"],
        Some("pending_moderation") => &["pending_moderation"],
        Some("hidden") => &["hidden"],
        Some("published") => &["published"],
        Some("rejected") => &["rejected"],
        Some(_) => {
            return Err(ApiError::invalid(
                "status",
                "status must be pending_moderation, hidden, published or rejected",
            ))
        }
    };
    let page = PageRequest::parse(query.cursor.as_deref(), query.limit)?;
    let page = reviews::with_status(&state.pool, statuses, &page).await?;
    Ok(ApiJson(ReviewPage {
        reviews: page.items,
        next_cursor: page.next_cursor,
    }))
}

fn review_id(raw: &str) -> Result<ReviewId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no review {raw}")))
}

async fn execute(
    state: &AppState,
    user: &AuthUser,
    id: ReviewId,
    command: ReviewCommand,
    request_id: &str,
) -> Result<ReviewWritten, ApiError> {
    let committed = state
        .reviews
        .execute(
            &id.to_string(),
            command,
            CommandMetadata::from_request(request_id, Some(user.user_id)),
        )
        .await
        .map_err(api_error)?;
    crate::consistency::record_write(
        &state.pool,
        user.user_id,
        "review",
        &id.to_string(),
        committed.version,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let (review, _) = state
        .reviews
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    Ok(ReviewWritten {
        review_id: *id.as_uuid(),
        status: review
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reports: review.reports(),
        version: committed.version,
        changed: !committed.events.is_empty(),
    })
}

/// The review `raw`, if it exists.
async fn existing(state: &AppState, raw: &str) -> Result<(ReviewId, UserId), ApiError> {
    let id = review_id(raw)?;
    let (review, _) = state
        .reviews
        .load(&id.to_string())
        .await
        .map_err(api_error)?;
    let author = review
        .author_id()
        .ok_or_else(|| ApiError::NotFound(format!("no review {raw}")))?;
    Ok((id, author))
}

/// Reviews one line of one of the caller's orders (customer), once the order is delivered
/// or completed; a line is reviewed once. A review with a sensitive word waits for an
/// admin (`pending_moderation`); any other is published at once and counts in the
/// product's rating.
#[utoipa::path(post, path = "/api/v1/reviews", tag = "reviews", request_body = SubmitReview,
    security(("bearer" = [])),
    responses((status = 201, body = ReviewWritten),
               (status = 404, description = "no such order of the caller's (unknown_order: only its buyer may review it), or a SKU it does not hold (not_in_order)"),
               (status = 409, description = "the order is not delivered yet (not_reviewable), or the line was reviewed already (already_reviewed)"),
               (status = 422, description = "invalid rating, comment, dimensions or images")))]
pub async fn submit_review(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<SubmitReview>,
) -> Result<Response, ApiError> {
    let sku = Sku::parse(&body.sku).map_err(|e| ApiError::invalid("sku", e.message()))?;
    let rating = Stars::parse(body.rating, "rating")
        .map_err(|e| ApiError::invalid("rating", e.message()))?;
    let comment = ReviewComment::parse(&body.comment)
        .map_err(|e| ApiError::invalid("comment", e.message()))?;
    if body.dimensions.len() > MAX_DIMENSIONS || body.images.len() > MAX_IMAGES {
        return Err(ApiError::invalid(
            "dimensions",
            "at most 10 dimensions and 9 images",
        ));
    }
    let mut dimensions = BTreeMap::new();
    for (name, stars) in &body.dimensions {
        let name =
            SpecName::parse(name).map_err(|e| ApiError::invalid("dimensions", e.message()))?;
        let stars = Stars::parse(*stars, "dimensions")
            .map_err(|e| ApiError::invalid("dimensions", e.message()))?;
        dimensions.insert(name, stars);
    }
    let images = body
        .images
        .iter()
        .map(|url| MediaUrl::parse(url).map_err(|e| ApiError::invalid("images", e.message())))
        .collect::<Result<Vec<_>, _>>()?;
    let unknown_order = || ApiError::UnknownReference {
        code: "unknown_order",
        detail: format!("no order {} of yours", body.order_id),
    };
    let (order, version) = state
        .orders
        .load(&body.order_id.to_string())
        .await
        .map_err(api_error)?;
    if version == 0 || order.customer_id().map(|c| *c.as_uuid()) != Some(user.user_id) {
        return Err(unknown_order());
    }
    if !matches!(
        order.status(),
        Some(OrderStatus::Delivered | OrderStatus::Completed)
    ) {
        return Err(ApiError::Refused {
            code: "not_reviewable",
            detail: "an order is reviewed once it is delivered".into(),
        });
    }
    if !order.lines().iter().any(|line| line.sku == sku) {
        return Err(ApiError::UnknownReference {
            code: "not_in_order",
            detail: format!("the order has no line {sku}"),
        });
    }
    let flagged = flags(comment.as_str(), &state.review_blocked_words);
    let order_id = body.order_id.into();
    let id = review_id_of(order_id, &sku);
    let written = execute(
        &state,
        &user,
        id,
        ReviewCommand::Submit {
            review_id: id,
            order_id,
            sku,
            author_id: UserId::from(user.user_id),
            content: ReviewContent {
                rating,
                comment,
                dimensions,
                images,
            },
            flagged,
        },
        &request_id,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/reviews/{id}"))],
        ApiJson(written),
    )
        .into_response())
}

/// The author adds their one follow-up (追评). One with a sensitive word sends a published
/// review back to moderation.
#[utoipa::path(post, path = "/api/v1/reviews/{review_id}/follow-up", tag = "reviews",
    request_body = FollowUp, security(("bearer" = [])),
    responses((status = 200, body = ReviewWritten), (status = 404, description = "no such review of the caller's"),
               (status = 409, description = "followed up already, rejected, or not the author's"),
               (status = 422, description = "invalid comment")))]
pub async fn follow_up(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<FollowUp>,
) -> Result<ApiJson<ReviewWritten>, ApiError> {
    let (id, author) = existing(&state, &raw).await?;
    if *author.as_uuid() != user.user_id && !user.is_admin() {
        return Err(ApiError::NotFound(format!("no review {raw}")));
    }
    let comment = ReviewComment::parse(&body.comment)
        .map_err(|e| ApiError::invalid("comment", e.message()))?;
    if comment.as_str().is_empty() {
        return Err(ApiError::invalid("comment", "comment must not be empty"));
    }
    let flagged = flags(comment.as_str(), &state.review_blocked_words);
    let command = ReviewCommand::FollowUp {
        by: UserId::from(user.user_id),
        comment,
        flagged,
    };
    Ok(ApiJson(
        execute(&state, &user, id, command, &request_id).await?,
    ))
}

/// Reports a review (any signed-in user, once each). Enough reports hide a published
/// review until an admin decides.
#[utoipa::path(post, path = "/api/v1/reviews/{review_id}/report", tag = "reviews",
    security(("bearer" = [])),
    responses((status = 200, body = ReviewWritten), (status = 404, description = "no such review")))]
pub async fn report_review(
    State(state): State<AppState>,
    user: AuthUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<ReviewWritten>, ApiError> {
    let (id, _) = existing(&state, &raw).await?;
    let command = ReviewCommand::Report {
        by: UserId::from(user.user_id),
        hide_at: state.review_hide_after_reports,
    };
    Ok(ApiJson(
        execute(&state, &user, id, command, &request_id).await?,
    ))
}

/// Publishes a held or hidden review (admin). Repeating it is a no-op.
#[utoipa::path(post, path = "/api/v1/admin/reviews/{review_id}/publish", tag = "reviews",
    security(("bearer" = [])),
    responses((status = 200, body = ReviewWritten), (status = 404, description = "no such review"),
               (status = 409, description = "rejected")))]
pub async fn publish_review(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
) -> Result<ApiJson<ReviewWritten>, ApiError> {
    let (id, _) = existing(&state, &raw).await?;
    Ok(ApiJson(
        execute(&state, &admin, id, ReviewCommand::Publish, &request_id).await?,
    ))
}

/// Rejects a review (admin), with a reason: it leaves the product's reviews and rating.
#[utoipa::path(post, path = "/api/v1/admin/reviews/{review_id}/reject", tag = "reviews",
    request_body = RejectReview, security(("bearer" = [])),
    responses((status = 200, body = ReviewWritten), (status = 404, description = "no such review"),
               (status = 422, description = "invalid reason")))]
pub async fn reject_review(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<RejectReview>,
) -> Result<ApiJson<ReviewWritten>, ApiError> {
    let (id, _) = existing(&state, &raw).await?;
    let reason =
        Reason::parse(&body.reason).map_err(|e| ApiError::invalid("reason", e.message()))?;
    Ok(ApiJson(
        execute(
            &state,
            &admin,
            id,
            ReviewCommand::Reject { reason },
            &request_id,
        )
        .await?,
    ))
}

/// A product's published reviews, newest first.
#[utoipa::path(get, path = "/api/v1/products/{sku}/reviews", tag = "reviews", params(ReviewPaging),
    responses((status = 200, body = ReviewPage), (status = 422, description = "bad cursor or limit")))]
pub async fn product_reviews(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    Query(paging): Query<ReviewPaging>,
) -> Result<ApiJson<ReviewPage>, ApiError> {
    let page = PageRequest::parse(paging.cursor.as_deref(), paging.limit)?;
    let sku = Sku::parse(&sku)
        .map(|s| s.as_str().to_string())
        .unwrap_or(sku);
    let page = reviews::published(&state.pool, &sku, &page).await?;
    Ok(ApiJson(ReviewPage {
        reviews: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// A product's rating: the mean, the count and the distribution of its published reviews.
#[utoipa::path(get, path = "/api/v1/products/{sku}/rating", tag = "reviews",
    responses((status = 200, body = ProductRating)))]
pub async fn product_rating(
    State(state): State<AppState>,
    Path(sku): Path<String>,
) -> Result<ApiJson<ProductRating>, ApiError> {
    let sku = Sku::parse(&sku)
        .map(|s| s.as_str().to_string())
        .unwrap_or(sku);
    Ok(ApiJson(reviews::rating(&state.pool, &sku).await?))
}
