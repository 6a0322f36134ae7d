//! Consumer leases: which process runs each durable consumer.
//!
//! A durable consumer shared by several processes would spread one aggregate's events over
//! all of them, so that they arrive out of order and wait on each other's gaps. Instead,
//! each consumer runs in one process at a time: the one holding its lease, a session-level
//! Postgres advisory lock. Every process keeps all of its leases on one connection of its
//! own (outside the pool), held by a keeper task that tries, every [`LEASE_POLL`], the
//! locks its waiting consumers want, gives back the ones nobody wants any more, and checks
//! the connection. A crashed process's connection closes and Postgres frees its locks; a
//! frozen one's session ends after [`IDLE_SESSION_TIMEOUT`] without the keeper's checks; a
//! lost connection tells every consumer of the process to stop pulling. Within a process,
//! two runs of one consumer take the lease in turn.
//!
//! The lease is about order and speed, not correctness: events are still claimed exactly
//! once in Postgres ([`crate::applied`]), so the short overlap while a process learns it lost
//! its connection is harmless.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use crate::subjects::Namespace;

/// How often the keeper tries the leases its consumers wait for and checks its connection:
/// how soon a stand-by takes over from a process that died.
pub const LEASE_POLL: Duration = Duration::from_millis(200);

/// How long the lease connection may stay silent before Postgres ends its session (and
/// frees its leases): a process that froze loses its consumers after this.
pub const IDLE_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The leases of one process on one database.
#[derive(Clone)]
pub struct ConsumerLeases {
    inner: Arc<Inner>,
}

struct Inner {
    connect: PgConnectOptions,
    state: Mutex<State>,
    /// Wakes the keeper (a claim made or ended); shared with it apart from `Inner`, whose
    /// last handle gone stops it.
    wake: Arc<Notify>,
}

#[derive(Default)]
struct State {
    entries: HashMap<i64, Entry>,
    next_claim: u64,
}

/// One consumer's lease: who in this process wants it (the first holds it when locked).
struct Entry {
    name: String,
    claimants: VecDeque<(u64, watch::Sender<bool>)>,
    locked: bool,
}

static KEEPERS: OnceLock<Mutex<HashMap<String, Weak<Inner>>>> = OnceLock::new();

impl ConsumerLeases {
    /// The leases of this process on `pool`'s database (one keeper, started on first use,
    /// stopping once no lease and no handle is left).
    pub fn of(pool: &PgPool) -> Self {
        let key = ordo_store::database::key_of(pool);
        let mut keepers = KEEPERS
            .get_or_init(Default::default)
            .lock()
            .expect("keepers lock");
        if let Some(inner) = keepers.get(&key).and_then(Weak::upgrade) {
            return Self { inner };
        }
        let inner = Arc::new(Inner {
            connect: pool.connect_options().as_ref().clone(),
            state: Mutex::new(State::default()),
            wake: Arc::new(Notify::new()),
        });
        keepers.retain(|_, keeper| keeper.strong_count() > 0);
        keepers.insert(key, Arc::downgrade(&inner));
        tokio::spawn(keep(Arc::downgrade(&inner), inner.wake.clone()));
        Self { inner }
    }

    /// Asks for the lease of consumer `name` in `namespace`; it is held once
    /// [`Lease::acquired`] returns, and given back when the lease is dropped.
    pub fn claim(&self, namespace: &Namespace, name: &str) -> Lease {
        let key = lock_key(namespace, name);
        let (sender, held) = watch::channel(false);
        let id = {
            let mut state = self.inner.state.lock().expect("lease state lock");
            state.next_claim += 1;
            let id = state.next_claim;
            let entry = state.entries.entry(key).or_insert_with(|| Entry {
                name: name.to_owned(),
                claimants: VecDeque::new(),
                locked: false,
            });
            if entry.locked && entry.claimants.is_empty() {
                sender.send_replace(true);
            }
            entry.claimants.push_back((id, sender));
            id
        };
        self.inner.wake.notify_one();
        Lease {
            inner: self.inner.clone(),
            key,
            id,
            held,
        }
    }
}

/// A consumer's claim on its lease.
pub struct Lease {
    inner: Arc<Inner>,
    key: i64,
    id: u64,
    held: watch::Receiver<bool>,
}

impl Lease {
    /// Waits until this process holds the lease for this claim.
    pub async fn acquired(&mut self) {
        // The sender lives as long as the claim's entry, which outlives `self`.
        self.held.wait_for(|held| *held).await.ok();
    }

