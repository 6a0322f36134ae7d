//! The caller's notification inbox: list, mark as read, and a live Server-Sent Events
//! stream of new entries.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::identity::AuthUser;
use crate::inbox::{self, NotificationView};
use crate::problem::{ApiError, ApiJson};
use crate::routes::{decode_cursor, encode_cursor};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(list_notifications))
        .route("/notifications/stream", get(stream_notifications))
        .route("/notifications/{id}/read", post(mark_read))
}

/// Filters of the inbox.
#[derive(Debug, Deserialize, IntoParams)]
pub struct InboxFilter {
    /// `true`: only unread entries.
    pub unread: Option<String>,
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    pub limit: Option<String>,
}

/// A page of notifications, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub notifications: Vec<NotificationView>,
    /// Pass as `cursor` for older entries; absent on the last page.
    pub next_cursor: Option<String>,
}

fn parse_cursor(text: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let raw = decode_cursor(text)?;
    let bad = || ApiError::invalid("cursor", "cursor is not one this API gave out");
    let (at, id) = raw.split_once('|').ok_or_else(bad)?;
    Ok((
        DateTime::parse_from_rfc3339(at)
            .map_err(|_| bad())?
            .with_timezone(&Utc),
        id.parse().map_err(|_| bad())?,
    ))
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", params(InboxFilter),
    security(("bearer" = [])),
    responses((status = 200, body = NotificationPage), (status = 401, description = "no valid token")))]
pub async fn list_notifications(
    State(state): State<AppState>,
    user: AuthUser,
    Query(filter): Query<InboxFilter>,
) -> Result<ApiJson<NotificationPage>, ApiError> {
    let unread = match filter.unread.as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("unread", "unread must be true or false")),
    };
    let limit = filter
        .limit
        .as_deref()
        .map(|l| {
            l.parse::<i64>()
                .map_err(|_| ApiError::invalid("limit", "limit must be between 1 and 100"))
        })
        .transpose()?;
    let limit = crate::routes::page_limit(limit)?;
    let after = filter.cursor.as_deref().map(parse_cursor).transpose()?;
    let mut notifications = inbox::list(&state.pool, user.user_id, unread, after, limit + 1)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let next_cursor = if notifications.len() as i64 > limit {
        notifications.truncate(limit as usize);
        notifications.last().map(|n| {
            encode_cursor(&format!(
                "{}|{}",
                n.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                n.notification_id
            ))
        })
    } else {
        None
    };
    Ok(ApiJson(NotificationPage {
        notifications,
        next_cursor,
    }))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = NotificationView), (status = 404, description = "no such notification of the caller")))]
pub async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<NotificationView>, ApiError> {
    // Someone else's id and a malformed id answer alike: nothing here for the caller.
    let not_found = || ApiError::NotFound(format!("no notification {id}"));
    let notification_id: Uuid = id.parse().map_err(|_| not_found())?;
    inbox::mark_read(&state.pool, user.user_id, notification_id)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map(ApiJson)
        .ok_or_else(not_found)
}

/// New notifications of the caller, pushed as Server-Sent Events (`event: notification`,
/// `id:` the notification id, `data:` the entry as JSON), with a keep-alive comment every
/// 15 seconds.
#[utoipa::path(get, path = "/api/v1/notifications/stream", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of notifications", content_type = "text/event-stream")))]
pub async fn stream_notifications(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let receiver = state
        .inbox
        .subscribe(&state.pool)
        .await
        .map_err(ApiError::Internal)?;
    let pool = state.pool.clone();
    let user_id = user.user_id;
    let stream = futures::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(announcement) if announcement.user_id == user_id => {
                    return Some((Some(announcement.notification_id), receiver))
                }
                Ok(_) => continue,
                // A slow client skipped some; it can catch up with the list.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .filter_map(move |id| {
        let pool = pool.clone();
        async move {
            let id = id?;
            match inbox::get(&pool, user_id, id).await {
                Ok(Some(view)) => Event::default()
                    .event("notification")
                    .id(view.notification_id.to_string())
                    .json_data(&view)
                    .ok()
                    .map(Ok),
                Ok(None) => None,
                Err(err) => {
                    tracing::warn!(error = %err, "reading a streamed notification failed");
                    None
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}
