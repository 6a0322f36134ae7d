//! The outbox relay: publishes every committed event to JetStream, in order, exactly once
//! as far as consumers can tell.
//!
//! A trigger puts each new event's position into `outbox` in the event's own transaction,
//! so the outbox holds exactly the committed, unpublished events (no dual write). The relay
//! reads the oldest rows, publishes them with `Nats-Msg-Id = type:id:sequence`, and deletes
//! the rows whose publish JetStream acknowledged. A crash between the publish and the delete
//! re-sends those events on the next round; JetStream's duplicate window (2 minutes) drops
//! the copies, and consumers are idempotent for anything older.
//!
//! Order per aggregate needs a single publisher: two relays working on disjoint rows (as
//! `SKIP LOCKED` would let them) could publish event 2 of an aggregate before event 1. So
//! [`Relay::run`] first takes a session-level Postgres advisory lock on a dedicated
//! connection; other relays stand by and try again every second. If the leader dies, its
//! connection closes, Postgres releases the lock and a stand-by takes over.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::{Context, PublishErrorKind};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::definitions;
use crate::envelope::{header, EventRow, OutgoingEvent};
use crate::subjects::Namespace;

/// The advisory lock key only the leading relay holds ("ordorela" in ASCII). Advisory
/// locks are per database, so each Ordo database has its own leader.
pub const RELAY_LOCK_KEY: i64 = 0x6f72_646f_7265_6c61;

/// How many outbox rows one round publishes.
pub const BATCH_SIZE: usize = 500;

/// The Postgres channel on which writers announce new outbox rows after their commit.
pub use ordo_store::announce::OUTBOX_CHANNEL;

/// How often the relay looks at the outbox when no notification arrives (a notification can
/// be lost while the listening connection reconnects).
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How often a stand-by relay tries to become the leader.
const STANDBY_RETRY: Duration = Duration::from_secs(1);

/// Why a relay round failed. Whatever was acknowledged before the failure is committed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Postgres failed; nothing of this round was removed from the outbox.
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    /// A publish failed; the `relayed` events acknowledged before it were committed, the
    /// rest stays in the outbox for the next round.
    #[error("publishing {subject} failed after {relayed} events were relayed: {source}")]
    Publish {
        /// Events acknowledged and removed from the outbox in this round.
        relayed: usize,
        /// The subject whose publish failed.
        subject: String,
        /// The publish error.
        #[source]
        source: async_nats::jetstream::context::PublishError,
    },
}

/// The outbox relay. Cheap to clone; clones share their counters.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    jetstream: Context,
    namespace: Namespace,
    batch_size: usize,
    published: Arc<AtomicU64>,
    leader: Arc<AtomicBool>,
}

impl Relay {
    /// A relay that publishes `pool`'s outbox into `namespace`'s streams.
    pub fn new(pool: PgPool, jetstream: Context, namespace: Namespace) -> Self {
        Self {
            pool,
            jetstream,
            namespace,
            batch_size: BATCH_SIZE,
            published: Arc::new(AtomicU64::new(0)),
            leader: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Changes how many rows [`Relay::run`] publishes per round (default [`BATCH_SIZE`]).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How many events this relay (and its clones) had acknowledged by JetStream and
    /// removed from the outbox; for metrics and tests.
    pub fn published_count(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Whether this relay (or a clone) holds the leader lock right now: only the leader
    /// publishes; the others stand by.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Publishes up to `limit` of the oldest outbox rows and removes those JetStream
    /// acknowledged, in one transaction. Returns how many were relayed.
    ///
    /// Publishes are pipelined: all are sent, then the acknowledgements are awaited in
    /// order. At the first failure the round stops: the acknowledged prefix is committed
    /// and the rest stays for the next round (their `Nats-Msg-Id` absorbs any re-send).
    ///
    /// This does not take the leader lock: call it from one task at a time, or use
    /// [`Relay::run`].
    pub async fn relay_batch(&self, limit: usize) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT o.position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, \
                    e.event_version, e.payload, e.metadata, e.recorded_at \
             FROM outbox o JOIN events e USING (position) \
             ORDER BY o.position \
             LIMIT $1 \
             FOR UPDATE OF o SKIP LOCKED",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }

        let mut pending = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            let mut event = OutgoingEvent::from_row(&self.namespace, row);
            let span = info_span!(
                "relay",
                subject = %event.subject,
                request_id = event.headers.get(header::CORRELATION_ID).map(|v| v.as_str()).unwrap_or(""),
            );
            // Consumers continue the trace from this publish.
            crate::trace::follow(
                &span,
                event.headers.get(header::TRACEPARENT).map(|v| v.as_str()),
            );
            if let Some(tp) = crate::trace::traceparent_of(&span) {
                event.headers.insert(header::TRACEPARENT, tp);
            }
            match self
                .jetstream
                .publish_with_headers(event.subject.clone(), event.headers, event.payload)
                .instrument(span)
                .await
            {
                Ok(ack) => pending.push((event.position, event.subject, ack)),
                Err(source) => {
                    failure = Some((event.subject, source));
                    break;
                }
            }
        }

        let mut acknowledged = Vec::with_capacity(pending.len());
        for (position, subject, ack) in pending {
            match ack.await {
                Ok(ack) => {
                    if ack.duplicate {
                        debug!(%subject, "already in the stream (re-send after a crash)");
                    }
                    acknowledged.push(position);
                }
                Err(source) => {
                    // Later acks may have arrived, but deleting past a gap would let a
                    // restart skip the failed event; they are re-sent and de-duplicated.
                    failure = Some((subject, source));
                    break;
                }
            }
        }

        if !acknowledged.is_empty() {
            sqlx::query("DELETE FROM outbox WHERE position = ANY($1)")
                .bind(&acknowledged)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let relayed = acknowledged.len();
        self.published.fetch_add(relayed as u64, Ordering::Relaxed);
        metrics::counter!("ordo_relay_events_published_total").increment(relayed as u64);

        match failure {
            None => Ok(relayed),
            Some((subject, source)) => {
                if source.kind() == PublishErrorKind::StreamNotFound {
                    // An aggregate type without a stream yet: create it, so the next round
                    // succeeds instead of blocking the whole outbox.
                    self.ensure_stream_for_subject(&subject).await;
                }
                Err(RelayError::Publish {
                    relayed,
                    subject,
                    source,
                })
            }
        }
    }

    async fn ensure_stream_for_subject(&self, subject: &str) {
        let Some((aggregate_type, _, _)) = self.namespace.parse_event_subject(subject) else {
            return;
        };
        let result = match definitions::stream_config_for(&self.namespace, aggregate_type) {
            Ok(config) => definitions::ensure_stream(&self.jetstream, &config)
                .await
                .map(|_| ()),
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => info!(aggregate_type, "created missing stream"),
            Err(err) => warn!(aggregate_type, error = %err, "cannot create missing stream"),
        }
    }

    /// Runs the relay until `shutdown` is cancelled: waits to become the leader, then
    /// relays whenever a writer announces new outbox rows, and every 500 ms in any case.
    ///
    /// Errors of NATS or Postgres are logged and retried with a growing pause; the relay
    /// never exits on them. On shutdown the round in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.try_lead().await {
                Ok(Some(lock)) => {
                    info!(namespace = %self.namespace, "outbox relay is the leader");
                    self.leader.store(true, Ordering::Relaxed);
                    metrics::gauge!("ordo_relay_leader").set(1.0);
                    self.lead(lock, &shutdown).await;
                    self.leader.store(false, Ordering::Relaxed);
                    metrics::gauge!("ordo_relay_leader").set(0.0);
                }
                Ok(None) => {
                    // Standing by is reported too, so that a missing leader shows as the
                    // sum over every relay process being zero.
                    metrics::gauge!("ordo_relay_leader").set(0.0);
                    debug!("another outbox relay leads; standing by")
                }
                Err(err) => warn!(error = %err, "outbox relay cannot reach postgres"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(STANDBY_RETRY) => {}
            }
        }
        info!("outbox relay stopped");
    }

