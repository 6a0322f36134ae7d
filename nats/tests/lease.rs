//! Consumer leases against a real Postgres: one holder at a time, taken over once the
//! holder is gone, lost with its connection; and a consumer that does not hold its lease
//! handles nothing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::TestEnv;
use ordo_nats::lease::{lock_key, ConsumerLeases};
use ordo_nats::{run_consumer, ConsumerSpec, EventHandler, HandlerError, ReceivedEvent};
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

/// Another process's hold on a consumer's lease: the same lock on a connection of its own.
async fn hold_elsewhere(env: &TestEnv, consumer: &str) -> PgConnection {
    let mut other = PgConnection::connect(&ordo_tests::database_url(&env.database))
        .await
        .unwrap();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(&env.ns, consumer))
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert!(locked, "nobody holds the lease yet");
    other
}

async fn held_within(lease: &mut ordo_nats::lease::Lease, within: Duration) -> bool {
    tokio::time::timeout(within, lease.acquired()).await.is_ok()
}

#[tokio::test]
async fn a_lease_held_by_another_process_is_taken_once_that_process_is_gone() {
    let env = TestEnv::new().await;
    let other = hold_elsewhere(&env, "projection-x").await;
    let leases = ConsumerLeases::of(&env.pool);
    let mut lease = leases.claim(&env.ns, "projection-x");
    assert!(
        !held_within(&mut lease, Duration::from_secs(1)).await,
        "the lease is not taken while another process holds it"
    );
    // Another consumer's lease is free meanwhile.
    let mut unrelated = leases.claim(&env.ns, "projection-y");
    assert!(held_within(&mut unrelated, Duration::from_secs(5)).await);

    other.close().await.unwrap();
    assert!(
        held_within(&mut lease, Duration::from_secs(5)).await,
        "the lease is taken once its holder is gone"
    );
    assert!(lease.is_held());
}

#[tokio::test]
async fn two_runs_of_a_consumer_in_one_process_hold_its_lease_in_turn() {
    let env = TestEnv::new().await;
    let leases = ConsumerLeases::of(&env.pool);
    let mut first = leases.claim(&env.ns, "saga-x");
    assert!(held_within(&mut first, Duration::from_secs(5)).await);
    let mut second = leases.claim(&env.ns, "saga-x");
    assert!(
        !held_within(&mut second, Duration::from_millis(700)).await,
        "one run at a time"
    );
    drop(first);
    assert!(held_within(&mut second, Duration::from_secs(5)).await);

    // The lock itself is still this process's: no other process can take it.
    let mut other = PgConnection::connect(&ordo_tests::database_url(&env.database))
        .await
        .unwrap();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(&env.ns, "saga-x"))
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert!(
        !locked,
        "the process still holds the lease for its second run"
    );

    // Given back once no run wants it.
    drop(second);
    let key = lock_key(&env.ns, "saga-x");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut other)
            .await
            .unwrap();
        if locked {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease is given back once no run wants it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_lease_whose_connection_is_lost_is_lost_and_then_taken_again() {
    let env = TestEnv::new().await;
    let leases = ConsumerLeases::of(&env.pool);
    let mut lease = leases.claim(&env.ns, "reactor-x");
    assert!(held_within(&mut lease, Duration::from_secs(5)).await);
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(terminated, vec![true], "one connection holds the leases");
    tokio::time::timeout(Duration::from_secs(5), lease.lost())
        .await
        .expect("the holder learns that it lost the lease");
    assert!(
        held_within(&mut lease, Duration::from_secs(5)).await,
        "and takes it again on a new connection"
    );
}

/// Counts the events it is handed.
struct Counter(AtomicUsize);

#[async_trait::async_trait]
impl EventHandler for Counter {
    async fn handle(&self, _event: &ReceivedEvent) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_consumer_whose_lease_another_process_holds_handles_nothing_until_it_takes_over() {
    let env = TestEnv::new().await;
    let other = hold_elsewhere(&env, "projection-standby").await;
    let counter = Arc::new(Counter(AtomicUsize::new(0)));
    let shutdown = CancellationToken::new();
    let task = {
        let (js, pool, ns, handler, shutdown) = (
            env.js.clone(),
            env.pool.clone(),
            env.ns.clone(),
            counter.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            run_consumer(
                js,
                pool,
                &ns,
                ConsumerSpec::new("projection-standby", "order"),
                handler,
                shutdown,
            )
            .await
        })
    };
    for sequence in 1..=3 {
        env.publish_simple("order", "o-1", sequence).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        0,
        "a stand-by handles nothing"
    );

    other.close().await.unwrap();
    common::eventually("the stand-by took over and handled every event", || {
        let counter = counter.clone();
        async move { counter.0.load(Ordering::SeqCst) == 3 }
    })
    .await;
    common::stop_consumer(shutdown, task).await;
}
