//! Read-your-writes on demand. A command records the version it produced as the caller's
//! last write; a query sent with `Prefer: wait=N` (RFC 7240) waits up to N seconds for the
//! projection serving it to have applied that version.

use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use sqlx::PgPool;
use uuid::Uuid;

/// The longest wait a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The `wait` preference of a request, if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreferWait(pub Option<Duration>);

impl PreferWait {
    /// The `Preference-Applied` header value to answer with, when a wait was asked for.
    pub fn applied(&self) -> Option<HeaderValue> {
        self.0
            .map(|d| HeaderValue::from_str(&format!("wait={}", d.as_secs())).expect("ascii"))
    }
}

/// Parses `Prefer` headers: `wait=5`, possibly among other preferences.
pub fn parse_prefer_wait<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Option<Duration> {
    for value in values {
        let Ok(text) = value.to_str() else { continue };
        for preference in text.split([',', ';']) {
            let preference = preference.trim();
            if let Some(seconds) = preference.strip_prefix("wait=") {
                if let Ok(seconds) = seconds.trim().parse::<u64>() {
                    return Some(Duration::from_secs(seconds).min(MAX_WAIT));
                }
            }
        }
    }
    None
}

impl<S: Send + Sync> FromRequestParts<S> for PreferWait {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PreferWait(parse_prefer_wait(
            parts.headers.get_all("prefer").iter(),
        )))
    }
}

/// Records the version a user's command produced.
pub async fn record_write(
    pool: &PgPool,
    user_id: Uuid,
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
) -> sqlx::Result<()> {
    // Only a hint for later reads: if a crash loses it, a read just does not wait, so it
    // is not worth a disk flush on the command's path.
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO last_writes (user_id, aggregate_type, aggregate_id, version)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET aggregate_type = $2, aggregate_id = $3,
             version = $4, written_at = now()",
    )
    .bind(user_id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Waits until `consumer` has applied the caller's last write, when that write was to an
/// aggregate of `aggregate_type`. Answers whether the read model caught up in time.
pub async fn wait_for_last_write(
    pool: &PgPool,
    user_id: Uuid,
    consumer: &str,
    aggregate_type: &str,
    timeout: Duration,
) -> sqlx::Result<bool> {
    let last: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, version FROM last_writes WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    let Some((written_type, aggregate_id, version)) = last else {
        return Ok(true);
    };
    if written_type != aggregate_type {
        return Ok(true);
    }
    wait_for_version(
        pool,
        consumer,
        aggregate_type,
        &aggregate_id,
        version,
        timeout,
    )
    .await
}

/// Waits until `consumer` has applied `version` of one aggregate.
pub async fn wait_for_version(
    pool: &PgPool,
    consumer: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
    timeout: Duration,
) -> sqlx::Result<bool> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let applied: Option<(i64,)> = sqlx::query_as(
            "SELECT last_sequence FROM consumer_positions
             WHERE consumer = $1 AND aggregate_type = $2 AND aggregate_id = $3",
        )
        .bind(consumer)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_optional(pool)
        .await?;
        if applied.is_some_and(|(seq,)| seq >= version) {
            return Ok(true);
        }
        if started.elapsed() >= timeout {
            return Ok(false);
        }
        tokio::time::sleep(pause.min(timeout.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_wait_is_read_among_other_preferences() {
        let values = [HeaderValue::from_static("respond-async, wait=7")];
        assert_eq!(
            parse_prefer_wait(values.iter()),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn prefer_wait_is_capped() {
        let values = [HeaderValue::from_static("wait=3600")];
        assert_eq!(parse_prefer_wait(values.iter()), Some(MAX_WAIT));
    }

    #[test]
    fn prefer_without_wait_is_ignored() {
        let values = [HeaderValue::from_static("return=minimal")];
        assert_eq!(parse_prefer_wait(values.iter()), None);
    }
}