    /// Waits until the lease is lost (the lease connection failed).
    pub async fn lost(&mut self) {
        self.held.wait_for(|held| !*held).await.ok();
    }

    /// Whether the lease is held right now.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.inner.state.lock().expect("lease state lock");
        if let Some(entry) = state.entries.get_mut(&self.key) {
            let was_first = entry.claimants.front().map(|(id, _)| *id) == Some(self.id);
            entry.claimants.retain(|(id, _)| *id != self.id);
            if was_first && entry.locked {
                if let Some((_, next)) = entry.claimants.front() {
                    next.send_replace(true);
                }
            }
        }
        drop(state);
        self.inner.wake.notify_one();
    }
}

/// The advisory lock key of a consumer: a stable hash of its namespace and name, the same
/// in every process and every build.
pub fn lock_key(namespace: &Namespace, name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("ordo consumer {}/{name}", namespace.as_str()));
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The keeper: takes and gives back the locks, and checks the connection, until the
/// leases are gone.
async fn keep(inner: Weak<Inner>, wake: Arc<Notify>) {
    let mut connection: Option<PgConnection> = None;
    loop {
        let Some(leases) = inner.upgrade() else {
            break;
        };
        if let Err(err) = keep_once(&leases, &mut connection).await {
            warn!(error = %err, "the consumer lease connection failed; every consumer of this process stops pulling until it holds its lease again");
            if let Some(connection) = connection.take() {
                connection.close().await.ok();
            }
            let mut state = leases.state.lock().expect("lease state lock");
            for entry in state.entries.values_mut() {
                entry.locked = false;
                for (_, claimant) in &entry.claimants {
                    claimant.send_replace(false);
                }
            }
        }
        drop(leases);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(LEASE_POLL) => {}
        }
    }
    if let Some(connection) = connection {
        connection.close().await.ok();
    }
}

async fn keep_once(
    leases: &Inner,
    connection: &mut Option<PgConnection>,
) -> Result<(), sqlx::Error> {
    let (wanted, unwanted) = {
        let mut state = leases.state.lock().expect("lease state lock");
        state
            .entries
            .retain(|_, entry| entry.locked || !entry.claimants.is_empty());
        let wanted: Vec<i64> = state
            .entries
            .iter()
            .filter(|(_, entry)| !entry.locked && !entry.claimants.is_empty())
            .map(|(key, _)| *key)
            .collect();
        let unwanted: Vec<i64> = state
            .entries
            .iter()
            .filter(|(_, entry)| entry.locked && entry.claimants.is_empty())
            .map(|(key, _)| *key)
            .collect();
        (wanted, unwanted)
    };
    if connection.is_none() {
        if wanted.is_empty() {
            return Ok(());
        }
        let mut opened = PgConnection::connect_with(&leases.connect).await?;
        sqlx::query(&format!(
            "SET idle_session_timeout = {}",
            IDLE_SESSION_TIMEOUT.as_millis()
        ))
        .execute(&mut opened)
        .await?;
        *connection = Some(opened);
    }
    let connection = connection.as_mut().expect("connected above");
    if !unwanted.is_empty() {
        sqlx::query("SELECT pg_advisory_unlock(key) FROM unnest($1::int8[]) AS key")
            .bind(&unwanted)
            .execute(&mut *connection)
            .await?;
        let mut state = leases.state.lock().expect("lease state lock");
        for key in &unwanted {
            if let Some(entry) = state.entries.get_mut(key) {
                entry.locked = false;
                // Claimed again while it was being given back: that claim waits for the
                // next round.
                for (_, claimant) in &entry.claimants {
                    claimant.send_replace(false);
                }
            }
        }
    }
    if wanted.is_empty() {
        // Leases are only as good as their connection.
        sqlx::query("SELECT 1").execute(&mut *connection).await?;
        return Ok(());
    }
    let locked: Vec<i64> = sqlx::query_scalar(
        "SELECT key FROM unnest($1::int8[]) AS key WHERE pg_try_advisory_lock(key)",
    )
    .bind(&wanted)
    .fetch_all(&mut *connection)
    .await?;
    let mut state = leases.state.lock().expect("lease state lock");
    for key in locked {
        if let Some(entry) = state.entries.get_mut(&key) {
            entry.locked = true;
            match entry.claimants.front() {
                Some((_, first)) => {
                    info!(consumer = %entry.name, "this process runs the consumer");
                    first.send_replace(true);
                }
                None => {
                    debug!(consumer = %entry.name, "lease taken after its claim ended; given back next round")
                }
            }
        }
    }
    Ok(())
}
