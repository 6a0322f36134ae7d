//! Shows: admins create them with their sessions and seat areas; anyone browses them by
//! city, category or text and sees each session's seats still available.
//!
//! Creating a show or adding a session is one command on the Show; the seat stock policy
//! (`ordo_sagas::seat_stock`) opens each seat area's inventory from the `SessionAdded`
//! events. The route waits a short while for that: 201 when the seats are open by the time
//! it answers, 202 (the seats open shortly) otherwise.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use ordo_aggregates::common::{
    AreaId, AreaName, Category, City, Currency, Description, Money, SessionId, ShowId, Title, Venue,
};
use ordo_aggregates::show::{SeatArea, ShowCommand};
use ordo_projections::queries::page::PageRequest;
use ordo_projections::queries::shows::{self, ShowListFilter};
pub use ordo_projections::queries::shows::{SeatAreaView, SessionView, ShowSummary, ShowView};
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::api_error;
use crate::identity::AdminUser;
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::routes::orders::idempotency_key;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/shows", get(list_shows).post(create_show))
        .route("/shows/{show_id}", get(get_show))
        .route(
            "/shows/{show_id}/sessions",
            post(add_session).get(list_sessions),
        )
}

/// A new show.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateShow {
    /// 1 to 200 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub title: String,
    /// e.g. "concert", "演唱会": 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub category: String,
    /// 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub city: String,
    /// 1 to 200 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub venue: String,
    /// At most 5,000 characters.
    #[serde(default)]
    #[schema(
        max_length = 5000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub description: String,
    /// Sessions to add at once.
    #[serde(default)]
    pub sessions: Vec<NewSession>,
}

/// A new session of a show.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewSession {
    /// Optional id chosen by the client, which makes repeating the request harmless.
    #[schema(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub session_id: Option<Uuid>,
    pub starts_at: DateTime<Utc>,
    /// At least one; each area id once.
    #[schema(min_items = 1)]
    pub seat_areas: Vec<NewSeatArea>,
}

/// A seat area of a new session.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewSeatArea {
    /// 1 to 64 letters, digits, '-' or '_', unique in the session.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub area_id: String,
    /// 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Price of one seat in minor units.
    #[schema(minimum = 0)]
    pub price: i64,
    /// ISO 4217 code (3 letters); ORDO_DEFAULT_CURRENCY (CNY) when absent.
    #[schema(pattern = r"^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// Number of seats, 1 to 100,000: the area's stock.
    #[schema(minimum = 1, maximum = 100_000)]
    pub capacity: i64,
}

/// A show created or a session added.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShowWritten {
    pub show_id: Uuid,
    /// The sessions added by this request.
    pub session_ids: Vec<Uuid>,
    pub version: i64,
}

/// A page of shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShowPage {
    pub shows: Vec<ShowSummary>,
    pub next_cursor: Option<String>,
}

/// Filters of the show list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ShowFilter {
    /// Exact city, case-insensitive (at most 200 characters, no control characters).
    #[param(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub city: Option<String>,
    /// Exact category, case-insensitive (at most 200 characters, no control characters).
    #[param(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub category: Option<String>,
    /// Words in the title, venue or description (at most 200 characters, no control
    /// characters).
    #[param(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub q: Option<String>,
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// The sessions of a show.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

fn parse_session(
    index: usize,
    session: &NewSession,
    show_id: Uuid,
    key: Option<&str>,
    default_currency: &Currency,
) -> Result<ordo_aggregates::show::NewSession, ApiError> {
    let field = |f: &str| format!("sessions[{index}].{f}");
    if session.seat_areas.is_empty() {
        return Err(ApiError::invalid(
            field("seat_areas"),
            "a session needs at least one seat area",
        ));
    }
    let mut areas = Vec::with_capacity(session.seat_areas.len());
    for (i, area) in session.seat_areas.iter().enumerate() {
        let f = |name: &str| field(&format!("seat_areas[{i}].{name}"));
        let currency = match &area.currency {
            Some(code) => Currency::parse(code)
                .map_err(|e| ApiError::invalid(f("currency"), e.to_string()))?,
            None => default_currency.clone(),
        };
        areas.push(SeatArea {
            area_id: AreaId::parse(&area.area_id)
                .map_err(|e| ApiError::invalid(f("area_id"), e.to_string()))?,
            name: AreaName::parse(&area.name)
                .map_err(|e| ApiError::invalid(f("name"), e.to_string()))?,
            price: Money::new(area.price, currency)
                .map_err(|e| ApiError::invalid(f("price"), e.to_string()))?,
            capacity: u32::try_from(area.capacity)
                .map_err(|_| ApiError::invalid(f("capacity"), "capacity must be 1 to 100000"))?,
        });
    }
    // Without an id from the client, the Idempotency-Key makes the id deterministic.
    let session_id = match (session.session_id, key) {
        (Some(id), _) => id,
        (None, Some(key)) => Uuid::new_v5(&show_id, format!("session:{index}:{key}").as_bytes()),
        (None, None) => Uuid::new_v4(),
    };
    Ok(ordo_aggregates::show::NewSession {
        session_id: SessionId::from(session_id),
        starts_at: session.starts_at,
        seat_areas: areas,
    })
}

