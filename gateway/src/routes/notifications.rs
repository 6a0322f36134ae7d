//! The caller's notification inbox: list, mark as read, and a live Server-Sent Events
//! stream of new entries that a reconnecting client resumes with `Last-Event-ID` (how the
//! stream stays gap-free is told in [`crate::inbox`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use ordo_projections::queries::page::{NewestFirst, Position};
use ordo_projections::queries::PgPool;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::identity::AuthUser;
use crate::problem::{ApiError, ApiJson, ProblemDocument};
use crate::routes::{decode_cursor, encode_cursor};
use crate::state::AppState;
use ordo_reactors::inbox::{
    self, HubSignal, NotificationView, SequencedNotification, SubscribeError, Subscription,
};

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
    #[param(value_type = Option<bool>)]
    pub unread: Option<String>,
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
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
    let position = NewestFirst::from_text(&decode_cursor(text)?)
        .ok_or_else(|| ApiError::invalid("cursor", "cursor is not one this API gave out"))?;
    Ok((position.at, position.id))
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
            let position = NewestFirst {
                at: n.created_at,
                id: n.notification_id,
            };
            encode_cursor(&position.to_text())
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

/// Where a stream resumes, for clients that cannot set headers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// The `id:` of the last event received, like the `Last-Event-ID` header (for
    /// EventSource polyfills that cannot set headers); the header wins when both are set.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub last_event_id: Option<String>,
}

/// The header a reconnecting EventSource sends with the last `id:` it received.
const LAST_EVENT_ID: &str = "last-event-id";

/// How long a client should wait before reconnecting, sent once as `retry:` when the
/// stream opens.
const RECONNECT_AFTER: Duration = Duration::from_secs(3);

/// Entries read per query while a stream catches up.
const CATCH_UP_BATCH: i64 = 100;

/// The `Retry-After` of a stream refused for the caps: streams end at the latest when
/// their token expires, most much sooner.
const RETRY_FULL_AFTER_SECS: u64 = 30;

/// When the access token of the request expires, as an instant of this process's clock.
fn token_deadline(state: &AppState, headers: &HeaderMap) -> Result<tokio::time::Instant, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    let expires_at = state.identity.access_expires_at(token)?;
    // A token past its expiry but within the verifier's leeway would open a stream that
    // ends at once, and the client would reconnect in a loop: ask for a fresh token.
    let left = u64::try_from(expires_at - Utc::now().timestamp())
        .ok()
        .filter(|left| *left > 0)
        .ok_or_else(|| ApiError::Unauthorized("the access token has expired".into()))?;
    Ok(tokio::time::Instant::now() + Duration::from_secs(left))
}

/// The stream position in a `Last-Event-ID`: `None` when empty (as the SSE spec has it for
/// a client that never received an id), an error when it is not an id this API sent.
fn parse_last_event_id(field: &str, text: &str) -> Result<Option<i64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || {
        ApiError::invalid(
            field,
            format!("{field} must be the id of an event of this stream (a non-negative integer)"),
        )
    };
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse::<i64>().map(Some).map_err(|_| bad())
}

/// The position a client resumes from: the header, else the query parameter.
fn resume_position(headers: &HeaderMap, params: &StreamParams) -> Result<Option<i64>, ApiError> {
    let from_header = match headers.get(LAST_EVENT_ID) {
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                ApiError::invalid("Last-Event-ID", "Last-Event-ID must be plain text")
            })?;
            parse_last_event_id("Last-Event-ID", text)?
        }
        None => None,
    };
    match from_header {
        Some(position) => Ok(Some(position)),
        None => Ok(params
            .last_event_id
            .as_deref()
            .map(|text| parse_last_event_id("last_event_id", text))
            .transpose()?
            .flatten()),
    }
}

/// One open stream: the caller's entries numbered above `last_sent`, read from the
/// database whenever the hub says there may be some (see [`crate::inbox`]).
struct Follow {
    pool: PgPool,
    user_id: Uuid,
    subscription: Subscription,
    /// The `seq` of the last entry sent (or skipped as already known to the client).
    last_sent: i64,
    /// Read, not sent yet, in order.
    pending: VecDeque<SequencedNotification>,
    /// Entries above `last_sent` may be committed: read before waiting for the hub.
    behind: bool,
}

impl Follow {
    /// The next event, or `None` to end the response (the client reconnects with its
    /// last id and loses nothing).
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(entry) = self.pending.pop_front() {
                self.last_sent = entry.seq;
                match Event::default()
                    .event("notification")
                    .id(entry.seq.to_string())
                    .json_data(&entry.view)
                {
                    Ok(event) => return Some(event),
                    Err(err) => {
                        tracing::warn!(error = %err, "a notification could not be serialised");
                        continue;
                    }
                }
            }
            if self.behind {
                match inbox::after(&self.pool, self.user_id, self.last_sent, CATCH_UP_BATCH).await {
                    Ok(batch) => {
                        self.behind = batch.len() as i64 == CATCH_UP_BATCH;
                        self.pending.extend(batch);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "reading streamed notifications failed");
                        return None;
                    }
                }
                continue;
            }
            // The hub wakes this stream for its own user's entries only.
            match self.subscription.recv().await {
                Some(HubSignal::Added(added)) => {
                    // An entry already replayed is announced too: nothing to read for it.
                    if added.seq.is_none_or(|seq| seq > self.last_sent) {
                        self.behind = true;
                    }
                }
                // Announcements were dropped (a slow stream, a lost listener): read them.
                Some(HubSignal::Resync) => self.behind = true,
                None => return None,
            }
        }
    }
}

