//! The consumer loop: a durable pull consumer feeding one [`EventHandler`], with acks,
//! naks with a growing delay, and dead letters.
//!
//! Messages are handled one at a time, in stream order, so a handler sees an aggregate's
//! events in sequence order as long as nothing is retried. A retried (nak'd) message is
//! redelivered after its delay while later messages go ahead; a handler that needs strict
//! per-aggregate order uses [`crate::applied`], whose `Gap` answer
//! ([`HandlerError::Gap`]) keeps the early event waiting on its lane: it is handled again
//! as soon as the lane applies an earlier event of its aggregate (the usual case: the
//! missing one was nak'd or, after a crash, held by the dead process), and otherwise on a
//! short timer (another process applied it). Waiting costs no delivery attempt; an event
//! still waiting after twice the ack wait is nak'd with the backoff like any retry, so that a
//! missing event that never comes ends in the dead-letter stream rather than forever in
//! memory.
//!
//! A message that keeps failing, fails permanently, or cannot even be read as an event is
//! published to the dead-letter stream (`<NS>_DLQ`, subject `<ns>.dlq.<consumer>`) with its
//! original payload and headers plus the reason, then terminated so it is not redelivered.
//!
//! A dead letter parks its aggregate for that consumer (a row in `dead_letter_parks`): the
//! aggregate's later events are dead-lettered at once, marked `Ordo-Dlq-Parked: true`,
//! without reaching the handler, so they wait in order behind the first one while other
//! aggregates flow on. [`crate::dlq`] lists dead letters and re-drives them: it unparks the
//! aggregate and republishes its dead letters to their original subjects, in order, marked
//! `Ordo-Redrive-For: <consumer>` so that the other consumers of the stream skip them.
//! Unreadable (poison) messages park nothing: without headers their aggregate is unknown.
//!
//! One process at a time runs a consumer: the one holding its lease ([`crate::lease`]);
//! the others stand by and take over within a fraction of a second when it dies, so every
//! aggregate's events reach one process, in order, and gaps are the exception (a retry,
//! a crash) rather than the rule.
//!
//! The ack wait is short (5 s by default) so that, after a crash, the events the dead
//! process held come back within seconds. Live work is not redelivered early meanwhile:
//! every message a process holds, from the moment it is handed to its lane until it is
//! acknowledged (queued there or being handled, however long the handler takes), gets a progress
//! acknowledgement (`+WPI`) every third of the ack wait, which restarts the server's clock.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer, ReplayPolicy};
use async_nats::jetstream::context::Context;
use async_nats::jetstream::{AckKind, Message};
use chrono::{SecondsFormat, Utc};
use futures::{FutureExt, StreamExt};
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::definitions;
use crate::envelope::{header, ReceivedEvent};
use crate::lease::ConsumerLeases;
use crate::subjects::Namespace;

/// Headers added to a dead letter, beside the original ones.
pub mod dlq_header {
    /// The subject the event was read from.
    pub const ORIGINAL_SUBJECT: &str = "Ordo-Dlq-Original-Subject";
    /// The stream the event was read from.
    pub const ORIGINAL_STREAM: &str = "Ordo-Dlq-Original-Stream";
    /// The event's sequence in that stream.
    pub const STREAM_SEQUENCE: &str = "Ordo-Dlq-Stream-Sequence";
    /// The durable consumer that gave up.
    pub const CONSUMER: &str = "Ordo-Dlq-Consumer";
    /// The last error.
    pub const ERROR: &str = "Ordo-Dlq-Error";
    /// How many deliveries were attempted.
    pub const ATTEMPTS: &str = "Ordo-Dlq-Attempts";
    /// When it was dead-lettered, RFC 3339.
    pub const FAILED_AT: &str = "Ordo-Dlq-Failed-At";
    /// The original `Nats-Msg-Id` (the dead letter carries its own, for de-duplication).
    pub const ORIGINAL_MSG_ID: &str = "Ordo-Dlq-Original-Msg-Id";
    /// `true` on an event that did not fail itself but waited behind an earlier dead letter
    /// of its aggregate (absent otherwise).
    pub const PARKED: &str = "Ordo-Dlq-Parked";
    /// The prefix every header above shares; a re-drive strips them.
    pub const PREFIX: &str = "Ordo-Dlq-";
}

/// How a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again later (a database hiccup, a missing earlier event): the message
    /// is nak'd with the next backoff delay, and dead-lettered once attempts run out.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// Will never succeed (invalid data, a refused business rule): dead-lettered at once.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
    /// The event arrived before an earlier event of its aggregate, which must be applied
    /// first: the lane keeps it and tries again once that one is (see the module's
    /// documentation).
    #[error("{aggregate_type} {aggregate_id} sequence {sequence} arrived before {expected}")]
    Gap {
        aggregate_type: String,
        aggregate_id: String,
        sequence: i64,
        /// The sequence that must be applied first.
        expected: i64,
    },
}

impl HandlerError {
    /// A retryable failure.
    pub fn retry(err: impl Into<anyhow::Error>) -> Self {
        Self::Retry(err.into())
    }

    /// A permanent failure.
    pub fn permanent(err: impl Into<anyhow::Error>) -> Self {
        Self::Permanent(err.into())
    }

    /// `event` arrived before sequence `expected` of its aggregate was applied.
    pub fn gap(event: &ReceivedEvent, expected: i64) -> Self {
        Self::Gap {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            expected,
        }
    }
}

impl From<sqlx::Error> for HandlerError {
    /// Database errors are transient as far as the consumer can tell.
    fn from(err: sqlx::Error) -> Self {
        Self::Retry(err.into())
    }
}

