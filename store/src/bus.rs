//! The command bus: executes commands against one aggregate type on the Postgres event store.
//!
//! Every aggregate instance has a slot holding its cached state and a queue of waiting
//! commands. Whoever holds the slot's lock drains the queue and handles the whole batch on
//! the in-memory state, then appends the events of every accepted command in one
//! transaction. A hot aggregate (one show's seats in a flash sale) therefore costs one
//! insert per batch instead of one load and one insert per command, and commands on one
//! aggregate in this process never conflict with each other. Writers in other processes
//! are caught by the primary key on (aggregate_type, aggregate_id, sequence): the batch is
//! then re-run on freshly loaded state, so two commands racing never both win.
//!
//! The batches of every bus of the process go to one [`GroupCommitter`] per database, which
//! appends the batches of many aggregates in one transaction ([`crate::group_commit`]).
//!
//! A bus given a [`SnapshotPolicy`] loads an aggregate from its latest snapshot and the
//! events after it, and writes a new snapshot with the batch that makes one due
//! ([`crate::snapshots`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventUpcaster, PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use tokio::sync::{oneshot, Mutex};
use tracing::Instrument;

use crate::group_commit::{EventWrite, GroupCommitter, WriteFailure};
use crate::metadata::CommandMetadata;
use crate::personal::{has_clear_values, PersonalDataSealer};
use crate::snapshots::{self, SnapshotPolicy};

/// How many times a batch is re-run after losing a race to another process.
const MAX_CONFLICT_RETRIES: u32 = 12;
/// Above this many cached aggregates, idle slots are dropped.
const CACHE_SOFT_LIMIT: usize = 20_000;

/// What a successful command produced.
#[derive(Debug, Clone)]
pub struct Committed<E> {
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The aggregate's version after the command: the sequence of its last event (unchanged
    /// when the command was a no-op, such as a repeated idempotent step).
    pub version: i64,
    /// The events the command appended, in order; empty for a no-op.
    pub events: Vec<E>,
}

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused the command (a business rule or bad input).
    #[error(transparent)]
    Rejected(E),
    /// Other writers kept winning; the caller may retry later.
    #[error("the aggregate kept changing concurrently; gave up after {0} attempts")]
    Conflict(u32),
    /// The store failed (database unreachable, corrupt event...).
    #[error("event store failure: {0}")]
    Store(String),
}

impl<E: std::error::Error> CommandError<E> {
    /// The aggregate's own error, when it refused the command.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            CommandError::Rejected(err) => Some(err),
            _ => None,
        }
    }
}

type Reply<A> = oneshot::Sender<
    Result<Committed<<A as Aggregate>::Event>, CommandError<<A as Aggregate>::Error>>,
>;

struct Pending<A: Aggregate> {
    command: A::Command,
    metadata: CommandMetadata,
    reply: Reply<A>,
}

struct Cached<A> {
    aggregate: A,
    sequence: usize,
    /// The sequence of the aggregate's latest snapshot (0: none).
    snapshot_sequence: usize,
}

struct Slot<A: Aggregate> {
    queue: StdMutex<Vec<Pending<A>>>,
    state: Mutex<Option<Cached<A>>>,
}

/// Executes commands on aggregates of type `A`, stored in Postgres.
pub struct CommandBus<A: Aggregate> {
    store: PersistedEventStore<PostgresEventRepository, A>,
    repo: PostgresEventRepository,
    pool: PgPool,
    committer: Arc<GroupCommitter>,
    services: A::Services,
    slots: StdMutex<HashMap<String, Arc<Slot<A>>>>,
    /// Seals personal values before events are stored; without it, an event holding a
    /// clear personal value is refused.
    sealer: Option<Arc<dyn PersonalDataSealer>>,
    /// The upcasters, for events read after a snapshot.
    upcasters: Vec<Box<dyn EventUpcaster>>,
    /// When to write snapshots; none without it.
    snapshots: Option<SnapshotPolicy>,
}

