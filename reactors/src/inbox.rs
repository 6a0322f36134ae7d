//! The notification inbox as users read it: queries on `notifications`, and the
//! [`InboxHub`] that turns Postgres `LISTEN ordo_notifications` into in-process broadcasts
//! for the Server-Sent Events streams.
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

use std::sync::Arc;
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
    /// payment_refunded, booking_pending_payment, tickets_issued, booking_expired.
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

/// What the hub tells every stream.
#[derive(Debug, Clone, Copy)]
pub enum HubSignal {
    /// An entry was committed.
    Added(Announcement),
    /// The listener lost its connection and listens again: entries committed meanwhile
    /// were not announced, so every stream should read what it has not sent yet.
    Resync,
}

/// Fans the `ordo_notifications` channel out to this process's SSE streams. The listening
/// connection is opened on the first subscription, so processes that never serve a stream
/// hold no extra connection.
#[derive(Clone)]
pub struct InboxHub {
    sender: broadcast::Sender<HubSignal>,
    started: Arc<OnceCell<()>>,
}

impl Default for InboxHub {
    fn default() -> Self {
        Self::new()
    }
}

impl InboxHub {
    /// A hub with no listener yet.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Self {
            sender,
            started: Arc::new(OnceCell::new()),
        }
    }

    /// A receiver of every signal from now on. The first call returns only once the
    /// `LISTEN` is in place, so an entry committed after this returns is never missed.
    pub async fn subscribe(&self, pool: &PgPool) -> anyhow::Result<broadcast::Receiver<HubSignal>> {
        let receiver = self.sender.subscribe();
        self.started
            .get_or_try_init(|| async {
                let listener = listen(pool).await?;
                tokio::spawn(forward(pool.clone(), listener, self.sender.clone()));
                anyhow::Ok(())
            })
            .await?;
        Ok(receiver)
    }
}

async fn listen(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

async fn forward(pool: PgPool, listener: PgListener, sender: broadcast::Sender<HubSignal>) {
    // No receivers is fine for every send: nobody is streaming right now.
    let mut listener = Some(listener);
    loop {
        let Some(current) = listener.as_mut() else {
            match listen(&pool).await {
                Ok(fresh) => {
                    listener = Some(fresh);
                    // Listening again: streams read what was committed while it was not.
                    let _ = sender.send(HubSignal::Resync);
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "notification listener cannot reconnect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        };
        match current.try_recv().await {
            Ok(Some(notification)) => {
                match serde_json::from_str::<Announcement>(notification.payload()) {
                    Ok(announcement) => {
                        let _ = sender.send(HubSignal::Added(announcement));
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "unreadable notification announcement")
                    }
                }
            }
            // The connection was lost and `try_recv` has already listened again on a new
            // one (eager reconnect): what was committed in between was not announced.
            Ok(None) => {
                let _ = sender.send(HubSignal::Resync);
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => {
                tracing::warn!(error = %err, "notification listener failed; reconnecting");
                listener = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
