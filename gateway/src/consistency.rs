//! Read-your-writes on demand. A command records the version it produced as the caller's
//! last write; a query sent with `Prefer: wait=N` (RFC 7240) waits up to N seconds for the
//! projection serving it to have applied that version.
//!
//! A waiting request does not poll: every consumer position committed is announced on
//! the `ordo_consumer_positions` channel (by the applying process's
//! [`Announcer`](ordo_store::announce::Announcer), after its commit, many positions to a
//! notification), and one `LISTEN` connection per process wakes exactly the requests
//! waiting for that consumer and aggregate. A waiter reads the position once when it
//! starts and again when the listener had to reconnect or a rebuild rewrote positions.
//!
//! Waits are bounded: at most [`WaitLimits::per_user`] requests of one user and
//! [`WaitLimits::total`] in all wait at once; a request beyond that is answered at once,
//! without waiting and without `Preference-Applied`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use ordo_identity::IdentityService;
use serde::Deserialize;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{watch, OnceCell};
use uuid::Uuid;

/// The longest wait a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The channel consumer positions are announced on.
pub use ordo_store::announce::POSITIONS_CHANNEL;

/// The `wait` preference of a request, if any, with its place under the wait caps. A
/// request asking to wait beyond the caps has no preference: it is answered at once and
/// without `Preference-Applied`.
#[derive(Debug, Default)]
pub struct PreferWait(
    pub Option<Duration>,
    #[expect(
        dead_code,
        reason = "held for the request's life; dropping it frees the place"
    )]
    Option<WaitPermit>,
);

impl PreferWait {
    /// The `Preference-Applied` header value to answer with, when a wait was asked for.
    pub fn applied(&self) -> Option<HeaderValue> {
        self.0
            .map(|d| HeaderValue::from_str(&format!("wait={}", d.as_secs())).expect("ascii"))
    }
}

/// Parses `Prefer` headers: `wait=5`, possibly among other preferences.
pub fn parse_prefer_wait<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Option<Duration> {
    for value in values {
        let Ok(text) = value.to_str() else { continue };
        for preference in text.split([',', ';']) {
            let preference = preference.trim();
            if let Some(seconds) = preference.strip_prefix("wait=") {
                if let Ok(seconds) = seconds.trim().parse::<u64>() {
                    return Some(Duration::from_secs(seconds).min(MAX_WAIT));
                }
            }
        }
    }
    None
}

/// How many requests may wait at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitLimits {
    /// Of one user.
    pub per_user: usize,
    /// Of all users together.
    pub total: usize,
}

#[derive(Debug, Default)]
struct WaitCounts {
    users: HashMap<Uuid, usize>,
    total: usize,
}

/// Counts the requests that wait, per user and in all.
#[derive(Debug)]
pub struct WaitGate {
    counts: Mutex<WaitCounts>,
    limits: WaitLimits,
}

/// One request's place under the caps, given back when it is dropped.
#[derive(Debug)]
pub struct WaitPermit {
    gate: Arc<WaitGate>,
    user_id: Uuid,
}

impl WaitGate {
    /// A gate with these limits.
    pub fn new(limits: WaitLimits) -> Arc<Self> {
        Arc::new(Self {
            counts: Mutex::new(WaitCounts::default()),
            limits,
        })
    }

    /// A place for one more waiting request of `user_id`, unless the caps are reached.
    pub fn try_acquire(self: &Arc<Self>, user_id: Uuid) -> Option<WaitPermit> {
        let mut counts = self.counts.lock().expect("the wait counts are sound");
        if counts.total >= self.limits.total {
            return None;
        }
        let waiting = counts.users.entry(user_id).or_insert(0);
        if *waiting >= self.limits.per_user {
            return None;
        }
        *waiting += 1;
        counts.total += 1;
        Some(WaitPermit {
            gate: Arc::clone(self),
            user_id,
        })
    }
}

impl Drop for WaitPermit {
    fn drop(&mut self) {
        let mut counts = self.gate.counts.lock().expect("the wait counts are sound");
        counts.total = counts.total.saturating_sub(1);
        if let Some(waiting) = counts.users.get_mut(&self.user_id) {
            *waiting = waiting.saturating_sub(1);
            if *waiting == 0 {
                counts.users.remove(&self.user_id);
            }
        }
    }
}

