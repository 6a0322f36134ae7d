//! The contract between a read model and the consumer loop: a projection applies one event
//! inside a transaction; the handler claims the event for the projection in the same
//! transaction, so a redelivered event is skipped and an event that arrives before its
//! predecessor is retried later.

use std::sync::Arc;

use async_trait::async_trait;
use ordo_nats::applied::{claim, Claim};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::announce::Announcer;
use sqlx::{PgConnection, PgPool};
use tracing::Instrument;

use crate::delivery_lock;

/// A read model fed by the events of one aggregate type.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Durable consumer name, also the key of its applied positions (`projection-orders`).
    fn name(&self) -> &'static str;
    /// The aggregate type whose stream feeds it.
    fn aggregate_type(&self) -> &'static str;
    /// Applies one event. Runs inside the transaction that records it as applied.
    ///
    /// Table names stay unqualified: a rebuild runs the same code with the search path
    /// pointing at its shadow tables first.
    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()>;
    /// The tables this projection alone writes, parents before children; what a rebuild
    /// builds beside the live ones and swaps in. Empty: the projection cannot be rebuilt.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
}

/// Runs a [`Projection`] as an [`EventHandler`].
pub struct ProjectionHandler {
    pool: PgPool,
    projection: Arc<dyn Projection>,
}

impl ProjectionHandler {
    /// A handler writing to `pool`.
    pub fn new(pool: PgPool, projection: Arc<dyn Projection>) -> Self {
        Self { pool, projection }
    }

    /// The projection's consumer name.
    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// The aggregate type it reads.
    pub fn aggregate_type(&self) -> &'static str {
        self.projection.aggregate_type()
    }

    /// The projection it runs.
    pub fn projection(&self) -> Arc<dyn Projection> {
        self.projection.clone()
    }
}

#[async_trait]
impl EventHandler for ProjectionHandler {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let name = self.projection.name();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|err| HandlerError::Retry(err.into()))?;
        // Shared with every other delivery of this projection; a rebuild's switch takes it
        // exclusively, so it never swaps tables under an event half applied.
        delivery_lock::lock_shared(&mut tx, name)
            .await
            .map_err(|err| HandlerError::Retry(err.into()))?;
        match claim(&mut tx, name, event)
            .await
            .map_err(|err| HandlerError::Retry(err.into()))?
        {
            Claim::AlreadyApplied => return Ok(()),
            Claim::Gap { expected } => {
                return Err(HandlerError::gap(event, expected));
            }
            Claim::Apply => {}
        }
        let span =
            tracing::info_span!("projection", projection = name, event_type = %event.event_type);
        self.projection
            .apply(&mut tx, event)
            .instrument(span)
            .await
            .map_err(apply_failure)?;
        tx.commit()
            .await
            .map_err(|err| HandlerError::Retry(err.into()))?;
        Announcer::of(&self.pool).position_applied(
            name,
            &event.aggregate_type,
            &event.aggregate_id,
            event.sequence,
        );
        Ok(())
    }
}

/// An event that does not decode fails as its contract says (an unknown type or version is
/// retried, then dead-lettered; a malformed one is dead-lettered at once); any other
/// failure of a projection is retried.
fn apply_failure(err: anyhow::Error) -> HandlerError {
    match err.downcast::<ordo_contracts::ContractError>() {
        Ok(contract) => contract.into(),
        Err(err) => HandlerError::Retry(err),
    }
}