/// What a consumer does with each event.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Applies one event. Ok(()) acks it. Err(HandlerError::Retry(..)) naks it with a
    /// growing delay; Err(HandlerError::Permanent(..)) dead-letters it at once.
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError>;

    /// Called once the consumer loop has stored `event` in the dead-letter stream because
    /// of `error` (attempts exhausted or a permanent failure). Not called for events parked
    /// behind an earlier dead letter, nor for unreadable messages. A saga marks itself
    /// stuck here, so it stays inspectable until the dead letter is re-driven. The default
    /// does nothing.
    async fn on_dead_letter(&self, event: &ReceivedEvent, error: &str) {
        let _ = (event, error);
    }

    /// Whether [`EventHandler::handle_many`] does better than one event at a time: a lane
    /// then hands over, together, every event it has ready.
    fn handles_many(&self) -> bool {
        false
    }

    /// Handles several events of one lane, in stream order (an aggregate's in sequence),
    /// each with its consumer `event` span, and answers each as [`EventHandler::handle`]
    /// would. The default handles them one after the other; a handler that applies many
    /// events in one transaction (a projection) does better.
    async fn handle_many(
        &self,
        events: &[(ReceivedEvent, tracing::Span)],
    ) -> Vec<Result<(), HandlerError>> {
        let mut outcomes = Vec::with_capacity(events.len());
        for (event, span) in events {
            outcomes.push(self.handle(event).instrument(span.clone()).await);
        }
        outcomes
    }
}

/// The most events a lane hands over at once to a handler that handles many.
const LANE_BATCH: usize = 64;

/// The default ack wait: short, since held messages are kept alive by progress
/// acknowledgements (see the module's documentation).
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(5);

/// How often the messages a process holds get a progress acknowledgement: three times per
/// ack wait, so that one late or lost one does not let the server redeliver.
pub fn progress_interval(ack_wait: Duration) -> Duration {
    (ack_wait / 3).max(Duration::from_millis(50))
}

/// A durable consumer of one aggregate type's stream.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The durable name, e.g. `projection-orders`; also names its dead-letter subject.
    pub name: String,
    /// The aggregate type whose stream it reads, e.g. `order`.
    pub aggregate_type: String,
    /// Deliveries before a still-failing message is dead-lettered (default 8).
    pub max_deliver: i64,
    /// Delays between attempts: after attempt n the message waits `backoff[n-1]`, the last
    /// entry repeating (default 200 ms, 1 s, 5 s, 15 s, 30 s, 60 s).
    pub backoff: Vec<Duration>,
    /// How long the server waits for an ack (or a progress acknowledgement) before
    /// redelivering (default 5 s): how soon a crashed process's events come back.
    pub ack_wait: Duration,
    /// Deliveries in flight without an ack (default 256; 1 gives strict order even under
    /// retries, at the cost of throughput).
    pub max_ack_pending: i64,
    /// Messages per pull request (default 64).
    pub batch: usize,
    /// Events handled at once (default 16). Events of one aggregate always go to the same
    /// lane and are handled one after the other, so per-aggregate order holds; different
    /// aggregates proceed in parallel.
    pub lanes: usize,
}

impl ConsumerSpec {
    /// A spec with the default limits.
    pub fn new(name: impl Into<String>, aggregate_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            aggregate_type: aggregate_type.into(),
            max_deliver: 8,
            backoff: [200, 1_000, 5_000, 15_000, 30_000, 60_000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            ack_wait: DEFAULT_ACK_WAIT,
            max_ack_pending: 256,
            batch: 64,
            lanes: 16,
        }
    }

    /// A spec from a `nats/consumers/<NAME>.json` definition, with defaults for what the
    /// file leaves out; `None` when its filter is not one aggregate type's events.
    ///
    /// The file's `max_deliver` counts the attempts before dead-lettering; the server gets
    /// one more (see [`ConsumerSpec::consumer_config`]).
    pub fn from_definition(
        definition: &definitions::ConsumerDefinition,
        namespace: &Namespace,
    ) -> Option<Self> {
        let config = &definition.config;
        let prefix = format!("{}.events.", namespace.as_str());
        let aggregate_type = config
            .filter_subject
            .strip_prefix(&prefix)?
            .strip_suffix(".>")?
            .to_owned();
        let mut spec = Self::new(config.durable_name.clone()?, aggregate_type);
        if config.max_deliver > 0 {
            spec.max_deliver = config.max_deliver;
        }
        if !config.backoff.is_empty() {
            spec.backoff = config.backoff.clone();
        }
        if !config.ack_wait.is_zero() {
            spec.ack_wait = config.ack_wait;
        }
        if config.max_ack_pending > 0 {
            spec.max_ack_pending = config.max_ack_pending;
        }
        Some(spec)
    }

    /// The delay before the next delivery after `attempt` (1-based) failed.
    pub fn delay_after(&self, attempt: i64) -> Duration {
        let index = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }

    /// The delay actually used before retrying: the backoff, but never longer than the ack
    /// wait. An event usually fails for want of its predecessor (still held, after a crash,
    /// by the process that died), which comes back within the ack wait; waiting longer
    /// would only leave the aggregate behind.
    pub fn retry_delay(&self, attempt: i64) -> Duration {
        self.delay_after(attempt).min(self.ack_wait)
    }