/// Reads `Prefer: wait=N`. The wait is kept only for a caller with a valid token who
/// gets a place under the caps; an anonymous caller keeps it too (nothing waits for an
/// anonymous caller, who has no last write).
impl<S> FromRequestParts<S> for PreferWait
where
    S: Send + Sync,
    Arc<WaitGate>: FromRef<S>,
    Arc<IdentityService>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(wait) = parse_prefer_wait(parts.headers.get_all("prefer").iter()) else {
            return Ok(PreferWait(None, None));
        };
        let user = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .and_then(|(_, token)| {
                Arc::<IdentityService>::from_ref(state)
                    .verify_access(token.trim())
                    .ok()
            })
            .map(|caller| caller.user_id);
        let Some(user_id) = user else {
            return Ok(PreferWait(Some(wait), None));
        };
        match Arc::<WaitGate>::from_ref(state).try_acquire(user_id) {
            Some(permit) => Ok(PreferWait(Some(wait), Some(permit))),
            None => {
                tracing::debug!(%user_id, "too many waiting requests: answering at once");
                Ok(PreferWait(None, None))
            }
        }
    }
}

/// Records the version a user's command produced; answers once it is stored.
///
/// Commands answered at the same time share one statement: the hints waiting while one
/// is written go together in the next, one row per user (the one recorded last), so a
/// user with many commands in flight (a bulk restock) does not queue them all on the lock
/// of their one row.
pub async fn record_write(
    pool: &PgPool,
    user_id: Uuid,
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
) -> sqlx::Result<()> {
    let recorder = LastWriteRecorder::of(pool);
    let (reply, answer) = tokio::sync::oneshot::channel();
    recorder
        .waiting
        .lock()
        .expect("last writes lock")
        .push(LastWrite {
            user_id,
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: aggregate_id.to_string(),
            version,
            reply,
        });
    let turn = recorder
        .turn
        .clone()
        .acquire_owned()
        .await
        .expect("the turn is never closed");
    let batch = std::mem::take(&mut *recorder.waiting.lock().expect("last writes lock"));
    if !batch.is_empty() {
        // On a task of its own: a request that goes away does not take the others' with it.
        let pool = pool.clone();
        tokio::spawn(async move {
            store_last_writes(&pool, batch).await;
            drop(turn);
        });
    }
    answer
        .await
        .unwrap_or_else(|_| Err(sqlx::Error::WorkerCrashed))
}

/// A hint waiting to be stored, and who waits for it.
struct LastWrite {
    user_id: Uuid,
    aggregate_type: String,
    aggregate_id: String,
    version: i64,
    reply: tokio::sync::oneshot::Sender<sqlx::Result<()>>,
}

/// This process's recorder of last writes to one database.
struct LastWriteRecorder {
    waiting: Mutex<Vec<LastWrite>>,
    turn: Arc<tokio::sync::Semaphore>,
}

impl LastWriteRecorder {
    fn of(pool: &PgPool) -> Arc<LastWriteRecorder> {
        static RECORDERS: std::sync::OnceLock<Mutex<HashMap<String, Arc<LastWriteRecorder>>>> =
            std::sync::OnceLock::new();
        let key = ordo_store::database::key_of(pool);
        RECORDERS
            .get_or_init(Default::default)
            .lock()
            .expect("recorders lock")
            .entry(key)
            .or_insert_with(|| {
                Arc::new(LastWriteRecorder {
                    waiting: Mutex::new(Vec::new()),
                    turn: Arc::new(tokio::sync::Semaphore::new(1)),
                })
            })
            .clone()
    }
}

/// Stores `batch` in one statement, each user's last hint; answers every waiter.
async fn store_last_writes(pool: &PgPool, batch: Vec<LastWrite>) {
    // The last hint of each user, in user order (so two processes lock rows in one order).
    let mut latest: std::collections::BTreeMap<Uuid, &LastWrite> = Default::default();
    for hint in &batch {
        latest.insert(hint.user_id, hint);
    }
    let users: Vec<Uuid> = latest.keys().copied().collect();
    let types: Vec<&str> = latest.values().map(|h| h.aggregate_type.as_str()).collect();
    let ids: Vec<&str> = latest.values().map(|h| h.aggregate_id.as_str()).collect();
    let versions: Vec<i64> = latest.values().map(|h| h.version).collect();
    let stored = async {
        // Only a hint for later reads: if a crash loses it, a read just does not wait, so
        // it is not worth a disk flush on the command's path.
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO last_writes (user_id, aggregate_type, aggregate_id, version)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[])
             ON CONFLICT (user_id) DO UPDATE SET aggregate_type = excluded.aggregate_type,
                 aggregate_id = excluded.aggregate_id, version = excluded.version,
                 written_at = now()",
        )
        .bind(&users)
        .bind(&types)
        .bind(&ids)
        .bind(&versions)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
    .await;
    let failure = stored.err().map(|err| err.to_string());
    for hint in batch {
        let answer = match &failure {
            None => Ok(()),
            Some(message) => Err(sqlx::Error::Protocol(format!(
                "recording the last write: {message}"
            ))),
        };
        let _ = hint.reply.send(answer);
    }
}

