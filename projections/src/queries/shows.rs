//! Reads of the `shows`, `show_sessions` and `seat_areas` read models: the show list with
//! its filters, one show, and a show's sessions with the seats still available in each
//! area (from `inventory_levels`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::page::{NewestFirst, Page, PageRequest};
use super::{PgPool, QueryResult};

/// A show in a listing.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ShowSummary {
    pub show_id: Uuid,
    pub title: String,
    pub venue: String,
    pub city: String,
    pub category: String,
    /// The first session's start, if any.
    pub date: Option<DateTime<Utc>>,
}

/// A show with its description.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ShowView {
    pub show_id: Uuid,
    pub title: String,
    pub venue: String,
    pub city: String,
    pub category: String,
    pub description: String,
    pub date: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A session with its seat areas.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub session_id: Uuid,
    pub date: DateTime<Utc>,
    pub seat_areas: Vec<SeatAreaView>,
}

/// A seat area with the seats still available.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatAreaView {
    pub area_id: String,
    pub name: String,
    /// Price of one seat in minor units.
    pub price: i64,
    pub currency: String,
    pub capacity: i32,
    /// Seats neither held nor sold.
    pub available: i64,
}

/// Which shows a listing holds; every filter given must match.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShowListFilter<'a> {
    /// Exact city, case-insensitive.
    pub city: Option<&'a str>,
    /// Exact category, case-insensitive.
    pub category: Option<&'a str>,
    /// Text found in the title, venue or description (case-insensitive).
    pub words: Option<&'a str>,
}

/// A row of the show list: a summary and where it stands in the list.
#[derive(sqlx::FromRow)]
struct ShowRow {
    #[sqlx(flatten)]
    summary: ShowSummary,
    created_at: DateTime<Utc>,
}

/// A seat area of a session, joined with its session and its stock.
#[derive(sqlx::FromRow)]
struct SessionAreaRow {
    session_id: Uuid,
    starts_at: DateTime<Utc>,
    area_id: String,
    name: String,
    price_minor: i64,
    currency: String,
    capacity: i32,
    available: Option<i64>,
}

/// A page of the shows matching `filter`, newest first.
pub async fn list(
    pool: &PgPool,
    filter: ShowListFilter<'_>,
    page: &PageRequest<NewestFirst>,
) -> QueryResult<Page<ShowSummary>> {
    let pattern = filter
        .words
        .map(str::trim)
        .filter(|words| !words.is_empty())
        .map(|words| format!("%{}%", like_escaped(words)));
    let rows: Vec<ShowRow> = sqlx::query_as(
        "SELECT show_id, title, venue, city, category, first_session_at AS date, created_at
             FROM shows
             WHERE ($1::text IS NULL OR lower(city) = lower($1))
               AND ($2::text IS NULL OR lower(category) = lower($2))
               AND ($3::text IS NULL OR title ILIKE $3 OR venue ILIKE $3 OR description ILIKE $3)
               AND ($4::timestamptz IS NULL OR (created_at, show_id) < ($4, $5::uuid))
             ORDER BY created_at DESC, show_id DESC LIMIT $6",
    )
    .bind(filter.city.map(str::trim))
    .bind(filter.category.map(str::trim))
    .bind(pattern)
    .bind(page.after.map(|a| a.at))
    .bind(page.after.map(|a| a.id))
    .bind(page.rows_to_read())
    .fetch_all(pool)
    .await?;
    Ok(Page::cut(rows, page.limit, |row| NewestFirst {
        at: row.created_at,
        id: row.summary.show_id,
    })
    .map(|row| row.summary))
}

/// The show with this id.
pub async fn find(pool: &PgPool, show_id: Uuid) -> QueryResult<Option<ShowView>> {
    Ok(sqlx::query_as(
        "SELECT show_id, title, venue, city, category, description, first_session_at AS date, version
         FROM shows WHERE show_id = $1",
    )
    .bind(show_id)
    .fetch_optional(pool)
    .await?)
}

/// The sessions of a show in start order, each with its seat areas in their order and the
/// seats available; `None` when there is no such show.
pub async fn sessions(pool: &PgPool, show_id: Uuid) -> QueryResult<Option<Vec<SessionView>>> {
    let exists: Option<(Uuid,)> = sqlx::query_as("SELECT show_id FROM shows WHERE show_id = $1")
        .bind(show_id)
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows: Vec<SessionAreaRow> = sqlx::query_as(
        "SELECT s.session_id, s.starts_at, a.area_id, a.name, a.price_minor, a.currency, a.capacity,
                l.available
         FROM show_sessions s
         JOIN seat_areas a ON a.session_id = s.session_id
         LEFT JOIN inventory_levels l ON l.sku = a.inventory_id
         WHERE s.show_id = $1
         ORDER BY s.starts_at, s.session_id, a.position",
    )
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(group_by_session(rows)))
}

/// Rows ordered by session become one view per session, areas in row order.
fn group_by_session(rows: Vec<SessionAreaRow>) -> Vec<SessionView> {
    let mut sessions: Vec<SessionView> = Vec::new();
    for row in rows {
        let area = SeatAreaView {
            area_id: row.area_id,
            name: row.name,
            price: row.price_minor,
            currency: row.currency,
            capacity: row.capacity,
            available: row.available.unwrap_or(0),
        };
        match sessions.last_mut() {
            Some(session) if session.session_id == row.session_id => session.seat_areas.push(area),
            _ => sessions.push(SessionView {
                session_id: row.session_id,
                date: row.starts_at,
                seat_areas: vec![area],
            }),
        }
    }
    sessions
}

/// `text` with the wildcards of `LIKE` (and its escape character) escaped.
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_words_are_matched_literally() {
        assert_eq!(like_escaped("100%_sure\\"), "100\\%\\_sure\\\\");
        assert_eq!(like_escaped("plain words"), "plain words");
    }

    fn area_row(session: u128, area: &str, available: Option<i64>) -> SessionAreaRow {
        SessionAreaRow {
            session_id: Uuid::from_u128(session),
            starts_at: "2030-01-01T20:00:00Z".parse().unwrap(),
            area_id: area.into(),
            name: area.into(),
            price_minor: 1000,
            currency: "CNY".into(),
            capacity: 10,
            available,
        }
    }

    #[test]
    fn areas_are_grouped_under_their_session_in_order() {
        let sessions = group_by_session(vec![
            area_row(1, "A", Some(3)),
            area_row(1, "B", None),
            area_row(2, "A", Some(10)),
        ]);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].session_id, Uuid::from_u128(1));
        let areas: Vec<_> = sessions[0]
            .seat_areas
            .iter()
            .map(|a| (a.area_id.as_str(), a.available))
            .collect();
        assert_eq!(areas, [("A", 3), ("B", 0)]);
        assert_eq!(sessions[1].seat_areas.len(), 1);
        assert_eq!(sessions[1].seat_areas[0].available, 10);
    }
}