    /// The server-side consumer configuration.
    ///
    /// The server's `max_deliver` is one more than ours: the loop dead-letters a message
    /// when its last attempt fails, and the spare delivery lets it dead-letter one whose
    /// last attempt never finished (the process died) instead of the server silently
    /// giving up on it.
    pub fn consumer_config(&self, namespace: &Namespace) -> pull::Config {
        pull::Config {
            durable_name: Some(self.name.clone()),
            description: Some(format!(
                "Ordo consumer {} of {} events",
                self.name, self.aggregate_type
            )),
            filter_subject: namespace.stream_filter(&self.aggregate_type),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            replay_policy: ReplayPolicy::Instant,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver.max(1) + 1,
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }
}

/// How far behind a consumer is: for metrics and health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerLag {
    /// Messages in the stream not yet delivered to the consumer.
    pub pending: u64,
    /// Messages delivered and not yet acknowledged.
    pub ack_pending: usize,
    /// Messages delivered more than once and not yet acknowledged.
    pub redelivered: usize,
}

/// Creates the durable pull consumer, or updates it to `spec`.
pub async fn ensure_consumer(
    js: &Context,
    namespace: &Namespace,
    spec: &ConsumerSpec,
) -> Result<PullConsumer, async_nats::jetstream::stream::ConsumerError> {
    js.create_consumer_on_stream(
        spec.consumer_config(namespace),
        namespace.stream_name(&spec.aggregate_type),
    )
    .await
}

/// The lag of the durable consumer `name` on `aggregate_type`'s stream.
pub async fn consumer_pending(
    js: &Context,
    namespace: &Namespace,
    name: &str,
    aggregate_type: &str,
) -> anyhow::Result<ConsumerLag> {
    let stream = js.get_stream(namespace.stream_name(aggregate_type)).await?;
    let info = stream.consumer_info(name).await?;
    Ok(ConsumerLag {
        pending: info.num_pending,
        ack_pending: info.num_ack_pending,
        redelivered: info.num_redelivered,
    })
}

/// How long one pull request waits for messages; bounds how stale the loop can be
/// after a server restart.
const FETCH_EXPIRES: Duration = Duration::from_secs(5);

/// Runs the consumer until `shutdown` is cancelled.
///
/// Ensures the streams and the consumer, then pulls batches and hands each message to
/// `handler` on the lane of its aggregate (see [`ConsumerSpec::lanes`]). `pool` holds
/// `dead_letter_parks`: the loop parks an
/// aggregate when it dead-letters one of its events and looks the park up before handling
/// each event. NATS errors (server restarts, a deleted consumer) are logged and retried
/// with a growing pause. On shutdown it stops pulling, finishes the message in hand and its
/// ack, naks the messages already fetched so another instance takes them at once, and
/// returns.
pub async fn run_consumer(
    js: Context,
    pool: PgPool,
    namespace: &Namespace,
    spec: ConsumerSpec,
    handler: Arc<dyn EventHandler>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let worker = Arc::new(Worker {
        js,
        pool,
        namespace: namespace.clone(),
        spec,
        handler,
    });
    let lanes = Lanes::start(&worker);
    let leases = ConsumerLeases::of(&worker.pool);
    let active = metrics::gauge!("ordo_consumer_active", "consumer" => worker.spec.name.clone());
    let mut pause = Duration::ZERO;
    'connect: while !shutdown.is_cancelled() {
        if !pause.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        pause = (pause * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));

        // One process at a time runs the consumer, so that each aggregate's events reach
        // one process, in order. A run that fails gives the lease back (dropped at the end
        // of this round) and pauses, so another process can take over meanwhile.
        active.set(0.0);
        let mut lease = leases.claim(&worker.namespace, &worker.spec.name);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = lease.acquired() => {}
        }
        active.set(1.0);

        let consumer = match worker.setup().await {
            Ok(consumer) => consumer,
            Err(err) => {
                warn!(consumer = %worker.spec.name, error = %err, "cannot set up consumer; retrying");
                continue;
            }
        };
        info!(consumer = %worker.spec.name, stream = %worker.namespace.stream_name(&worker.spec.aggregate_type), "consumer running");

        while !shutdown.is_cancelled() {
            let request = consumer
                .batch()
                .max_messages(worker.spec.batch.max(1))
                .expires(FETCH_EXPIRES)
                .messages();
            let mut batch = tokio::select! {
                _ = shutdown.cancelled() => break 'connect,
                _ = lease.lost() => continue 'connect,
                batch = request => match batch {
                    Ok(batch) => batch,
                    Err(err) => {
                        warn!(consumer = %worker.spec.name, error = %err, "pull request failed; reconnecting");
                        continue 'connect;
                    }
                },
            };
            let mut received = false;
            loop {
                let next = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => {
                        worker.release_fetched(&mut batch).await;
                        break 'connect;
                    }
                    _ = lease.lost() => {
                        warn!(consumer = %worker.spec.name, "lost the consumer's lease; handing back what was fetched");
                        worker.release_fetched(&mut batch).await;
                        continue 'connect;
                    }
                    next = batch.next() => next,
                };
                match next {
                    None => break,
                    Some(Ok(message)) => {
                        // Not raced against shutdown: a message handed to a lane is
                        // finished before the loop returns.
                        lanes.dispatch(message).await;
                        pause = Duration::ZERO;
                        received = true;
                    }
                    Some(Err(err)) => {
                        // 409s (consumer deleted, max ack pending...) and the like: pause
                        // and set up again, which also recreates a deleted consumer.
                        warn!(consumer = %worker.spec.name, error = %err, "pull failed; reconnecting");
                        continue 'connect;
                    }
                }
            }
            // A pull request sent after its consumer (or stream) was deleted reaches no
            // one and simply runs out, like an idle one: only the server's 409 to requests
            // pending at the deletion says so. So an empty batch checks that the consumer
            // still exists, and sets it up again when it does not.
            if !received {
                if let Err(err) = consumer.get_info().await {
                    warn!(consumer = %worker.spec.name, error = %err, "consumer gone; setting it up again");
                    continue 'connect;
                }
            }
        }
    }
    active.set(0.0);
    lanes.finish().await;
    // Acks are fire-and-forget publishes: make sure the last ones left the process.
    worker.js.client().flush().await.ok();
    info!(consumer = %worker.spec.name, "consumer stopped");
    Ok(())
}