/// Waits until `consumer` has applied the caller's last write, when that write was to an
/// aggregate of `aggregate_type`. Answers whether the read model caught up in time.
pub async fn wait_for_last_write(
    pool: &PgPool,
    user_id: Uuid,
    consumer: &str,
    aggregate_type: &str,
    timeout: Duration,
) -> sqlx::Result<bool> {
    let last: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, version FROM last_writes WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    let Some((written_type, aggregate_id, version)) = last else {
        return Ok(true);
    };
    if written_type != aggregate_type {
        return Ok(true);
    }
    wait_for_version(
        pool,
        consumer,
        aggregate_type,
        &aggregate_id,
        version,
        timeout,
    )
    .await
}

/// Waits until `consumer` has applied `version` of one aggregate.
pub async fn wait_for_version(
    pool: &PgPool,
    consumer: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
    timeout: Duration,
) -> sqlx::Result<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let watch = process_watch(pool).await?;
    // Registered before the first read, so a position written after it is announced here.
    let mut watching = watch.register((
        consumer.to_owned(),
        aggregate_type.to_owned(),
        aggregate_id.to_owned(),
    ));
    let mut resyncs = watch.resyncs.subscribe();
    loop {
        if applied_position(pool, consumer, aggregate_type, aggregate_id)
            .await?
            .is_some_and(|applied| applied >= version)
        {
            return Ok(true);
        }
        tokio::select! {
            reached = watching.reached(version) => return Ok(reached),
            // The listener reconnected and may have missed announcements: read again.
            _ = resyncs.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(false),
        }
    }
}

async fn applied_position(
    pool: &PgPool,
    consumer: &str,
    aggregate_type: &str,
    aggregate_id: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT last_sequence FROM consumer_positions
         WHERE consumer = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(consumer)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(pool)
    .await
}

/// A consumer, aggregate type and aggregate id.
type PositionKey = (String, String, String);

/// A notification on [`POSITIONS_CHANNEL`].
#[derive(Deserialize)]
#[serde(untagged)]
enum Announcement {
    /// Positions committed.
    Positions(Vec<Announced>),
    /// Many positions changed at once: read them again.
    Resync {
        #[allow(dead_code)]
        resync: bool,
    },
}

/// One announced position: consumer, aggregate type and id, sequence.
#[derive(Debug, Deserialize)]
struct Announced {
    c: String,
    t: String,
    i: String,
    s: i64,
}

struct Watched {
    /// The highest position announced since the first waiter registered.
    applied: watch::Sender<i64>,
    waiters: usize,
}

/// The positions some request waits for, fed by this process's listener.
struct PositionWatch {
    watched: Mutex<HashMap<PositionKey, Watched>>,
    /// Bumped each time the listener had to listen again.
    resyncs: watch::Sender<u64>,
}

/// A waiter's registration, removed when dropped.
struct Watching<'a> {
    watch: &'a PositionWatch,
    key: PositionKey,
    applied: watch::Receiver<i64>,
}

impl Watching<'_> {
    /// Resolves with `true` once a position of at least `version` is announced.
    async fn reached(&mut self, version: i64) -> bool {
        loop {
            let applied = *self.applied.borrow_and_update();
            if applied >= version {
                return true;
            }
            if self.applied.changed().await.is_err() {
                return false;
            }
        }
    }
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        let mut watched = self.watch.watched.lock().expect("the watch table is sound");
        if let Some(entry) = watched.get_mut(&self.key) {
            entry.waiters = entry.waiters.saturating_sub(1);
            if entry.waiters == 0 {
                watched.remove(&self.key);
            }
        }
    }
}

impl PositionWatch {
    fn register(&self, key: PositionKey) -> Watching<'_> {
        let mut watched = self.watched.lock().expect("the watch table is sound");
        let entry = watched.entry(key.clone()).or_insert_with(|| Watched {
            applied: watch::channel(i64::MIN).0,
            waiters: 0,
        });
        entry.waiters += 1;
        let applied = entry.applied.subscribe();
        Watching {
            watch: self,
            key,
            applied,
        }
    }

    /// Wakes the waiters of an announced position; nothing to do for the (usual) events
    /// nobody waits for.
    fn announce(&self, announced: Announced) {
        let key = (announced.c, announced.t, announced.i);
        let watched = self.watched.lock().expect("the watch table is sound");
        if let Some(entry) = watched.get(&key) {
            entry.applied.send_if_modified(|applied| {
                let higher = announced.s > *applied;
                if higher {
                    *applied = announced.s;
                }
                higher
            });
        }
    }
}

/// The process's one listener, started by the first wait (processes that never wait hold
/// no extra connection). Waits are for the database of this pool; a process has one.
static PROCESS_WATCH: OnceCell<Arc<PositionWatch>> = OnceCell::const_new();

