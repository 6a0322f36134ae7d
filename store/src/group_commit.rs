//! Group commit: the events of many commands, on different aggregates and of different
//! types, appended in one transaction.
//!
//! Every command bus of a process that writes to one database hands its batches (one
//! aggregate's events, and the snapshot they make due) to that database's
//! [`GroupCommitter`]. A writer queues its batch and waits for one of a few commit turns;
//! whoever gets a turn takes every batch queued at that moment and appends them all with
//! one `INSERT` in one transaction, so under load many commands share one commit (one WAL
//! flush, one round trip) instead of paying one each, and a writer alone commits at once.
//!
//! Optimistic concurrency stays exact per aggregate: a group whose transaction fails (an
//! aggregate another process wrote meanwhile hits the event store's primary key, or a
//! write-side trigger refuses one row) is written again one batch per transaction, so
//! only the batches that really conflict or fail are answered so, and each is re-run by
//! its own bus on fresh state; the others commit. Every writer is answered only after the
//! transaction holding its events committed. A commit runs on a task of its own, so a
//! writer that goes away (a client that disconnected) does not take the other writers'
//! commit with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{oneshot, Semaphore};

use crate::snapshots;

/// How many groups of one process may be committing at once: one commits while the next
/// gathers, and a few more keep the database's own group flushes busy.
const COMMIT_TURNS: usize = 4;
/// The most events one group appends; what is queued beyond waits for the next turn.
const MAX_GROUP_EVENTS: usize = 2_000;

/// One aggregate's events to append, with the snapshot they make due.
pub(crate) struct EventWrite {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// The events, in sequence order, continuing the aggregate's stored history.
    pub events: Vec<SerializedEvent>,
    /// The state after the events, at that sequence, when a snapshot is due.
    pub snapshot: Option<(usize, Value)>,
}

/// Why a write did not commit.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// Another writer appended to the aggregate first (or a unique write-side fact the
    /// events claim was taken): re-run on fresh state.
    Stale,
    /// The database failed.
    Store(String),
}

struct Queued {
    write: EventWrite,
    reply: oneshot::Sender<Result<(), WriteFailure>>,
}

/// This process's group committer for one database.
pub(crate) struct GroupCommitter {
    queue: Mutex<Vec<Queued>>,
    turns: Arc<Semaphore>,
}

/// One committer per database (host, port and name) and process.
static COMMITTERS: OnceLock<Mutex<HashMap<String, Arc<GroupCommitter>>>> = OnceLock::new();

impl GroupCommitter {
    /// The committer of the database `pool` connects to. It holds no connection: each
    /// group is written through the pool of the writer whose turn it is.
    pub fn of(pool: &PgPool) -> Arc<GroupCommitter> {
        let key = crate::database::key_of(pool);
        let mut committers = COMMITTERS
            .get_or_init(Default::default)
            .lock()
            .expect("committers lock");
        committers
            .entry(key)
            .or_insert_with(|| {
                Arc::new(GroupCommitter {
                    queue: Mutex::new(Vec::new()),
                    turns: Arc::new(Semaphore::new(COMMIT_TURNS)),
                })
            })
            .clone()
    }

    /// Appends `write`'s events (and its snapshot), with whatever other writes are queued
    /// when its turn comes; answers once they committed, or why they did not.
    pub async fn write(&self, pool: &PgPool, write: EventWrite) -> Result<(), WriteFailure> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .lock()
            .expect("queue lock")
            .push(Queued { write, reply });
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .expect("the commit turns are never closed");
        let group = self.take_group();
        if group.is_empty() {
            // An earlier turn took this write along; its answer comes from there.
            drop(turn);
        } else {
            let pool = pool.clone();
            tokio::spawn(async move {
                commit_group(&pool, group).await;
                drop(turn);
            });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(WriteFailure::Store("the commit was dropped".into())))
    }

    /// The queued writes, oldest first, up to [`MAX_GROUP_EVENTS`] events (at least one
    /// write).
    fn take_group(&self) -> Vec<Queued> {
        let mut queue = self.queue.lock().expect("queue lock");
        let mut events = 0;
        let mut take = 0;
        for queued in queue.iter() {
            if take > 0 && events + queued.write.events.len() > MAX_GROUP_EVENTS {
                break;
            }
            events += queued.write.events.len();
            take += 1;
        }
        queue.drain(..take).collect()
    }
}

