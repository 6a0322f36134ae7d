//! The notification inbox as users read it: queries on `notifications`, and the
//! [`InboxHub`] that turns Postgres `LISTEN ordo_notifications` into wake-ups of the
//! Server-Sent Events streams of the entry's owner, with the number of streams capped per
//! user and in all.
//!
//! The notifications consumer may run in another process than the gateway that holds a
//! user's stream; the insert trigger's `pg_notify` fires when the inserting transaction
//! commits, so every gateway hears of every committed entry, and only committed ones. One
//! listening connection per gateway process serves all its streams.
//!
//! # Resuming a stream
//!
//! Every entry has a `seq` (migration 0040) that numbers one user's entries in the order
//! their transactions committed; it is the `id:` of the entry's SSE event. The consumers
//! insert from many concurrent transactions (three streams, several lanes each), so a number
//! drawn from a global sequence at insert could commit after a larger one that a client has
//! already seen, and a resume after the larger would skip it for good. Rather than funnel
//! every insert through one writer, the numbering trigger serialises only the inserts of
//! the same user: it draws the number by updating the user's row in
//! `notification_sequences`, and that row lock is held until the transaction ends. So a
//! snapshot that holds a user's entry `n` holds every entry of that user below `n`, and
//! "`seq` greater than the last one sent" is a gap-free cursor.
//!
//! A stream is therefore just "the user's entries after `seq` n, in order": it reads them
//! with [`after`], and an announcement, a lagging receiver or a re-established listener
//! ([`HubSignal::Resync`]) only tells it to read again. Announcements it has already sent
//! (replayed before the announcement arrived) carry a `seq` it has passed and are dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{broadcast, OnceCell};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::notifications::NOTIFY_CHANNEL;

/// One inbox entry as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct NotificationView {
    /// Its id (stable: derived from the event that caused it).
    pub notification_id: Uuid,
    /// Stable code: order_confirmed, order_rejected, payment_captured, payment_failed,
    /// payment_refunded, order_shipped, order_delivered, booking_pending_payment,
    /// tickets_issued, booking_expired.
    pub kind: String,
    /// Short title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Ids and values to link the entry (order_id, booking_id, expires_at...).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// When the underlying event happened.
    pub created_at: DateTime<Utc>,
    /// When the owner marked it read.
    pub read_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "notification_id, kind, title, body, data, created_at, read_at";

/// A page of `user_id`'s notifications, newest first, after `(created_at, id)` when given.
pub async fn list(
    pool: &PgPool,
    user_id: Uuid,
    unread_only: bool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<NotificationView>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL)
           AND ($3::timestamptz IS NULL OR (created_at, notification_id) < ($3, $4))
         ORDER BY created_at DESC, notification_id DESC
         LIMIT $5"
    ))
    .bind(user_id)
    .bind(unread_only)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Marks one of `user_id`'s notifications read (keeping the first time); `None` when it