/// The lanes of a consumer: one task per lane, each handling its messages in order, and
/// the heartbeat that keeps every message they hold from being redelivered meanwhile.
struct Lanes {
    /// Bounded: a full lane holds the fetch loop back, so that no pull request waits while
    /// the process cannot take more. A message is held (kept alive) from the moment it is
    /// handed over, the wait for room included.
    senders: Vec<tokio::sync::mpsc::Sender<Message>>,
    tasks: tokio::task::JoinSet<()>,
    held: Arc<Held>,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// The reply subjects of the messages this process holds: fetched and not yet
/// acknowledged, nak'd or terminated.
#[derive(Default)]
struct Held(std::sync::Mutex<std::collections::HashSet<String>>);

impl Held {
    fn hold(&self, message: &Message) {
        if let Some(reply) = &message.reply {
            self.0.lock().expect("held lock").insert(reply.to_string());
        }
    }

    fn release(&self, message: &Message) {
        if let Some(reply) = &message.reply {
            self.0.lock().expect("held lock").remove(reply.as_str());
        }
    }

    fn replies(&self) -> Vec<String> {
        self.0.lock().expect("held lock").iter().cloned().collect()
    }
}

impl Lanes {
    fn start(worker: &Arc<Worker>) -> Self {
        let held = Arc::new(Held::default());
        let mut senders = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..worker.spec.lanes.max(1) {
            let (sender, mut receiver) = tokio::sync::mpsc::channel::<Message>(32);
            let worker = worker.clone();
            let held = held.clone();
            tasks.spawn(async move {
                let mut waiting = Waiting::default();
                loop {
                    let next = match waiting.next_due() {
                        Some(due) => tokio::select! {
                            biased;
                            message = receiver.recv() => Some(message),
                            _ = tokio::time::sleep_until(due) => None,
                        },
                        None => Some(receiver.recv().await),
                    };
                    match next {
                        Some(Some(message)) if worker.handler.handles_many() => {
                            let mut ready = vec![message];
                            while ready.len() < LANE_BATCH {
                                match receiver.try_recv() {
                                    Ok(message) => ready.push(message),
                                    Err(_) => break,
                                }
                            }
                            worker.handle_many_on_lane(ready, &mut waiting, &held).await;
                        }
                        Some(Some(message)) => {
                            worker.handle_on_lane(message, &mut waiting, &held).await;
                        }
                        // The loop is stopping: what still waits goes back to the server
                        // now, for whichever process takes it next.
                        Some(None) => {
                            for message in waiting.drain() {
                                message.ack_with(AckKind::Nak(None)).await.ok();
                                held.release(&message);
                            }
                            break;
                        }
                        None => worker.retry_due(&mut waiting, &held).await,
                    }
                }
            });
            senders.push(sender);
        }
        let heartbeat = tokio::spawn(keep_alive(
            worker.js.client(),
            held.clone(),
            progress_interval(worker.spec.ack_wait),
        ));
        Self {
            senders,
            tasks,
            held,
            heartbeat,
        }
    }

    /// Queues a message on its aggregate's lane (waiting while that lane is full); it is
    /// held (kept alive) from now on.
    async fn dispatch(&self, message: Message) {
        let lane = lane_of(&message.subject, self.senders.len());
        self.held.hold(&message);
        if let Err(returned) = self.senders[lane].send(message).await {
            // The lane is gone only when its task panicked; let JetStream redeliver.
            self.held.release(&returned.0);
            returned.0.ack_with(AckKind::Nak(None)).await.ok();
        }
    }

    /// Lets every lane finish what it was handed (still kept alive), then stops them.
    async fn finish(mut self) {
        self.senders.clear();
        while self.tasks.join_next().await.is_some() {}
        self.heartbeat.abort();
    }
}

/// Sends a progress acknowledgement for every held message each `every`, until aborted.
async fn keep_alive(client: async_nats::Client, held: Arc<Held>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        for reply in held.replies() {
            // A message acknowledged meanwhile ignores it.
            if let Err(err) = client.publish(reply, "+WPI".into()).await {
                debug!(error = %err, "progress acknowledgement not sent");
            }
        }
    }
}

/// The aggregate of an event: its subject without the event type.
fn aggregate_of(subject: &str) -> &str {
    subject.rsplit_once('.').map_or(subject, |(head, _)| head)
}

/// The lane of an event: the same for every event of its aggregate.
fn lane_of(subject: &str, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let aggregate = aggregate_of(subject);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    aggregate.hash(&mut hasher);
    (hasher.finish() % lanes.max(1) as u64) as usize
}

/// What [`Worker::process`] did with a message.
enum Processed {
    /// Acknowledged, nak'd or dead-lettered: the message is off the lane's hands.
    Finished,
    /// Its aggregate's earlier event comes first: the lane keeps it and tries again.
    Waiting,
}

/// The first pause before a waiting event is tried again when nothing on its lane
/// applied its aggregate meanwhile (another process may have); it doubles up to
/// [`WAIT_RETRY_MAX`].
const WAIT_RETRY_FIRST: Duration = Duration::from_millis(20);
const WAIT_RETRY_MAX: Duration = Duration::from_millis(100);

/// The events a lane keeps because an earlier event of their aggregate comes first.
#[derive(Default)]
struct Waiting {
    /// Per aggregate (its subject prefix), in arrival order.
    by_aggregate: std::collections::HashMap<String, Vec<WaitingEvent>>,
}

