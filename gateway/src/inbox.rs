//! The read side of the notification inbox: queries on `notifications`, and the
//! [`InboxHub`] that turns Postgres `LISTEN ordo_notifications` into in-process broadcasts
//! for the Server-Sent Events streams.
//!
//! The notifications consumer may run in another process than the gateway that holds a
//! user's stream; the insert trigger's `pg_notify` fires when the inserting transaction
//! commits, so every gateway hears of every committed entry, and only committed ones. One
//! listening connection per gateway process serves all its streams.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{broadcast, OnceCell};
use utoipa::ToSchema;
use uuid::Uuid;

use ordo_projections::notifications::NOTIFY_CHANNEL;

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

/// One notification of `user_id`.
pub async fn get(
    pool: &PgPool,
    user_id: Uuid,
    notification_id: Uuid,
) -> sqlx::Result<Option<NotificationView>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE notification_id = $1 AND user_id = $2"
    ))
    .bind(notification_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// The notifications consumers, one per stream, mailing to the runtime's spool.
pub fn workers(
    runtime: &crate::serve::Runtime,
) -> Vec<(ordo_nats::ConsumerSpec, Arc<dyn ordo_nats::EventHandler>)> {
    use ordo_projections::notifications::{NotificationsHandler, SpoolMailer};
    let mail = Arc::new(SpoolMailer::new(runtime.mail_spool_dir.clone()));
    NotificationsHandler::all(runtime.state.pool.clone(), mail)
        .into_iter()
        .map(|handler| {
            let spec = crate::serve::consumer_spec(
                handler.name(),
                handler.aggregate_type(),
                &runtime.namespace,
            );
            (spec, handler as Arc<dyn ordo_nats::EventHandler>)
        })
        .collect()
}

/// What the trigger announces.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Announcement {
    /// The new entry.
    pub notification_id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
}

/// Fans the `ordo_notifications` channel out to this process's SSE streams. The listening
/// connection is opened on the first subscription, so processes that never serve a stream
/// hold no extra connection.
#[derive(Clone)]
pub struct InboxHub {
    sender: broadcast::Sender<Announcement>,
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

    /// A receiver of every announcement from now on. The first call returns only once the
    /// `LISTEN` is in place, so an entry committed after this returns is never missed.
    pub async fn subscribe(
        &self,
        pool: &PgPool,
    ) -> anyhow::Result<broadcast::Receiver<Announcement>> {
        let receiver = self.sender.subscribe();
        self.started
            .get_or_try_init(|| async {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(NOTIFY_CHANNEL).await?;
                tokio::spawn(forward(listener, self.sender.clone()));
                anyhow::Ok(())
            })
            .await?;
        Ok(receiver)
    }
}

async fn forward(mut listener: PgListener, sender: broadcast::Sender<Announcement>) {
    loop {
        // `recv` reconnects and re-listens by itself after a lost connection; entries
        // committed while it was down are not announced (a client re-reads the list when
        // its stream reconnects).
        match listener.recv().await {
            Ok(notification) => {
                match serde_json::from_str::<Announcement>(notification.payload()) {
                    Ok(announcement) => {
                        // No receivers is fine: nobody is streaming right now.
                        let _ = sender.send(announcement);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "unreadable notification announcement")
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "notification listener failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
