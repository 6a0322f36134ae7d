//! Snapshots of aggregates with long histories, so that loading one reads its latest
//! snapshot and only the events after it instead of its whole history.
//!
//! A snapshot is the aggregate's state as JSON at one sequence, kept in
//! `aggregate_snapshots` (one row per aggregate, migration 0144). The command bus writes it in
//! the same transaction as the events of the batch that makes it due (every
//! [`SnapshotPolicy::every`] events), so a snapshot never runs ahead of the events it
//! summarises; a snapshot that no longer reads as the aggregate's current shape (its type
//! changed) is ignored and the aggregate is replayed from its events, as without snapshots.
//! A state holding a personal value in the clear is never written (personal values are
//! stored sealed only).

use cqrs_es::persist::{EventUpcaster, PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, EventEnvelope};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::personal::has_clear_values;

/// When the bus writes a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// A snapshot is written once this many events were appended since the last one.
    pub every: usize,
}

impl SnapshotPolicy {
    /// Whether a batch that moves the aggregate to `sequence` should write a snapshot, the
    /// last one being at `snapshot_sequence` (0: none yet).
    pub fn due(&self, snapshot_sequence: usize, sequence: usize) -> bool {
        self.every > 0 && sequence >= snapshot_sequence + self.every
    }
}

/// An aggregate loaded from its snapshot and the events after it.
pub struct Loaded<A> {
    /// The state.
    pub aggregate: A,
    /// The sequence of its last event.
    pub sequence: usize,
    /// The sequence the snapshot was taken at.
    pub snapshot_sequence: usize,
}

/// Loads `aggregate_id` from its snapshot and the events after it; `None` when it has no
/// snapshot, or one that does not read as `A` (the caller then replays every event).
pub async fn load<A: Aggregate>(
    pool: &PgPool,
    repo: &PostgresEventRepository,
    upcasters: &[Box<dyn EventUpcaster>],
    aggregate_id: &str,
) -> Result<Option<Loaded<A>>, String> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT last_sequence, payload::text FROM aggregate_snapshots
         WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(A::TYPE)
    .bind(aggregate_id)
    .fetch_optional(pool)
    .await
    .map_err(|err| format!("reading the snapshot: {err}"))?;
    let Some((last_sequence, payload)) = row else {
        return Ok(None);
    };
    let Ok(mut aggregate) = serde_json::from_str::<A>(&payload) else {
        tracing::warn!(
            aggregate_type = A::TYPE,
            aggregate_id,
            "snapshot does not read as the aggregate: replaying its events"
        );
        return Ok(None);
    };
    let snapshot_sequence = usize::try_from(last_sequence).unwrap_or(0);
    let events = repo
        .get_last_events::<A>(aggregate_id, snapshot_sequence)
        .await
        .map_err(|err| format!("reading the events after the snapshot: {err}"))?;
    let mut sequence = snapshot_sequence;
    for event in events {
        let event = upcast(event, upcasters);
        let envelope = EventEnvelope::<A>::try_from(event)
            .map_err(|err| format!("reading an event after the snapshot: {err}"))?;
        sequence = envelope.sequence;
        aggregate.apply(envelope.payload);
    }
    Ok(Some(Loaded {
        aggregate,
        sequence,
        snapshot_sequence,
    }))
}

/// Applies every upcaster that applies, in order, as the event store does on load.
fn upcast(mut event: SerializedEvent, upcasters: &[Box<dyn EventUpcaster>]) -> SerializedEvent {
    for upcaster in upcasters {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    event
}

/// The snapshot of `aggregate` to write, unless it cannot be written (not JSON, or a
/// personal value in the clear).
pub fn payload_of<A: Aggregate>(aggregate: &A) -> Option<Value> {
    let payload = serde_json::to_value(aggregate).ok()?;
    (!has_clear_values(&payload)).then_some(payload)
}

/// Writes the snapshot of `aggregate_id` at `sequence` in `tx`, replacing an older one.
pub async fn write(
    tx: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: usize,
    payload: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, last_sequence, payload)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
             SET last_sequence = excluded.last_sequence, payload = excluded.payload,
                 taken_at = now()
             WHERE aggregate_snapshots.last_sequence < excluded.last_sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence as i64)
    .bind(payload)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_due_every_so_many_events() {
        let policy = SnapshotPolicy { every: 100 };
        assert!(!policy.due(0, 99));
        assert!(policy.due(0, 100));
        assert!(policy.due(0, 250));
        assert!(!policy.due(200, 299));
        assert!(policy.due(200, 300));
        assert!(!SnapshotPolicy { every: 0 }.due(0, 1_000_000));
    }
}