struct WaitingEvent {
    message: Message,
    /// When it started waiting: after twice the ack wait it is nak'd like any retry.
    since: tokio::time::Instant,
    /// When to try it again if nothing of its aggregate is applied before.
    due: tokio::time::Instant,
    pause: Duration,
}

impl Waiting {
    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.by_aggregate.values().flatten().map(|w| w.due).min()
    }

    fn keep(&mut self, message: Message, since: Option<tokio::time::Instant>, pause: Duration) {
        let now = tokio::time::Instant::now();
        let pause = pause.clamp(WAIT_RETRY_FIRST, WAIT_RETRY_MAX);
        self.by_aggregate
            .entry(aggregate_of(&message.subject).to_owned())
            .or_default()
            .push(WaitingEvent {
                message,
                since: since.unwrap_or(now),
                due: now + pause,
                pause: pause * 2,
            });
    }

    /// Takes the events of `aggregate`, oldest stream position first.
    fn take(&mut self, aggregate: &str) -> Vec<WaitingEvent> {
        let mut taken = self.by_aggregate.remove(aggregate).unwrap_or_default();
        taken.sort_by_key(|w| w.message.info().map(|i| i.stream_sequence).unwrap_or(0));
        taken
    }

    /// Takes every aggregate with an event due by now.
    fn take_due(&mut self) -> Vec<String> {
        let now = tokio::time::Instant::now();
        self.by_aggregate
            .iter()
            .filter(|(_, events)| events.iter().any(|w| w.due <= now))
            .map(|(aggregate, _)| aggregate.clone())
            .collect()
    }

    fn drain(&mut self) -> Vec<Message> {
        self.by_aggregate
            .drain()
            .flat_map(|(_, events)| events.into_iter().map(|w| w.message))
            .collect()
    }
}

struct Worker {
    js: Context,
    pool: PgPool,
    namespace: Namespace,
    spec: ConsumerSpec,
    handler: Arc<dyn EventHandler>,
}

impl Worker {
    async fn setup(&self) -> anyhow::Result<PullConsumer> {
        for config in [
            definitions::stream_config_for(&self.namespace, &self.spec.aggregate_type)?,
            definitions::stream_configs(&self.namespace)?
                .into_iter()
                .find(|c| c.name == self.namespace.dlq_stream())
                .ok_or_else(|| anyhow::anyhow!("no dead-letter stream definition"))?,
        ] {
            definitions::ensure_stream(&self.js, &config).await?;
        }
        Ok(ensure_consumer(&self.js, &self.namespace, &self.spec).await?)
    }

    /// Handles a message handed to the lane; if it applied, tries again what waited for
    /// it (and for what that applied, and so on).
    async fn handle_on_lane(&self, message: Message, waiting: &mut Waiting, held: &Held) {
        match self.process(&message, true).await {
            Processed::Waiting => waiting.keep(message, None, WAIT_RETRY_FIRST),
            Processed::Finished => {
                held.release(&message);
                self.retry_aggregate(aggregate_of(&message.subject), waiting, held)
                    .await;
            }
        }
    }