async fn process_watch(pool: &PgPool) -> sqlx::Result<&'static Arc<PositionWatch>> {
    PROCESS_WATCH
        .get_or_try_init(|| async {
            let listener = listen_positions(pool).await?;
            let watch = Arc::new(PositionWatch {
                watched: Mutex::new(HashMap::new()),
                resyncs: watch::channel(0).0,
            });
            tokio::spawn(forward_positions(
                pool.clone(),
                listener,
                Arc::clone(&watch),
            ));
            Ok::<_, sqlx::Error>(watch)
        })
        .await
}

async fn listen_positions(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(POSITIONS_CHANNEL).await?;
    Ok(listener)
}

async fn forward_positions(pool: PgPool, listener: PgListener, watch: Arc<PositionWatch>) {
    let resync = || watch.resyncs.send_modify(|n| *n = n.wrapping_add(1));
    let mut listener = Some(listener);
    loop {
        let Some(current) = listener.as_mut() else {
            match listen_positions(&pool).await {
                Ok(fresh) => {
                    listener = Some(fresh);
                    resync();
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "position listener cannot reconnect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        };
        match current.try_recv().await {
            Ok(Some(notification)) => match serde_json::from_str(notification.payload()) {
                Ok(Announcement::Positions(positions)) => {
                    positions.into_iter().for_each(|p| watch.announce(p))
                }
                Ok(Announcement::Resync { .. }) => resync(),
                Err(err) => tracing::warn!(error = %err, "unreadable position announcement"),
            },
            // Reconnected already (eager reconnect): announcements in between are lost.
            Ok(None) => resync(),
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => {
                tracing::warn!(error = %err, "position listener failed; reconnecting");
                listener = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_wait_is_read_among_other_preferences() {
        let values = [HeaderValue::from_static("respond-async, wait=7")];
        assert_eq!(
            parse_prefer_wait(values.iter()),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn prefer_wait_is_capped() {
        let values = [HeaderValue::from_static("wait=3600")];
        assert_eq!(parse_prefer_wait(values.iter()), Some(MAX_WAIT));
    }

    #[test]
    fn waits_are_capped_per_user_and_in_all() {
        let gate = WaitGate::new(WaitLimits {
            per_user: 2,
            total: 3,
        });
        let (ada, bob, eve) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let first = gate.try_acquire(ada).expect("first wait");
        let _second = gate.try_acquire(ada).expect("second wait");
        assert!(gate.try_acquire(ada).is_none(), "a third wait of one user");
        let _bob = gate.try_acquire(bob).expect("another user waits");
        assert!(gate.try_acquire(eve).is_none(), "over the total");
        drop(first);
        assert!(
            gate.try_acquire(ada).is_some(),
            "a finished wait frees its place"
        );
    }

    #[tokio::test]
    async fn an_announcement_wakes_only_the_waiters_of_its_position() {
        let watch = PositionWatch {
            watched: Mutex::new(HashMap::new()),
            resyncs: watch::channel(0).0,
        };
        let key = |id: &str| {
            (
                "projection-orders".to_owned(),
                "order".to_owned(),
                id.to_owned(),
            )
        };
        let mut waiting = watch.register(key("a"));
        let announce = |id: &str, s: i64| {
            watch.announce(Announced {
                c: "projection-orders".into(),
                t: "order".into(),
                i: id.into(),
                s,
            })
        };
        announce("b", 9);
        announce("a", 2);
        let reached = tokio::time::timeout(Duration::from_millis(50), waiting.reached(3)).await;
        assert!(reached.is_err(), "woken below the version waited for");
        announce("a", 3);
        assert!(waiting.reached(3).await);
        // Positions nobody waits for are not kept.
        assert_eq!(watch.watched.lock().unwrap().len(), 1);
        drop(waiting);
        assert!(watch.watched.lock().unwrap().is_empty());
    }

    #[test]
    fn announcements_are_read_as_positions_or_a_resync() {
        let read = |text: &str| serde_json::from_str::<Announcement>(text).unwrap();
        match read(
            r#"[{"c":"projection-orders","t":"order","i":"a","s":2},{"c":"x","t":"y","i":"z","s":1}]"#,
        ) {
            Announcement::Positions(positions) => {
                assert_eq!(positions.len(), 2);
                assert_eq!(positions[0].s, 2);
            }
            Announcement::Resync { .. } => panic!("positions read as a resync"),
        }
        assert!(matches!(
            read(r#"{"resync":true}"#),
            Announcement::Resync { .. }
        ));
        assert!(serde_json::from_str::<Announcement>(r#"{"c":"x"}"#).is_err());
    }

    #[test]
    fn prefer_without_wait_is_ignored() {
        let values = [HeaderValue::from_static("return=minimal")];
        assert_eq!(parse_prefer_wait(values.iter()), None);
    }
}
