//! The show each session belongs to, kept by the seat stock policy from the shows'
//! `SessionAdded` events (table `session_shows`). With it a booking finds its session's
//! show, and from the Show aggregate the seat area's price: write-side state only, never a
//! read model. A session never changes show, so what was found once is remembered.

use std::collections::HashMap;
use std::sync::Mutex;

use ordo_aggregates::common::{SessionId, ShowId};
use sqlx::{PgExecutor, PgPool};

/// Most sessions remembered in memory before the memory is cleared.
const REMEMBERED_SESSIONS: usize = 100_000;

/// Records that `session_id` is a session of `show_id` (a repeat changes nothing).
pub async fn record<'e>(
    executor: impl PgExecutor<'e>,
    session_id: SessionId,
    show_id: ShowId,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO session_shows (session_id, show_id) VALUES ($1, $2)
         ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(session_id.as_uuid())
    .bind(show_id.as_uuid())
    .execute(executor)
    .await?;
    Ok(())
}

/// The show of a session, `None` when no show has added it (yet).
pub async fn show_of<'e>(
    executor: impl PgExecutor<'e>,
    session_id: SessionId,
) -> sqlx::Result<Option<ShowId>> {
    let row: Option<(uuid::Uuid,)> =
        sqlx::query_as("SELECT show_id FROM session_shows WHERE session_id = $1")
            .bind(session_id.as_uuid())
            .fetch_optional(executor)
            .await?;
    Ok(row.map(|(show_id,)| ShowId::from(show_id)))
}

/// [`show_of`] remembered in memory: in a flash sale every fan books the same session.
pub struct SessionShows {
    pool: PgPool,
    known: Mutex<HashMap<SessionId, ShowId>>,
}

impl SessionShows {
    /// Sessions read from `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The show of a session, `None` when no show has added it (yet).
    pub async fn show_of(&self, session_id: SessionId) -> sqlx::Result<Option<ShowId>> {
        if let Some(show_id) = self.known.lock().expect("sessions").get(&session_id) {
            return Ok(Some(*show_id));
        }
        let found = show_of(&self.pool, session_id).await?;
        if let Some(show_id) = found {
            let mut known = self.known.lock().expect("sessions");
            if known.len() >= REMEMBERED_SESSIONS {
                known.clear();
            }
            known.insert(session_id, show_id);
        }
        Ok(found)
    }
}
