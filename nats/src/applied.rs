//! Consumer idempotency: what each consumer has applied, per aggregate, recorded in the
//! same Postgres transaction as the consumer's effect.
//!
//! JetStream delivers at least once, and the relay may re-publish after a crash, so a
//! consumer sees some events twice. `consumer_positions` keeps, per consumer and aggregate,
//! the last applied sequence. [`claim`] reads it under a row lock and answers whether this
//! event is the next one to apply, one already applied, or one that arrived before an
//! earlier event (a gap: wait for the missing one). Because the claim and the effect commit
//! together, an effect happens exactly once and in sequence order per aggregate.

use futures::future::BoxFuture;
use ordo_store::announce::Announcer;
use sqlx::{PgConnection, PgPool};

use crate::consumer::HandlerError;
use crate::envelope::ReceivedEvent;

/// The answer of [`claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This is the next event of its aggregate: apply it, then commit.
    Apply,
    /// Already applied (a redelivery or re-publish): skip it and ack.
    AlreadyApplied,
    /// An earlier event has not been applied yet: nak this one and wait for
    /// sequence `expected`.
    Gap {
        /// The sequence that must be applied first.
        expected: i64,
    },
}

/// Claims `event` for `consumer` inside the caller's transaction.
///
/// On [`Claim::Apply`] the position is already advanced in `tx`; the caller applies its
/// effect in the same transaction and commits both, or rolls back both. Concurrent claims
/// of one aggregate serialise on its row lock, so exactly one of them gets `Apply`.
pub async fn claim(
    tx: &mut PgConnection,
    consumer: &str,
    event: &ReceivedEvent,
) -> sqlx::Result<Claim> {
    let last = lock_position(tx, consumer, event).await?;
    if event.sequence <= last {
        return Ok(Claim::AlreadyApplied);
    }
    if event.sequence > last + 1 {
        return Ok(Claim::Gap { expected: last + 1 });
    }
    sqlx::query(
        "UPDATE consumer_positions SET last_sequence = $4, updated_at = now() \
         WHERE consumer = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(consumer)
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.sequence)
    .execute(&mut *tx)
    .await?;
    Ok(Claim::Apply)
}

/// Reads and locks the consumer's position for the event's aggregate, creating it (at 0:
/// nothing applied) for the aggregate's first event. The insert cannot race: a second
/// inserter waits on the primary key until the first commits, then finds the row.
async fn lock_position(
    tx: &mut PgConnection,
    consumer: &str,
    event: &ReceivedEvent,
) -> sqlx::Result<i64> {
    let select = "SELECT last_sequence FROM consumer_positions \
                  WHERE consumer = $1 AND aggregate_type = $2 AND aggregate_id = $3 \
                  FOR UPDATE";
    let found: Option<i64> = sqlx::query_scalar(select)
        .bind(consumer)
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(last) = found {
        return Ok(last);
    }
    sqlx::query(
        "INSERT INTO consumer_positions (consumer, aggregate_type, aggregate_id, last_sequence) \
         VALUES ($1, $2, $3, 0) \
         ON CONFLICT (consumer, aggregate_type, aggregate_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query_scalar(select)
        .bind(consumer)
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .fetch_one(&mut *tx)
        .await
}

/// Applies `effect` for `event` at most once for `consumer`: opens a transaction, claims
/// the event, runs the effect only on [`Claim::Apply`], and commits both together.
///
/// Returns `Ok(Claim::Apply)` when the effect ran and committed, `Ok(Claim::AlreadyApplied)`
/// when it was skipped, and `Err(HandlerError::Retry)` on a gap (so the consumer loop naks
/// and the missing event can arrive first) or a database error. An error from the effect
/// rolls the claim back and is returned as it is.
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool, event: ordo_nats::ReceivedEvent)
/// #     -> Result<(), ordo_nats::HandlerError> {
/// ordo_nats::apply_once(&pool, "projection-orders", &event, |tx| {
///     Box::pin(async move {
///         sqlx::query("INSERT INTO orders_view (id) VALUES ($1)")
///             .bind("o-1")
///             .execute(&mut *tx)
///             .await?;
///         Ok(())
///     })
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn apply_once<F>(
    pool: &PgPool,
    consumer: &str,
    event: &ReceivedEvent,
    effect: F,
) -> Result<Claim, HandlerError>
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<(), HandlerError>>,
{
    let mut tx = pool.begin().await?;
    match claim(&mut tx, consumer, event).await? {
        Claim::Apply => {
            effect(&mut tx).await?;
            tx.commit().await?;
            Announcer::of(pool).position_applied(
                consumer,
                &event.aggregate_type,
                &event.aggregate_id,
                event.sequence,
            );
            Ok(Claim::Apply)
        }
        Claim::AlreadyApplied => {
            tx.rollback().await?;
            Ok(Claim::AlreadyApplied)
        }
        Claim::Gap { expected } => {
            tx.rollback().await?;
            Err(HandlerError::gap(event, expected))
        }
    }
}