    /// Handles the messages a lane had ready together, through the handler's
    /// [`EventHandler::handle_many`]; then tries again what waited for the aggregates that
    /// moved. An aggregate with any message out of the ordinary (re-driven, unreadable, out
    /// of attempts, or parked behind a dead letter) has all of its messages handled one at
    /// a time instead, in order, as [`Worker::handle_on_lane`] does.
    async fn handle_many_on_lane(
        &self,
        messages: Vec<Message>,
        waiting: &mut Waiting,
        held: &Held,
    ) {
        if messages.len() == 1 {
            for message in messages {
                self.handle_on_lane(message, waiting, held).await;
            }
            return;
        }
        let mut alone_aggregates = std::collections::HashSet::new();
        let mut decoded = Vec::with_capacity(messages.len());
        for message in messages {
            let plain = message
                .headers
                .as_ref()
                .and_then(|h| h.get(header::REDRIVE_FOR))
                .is_none();
            match ReceivedEvent::from_message(&message) {
                Ok(event) if plain && event.delivered <= self.spec.max_deliver => {
                    decoded.push((message, Some(event)))
                }
                _ => {
                    alone_aggregates.insert(aggregate_of(&message.subject).to_owned());
                    decoded.push((message, None));
                }
            }
        }
        match self
            .parked_among(decoded.iter().filter_map(|(_, event)| event.as_ref()))
            .await
        {
            Ok(parked) => {
                for (message, event) in &decoded {
                    if let Some(event) = event {
                        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
                        if parked.contains(&key) {
                            alone_aggregates.insert(aggregate_of(&message.subject).to_owned());
                        }
                    }
                }
            }
            Err(err) => {
                debug!(error = %err, "cannot read the parks at once; handling the events one by one");
                alone_aggregates.extend(
                    decoded
                        .iter()
                        .map(|(m, _)| aggregate_of(&m.subject).to_owned()),
                );
            }
        }
        let mut together = Vec::new();
        let mut alone = Vec::new();
        for (message, event) in decoded {
            match event {
                Some(event) if !alone_aggregates.contains(aggregate_of(&message.subject)) => {
                    let span = self.event_span(&message, &event);
                    together.push((message, event, span));
                }
                _ => alone.push(message),
            }
        }
        if !together.is_empty() {
            let events: Vec<(ReceivedEvent, tracing::Span)> = together
                .iter()
                .map(|(_, event, span)| (event.clone(), span.clone()))
                .collect();
            let outcomes = AssertUnwindSafe(self.handler.handle_many(&events))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let message = panic_message(panic.as_ref());
                    events
                        .iter()
                        .map(|_| {
                            Err(HandlerError::Retry(anyhow::anyhow!(
                                "handler panicked: {message}"
                            )))
                        })
                        .collect()
                });
            let mut moved = Vec::new();
            for ((message, event, span), outcome) in together.into_iter().zip(outcomes) {
                match self
                    .answer(&message, &event, outcome, true)
                    .instrument(span)
                    .await
                {
                    Processed::Waiting => waiting.keep(message, None, WAIT_RETRY_FIRST),
                    Processed::Finished => {
                        held.release(&message);
                        let aggregate = aggregate_of(&message.subject).to_owned();
                        if !moved.contains(&aggregate) {
                            moved.push(aggregate);
                        }
                    }
                }
            }
            for aggregate in moved {
                self.retry_aggregate(&aggregate, waiting, held).await;
            }
        }
        for message in alone {
            self.handle_on_lane(message, waiting, held).await;
        }
    }

    /// The aggregates (type and id) among `events` that are parked for this consumer, in
    /// one query.
    async fn parked_among(
        &self,
        events: impl Iterator<Item = &ReceivedEvent>,
    ) -> sqlx::Result<std::collections::HashSet<(String, String)>> {
        let (mut types, mut ids) = (Vec::new(), Vec::new());
        for event in events {
            types.push(event.aggregate_type.clone());
            ids.push(event.aggregate_id.clone());
        }
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let parked: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT p.aggregate_type, p.aggregate_id FROM dead_letter_parks p \
             JOIN unnest($2::text[], $3::text[]) AS e(aggregate_type, aggregate_id) \
               ON p.aggregate_type = e.aggregate_type AND p.aggregate_id = e.aggregate_id \
             WHERE p.consumer = $1",
        )
        .bind(&self.spec.name)
        .bind(&types)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(parked.into_iter().collect())
    }

    /// Tries the waiting events of `aggregate` again, in stream order, for as long as
    /// each try lets the next one through.
    async fn retry_aggregate(&self, aggregate: &str, waiting: &mut Waiting, held: &Held) {
        loop {
            let events = waiting.take(aggregate);
            if events.is_empty() {
                return;
            }
            let mut progressed = false;
            for event in events {
                let may_wait = event.since.elapsed() < self.spec.ack_wait * 2;
                match self.process(&event.message, may_wait).await {
                    Processed::Waiting => {
                        waiting.keep(event.message, Some(event.since), event.pause)
                    }
                    Processed::Finished => {
                        held.release(&event.message);
                        progressed = true;
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Tries again the aggregates whose waiting events are due.
    async fn retry_due(&self, waiting: &mut Waiting, held: &Held) {
        for aggregate in waiting.take_due() {
            self.retry_aggregate(&aggregate, waiting, held).await;
        }
    }

    /// Naks what was fetched but not handled, so it is redelivered now rather than after
    /// `ack_wait`.
    async fn release_fetched(&self, batch: &mut pull::Batch) {
        while let Some(Some(Ok(message))) = batch.next().now_or_never() {
            message.ack_with(AckKind::Nak(None)).await.ok();
        }
    }

    /// Handles `message` and acknowledges, naks or dead-letters it; or, when the handler
    /// answers a gap and `may_wait`, leaves it unanswered for the lane to try again.
    async fn process(&self, message: &Message, may_wait: bool) -> Processed {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let redrive_for = message
            .headers
            .as_ref()
            .and_then(|h| h.get(header::REDRIVE_FOR))
            .map(|v| v.as_str());
        if let Some(target) = redrive_for.filter(|target| *target != self.spec.name) {
            // Re-driven for another consumer: this one handled the event the first time,
            // and its claim would skip it anyway; checked before the park so that a
            // consumer parked on the same aggregate does not dead-letter it again.
            debug!(consumer = %self.spec.name, subject = %message.subject, %target, "skipping an event re-driven for another consumer");
            if let Err(err) = message.ack().await {
                warn!(error = %err, "ack failed; the event will be redelivered");
            }
            return Processed::Finished;
        }
        let event = match ReceivedEvent::from_message(message) {
            Ok(event) => event,
            Err(err) => {
                warn!(consumer = %self.spec.name, subject = %message.subject, error = %err, "poison message");
                self.dead_letter(
                    message,
                    &format!("poison message: {err}"),
                    delivered,
                    Letter::Poison,
                )
                .await;
                return Processed::Finished;
            }
        };
        let span = self.event_span(message, &event);
        async {
            match self.parked_behind(&event).await {
                Ok(None) => {}
                Ok(Some((tx, behind))) => {
                    let reason = format!("parked behind dead letter {behind}");
                    self.dead_letter(message, &reason, event.delivered, Letter::Parked)
                        .await;
                    // Only now may a re-drive's unpark proceed (see `parked_behind`).
                    tx.commit().await.ok();
                    return Processed::Finished;
                }
                Err(err) => {
                    // Handling it could overtake a dead letter of its aggregate: wait.
                    let delay = self.spec.retry_delay(event.delivered);
                    warn!(error = %err, ?delay, "cannot read the parks; retrying the event later");
                    message.ack_with(AckKind::Nak(Some(delay))).await.ok();
                    return Processed::Finished;
                }
            }
            if event.delivered > self.spec.max_deliver {
                let reason = format!(
                    "attempts exhausted: delivered {} times, the last attempt did not finish",
                    event.delivered
                );
                self.give_up(message, &event, &reason).await;
                return Processed::Finished;
            }
            // A panicking handler must not take the whole consumer down with it.
            let outcome = AssertUnwindSafe(self.handler.handle(&event))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    Err(HandlerError::Retry(anyhow::anyhow!(
                        "handler panicked: {}",
                        panic_message(panic.as_ref())
                    )))
                });
            self.answer(message, &event, outcome, may_wait).await
        }
        .instrument(span)
        .await
    }

    /// The consumer's `event` span of `event`, continuing the trace of the relay's publish.
    fn event_span(&self, message: &Message, event: &ReceivedEvent) -> tracing::Span {
        let span = info_span!(
            "event",
            consumer = %self.spec.name,
            subject = %event.subject,
            event_id = %event.event_id,
            request_id = %event.correlation_id,
            causation_id = %event.causation_id,
            delivered = event.delivered,
        );
        crate::trace::follow(
            &span,
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(header::TRACEPARENT))
                .map(|v| v.as_str()),
        );
        span
    }

    /// Acknowledges, naks or dead-letters `message` after the handler answered `outcome`;
    /// or, for a gap when `may_wait`, leaves it for the lane to try again.
    async fn answer(
        &self,
        message: &Message,
        event: &ReceivedEvent,
        outcome: Result<(), HandlerError>,
        may_wait: bool,
    ) -> Processed {
        if outcome.is_err() {
            metrics::counter!("ordo_consumer_events_failed_total", "consumer" => self.spec.name.clone())
                .increment(1);
        }
        match outcome {
            Ok(()) => {
                metrics::counter!("ordo_consumer_events_handled_total", "consumer" => self.spec.name.clone()).increment(1);
                if let Err(err) = message.ack().await {
                    warn!(error = %err, "ack failed; the event will be redelivered");
                }
            }
            Err(gap @ HandlerError::Gap { .. }) if may_wait => {
                debug!(error = %gap, "an earlier event comes first; waiting on the lane");
                return Processed::Waiting;
            }
            Err(err @ (HandlerError::Retry(_) | HandlerError::Gap { .. }))
                if event.delivered >= self.spec.max_deliver =>
            {
                self.give_up(message, event, &format!("{err:#}")).await;
            }
            Err(err @ (HandlerError::Retry(_) | HandlerError::Gap { .. })) => {
                let delay = self.spec.retry_delay(event.delivered);
                debug!(error = %format!("{err:#}"), ?delay, "handler failed; retrying later");
                if let Err(err) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    warn!(error = %err, "nak failed; the event will be redelivered after ack_wait");
                }
            }
            Err(HandlerError::Permanent(err)) => {
                self.give_up(message, event, &format!("{err:#}")).await;
            }
        }
        Processed::Finished
    }

    /// The DLQ sequence `event`'s aggregate is parked behind for this consumer, if any,
    /// with a transaction holding the park row `FOR SHARE`.
    ///
    /// The caller keeps the transaction open until the parked dead letter is stored. A
    /// re-drive deletes the park row before it reads the dead-letter stream, so its DELETE
    /// waits for that lock: every parked dead letter written under the park is in the
    /// stream by the time the re-drive reads it, and none can slip in after.
    async fn parked_behind(
        &self,
        event: &ReceivedEvent,
    ) -> sqlx::Result<Option<(Transaction<'static, Postgres>, i64)>> {
        const PARK: &str = "SELECT dlq_sequence FROM dead_letter_parks \
                            WHERE consumer = $1 AND aggregate_type = $2 AND aggregate_id = $3";
        // Parks are rare: a plain lookup first, so unparked events cost no transaction.
        let found: Option<i64> = sqlx::query_scalar(PARK)
            .bind(&self.spec.name)
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .fetch_optional(&self.pool)
            .await?;
        if found.is_none() {
            return Ok(None);
        }
        let mut tx = self.pool.begin().await?;
        let locked: Option<i64> = sqlx::query_scalar(&format!("{PARK} FOR SHARE"))
            .bind(&self.spec.name)
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(locked.map(|behind| (tx, behind)))
    }

    /// Dead-letters an event that failed for good, parking its aggregate, then tells the
    /// handler.
    async fn give_up(&self, message: &Message, event: &ReceivedEvent, error: &str) {
        if self
            .dead_letter(message, error, event.delivered, Letter::Failed(event))
            .await
        {
            // The hook must not take the consumer down either.
            if let Err(panic) = AssertUnwindSafe(self.handler.on_dead_letter(event, error))
                .catch_unwind()
                .await
            {
                warn!(
                    panic = %panic_message(panic.as_ref()),
                    "on_dead_letter panicked"
                );
            }
        }
    }

    /// Publishes `message` to the dead-letter stream, waits for the stream's ack, parks the
    /// aggregate of a [`Letter::Failed`] event, then terminates the delivery. If the dead
    /// letter cannot be stored (or the aggregate parked) the message is nak'd instead: it
    /// must not vanish, nor its aggregate's later events overtake it. Returns whether the
    /// message was dead-lettered.
    async fn dead_letter(
        &self,
        message: &Message,
        error: &str,
        attempts: i64,
        letter: Letter<'_>,
    ) -> bool {
        let (stream, stream_sequence) = match message.info() {
            Ok(info) => (info.stream.to_owned(), info.stream_sequence),
            Err(_) => (String::new(), 0),
        };
        let mut headers = message.headers.clone().unwrap_or_default();
        if let Some(original) = headers.get(header::MSG_ID).cloned() {
            headers.insert(dlq_header::ORIGINAL_MSG_ID, original);
        }
        // Its own id, so a dead letter written twice (a crash before the Term, a failed
        // park) is stored once; the duplicate's ack carries the first one's sequence.
        headers.insert(
            header::MSG_ID,
            format!("dlq:{}:{stream}:{stream_sequence}", self.spec.name),
        );
        headers.insert(dlq_header::ORIGINAL_SUBJECT, message.subject.as_str());
        headers.insert(dlq_header::ORIGINAL_STREAM, stream.as_str());
        headers.insert(dlq_header::STREAM_SEQUENCE, stream_sequence.to_string());
        headers.insert(dlq_header::CONSUMER, self.spec.name.as_str());
        // Header values are one line.
        headers.insert(dlq_header::ERROR, error.replace(['\r', '\n'], " "));
        headers.insert(dlq_header::ATTEMPTS, attempts.to_string());
        headers.insert(
            dlq_header::FAILED_AT,
            Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        if matches!(letter, Letter::Parked) {
            headers.insert(dlq_header::PARKED, "true");
        }

        let subject = self.namespace.dlq_subject(&self.spec.name);
        let stored = match self
            .js
            .publish_with_headers(subject.clone(), headers, message.payload.clone())
            .await
        {
            Ok(ack) => ack.await.map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        let dlq_sequence = match stored {
            Ok(ack) => ack.sequence,
            Err(err) => {
                warn!(error = %err, "cannot store the dead letter; retrying the message later");
                self.retry_later(message, attempts).await;
                return false;
            }
        };
        if let Letter::Failed(event) = letter {
            if let Err(err) = self.park(event, dlq_sequence, error).await {
                warn!(error = %err, dlq_sequence, "cannot park the aggregate; retrying the message later");
                self.retry_later(message, attempts).await;
                return false;
            }
        }
        warn!(consumer = %self.spec.name, %subject, dlq_sequence, error, attempts, "dead-lettered");
        metrics::counter!("ordo_consumer_dead_lettered_total", "consumer" => self.spec.name.clone())
            .increment(1);
        if let Err(err) = message.ack_with(AckKind::Term).await {
            warn!(error = %err, "term failed; the dead letter may be written again");
        }
        true
    }

    /// Parks `event`'s aggregate behind the dead letter `dlq_sequence`; a park that already
    /// exists keeps its first dead letter.
    async fn park(
        &self,
        event: &ReceivedEvent,
        dlq_sequence: u64,
        error: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO dead_letter_parks \
             (consumer, aggregate_type, aggregate_id, dlq_sequence, error) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (consumer, aggregate_type, aggregate_id) DO NOTHING",
        )
        .bind(&self.spec.name)
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(i64::try_from(dlq_sequence).unwrap_or(i64::MAX))
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn retry_later(&self, message: &Message, attempts: i64) {
        let delay = self.spec.retry_delay(attempts);
        message.ack_with(AckKind::Nak(Some(delay))).await.ok();
    }
}

/// What kind of dead letter is being written.
enum Letter<'a> {
    /// Unreadable: its aggregate is unknown, so nothing is parked.
    Poison,
    /// The event failed for good: its aggregate is parked behind it.
    Failed(&'a ReceivedEvent),
    /// The event waited behind an earlier dead letter of its aggregate.
    Parked,
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_delay_grows_then_stays_at_the_last_step() {
        let spec = ConsumerSpec::new("c", "order");
        assert_eq!(spec.delay_after(1), Duration::from_millis(200));
        assert_eq!(spec.delay_after(2), Duration::from_secs(1));
        assert_eq!(spec.delay_after(6), Duration::from_secs(60));
        assert_eq!(spec.delay_after(50), Duration::from_secs(60));
        assert_eq!(spec.delay_after(0), Duration::from_millis(200));
        assert_eq!(
            spec.retry_delay(6),
            Duration::from_secs(5),
            "capped by the ack wait"
        );
        assert_eq!(spec.retry_delay(2), Duration::from_secs(1));
        let empty = ConsumerSpec {
            backoff: vec![],
            ..spec
        };
        assert_eq!(empty.delay_after(3), Duration::from_secs(1));
    }

    #[test]
    fn events_of_one_aggregate_share_a_lane() {
        let lanes = 16;
        let placed = lane_of("ordo.events.order.o-1.OrderPlaced", lanes);
        assert_eq!(
            placed,
            lane_of("ordo.events.order.o-1.OrderConfirmed", lanes)
        );
        assert_eq!(placed, lane_of("ordo.events.order.o-1.OrderPaid", lanes));
        let spread: std::collections::HashSet<usize> = (0..200)
            .map(|i| lane_of(&format!("ordo.events.order.o-{i}.OrderPlaced"), lanes))
            .collect();
        assert!(
            spread.len() > lanes / 2,
            "aggregates spread over the lanes: {spread:?}"
        );
        assert_eq!(lane_of("anything", 1), 0);
    }

    #[test]
    fn server_config_filters_the_type_and_keeps_a_spare_delivery() {
        let ns = Namespace::default();
        let config = ConsumerSpec::new("projection-orders", "order").consumer_config(&ns);
        assert_eq!(config.durable_name.as_deref(), Some("projection-orders"));
        assert_eq!(config.filter_subject, "ordo.events.order.>");
        assert_eq!(config.ack_policy, AckPolicy::Explicit);
        assert_eq!(config.deliver_policy, DeliverPolicy::All);
        assert_eq!(config.max_deliver, 9);
        assert_eq!(config.ack_wait, Duration::from_secs(5));
    }

    #[test]
    fn a_spec_can_come_from_a_definition_file() {
        let ns = Namespace::default();
        let def = definitions::parse_consumer(
            "saga-checkout.json",
            r#"{"durable_name": "saga-checkout", "filter_subject": "ordo.events.payment.>",
                "max_deliver": 5, "ack_wait": 10000000000}"#,
            &ns,
        )
        .unwrap();
        let spec = ConsumerSpec::from_definition(&def, &ns).unwrap();
        assert_eq!(spec.name, "saga-checkout");
        assert_eq!(spec.aggregate_type, "payment");
        assert_eq!(spec.max_deliver, 5);
        assert_eq!(spec.ack_wait, Duration::from_secs(10));
        assert_eq!(spec.backoff.len(), 6);
    }
}