/// Commits `group` in one transaction; when that fails, each write in a transaction of its
/// own, so that only the writes that fail are answered so.
async fn commit_group(pool: &PgPool, group: Vec<Queued>) {
    metrics::histogram!("ordo_commit_group_writes").record(group.len() as f64);
    if group.len() > 1 {
        let writes: Vec<&EventWrite> = group.iter().map(|queued| &queued.write).collect();
        if commit(pool, &writes).await.is_ok() {
            for queued in group {
                let _ = queued.reply.send(Ok(()));
            }
            return;
        }
        metrics::counter!("ordo_commit_groups_split_total").increment(1);
    }
    let alone: Vec<[&EventWrite; 1]> = group.iter().map(|queued| [&queued.write]).collect();
    let answers =
        futures::future::join_all(alone.iter().map(|write| commit(pool, write.as_slice()))).await;
    for (queued, answer) in group.into_iter().zip(answers) {
        let _ = queued.reply.send(answer);
    }
}

/// Appends every event of `writes` with one statement and writes their snapshots, in one
/// transaction.
async fn commit(pool: &PgPool, writes: &[&EventWrite]) -> Result<(), WriteFailure> {
    let mut tx = pool.begin().await.map_err(failure)?;
    insert_events(&mut tx, writes).await?;
    for write in writes {
        if let Some((sequence, payload)) = &write.snapshot {
            snapshots::write(
                &mut tx,
                write.aggregate_type,
                &write.aggregate_id,
                *sequence,
                payload,
            )
            .await
            .map_err(failure)?;
        }
    }
    tx.commit().await.map_err(failure)?;
    for write in writes.iter().filter(|write| write.snapshot.is_some()) {
        metrics::counter!("ordo_snapshots_written_total", "aggregate_type" => write.aggregate_type)
            .increment(1);
    }
    Ok(())
}

async fn insert_events(tx: &mut PgConnection, writes: &[&EventWrite]) -> Result<(), WriteFailure> {
    let count: usize = writes.iter().map(|write| write.events.len()).sum();
    let mut types = Vec::with_capacity(count);
    let mut ids = Vec::with_capacity(count);
    let mut sequences = Vec::with_capacity(count);
    let mut event_types = Vec::with_capacity(count);
    let mut event_versions = Vec::with_capacity(count);
    let mut payloads = Vec::with_capacity(count);
    let mut metadata = Vec::with_capacity(count);
    for write in writes {
        for event in &write.events {
            types.push(write.aggregate_type);
            ids.push(write.aggregate_id.as_str());
            sequences.push(event.sequence as i64);
            event_types.push(event.event_type.as_str());
            event_versions.push(event.event_version.as_str());
            payloads.push(&event.payload);
            metadata.push(&event.metadata);
        }
    }
    // Rows go in in the order given, so each aggregate's events take increasing positions.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
             payload, metadata)
         SELECT t, i, s, et, ev, p::json, m::json
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                     $6::jsonb[], $7::jsonb[]) WITH ORDINALITY AS e(t, i, s, et, ev, p, m, n)
         ORDER BY n",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&sequences)
    .bind(&event_types)
    .bind(&event_versions)
    .bind(&payloads)
    .bind(&metadata)
    .execute(&mut *tx)
    .await
    .map_err(failure)?;
    Ok(())
}

fn failure(err: sqlx::Error) -> WriteFailure {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => WriteFailure::Stale,
        _ => WriteFailure::Store(err.to_string()),
    }
}
