//! What the sagas share: the periodic scan of their stored deadlines, and the metadata of a
//! step's command.

use std::future::Future;
use std::time::Duration;

use ordo_nats::envelope::ReceivedEvent;
use ordo_store::CommandMetadata;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Runs `scan` every `every` until shutdown. A failed scan is logged and tried again at the
/// next tick: deadlines are rows in Postgres, so nothing is lost meanwhile.
pub async fn run_every<F, Fut>(
    every: Duration,
    shutdown: CancellationToken,
    what: &'static str,
    mut scan: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(err) = scan().await {
            tracing::warn!(error = %err, "{what} failed; will retry");
        }
    }
}

/// The deterministic id of a saga step's command.
pub fn step_id(saga_id: Uuid, step: &str) -> Uuid {
    Uuid::new_v5(&saga_id, step.as_bytes())
}

/// The metadata of a step's command caused by `event`: the correlation id is kept, the
/// event is the causation, and the command id is the step's deterministic id.
pub fn step_metadata(event: &ReceivedEvent, saga_id: Uuid, step: &str) -> CommandMetadata {
    CommandMetadata::caused_by(
        &event.correlation_id,
        &event.event_id.to_string(),
        step_id(saga_id, step).to_string(),
    )
}