/// The caller's notifications, pushed as Server-Sent Events: `event: notification`,
/// `id:` the entry's number in the caller's stream, `data:` the entry as JSON. The stream
/// opens with a `retry:` of 3 seconds and an `id:` of where it starts (no data), so a
/// client that drops before its first entry still resumes from there; a keep-alive comment
/// follows every 15 seconds of silence.
///
/// Without `Last-Event-ID` the stream starts with entries created after connecting. With
/// it (header, or `last_event_id` for clients that cannot set headers), the entries after
/// that id are sent first, in order, then new ones as they come, without duplicates or
/// gaps. An id above the caller's newest entry starts from now.
///
/// The stream ends when the access token that opened it expires; the client reconnects
/// with a fresh token and its last id. A user may hold a few streams at once and the
/// server a bounded number in all (`ORDO_SSE_PER_USER`, `ORDO_SSE_MAX`): beyond that the
/// answer is 429 with `Retry-After`.
#[utoipa::path(get, path = "/api/v1/notifications/stream", tag = "notifications",
    security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header, pattern = r"^[0-9]{0,18}$",
                description = "the `id:` of the last event received: the stream resumes after it"),
           StreamParams),
    responses(
        (status = 200, description = "text/event-stream of notifications", content_type = "text/event-stream"),
        (status = 401, description = "no valid token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Last-Event-ID (or last_event_id) is not an id of this stream",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "the caller, or the server, holds as many streams as allowed",
            body = ProblemDocument, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds to wait before trying again")))))]
pub async fn stream_notifications(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = resume_position(&headers, &params)?;
    let deadline = token_deadline(&state, &headers)?;
    // Subscribe before reading: whatever commits from here on is announced to this
    // subscription, so the read below and the live part overlap instead of leaving a gap,
    // and the overlap is dropped by number.
    let subscription = state
        .inbox
        .subscribe(&state.pool, user.user_id)
        .await
        .map_err(|err| match err {
            SubscribeError::UserLimit(_) | SubscribeError::TotalLimit(_) => ApiError::RateLimited {
                retry_after_secs: RETRY_FULL_AFTER_SECS,
            },
            SubscribeError::Listen(err) => ApiError::Internal(err),
        })?;
    let newest = inbox::last_seq(&state.pool, user.user_id)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    // A client cannot have seen an entry that is not committed, so an id above the newest
    // comes from elsewhere (another database): waiting for entries to pass it would hide
    // them, so such a stream starts from now.
    let last_sent = resume.map_or(newest, |id| id.min(newest));
    let follow = Follow {
        pool: state.pool.clone(),
        user_id: user.user_id,
        subscription,
        last_sent,
        pending: VecDeque::new(),
        behind: last_sent < newest,
    };
    // An event without data dispatches nothing, but its id becomes the client's last one.
    let opening = Event::default()
        .retry(RECONNECT_AFTER)
        .id(last_sent.to_string());
    let entries = futures::stream::unfold(follow, |mut follow| async move {
        let event = follow.next_event().await?;
        Some((Ok(event), follow))
    });
    // Dropping the stream (at the deadline, or when the client goes) frees its slot.
    let stream = futures::stream::once(async move { Ok(opening) })
        .chain(entries)
        .take_until(tokio::time::sleep_until(deadline));
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(last_event_id: Option<&str>) -> StreamParams {
        StreamParams {
            last_event_id: last_event_id.map(str::to_string),
        }
    }

    fn header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LAST_EVENT_ID, value.parse().unwrap());
        headers
    }

    fn refused_field(result: Result<Option<i64>, ApiError>) -> Option<String> {
        match result {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn the_header_wins_over_the_query_parameter() {
        let both = resume_position(&header("7"), &params(Some("3"))).unwrap();
        assert_eq!(both, Some(7));
        let query_only = resume_position(&HeaderMap::new(), &params(Some("3"))).unwrap();
        assert_eq!(query_only, Some(3));
        // An empty id is the spec's "no id yet", not an error.
        let empty_header = resume_position(&header(""), &params(Some("3"))).unwrap();
        assert_eq!(empty_header, Some(3));
        assert_eq!(
            resume_position(&HeaderMap::new(), &params(None)).unwrap(),
            None
        );
        assert_eq!(
            resume_position(&header("0"), &params(None)).unwrap(),
            Some(0)
        );
    }

    #[test]
    fn ids_this_api_never_sends_are_refused() {
        for bad in ["abc", "-1", "+1", "1.5", "99999999999999999999", "0x10"] {
            assert_eq!(
                refused_field(resume_position(&header(bad), &params(None))).as_deref(),
                Some("Last-Event-ID"),
                "{bad}"
            );
            assert_eq!(
                refused_field(resume_position(&HeaderMap::new(), &params(Some(bad)))).as_deref(),
                Some("last_event_id"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_openapi_document_describes_both_ways_to_resume() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        let stream = &doc["paths"]["/api/v1/notifications/stream"]["get"];
        let parameters = stream["parameters"].as_array().unwrap();
        let has = |name: &str, place: &str| {
            parameters
                .iter()
                .any(|p| p["name"] == name && p["in"] == place)
        };
        assert!(has("Last-Event-ID", "header"), "{parameters:?}");
        assert!(has("last_event_id", "query"), "{parameters:?}");
        assert!(stream["responses"]["422"].is_object());
    }
}