impl<A> CommandBus<A>
where
    A: Aggregate + Clone + 'static,
    A::Command: Clone + Send,
    A::Error: Send,
{
    /// A bus over the `events` table of `pool`.
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        Self {
            store: PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone())),
            repo: PostgresEventRepository::new(pool.clone()),
            committer: GroupCommitter::of(&pool),
            pool,
            services,
            slots: StdMutex::new(HashMap::new()),
            sealer: None,
            upcasters: Vec::new(),
            snapshots: None,
        }
    }

    /// Seals the personal values of every event with `sealer` before it is stored.
    pub fn with_personal_data_sealer(mut self, sealer: Arc<dyn PersonalDataSealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Adds the upcasters `upcasters` makes, which turn stored events of older versions into
    /// the current shape.
    pub fn with_upcasters(mut self, upcasters: fn() -> Vec<Box<dyn EventUpcaster>>) -> Self {
        self.store = self.store.with_upcasters(upcasters());
        self.upcasters = upcasters();
        self
    }

    /// Loads aggregates from snapshots and writes one every `every` events (0: never).
    pub fn with_snapshots(mut self, every: usize) -> Self {
        self.snapshots = (every > 0).then_some(SnapshotPolicy { every });
        self
    }

    /// Handles `command` on aggregate `aggregate_id` and commits the events it produces,
    /// answering the version reached.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        mut metadata: CommandMetadata,
    ) -> Result<Committed<A::Event>, CommandError<A::Error>> {
        let span = tracing::info_span!(
            "command",
            aggregate_type = A::TYPE,
            aggregate_id,
            command_id = %metadata.command_id,
            request_id = %metadata.correlation_id,
        );
        if metadata.traceparent.is_none() {
            metadata.traceparent = span.in_scope(crate::metadata::current_traceparent);
        }
        self.execute_queued(aggregate_id, command, metadata)
            .instrument(span)
            .await
    }

    async fn execute_queued(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: CommandMetadata,
    ) -> Result<Committed<A::Event>, CommandError<A::Error>> {
        let slot = self.slot(aggregate_id);
        let (reply, answer) = oneshot::channel();
        slot.queue.lock().expect("queue lock").push(Pending {
            command,
            metadata,
            reply,
        });
        {
            let mut state = slot.state.lock().await;
            let batch: Vec<Pending<A>> =
                std::mem::take(&mut *slot.queue.lock().expect("queue lock"));
            if !batch.is_empty() {
                self.run_batch(aggregate_id, &mut state, batch).await;
            }
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(CommandError::Store("the command was dropped".into())),
        }
    }

    /// Loads the current state of an aggregate (for reads that must see the write side):
    /// the state this bus holds when no one (no other process) wrote since, checked with
    /// one look at the aggregate's last sequence, else from the store. A bus that seals
    /// personal data always reads the store: its cached state holds the values its commands
    /// brought in the clear, where a read must see them as stored (sealed, and unreadable
    /// once their key is erased).
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, i64), CommandError<A::Error>> {
        if self.sealer.is_none() {
            if let Some(cached) = self.cached_if_current(aggregate_id).await? {
                return Ok(cached);
            }
        }
        let loaded = self
            .load_state(aggregate_id)
            .await
            .map_err(CommandError::Store)?;
        Ok((loaded.aggregate, loaded.sequence as i64))
    }

    /// The cached state of `aggregate_id` and its sequence, when there is one, nobody is
    /// handling a batch on it right now, and the store holds nothing newer.
    async fn cached_if_current(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<(A, i64)>, CommandError<A::Error>> {
        let slot = self
            .slots
            .lock()
            .expect("slots lock")
            .get(aggregate_id)
            .cloned();
        let Some(slot) = slot else {
            return Ok(None);
        };
        let cached = match slot.state.try_lock() {
            Ok(state) => state
                .as_ref()
                .map(|cached| (cached.aggregate.clone(), cached.sequence)),
            Err(_) => None,
        };
        let Some((aggregate, sequence)) = cached else {
            return Ok(None);
        };
        let stored = self
            .stored_sequence(aggregate_id)
            .await
            .map_err(|failure| match failure {
                BatchFailure::Store(message) => CommandError::Store(message),
                BatchFailure::Stale => CommandError::Store("stale".into()),
            })?;
        Ok((stored == sequence).then_some((aggregate, sequence as i64)))
    }

    /// The aggregate's state: from its snapshot and the events after it when this bus keeps
    /// snapshots and one reads, else from every event.
    async fn load_state(&self, aggregate_id: &str) -> Result<Cached<A>, String> {
        if self.snapshots.is_some() {
            if let Some(loaded) =
                snapshots::load::<A>(&self.pool, &self.repo, &self.upcasters, aggregate_id).await?
            {
                return Ok(Cached {
                    aggregate: loaded.aggregate,
                    sequence: loaded.sequence,
                    snapshot_sequence: loaded.snapshot_sequence,
                });
            }
        }
        let context = self
            .store
            .load_aggregate(aggregate_id)
            .await
            .map_err(|err| err.to_string())?;
        Ok(Cached {
            aggregate: context.aggregate,
            sequence: context.current_sequence,
            snapshot_sequence: 0,
        })
    }

    fn slot(&self, aggregate_id: &str) -> Arc<Slot<A>> {
        let mut slots = self.slots.lock().expect("slots lock");
        if slots.len() > CACHE_SOFT_LIMIT {
            // Only slots nobody is using right now are dropped: their state reloads on demand.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slots
            .entry(aggregate_id.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    queue: StdMutex::new(Vec::new()),
                    state: Mutex::new(None),
                })
            })
            .clone()
    }

    async fn run_batch(
        &self,
        aggregate_id: &str,
        state: &mut Option<Cached<A>>,
        batch: Vec<Pending<A>>,
    ) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_batch(aggregate_id, state, &batch).await {
                Ok(outcomes) => {
                    record_outcomes(A::TYPE, &outcomes);
                    for (pending, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = pending.reply.send(outcome);
                    }
                    return;
                }
                Err(BatchFailure::Stale) if attempt < MAX_CONFLICT_RETRIES => {
                    *state = None;
                    // Spread re-runs of processes that collided so they do not collide again.
                    let jitter = rand::random::<u64>() % (2 * attempt as u64 + 1);
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                Err(failure) => {
                    *state = None;
                    let outcome = match &failure {
                        BatchFailure::Stale => "conflict",
                        BatchFailure::Store(_) => "error",
                    };
                    metrics::counter!("ordo_commands_total", "aggregate_type" => A::TYPE, "outcome" => outcome)
                        .increment(batch.len() as u64);
                    for pending in batch {
                        let err = match &failure {
                            BatchFailure::Stale => CommandError::Conflict(attempt),
                            BatchFailure::Store(message) => CommandError::Store(message.clone()),
                        };
                        let _ = pending.reply.send(Err(err));
                    }
                    return;
                }
            }
        }
    }

    /// Handles every command of the batch on the cached state and commits all events at once.
    async fn try_batch(
        &self,
        aggregate_id: &str,
        state: &mut Option<Cached<A>>,
        batch: &[Pending<A>],
    ) -> Result<Vec<Result<Committed<A::Event>, CommandError<A::Error>>>, BatchFailure> {
        let freshly_loaded = state.is_none();
        if state.is_none() {
            *state = Some(
                self.load_state(aggregate_id)
                    .await
                    .map_err(BatchFailure::Store)?,
            );
        }
        let cached = state.as_ref().expect("state loaded");
        let base_sequence = cached.sequence;
        let mut snapshot_sequence = cached.snapshot_sequence;
        let mut working = cached.aggregate.clone();
        let mut sequence = base_sequence;
        let mut envelopes: Vec<EventEnvelope<A>> = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for pending in batch {
            let mut candidate = working.clone();
            let sink = EventSink::default();
            match candidate
                .handle(pending.command.clone(), &self.services, &sink)
                .await
            {
                Ok(()) => {
                    let events = sink.collect().await;
                    let metadata = pending.metadata.to_map();
                    for event in &events {
                        sequence += 1;
                        envelopes.push(EventEnvelope {
                            aggregate_id: aggregate_id.to_string(),
                            sequence,
                            payload: event.clone(),
                            metadata: metadata.clone(),
                        });
                    }
                    working = candidate;
                    outcomes.push(Ok(Committed {
                        aggregate_id: aggregate_id.to_string(),
                        version: sequence as i64,
                        events,
                    }));
                }
                Err(err) => outcomes.push(Err(CommandError::Rejected(err))),
            }
        }
        if envelopes.is_empty() {
            // Nothing to write: refusals and no-ops must still be judged on current state, so
            // unless it was just loaded, check that no other process has written since.
            if !freshly_loaded && self.stored_sequence(aggregate_id).await? != base_sequence {
                return Err(BatchFailure::Stale);
            }
            return Ok(outcomes);
        }
        let mut serialized = envelopes
            .iter()
            .map(SerializedEvent::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| BatchFailure::Store(format!("serialising events: {err}")))?;
        self.seal_personal_data(&mut serialized).await?;
        let commit = tracing::info_span!(
            "commit",
            aggregate_type = A::TYPE,
            aggregate_id,
            events = serialized.len()
        );
        let snapshot = self
            .snapshots
            .filter(|policy| policy.due(snapshot_sequence, sequence))
            .and_then(|_| snapshots::payload_of(&working));
        let write = EventWrite {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_string(),
            events: serialized,
            snapshot: snapshot.map(|payload| (sequence, payload)),
        };
        let wrote_snapshot = write.snapshot.is_some();
        self.committer
            .write(&self.pool, write)
            .instrument(commit)
            .await
            .map_err(|failure| match failure {
                WriteFailure::Stale => BatchFailure::Stale,
                WriteFailure::Store(message) => BatchFailure::Store(message),
            })?;
        if wrote_snapshot {
            snapshot_sequence = sequence;
        }
        crate::announce::Announcer::of(&self.pool).outbox_written();
        *state = Some(Cached {
            aggregate: working,
            sequence,
            snapshot_sequence,
        });
        Ok(outcomes)
    }

    /// Seals the clear personal values of `events`, so that none reaches the events table
    /// (nor, through the outbox, JetStream); refuses when there is no sealer to do it.
    async fn seal_personal_data(&self, events: &mut [SerializedEvent]) -> Result<(), BatchFailure> {
        for event in events.iter_mut().filter(|e| has_clear_values(&e.payload)) {
            let Some(sealer) = &self.sealer else {
                return Err(BatchFailure::Store(format!(
                    "refusing to store {} {} with personal data in the clear: no personal data sealer",
                    A::TYPE, event.event_type
                )));
            };
            sealer
                .seal(&mut event.payload)
                .await
                .map_err(|err| BatchFailure::Store(format!("sealing personal data: {err}")))?;
            if has_clear_values(&event.payload) {
                return Err(BatchFailure::Store(format!(
                    "the sealer left personal data of {} {} in the clear",
                    A::TYPE,
                    event.event_type
                )));
            }
        }
        Ok(())
    }

    async fn stored_sequence(&self, aggregate_id: &str) -> Result<usize, BatchFailure> {
        let row: (Option<i64>,) = sqlx::query_as(
            "SELECT max(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|err| BatchFailure::Store(err.to_string()))?;
        Ok(row.0.unwrap_or(0) as usize)
    }
}

enum BatchFailure {
    /// Another process wrote to the aggregate: reload and re-run.
    Stale,
    Store(String),
}

/// Counts a batch's commands by outcome and the events it appended, per aggregate type.
fn record_outcomes<E, R>(aggregate_type: &'static str, outcomes: &[Result<Committed<E>, R>]) {
    let mut accepted = 0u64;
    let mut rejected = 0u64;
    let mut events = 0u64;
    for outcome in outcomes {
        match outcome {
            Ok(committed) => {
                accepted += 1;
                events += committed.events.len() as u64;
            }
            Err(_) => rejected += 1,
        }
    }
    metrics::counter!("ordo_commands_total", "aggregate_type" => aggregate_type, "outcome" => "accepted")
        .increment(accepted);
    metrics::counter!("ordo_commands_total", "aggregate_type" => aggregate_type, "outcome" => "rejected")
        .increment(rejected);
    metrics::counter!("ordo_events_appended_total", "aggregate_type" => aggregate_type)
        .increment(events);
}