/// does not exist or belongs to someone else.
pub async fn mark_read(
    pool: &PgPool,
    user_id: Uuid,
    notification_id: Uuid,
) -> sqlx::Result<Option<NotificationView>> {
    sqlx::query_as(&format!(
        "UPDATE notifications SET read_at = coalesce(read_at, now())
         WHERE notification_id = $1 AND user_id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(notification_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// An inbox entry with its place in its owner's stream.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SequencedNotification {
    /// Orders the owner's entries by commit (the SSE event id).
    pub seq: i64,
    /// The entry.
    #[sqlx(flatten)]
    pub view: NotificationView,
}

/// Up to `limit` of `user_id`'s entries numbered above `after_seq`, in order.
pub async fn after(
    pool: &PgPool,
    user_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<SequencedNotification>> {
    sqlx::query_as(&format!(
        "SELECT seq, {COLUMNS} FROM notifications
         WHERE user_id = $1 AND seq > $2
         ORDER BY seq
         LIMIT $3"
    ))
    .bind(user_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The number of `user_id`'s newest entry (0 when there is none).
pub async fn last_seq(pool: &PgPool, user_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM notifications WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
}

/// What the trigger announces.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Announcement {
    /// The new entry.
    pub notification_id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Its number in the owner's stream (absent from a database before migration 0040).
    #[serde(default)]
    pub seq: Option<i64>,
}

/// What the hub tells a stream.
#[derive(Debug, Clone, Copy)]
pub enum HubSignal {
    /// An entry of the stream's user was committed.
    Added(Announcement),
    /// The listener lost its connection and listens again: entries committed meanwhile
    /// were not announced, so every stream should read what it has not sent yet.
    Resync,
}

/// How many streams the hub lets open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Streams of one user at once.
    pub per_user: usize,
    /// Streams of all users at once.
    pub total: usize,
}

impl Default for StreamLimits {
    /// 4 per user, 1000 in all.
    fn default() -> Self {
        Self {
            per_user: 4,
            total: 1000,
        }
    }
}

/// Why a stream was not opened.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The user already holds [`StreamLimits::per_user`] streams.
    #[error("this user already has {0} notification streams open")]
    UserLimit(usize),
    /// The process already holds [`StreamLimits::total`] streams.
    #[error("{0} notification streams are open, the most this server holds")]
    TotalLimit(usize),
    /// The listening connection could not be opened.
    #[error(transparent)]
    Listen(#[from] anyhow::Error),
}

/// Announcements queued per user before a stream is told to resync instead.
const PER_USER_BUFFER: usize = 64;

/// The streams of one user: their channel and how many are open.
struct UserStreams {
    sender: broadcast::Sender<HubSignal>,
    open: usize,
}

#[derive(Default)]
struct OpenStreams {
    users: HashMap<Uuid, UserStreams>,
    total: usize,
}

struct HubInner {
    streams: Mutex<OpenStreams>,
    limits: StreamLimits,
    started: OnceCell<()>,
}

/// Routes the `ordo_notifications` channel to this process's SSE streams: an
/// announcement goes to the streams of the entry's owner only, so a stream wakes for its
/// own user's entries and no other. The number of open streams is capped per user and in
/// all ([`StreamLimits`]). The listening connection is opened on the first subscription,
/// so processes that never serve a stream hold no extra connection.
#[derive(Clone)]
pub struct InboxHub {
    inner: Arc<HubInner>,
}

impl Default for InboxHub {
    fn default() -> Self {
        Self::new(StreamLimits::default())
    }
}

/// An open stream's place in the hub: its signals, and its slot under the caps, given back
/// when this is dropped.
pub struct Subscription {
    receiver: broadcast::Receiver<HubSignal>,
    hub: Arc<HubInner>,
    user_id: Uuid,
}

impl Subscription {
    /// The next signal for this stream; `None` once the hub is gone. Announcements that
    /// did not fit the buffer come as one [`HubSignal::Resync`].
    pub async fn recv(&mut self) -> Option<HubSignal> {
        match self.receiver.recv().await {
            Ok(signal) => Some(signal),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(HubSignal::Resync),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut streams = self.hub.streams.lock().expect("the stream table is sound");
        streams.total = streams.total.saturating_sub(1);
        if let Some(user) = streams.users.get_mut(&self.user_id) {
            user.open = user.open.saturating_sub(1);
            if user.open == 0 {
                streams.users.remove(&self.user_id);
            }
        }
    }
}

impl InboxHub {
    /// A hub with no listener yet, holding at most `limits` streams.
    pub fn new(limits: StreamLimits) -> Self {
        Self {
            inner: Arc::new(HubInner {
                streams: Mutex::new(OpenStreams::default()),
                limits,
                started: OnceCell::new(),
            }),
        }
    }

    /// Opens a stream for `user_id`: its signals from now on, unless the user or the
    /// process holds as many streams as allowed. The first call returns only once the
    /// `LISTEN` is in place, so an entry committed after this returns is never missed.
    pub async fn subscribe(
        &self,
        pool: &PgPool,
        user_id: Uuid,
    ) -> Result<Subscription, SubscribeError> {
        let subscription = {
            let mut streams = self
                .inner
                .streams
                .lock()
                .expect("the stream table is sound");
            let limits = self.inner.limits;
            if streams.total >= limits.total {
                return Err(SubscribeError::TotalLimit(limits.total));
            }
            let user = streams.users.entry(user_id).or_insert_with(|| UserStreams {
                sender: broadcast::channel(PER_USER_BUFFER).0,
                open: 0,
            });
            if user.open >= limits.per_user {
                return Err(SubscribeError::UserLimit(limits.per_user));
            }
            user.open += 1;
            let receiver = user.sender.subscribe();
            streams.total += 1;
            Subscription {
                receiver,
                hub: Arc::clone(&self.inner),
                user_id,
            }
        };
        // On failure the subscription is dropped and its slot given back.
        self.inner
            .started
            .get_or_try_init(|| async {
                let listener = listen(pool).await?;
                tokio::spawn(forward(pool.clone(), listener, Arc::downgrade(&self.inner)));
                anyhow::Ok(())
            })
            .await?;
        Ok(subscription)
    }

    /// Streams open now: of `user_id`, and in all.
    pub fn open_streams(&self, user_id: Uuid) -> (usize, usize) {
        let streams = self
            .inner
            .streams
            .lock()
            .expect("the stream table is sound");
        (
            streams.users.get(&user_id).map_or(0, |user| user.open),
            streams.total,
        )
    }
}

impl HubInner {
    /// Wakes the streams of the entry's owner (none open: nothing to do).
    fn announce(&self, announcement: Announcement) {
        let streams = self.streams.lock().expect("the stream table is sound");
        if let Some(user) = streams.users.get(&announcement.user_id) {
            let _ = user.sender.send(HubSignal::Added(announcement));
        }
    }

    /// Tells every open stream to read what it has not sent.
    fn resync(&self) {
        let streams = self.streams.lock().expect("the stream table is sound");
        for user in streams.users.values() {
            let _ = user.sender.send(HubSignal::Resync);
        }
    }
}

async fn listen(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

async fn forward(pool: PgPool, listener: PgListener, weak_hub: Weak<HubInner>) {
    let mut listener = Some(listener);
    loop {
        // The hub is gone (every handle on it was dropped): stop listening.
        let Some(hub) = weak_hub.upgrade() else {
            return;
        };
        let Some(current) = listener.as_mut() else {
            match listen(&pool).await {
                Ok(fresh) => {
                    listener = Some(fresh);
                    // Listening again: streams read what was committed while it was not.
                    hub.resync();
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "notification listener cannot reconnect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        };
        // Not held while waiting, so that a dropped hub ends this task at the next entry.
        drop(hub);
        let received = current.try_recv().await;
        let Some(hub) = weak_hub.upgrade() else {
            return;
        };
        match received {
            Ok(Some(notification)) => {
                match serde_json::from_str::<Announcement>(notification.payload()) {
                    Ok(announcement) => hub.announce(announcement),
                    Err(err) => {
                        tracing::warn!(error = %err, "unreadable notification announcement")
                    }
                }
            }
            // The connection was lost and `try_recv` has already listened again on a new
            // one (eager reconnect): what was committed in between was not announced.
            Ok(None) => hub.resync(),
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => {
                tracing::warn!(error = %err, "notification listener failed; reconnecting");
                listener = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any database answers `LISTEN`; the tests' server is the default one.
    fn pool() -> PgPool {
        let url = std::env::var("ORDO_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        PgPool::connect_lazy(&url).expect("a valid database URL")
    }

    fn announcement(user_id: Uuid, seq: i64) -> Announcement {
        Announcement {
            notification_id: Uuid::new_v4(),
            user_id,
            seq: Some(seq),
        }
    }

    #[tokio::test]
    async fn streams_are_capped_per_user_and_in_all_and_slots_come_back() {
        let pool = pool();
        let hub = InboxHub::new(StreamLimits {
            per_user: 2,
            total: 3,
        });
        let (ada, bob, eve) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let first = hub.subscribe(&pool, ada).await.expect("first stream");
        let _second = hub.subscribe(&pool, ada).await.expect("second stream");
        assert!(matches!(
            hub.subscribe(&pool, ada).await,
            Err(SubscribeError::UserLimit(2))
        ));
        let _bob = hub
            .subscribe(&pool, bob)
            .await
            .expect("another user streams");
        assert!(matches!(
            hub.subscribe(&pool, eve).await,
            Err(SubscribeError::TotalLimit(3))
        ));
        assert_eq!(hub.open_streams(ada), (2, 3));
        drop(first);
        assert_eq!(hub.open_streams(ada), (1, 2));
        let _again = hub
            .subscribe(&pool, ada)
            .await
            .expect("a closed stream's slot is free");
    }

    #[tokio::test]
    async fn an_announcement_wakes_only_its_owners_streams() {
        let pool = pool();
        let hub = InboxHub::new(StreamLimits::default());
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let mut ada_stream = hub.subscribe(&pool, ada).await.expect("stream");
        let mut bob_stream = hub.subscribe(&pool, bob).await.expect("stream");
        hub.inner.announce(announcement(ada, 1));
        match ada_stream.recv().await {
            Some(HubSignal::Added(added)) => assert_eq!(added.user_id, ada),
            other => panic!("expected Ada's entry, got {other:?}"),
        }
        assert!(
            bob_stream.receiver.try_recv().is_err(),
            "Bob's stream heard of Ada's entry"
        );
        // A resync reaches everyone.
        hub.inner.resync();
        assert!(matches!(bob_stream.recv().await, Some(HubSignal::Resync)));
        assert!(matches!(ada_stream.recv().await, Some(HubSignal::Resync)));
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_is_told_to_resync() {
        let pool = pool();
        let hub = InboxHub::new(StreamLimits::default());
        let ada = Uuid::new_v4();
        let mut stream = hub.subscribe(&pool, ada).await.expect("stream");
        for seq in 0..(PER_USER_BUFFER as i64 + 5) {
            hub.inner.announce(announcement(ada, seq));
        }
        assert!(matches!(stream.recv().await, Some(HubSignal::Resync)));
    }
}
