//! Announcements sent after commit: the outbox has new events (for the relay), a consumer
//! applied an event (for the requests that wait for a read model to catch up).
//!
//! A `NOTIFY` inside a transaction makes its commit take a lock that every notifying
//! transaction of the server shares, so commits that notify run one after another, each
//! waiting for the previous one's WAL flush, where commits that do not notify share their
//! flushes. Measured with pgbench on this project's machine (32 clients, one event row per
//! transaction): about 8,200 inserts per second without the outbox trigger's notification,
//! about 420 with it. So no business transaction notifies: the writer, after its commit,
//! hands the announcement to this process's [`Announcer`], which sends everything handed to
//! it since its previous send in one short transaction of its own.
//!
//! Announcements are hints. The relay also looks at the outbox on a timer and a waiting
//! request also gives up after its timeout, so an announcement lost with a crashed process
//! costs latency, never data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Notify;

/// The channel on which new outbox rows are announced.
pub const OUTBOX_CHANNEL: &str = "ordo_outbox";

/// The channel on which applied consumer positions are announced: each payload a JSON
/// array of `{"c": consumer, "t": aggregate type, "i": aggregate id, "s": sequence}`, or
/// `{"resync": true}` when many positions changed at once (a projection rebuild's switch)
/// and listeners should read them again.
pub const POSITIONS_CHANNEL: &str = "ordo_consumer_positions";

/// The largest payload sent: `NOTIFY` refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

/// A consumer position, as announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Position {
    c: String,
    t: String,
    i: String,
    s: i64,
}

#[derive(Default)]
struct Pending {
    outbox: bool,
    resync: bool,
    positions: Vec<Position>,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
    /// False once the sending task ended (its runtime shut down, or its pool closed).
    alive: AtomicBool,
}

/// This process's sender of announcements to one database.
#[derive(Clone)]
pub struct Announcer {
    shared: Arc<Shared>,
}

/// One announcer per database (host, port and name) and process.
static ANNOUNCERS: OnceLock<Mutex<HashMap<String, Announcer>>> = OnceLock::new();

impl Announcer {
    /// The announcer of the database `pool` connects to. It sends through `pool` (or the
    /// pool of whoever asked first), on a task of the current runtime; a new one is started
    /// when that task has ended.
    pub fn of(pool: &PgPool) -> Announcer {
        let key = crate::database::key_of(pool);
        let mut announcers = ANNOUNCERS
            .get_or_init(Default::default)
            .lock()
            .expect("the announcers are sound");
        if let Some(existing) = announcers.get(&key) {
            if existing.shared.alive.load(Ordering::Acquire) {
                return existing.clone();
            }
        }
        let announcer = Announcer::start(pool.clone());
        announcers.insert(key, announcer.clone());
        announcer
    }

    fn start(pool: PgPool) -> Announcer {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            alive: AtomicBool::new(true),
        });
        let announcer = Announcer {
            shared: Arc::clone(&shared),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(send_announcements(pool, Ended(shared)));
            }
            Err(_) => shared.alive.store(false, Ordering::Release),
        }
        announcer
    }

    /// Announces that events were committed to the outbox.
    pub fn outbox_written(&self) {
        self.pending().outbox = true;
        self.shared.wake.notify_one();
    }

    /// Announces that `consumer` committed the event `sequence` of an aggregate.
    pub fn position_applied(
        &self,
        consumer: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) {
        self.pending().positions.push(Position {
            c: consumer.to_owned(),
            t: aggregate_type.to_owned(),
            i: aggregate_id.to_owned(),
            s: sequence,
        });
        self.shared.wake.notify_one();
    }

    /// Announces that many positions changed at once: listeners read theirs again.
    pub fn positions_rewritten(&self) {
        self.pending().resync = true;
        self.shared.wake.notify_one();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .expect("the pending announcements are sound")
    }
}

/// Marks the announcer ended when the sending task is dropped, however it ends.
struct Ended(Arc<Shared>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Release);
    }
}

/// Sends, until the pool closes, everything announced since the previous send: one
/// transaction per round, however many announcements it carries.
async fn send_announcements(pool: PgPool, ended: Ended) {
    let shared = &ended.0;
    loop {
        shared.wake.notified().await;
        let pending = std::mem::take(&mut *shared.pending.lock().expect("pending is sound"));
        let (channels, payloads) = payloads(pending);
        if channels.is_empty() {
            continue;
        }
        let sent = sqlx::query(
            "SELECT pg_notify(channel, payload)
             FROM unnest($1::text[], $2::text[]) AS announcement(channel, payload)",
        )
        .bind(&channels)
        .bind(&payloads)
        .execute(&pool)
        .await;
        match sent {
            Ok(_) => {}
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => tracing::debug!(error = %err, "announcements not sent"),
        }
    }
}

/// The channels and payloads that carry `pending`: positions packed into as few payloads
/// as fit.
fn payloads(pending: Pending) -> (Vec<&'static str>, Vec<String>) {
    let mut channels = Vec::new();
    let mut payloads = Vec::new();
    if pending.outbox {
        channels.push(OUTBOX_CHANNEL);
        payloads.push(String::new());
    }
    if pending.resync {
        channels.push(POSITIONS_CHANNEL);
        payloads.push(r#"{"resync":true}"#.to_owned());
    }
    let mut current = String::new();
    for position in pending.positions {
        let Ok(item) = serde_json::to_string(&position) else {
            continue;
        };
        if item.len() + 2 > MAX_PAYLOAD {
            continue;
        }
        if !current.is_empty() && current.len() + item.len() + 2 > MAX_PAYLOAD {
            channels.push(POSITIONS_CHANNEL);
            payloads.push(format!("[{current}]"));
            current.clear();
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&item);
    }
    if !current.is_empty() {
        channels.push(POSITIONS_CHANNEL);
        payloads.push(format!("[{current}]"));
    }
    (channels, payloads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(n: i64, id: &str) -> Position {
        Position {
            c: "projection-orders".into(),
            t: "order".into(),
            i: id.into(),
            s: n,
        }
    }

    #[test]
    fn positions_are_packed_into_payloads_notify_accepts() {
        let pending = Pending {
            outbox: true,
            resync: false,
            positions: (0..500).map(|n| position(n, &"x".repeat(40))).collect(),
        };
        let (channels, payloads) = payloads(pending);
        assert_eq!(channels[0], OUTBOX_CHANNEL);
        assert!(channels.len() > 2, "500 positions need several payloads");
        let mut seen = 0;
        for payload in &payloads[1..] {
            assert!(payload.len() < 8000, "{} bytes", payload.len());
            let items: Vec<serde_json::Value> = serde_json::from_str(payload).unwrap();
            seen += items.len();
        }
        assert_eq!(seen, 500);
    }

    #[test]
    fn nothing_pending_sends_nothing_and_a_resync_is_its_own_payload() {
        assert_eq!(payloads(Pending::default()).0.len(), 0);
        let (channels, payloads) = payloads(Pending {
            resync: true,
            ..Pending::default()
        });
        assert_eq!(channels, vec![POSITIONS_CHANNEL]);
        assert_eq!(payloads, vec![r#"{"resync":true}"#.to_owned()]);
    }

    #[test]
    fn a_position_too_long_for_a_payload_is_left_out() {
        let (channels, _) = payloads(Pending {
            positions: vec![position(1, &"x".repeat(9000))],
            ..Pending::default()
        });
        assert!(channels.is_empty());
    }
}
