//! The contract between a read model and the consumer loop: a projection applies one event
//! inside a transaction; the handler claims the event for the projection in the same
//! transaction, so a redelivered event is skipped and an event that arrives before its
//! predecessor is retried later.
//!
//! Events that a lane hands over together (all it had ready), and those the lanes hand
//! over while an earlier transaction of the projection runs, are applied together, in one
//! transaction: each is claimed and applied
//! in turn (ordered by aggregate and sequence), and the claims and the effects of all of
//! them commit at once. When any of them fails, or the commit does, the transaction is
//! rolled back and each event is applied again in a transaction of its own, so a failing
//! (poison) event fails alone and is retried or dead-lettered alone, and every other one
//! applies once.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ordo_nats::applied::{claim, Claim};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::announce::Announcer;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{oneshot, Semaphore};
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

/// How many transactions of one projection may run at once in a process.
const APPLY_TURNS: usize = 4;
/// The most events applied in one transaction.
const MAX_GROUP: usize = 64;

/// Runs a [`Projection`] as an [`EventHandler`].
pub struct ProjectionHandler {
    applier: Arc<Applier>,
}

/// What applies a projection's events: the events handed over and waiting, and the one
/// turns to apply them (at most [`APPLY_TURNS`] transactions of the projection at a time
/// per process: an event arriving while a turn is free applies at once, alone; events
/// arriving while every turn is taken go together in the next).
struct Applier {
    pool: PgPool,
    projection: Arc<dyn Projection>,
    waiting: Mutex<Vec<Waiting>>,
    turn: Arc<Semaphore>,
}

struct Waiting {
    event: ReceivedEvent,
    /// The handler's span (the consumer's `event` span): the event's `projection` span
    /// hangs from it whichever task applies it.
    span: tracing::Span,
    reply: oneshot::Sender<Result<(), HandlerError>>,
}

impl ProjectionHandler {
    /// A handler writing to `pool`.
    pub fn new(pool: PgPool, projection: Arc<dyn Projection>) -> Self {
        Self {
            applier: Arc::new(Applier {
                pool,
                projection,
                waiting: Mutex::new(Vec::new()),
                turn: Arc::new(Semaphore::new(APPLY_TURNS)),
            }),
        }
    }

    /// The projection's consumer name.
    pub fn name(&self) -> &'static str {
        self.applier.projection.name()
    }

    /// The aggregate type it reads.
    pub fn aggregate_type(&self) -> &'static str {
        self.applier.projection.aggregate_type()
    }

    /// The projection it runs.
    pub fn projection(&self) -> Arc<dyn Projection> {
        self.applier.projection.clone()
    }
}

#[async_trait]
impl EventHandler for ProjectionHandler {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let (reply, answer) = oneshot::channel();
        self.applier
            .waiting
            .lock()
            .expect("waiting events lock")
            .push(Waiting {
                event: event.clone(),
                span: tracing::Span::current(),
                reply,
            });
        let turn = self
            .applier
            .turn
            .clone()
            .acquire_owned()
            .await
            .map_err(HandlerError::retry)?;
        let group = self.applier.take_group();
        if !group.is_empty() {
            // On a task of its own: a handler that goes away does not take the others'
            // transaction with it.
            let applier = self.applier.clone();
            tokio::spawn(async move {
                applier.apply_group(group).await;
                drop(turn);
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(HandlerError::retry(anyhow::anyhow!(
                "the transaction applying the event was dropped"
            )))
        })
    }

    fn handles_many(&self) -> bool {
        true
    }

