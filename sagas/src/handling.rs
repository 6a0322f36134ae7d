//! What both sagas' event handlers share: the transaction that claims an event (so a
//! repeat changes nothing and a gap waits), its commit or the error recorded on the saga,
//! the log of a step taken, the provider told of a void or refund the payment recorded, and
//! the mapping of step and provider failures to retries.

use ordo_nats::applied::{claim, Claim};
use ordo_nats::consumer::HandlerError;
use ordo_nats::envelope::ReceivedEvent;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use ordo_aggregates::common::{Money, PaymentId, RefundId};
use sqlx::PgConnection;

use crate::port::StepError;
use crate::provider::{PaymentProvider, ProviderError};
use crate::repository;

/// Opens the transaction handling `event` for `consumer` and claims the event in it:
/// `None` when it was applied already; an event ahead of its predecessor is retried.
pub async fn begin_claimed(
    pool: &PgPool,
    consumer: &str,
    event: &ReceivedEvent,
) -> Result<Option<Transaction<'static, Postgres>>, HandlerError> {
    let mut tx = pool.begin().await.map_err(retry)?;
    match claim(&mut tx, consumer, event).await.map_err(retry)? {
        Claim::AlreadyApplied => Ok(None),
        Claim::Gap { expected } => Err(HandlerError::gap(event, expected)),
        Claim::Apply => Ok(Some(tx)),
    }
}

/// Commits `tx` when the handling succeeded; otherwise rolls it back and records the
/// error on the saga `saga_id` (when the event names one), so operators see why it waits.
pub async fn finish(
    pool: &PgPool,
    tx: Transaction<'static, Postgres>,
    outcome: Result<(), HandlerError>,
    event: &ReceivedEvent,
    saga_id: Option<Uuid>,
) -> Result<(), HandlerError> {
    match outcome {
        Ok(()) => tx.commit().await.map_err(retry),
        Err(err) => {
            drop(tx);
            // A gap is not the saga's failure: the event waits for its predecessor.
            let gap = matches!(err, HandlerError::Gap { .. });
            if let Some(saga_id) = saga_id.filter(|_| !gap) {
                let message = format!("{}: {err:#}", event.event_type);
                let _ = repository::record_error(pool, saga_id, &message).await;
            }
            Err(err)
        }
    }
}

/// A failure worth retrying (the database, the bus).
pub fn retry(err: impl Into<anyhow::Error>) -> HandlerError {
    HandlerError::Retry(err.into())
}

/// A step that failed or was refused. A compensation or confirmation refused is not
/// expected: it stays visible and is retried.
pub fn step_failure(err: StepError) -> HandlerError {
    match err {
        StepError::Failed(err) => HandlerError::Retry(err),
        StepError::Refused { code, detail } => {
            HandlerError::Retry(anyhow::anyhow!("step refused ({code}): {detail}"))
        }
    }
}

/// The payment provider could not be reached or answered an error: retried.
pub fn provider_failure(err: ProviderError) -> HandlerError {
    HandlerError::Retry(err.into())
}

/// Records that saga `saga_id` (of `saga_type`) took `step`, in the handling transaction,
/// then passes the step's crash point.
pub async fn log_step(
    conn: &mut PgConnection,
    saga_type: &str,
    saga_id: Uuid,
    step: &str,
    detail: Option<String>,
) -> Result<(), HandlerError> {
    repository::log_step(conn, saga_id, step, detail)
        .await
        .map_err(retry)?;
    crate::crash_points::crash_after(saga_type, step);
    Ok(())
}

/// Tells the provider of a void the payment aggregate recorded, and logs the step.
pub async fn tell_provider_void(
    provider: &dyn PaymentProvider,
    conn: &mut PgConnection,
    saga_type: &str,
    saga_id: Uuid,
    payment_id: PaymentId,
) -> Result<(), HandlerError> {
    provider.void(payment_id).await.map_err(provider_failure)?;
    log_step(
        conn,
        saga_type,
        saga_id,
        "provider_void",
        Some(payment_id.to_string()),
    )
    .await
}

/// Tells the provider of a refund the payment aggregate recorded, and logs the step.
pub async fn tell_provider_refund(
    provider: &dyn PaymentProvider,
    conn: &mut PgConnection,
    saga_type: &str,
    saga_id: Uuid,
    payment_id: PaymentId,
    refund_id: RefundId,
    amount: Money,
) -> Result<(), HandlerError> {
    provider
        .refund(payment_id, refund_id, amount)
        .await
        .map_err(provider_failure)?;
    log_step(
        conn,
        saga_type,
        saga_id,
        "provider_refund",
        Some(refund_id.to_string()),
    )
    .await
}