/// The answer to a show created or a session added: 201 when the seat stock policy opened
/// every new seat area by the time of the answer (waiting at most
/// [`crate::ticketing::SEATS_OPEN_WAIT`]), 202 when the seats open shortly.
async fn written(
    state: &AppState,
    location: String,
    show_id: Uuid,
    sessions: &[ordo_aggregates::show::NewSession],
    version: i64,
) -> Result<Response, ApiError> {
    let areas: Vec<(SessionId, Vec<SeatArea>)> = sessions
        .iter()
        .map(|s| (s.session_id, s.seat_areas.clone()))
        .collect();
    let open = crate::ticketing::await_seats_open(
        &state.inventory,
        &areas,
        crate::ticketing::SEATS_OPEN_WAIT,
    )
    .await
    .map_err(ApiError::Internal)?;
    let status = if open {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        [(header::LOCATION, location)],
        ApiJson(ShowWritten {
            show_id,
            session_ids: sessions.iter().map(|s| *s.session_id.as_uuid()).collect(),
            version,
        }),
    )
        .into_response())
}

/// Creates a show, with its first sessions if given (admin). The seats of each session's
/// areas are opened from its events: 201 when they are open by the time of the answer, 202
/// (the seats open shortly) otherwise.
#[utoipa::path(post, path = "/api/v1/shows", tag = "shows", request_body = CreateShow,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$")),
    responses((status = 201, body = ShowWritten, description = "created; the seats are open"),
              (status = 202, body = ShowWritten, description = "created; the seats open shortly"),
              (status = 409, description = "a session id already used with other content"),
              (status = 422, description = "invalid field")))]
pub async fn create_show(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateShow>,
) -> Result<Response, ApiError> {
    let inv = |f: &'static str| {
        move |e: ordo_aggregates::common::ParseError| ApiError::invalid(f, e.to_string())
    };
    let title = Title::parse(&body.title).map_err(inv("title"))?;
    let category = Category::parse(&body.category).map_err(inv("category"))?;
    let city = City::parse(&body.city).map_err(inv("city"))?;
    let venue = Venue::parse(&body.venue).map_err(inv("venue"))?;
    let description = Description::parse(&body.description).map_err(inv("description"))?;
    let key = idempotency_key(&headers)?;
    let show_id = match &key {
        Some(key) => Uuid::new_v5(&user.user_id, format!("show:{key}").as_bytes()),
        None => Uuid::new_v4(),
    };
    let default_currency = &state.ticketing.settings.default_currency;
    let sessions = body
        .sessions
        .iter()
        .enumerate()
        .map(|(i, s)| parse_session(i, s, show_id, key.as_deref(), default_currency))
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = CommandMetadata::from_request(&request_id, Some(user.user_id));
    // One command: the show and its sessions. Repeated with the same fields (the same
    // Idempotency-Key), it adds only the sessions still missing.
    let created = state
        .ticketing
        .shows
        .execute(
            &show_id.to_string(),
            ShowCommand::Create {
                show_id: ShowId::from(show_id),
                title,
                category,
                city,
                venue,
                description,
                sessions: sessions.clone(),
            },
            metadata,
        )
        .await;
    let version = match created {
        Ok(c) => c.version,
        // A repeated request with the same key: the show is there.
        Err(ordo_store::CommandError::Rejected(
            ordo_aggregates::show::ShowError::AlreadyExists,
        )) if key.is_some() => 0,
        Err(err) => return Err(api_error(err)),
    };
    written(
        &state,
        format!("/api/v1/shows/{show_id}"),
        show_id,
        &sessions,
        version,
    )
    .await
}