    /// A lane's ready events join the waiting ones at once, so they share transactions
    /// (a hot aggregate's events apply many per transaction rather than one by one).
    async fn handle_many(
        &self,
        events: &[(ReceivedEvent, tracing::Span)],
    ) -> Vec<Result<(), HandlerError>> {
        let answers: Vec<_> = {
            let mut waiting = self.applier.waiting.lock().expect("waiting events lock");
            events
                .iter()
                .map(|(event, span)| {
                    let (reply, answer) = oneshot::channel();
                    waiting.push(Waiting {
                        event: event.clone(),
                        span: span.clone(),
                        reply,
                    });
                    answer
                })
                .collect()
        };
        // Turns until nothing waits: every event handed over here is then in a group.
        loop {
            let Ok(turn) = self.applier.turn.clone().acquire_owned().await else {
                break;
            };
            let group = self.applier.take_group();
            if group.is_empty() {
                break;
            }
            let applier = self.applier.clone();
            tokio::spawn(async move {
                applier.apply_group(group).await;
                drop(turn);
            });
        }
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            outcomes.push(answer.await.unwrap_or_else(|_| {
                Err(HandlerError::retry(anyhow::anyhow!(
                    "the transaction applying the event was dropped"
                )))
            }));
        }
        outcomes
    }
}

impl Applier {
    /// The events waiting, oldest first, at most [`MAX_GROUP`].
    fn take_group(&self) -> Vec<Waiting> {
        let mut waiting = self.waiting.lock().expect("waiting events lock");
        let take = waiting.len().min(MAX_GROUP);
        waiting.drain(..take).collect()
    }

    /// Applies `group` in one transaction, or each event alone when that fails, and
    /// answers each.
    async fn apply_group(&self, mut group: Vec<Waiting>) {
        if group.len() > 1 {
            // Claims lock positions in one order, so two transactions never wait on each
            // other's; an aggregate's events apply in sequence.
            group.sort_by(|a, b| {
                (
                    &a.event.aggregate_type,
                    &a.event.aggregate_id,
                    a.event.sequence,
                )
                    .cmp(&(
                        &b.event.aggregate_type,
                        &b.event.aggregate_id,
                        b.event.sequence,
                    ))
            });
            if let Ok(outcomes) = self.apply_together(&group).await {
                metrics::histogram!("ordo_projection_group_events", "projection" => self.projection.name())
                    .record(group.len() as f64);
                for (waiting, outcome) in group.into_iter().zip(outcomes) {
                    let _ = waiting.reply.send(outcome);
                }
                return;
            }
        }
        for waiting in group {
            let outcome = self.apply_alone(&waiting.event, &waiting.span).await;
            let _ = waiting.reply.send(outcome);
        }
    }

    /// Claims and applies every event of `events` in one transaction; the answer of each
    /// (applied, already applied, or arrived before an earlier one) once it committed, or
    /// an error when any application or the commit failed (nothing is then applied).
    async fn apply_together(
        &self,
        group: &[Waiting],
    ) -> Result<Vec<Result<(), HandlerError>>, HandlerError> {
        let name = self.projection.name();
        let mut tx = self.pool.begin().await?;
        delivery_lock::lock_shared(&mut tx, name).await?;
        let mut outcomes = Vec::with_capacity(group.len());
        let mut applied = Vec::new();
        for Waiting { event, span, .. } in group {
            match claim(&mut tx, name, event).await? {
                Claim::AlreadyApplied => outcomes.push(Ok(())),
                Claim::Gap { expected } => outcomes.push(Err(HandlerError::gap(event, expected))),
                Claim::Apply => {
                    self.apply_one(&mut tx, event, span).await?;
                    applied.push(event);
                    outcomes.push(Ok(()));
                }
            }
        }
        tx.commit().await?;
        let announcer = Announcer::of(&self.pool);
        for event in applied {
            announcer.position_applied(
                name,
                &event.aggregate_type,
                &event.aggregate_id,
                event.sequence,
            );
        }
        Ok(outcomes)
    }

    /// Claims and applies `event` in a transaction of its own.
    async fn apply_alone(
        &self,
        event: &ReceivedEvent,
        parent: &tracing::Span,
    ) -> Result<(), HandlerError> {
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
        self.apply_one(&mut tx, event, parent).await?;
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

    async fn apply_one(
        &self,
        tx: &mut PgConnection,
        event: &ReceivedEvent,
        parent: &tracing::Span,
    ) -> Result<(), HandlerError> {
        let span = tracing::info_span!(
            parent: parent,
            "projection",
            projection = self.projection.name(),
            event_type = %event.event_type
        );
        self.projection
            .apply(tx, event)
            .instrument(span)
            .await
            .map_err(apply_failure)
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