    /// Opens a connection outside the pool and tries the leader lock on it: a session lock
    /// lives exactly as long as that connection, so a crashed leader frees it.
    async fn try_lead(&self) -> Result<Option<PgConnection>, sqlx::Error> {
        let mut conn = PgConnection::connect_with(&self.pool.connect_options()).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if locked {
            Ok(Some(conn))
        } else {
            conn.close().await.ok();
            Ok(None)
        }
    }

    /// The leader's loop; returns on shutdown or when the lock connection is lost.
    async fn lead(&self, mut lock: PgConnection, shutdown: &CancellationToken) {
        if let Err(err) = definitions::ensure_streams(&self.jetstream, &self.namespace).await {
            warn!(error = %err, "cannot ensure streams; relaying anyway");
        }
        let mut listener = None;
        let mut backoff = Duration::ZERO;
        loop {
            // Drain: keep relaying while rows remain.
            let mut failed = false;
            loop {
                match self.relay_batch(self.batch_size).await {
                    Ok(0) => break,
                    Ok(n) => {
                        debug!(relayed = n, "relayed outbox events");
                        backoff = Duration::ZERO;
                        if shutdown.is_cancelled() {
                            break;
                        }
                    }
                    Err(err) => {
                        warn!(error = %err, "outbox relay round failed; will retry");
                        failed = true;
                        break;
                    }
                }
            }
            if shutdown.is_cancelled() {
                lock.close().await.ok();
                return;
            }
            if failed {
                backoff = (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                tokio::select! {
                    _ = shutdown.cancelled() => { lock.close().await.ok(); return; }
                    _ = tokio::time::sleep(backoff) => {}
                }
            }

            // Leadership is only as good as the lock connection.
            if let Err(err) = sqlx::query("SELECT 1").execute(&mut lock).await {
                warn!(error = %err, "lost the outbox relay lock connection; stepping down");
                return;
            }

            if listener.is_none() {
                listener = match self.listen().await {
                    Ok(l) => Some(l),
                    Err(err) => {
                        warn!(error = %err, "cannot LISTEN {OUTBOX_CHANNEL}; polling only");
                        None
                    }
                };
            }
            let notified = async {
                match listener.as_mut() {
                    Some(l) => l.try_recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => { lock.close().await.ok(); return; }
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                received = notified => match received {
                    // One round serves every notification received so far.
                    Ok(Some(_)) => if let Some(l) = listener.as_mut() { while l.next_buffered().is_some() {} },
                    // The connection was lost; it reconnects on the next call.
                    Ok(None) => {}
                    Err(err) => {
                        warn!(error = %err, "LISTEN connection failed");
                        listener = None;
                    }
                }
            }
        }
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(OUTBOX_CHANNEL).await?;
        Ok(listener)
    }
}

/// How many events are committed but not yet published: the relay's lag, for metrics.
pub async fn outbox_depth(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
}