/// Adds a session with its seat areas to a show (admin); each area's capacity becomes its
/// stock of seats, opened from the session's event: 201 when the seats are open by the
/// time of the answer, 202 (the seats open shortly) otherwise.
#[utoipa::path(post, path = "/api/v1/shows/{show_id}/sessions", tag = "shows", request_body = NewSession,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: 1 to 255 visible ASCII characters", pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$")),
    responses((status = 201, body = ShowWritten, description = "added; the seats are open"),
               (status = 202, body = ShowWritten, description = "added; the seats open shortly"),
               (status = 404, description = "no such show"),
               (status = 409, description = "session id used with other content"),
               (status = 422, description = "invalid field, or an area id given twice (`urn:ordo:problem:duplicate_area`)")))]
pub async fn add_session(
    State(state): State<AppState>,
    user: AdminUser,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    Path(show_id): Path<String>,
    ApiJson(body): ApiJson<NewSession>,
) -> Result<Response, ApiError> {
    let show_id: Uuid = show_id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no show {show_id}")))?;
    let key = idempotency_key(&headers)?;
    let session = parse_session(
        0,
        &body,
        show_id,
        key.as_deref(),
        &state.ticketing.settings.default_currency,
    )?;
    let metadata = CommandMetadata::from_request(&request_id, Some(user.user_id));
    let committed = state
        .ticketing
        .shows
        .execute(
            &show_id.to_string(),
            ShowCommand::AddSession {
                session_id: session.session_id,
                starts_at: session.starts_at,
                seat_areas: session.seat_areas.clone(),
            },
            metadata,
        )
        .await
        .map_err(api_error)?;
    written(
        &state,
        format!("/api/v1/shows/{show_id}/sessions"),
        show_id,
        &[session],
        committed.version,
    )
    .await
}

/// Shows, newest first, filtered by city, category and words.
#[utoipa::path(get, path = "/api/v1/shows", tag = "shows", params(ShowFilter),
    responses((status = 200, body = ShowPage)))]
pub async fn list_shows(
    State(state): State<AppState>,
    Query(filter): Query<ShowFilter>,
) -> Result<ApiJson<ShowPage>, ApiError> {
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    for (field, value) in [
        ("city", &filter.city),
        ("category", &filter.category),
        ("q", &filter.q),
    ] {
        check_filter_text(field, value.as_deref())?;
    }
    let criteria = ShowListFilter {
        city: filter.city.as_deref(),
        category: filter.category.as_deref(),
        words: filter.q.as_deref(),
    };
    let page = shows::list(&state.pool, criteria, &page).await?;
    Ok(ApiJson(ShowPage {
        shows: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One show.
#[utoipa::path(get, path = "/api/v1/shows/{show_id}", tag = "shows",
    responses((status = 200, body = ShowView), (status = 404, description = "no such show")))]
pub async fn get_show(
    State(state): State<AppState>,
    Path(show_id): Path<String>,
) -> Result<ApiJson<ShowView>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no show {show_id}"));
    let id: Uuid = show_id.parse().map_err(|_| not_found())?;
    shows::find(&state.pool, id)
        .await?
        .map(ApiJson)
        .ok_or_else(not_found)
}

/// The sessions of a show with the seats available in each area.
#[utoipa::path(get, path = "/api/v1/shows/{show_id}/sessions", tag = "shows",
    responses((status = 200, body = SessionList), (status = 404, description = "no such show")))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Path(show_id): Path<String>,
) -> Result<ApiJson<SessionList>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no show {show_id}"));
    let id: Uuid = show_id.parse().map_err(|_| not_found())?;
    let sessions = shows::sessions(&state.pool, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(ApiJson(SessionList { sessions }))
}

/// Refuses a filter text the document does not allow: over 200 characters or holding a
/// control character (Postgres text cannot even hold a NUL).
fn check_filter_text(field: &'static str, value: Option<&str>) -> Result<(), ApiError> {
    let Some(value) = value else { return Ok(()) };
    if value.chars().count() > 200 {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most 200 characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}
