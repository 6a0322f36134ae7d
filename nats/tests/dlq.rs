//! Dead letters against real Postgres and NATS: parking an aggregate behind its dead
//! letter, reading dead letters, re-driving them in order, and the handler's hook.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{create_effects_table, effects, eventually, TestEnv};
use ordo_nats::consumer::{consumer_pending, dlq_header};
use ordo_nats::envelope::header;
use ordo_nats::{
    apply_once, dlq, run_consumer, ConsumerSpec, EventHandler, HandlerError, ReceivedEvent,
};
use serde_json::json;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A handler that fails permanently on the first event of some aggregates while a shared
/// `broken` flag is set, and otherwise records each event once via `apply_once`.
struct Breakable {
    pool: PgPool,
    consumer: String,
    broken: Arc<AtomicBool>,
    /// The aggregates whose sequence 1 fails while broken.
    breaks_on: Vec<String>,
    /// Every call of `handle`: (aggregate id, sequence), in order.
    calls: Mutex<Vec<(String, i64)>>,
    /// Every call of `on_dead_letter`: (aggregate id, sequence, error).
    dead: Mutex<Vec<(String, i64, String)>>,
}

impl Breakable {
    fn new(env: &TestEnv, consumer: &str, broken: &Arc<AtomicBool>, breaks_on: &[&str]) -> Self {
        Self {
            pool: env.pool.clone(),
            consumer: consumer.into(),
            broken: broken.clone(),
            breaks_on: breaks_on.iter().map(|s| s.to_string()).collect(),
            calls: Mutex::new(Vec::new()),
            dead: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<(String, i64)> {
        self.calls.lock().unwrap().clone()
    }

    fn calls_for(&self, aggregate_id: &str) -> Vec<i64> {
        self.calls()
            .into_iter()
            .filter(|(id, _)| id == aggregate_id)
            .map(|(_, sequence)| sequence)
            .collect()
    }

    fn dead(&self) -> Vec<(String, i64, String)> {
        self.dead.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl EventHandler for Breakable {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        self.calls
            .lock()
            .unwrap()
            .push((event.aggregate_id.clone(), event.sequence));
        if self.broken.load(Ordering::SeqCst)
            && event.sequence == 1
            && self.breaks_on.contains(&event.aggregate_id)
        {
            return Err(HandlerError::permanent(anyhow::anyhow!(
                "{} {} is broken",
                event.aggregate_id,
                event.sequence
            )));
        }
        let (consumer, aggregate_id, sequence) = (
            self.consumer.clone(),
            event.aggregate_id.clone(),
            event.sequence,
        );
        apply_once(&self.pool, &self.consumer, event, move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO test_effects (consumer, aggregate_id, sequence) VALUES ($1, $2, $3)",
                )
                .bind(consumer)
                .bind(aggregate_id)
                .bind(sequence)
                .execute(&mut *tx)
                .await?;
                Ok(())
            })
        })
        .await
        .map(|_| ())
    }

    async fn on_dead_letter(&self, event: &ReceivedEvent, error: &str) {
        self.dead.lock().unwrap().push((
            event.aggregate_id.clone(),
            event.sequence,
            error.to_owned(),
        ));
    }
}

/// Fast retries, and enough of them for an event that waits on a claim's gap.
fn spec(name: &str) -> ConsumerSpec {
    ConsumerSpec {
        max_deliver: 50,
        backoff: vec![Duration::from_millis(20), Duration::from_millis(40)],
        ..ConsumerSpec::new(name, "order")
    }
}

fn spawn_consumer(
    env: &TestEnv,
    handler: Arc<Breakable>,
    shutdown: &CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    let (js, pool, ns, shutdown) = (
        env.js.clone(),
        env.pool.clone(),
        env.ns.clone(),
        shutdown.clone(),
    );
    let spec = spec(&handler.consumer);
    tokio::spawn(async move { run_consumer(js, pool, &ns, spec, handler, shutdown).await })
}

async fn settled(env: &TestEnv, consumer: &str) {
    eventually(&format!("{consumer} has nothing pending"), || async {
        let lag = consumer_pending(&env.js, &env.ns, consumer, "order")
            .await
            .unwrap();
        lag.pending == 0 && lag.ack_pending == 0
    })
    .await;
}

async fn dlq_len(env: &TestEnv) -> u64 {
    env.stream_len(&env.ns.dlq_stream()).await
}

/// Consumer `view` breaks on aggregate `a`; `bystander` reads the same stream and never
/// breaks. Events a1, b1, a2, b2, a3, b3 are published (stream sequences 1 to 6).
struct Parked {
    env: TestEnv,
    broken: Arc<AtomicBool>,
    view: Arc<Breakable>,
    bystander: Arc<Breakable>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Parked {
    async fn new() -> Self {
        let env = TestEnv::new().await;
        create_effects_table(&env.pool).await;
        let broken = Arc::new(AtomicBool::new(true));
        let view = Arc::new(Breakable::new(&env, "view", &broken, &["a"]));
        let bystander = Arc::new(Breakable::new(&env, "bystander", &broken, &[]));
        let shutdown = CancellationToken::new();
        let tasks = vec![
            spawn_consumer(&env, view.clone(), &shutdown),
            spawn_consumer(&env, bystander.clone(), &shutdown),
        ];
        for sequence in 1..=3 {
            env.publish_simple("order", "a", sequence).await;
            env.publish_simple("order", "b", sequence).await;
        }
        eventually("the dead letter and the two parked events", || async {
            dlq_len(&env).await == 3
        })
        .await;
        settled(&env, "view").await;
        settled(&env, "bystander").await;
        Self {
            env,
            broken,
            view,
            bystander,
            shutdown,
            tasks,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the consumer stops on shutdown")
                .unwrap()
                .unwrap();
        }
        self.env.cleanup().await;
    }
}

#[tokio::test]
async fn a_dead_letter_parks_later_events_of_its_aggregate_while_others_flow() {
    let p = Parked::new().await;
    let env = &p.env;

    assert_eq!(effects(&env.pool, "view", "b").await, vec![1, 2, 3]);
    assert!(effects(&env.pool, "view", "a").await.is_empty());
    assert_eq!(
        p.view.calls_for("a"),
        vec![1],
        "the parked events never reached the handler"
    );

    let letters = dlq::list(&env.js, &env.ns, None).await.unwrap();
    let summary: Vec<_> = letters
        .iter()
        .map(|l| (l.dlq_sequence, l.sequence, l.parked, l.error.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 1, false, "a 1 is broken"),
            (2, 2, true, "parked behind dead letter 1"),
            (3, 3, true, "parked behind dead letter 1"),
        ]
    );
    let raw = env
        .js
        .get_stream(env.ns.dlq_stream())
        .await
        .unwrap()
        .get_raw_message(2)
        .await
        .unwrap();
    assert_eq!(
        raw.headers.get(dlq_header::PARKED).unwrap().as_str(),
        "true"
    );

    let parks = dlq::parked(&env.pool).await.unwrap();
    assert_eq!(parks.len(), 1, "{parks:?}");
    assert_eq!(
        (
            parks[0].consumer.as_str(),
            parks[0].aggregate_type.as_str(),
            parks[0].aggregate_id.as_str(),
            parks[0].dlq_sequence,
            parks[0].error.as_str(),
        ),
        ("view", "order", "a", 1, "a 1 is broken")
    );

    // The other consumer was never held up.
    assert_eq!(effects(&env.pool, "bystander", "a").await, vec![1, 2, 3]);
    p.stop().await;
}

#[tokio::test]
async fn redrive_releases_the_parked_events_in_order_after_the_cause_is_fixed() {
    let p = Parked::new().await;
    let env = &p.env;
    let bystander_calls = p.bystander.calls().len();
    assert_eq!(bystander_calls, 6);

    p.broken.store(false, Ordering::SeqCst);
    let report = dlq::redrive(&env.js, &env.pool, &env.ns, 1).await.unwrap();
    assert_eq!(report.redriven, vec![1, 2, 3]);
    assert_eq!(
        report.unparked,
        vec![("view".to_owned(), "order".to_owned(), "a".to_owned())]
    );

    eventually("a1, a2, a3 are applied", || async {
        effects(&env.pool, "view", "a").await == vec![1, 2, 3]
    })
    .await;
    settled(env, "view").await;
    settled(env, "bystander").await;
    assert_eq!(
        effects(&env.pool, "view", "a").await,
        vec![1, 2, 3],
        "in order, once each"
    );
    assert_eq!(
        p.view.calls_for("a"),
        vec![1, 1, 2, 3],
        "the failed attempt, then the three re-driven events"
    );
    assert_eq!(dlq_len(env).await, 0);
    assert!(dlq::list(&env.js, &env.ns, None).await.unwrap().is_empty());
    assert!(dlq::parked(&env.pool).await.unwrap().is_empty());

    // The re-driven events went back to the original stream, addressed to `view` alone.
    let order = env.ns.stream_name("order");
    assert_eq!(env.stream_len(&order).await, 9);
    let last = env
        .js
        .get_stream(&order)
        .await
        .unwrap()
        .get_raw_message(9)
        .await
        .unwrap();
    assert_eq!(
        last.headers.get(header::REDRIVE_FOR).unwrap().as_str(),
        "view"
    );
    assert_eq!(
        last.headers.get(header::MSG_ID).unwrap().as_str(),
        "order:a:3:redrive:3"
    );
    assert!(last.headers.get(dlq_header::ERROR).is_none());

    // The bystander acked them without calling its handler.
    assert_eq!(p.bystander.calls().len(), bystander_calls);
    assert_eq!(effects(&env.pool, "bystander", "a").await, vec![1, 2, 3]);
    p.stop().await;
}

#[tokio::test]
async fn a_live_event_arriving_between_unpark_and_redrive_waits_for_the_redriven_ones() {
    let p = Parked::new().await;
    let env = &p.env;
    p.broken.store(false, Ordering::SeqCst);

    // What a re-drive does first; a4 then reaches `view` before the re-driven events.
    sqlx::query("DELETE FROM dead_letter_parks")
        .execute(&env.pool)
        .await
        .unwrap();
    env.publish_simple("order", "a", 4).await;
    eventually("view has tried a4", || async {
        p.view.calls_for("a").contains(&4)
    })
    .await;
    assert!(effects(&env.pool, "view", "a").await.is_empty());

    let report = dlq::redrive(&env.js, &env.pool, &env.ns, 1).await.unwrap();
    assert_eq!(report.redriven, vec![1, 2, 3]);
    assert!(report.unparked.is_empty(), "already unparked");
    eventually("a1 to a4 are applied in order", || async {
        effects(&env.pool, "view", "a").await == vec![1, 2, 3, 4]
    })
    .await;
    settled(env, "view").await;
    assert_eq!(dlq_len(env).await, 0);
    assert_eq!(effects(&env.pool, "bystander", "a").await, vec![1, 2, 3, 4]);
    p.stop().await;
}

#[tokio::test]
async fn list_and_show_describe_dead_letters() {
    let p = Parked::new().await;
    let env = &p.env;

    let letters = dlq::list(&env.js, &env.ns, None).await.unwrap();
    assert_eq!(letters.len(), 3);
    let first = &letters[0];
    assert_eq!(first.dlq_sequence, 1);
    assert_eq!(first.consumer, "view");
    assert_eq!(
        first.original_subject,
        env.ns.event_subject("order", "a", "ItemAdded")
    );
    assert_eq!(first.original_stream, env.ns.stream_name("order"));
    assert_eq!(first.stream_sequence, 1);
    assert_eq!(
        (
            first.aggregate_type.as_str(),
            first.aggregate_id.as_str(),
            first.event_type.as_str(),
            first.sequence
        ),
        ("order", "a", "ItemAdded", 1)
    );
    assert_eq!(first.error, "a 1 is broken");
    assert_eq!(first.attempts, 1);
    assert!(!first.parked);
    assert!((chrono::Utc::now() - first.failed_at).num_seconds().abs() < 60);
    assert_eq!(first.payload, json!({"n": 1}));
    assert_eq!(first.headers[header::MSG_ID], "order:a:1");
    assert_eq!(
        first.headers[header::EVENT_ID],
        ordo_nats::envelope::event_id("order", "a", 1).to_string()
    );
    assert!(
        first.headers.keys().all(|k| !k.starts_with("Ordo-Dlq-")),
        "{:?}",
        first.headers
    );

    let second = &letters[1];
    assert_eq!(
        (second.stream_sequence, second.sequence, second.parked),
        (3, 2, true)
    );
    assert_eq!(second.error, "parked behind dead letter 1");
    assert_eq!(second.attempts, 1);

    assert_eq!(
        dlq::list(&env.js, &env.ns, Some("view")).await.unwrap(),
        letters
    );
    assert!(dlq::list(&env.js, &env.ns, Some("bystander"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        dlq::show(&env.js, &env.ns, 2).await.unwrap(),
        letters[1].clone()
    );
    let json = serde_json::to_value(&letters[1]).unwrap();
    assert_eq!(json["parked"], true);

    let missing = dlq::show(&env.js, &env.ns, 99).await.unwrap_err();
    assert_eq!(missing.to_string(), "no dead letter 99");
    let refused = dlq::redrive(&env.js, &env.pool, &env.ns, 2)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("behind dead letter 1"),
        "{refused}"
    );
    assert_eq!(dlq_len(env).await, 3, "a refused re-drive changes nothing");
    p.stop().await;
}

#[tokio::test]
async fn on_dead_letter_is_called_with_the_error() {
    let p = Parked::new().await;
    assert_eq!(
        p.view.dead(),
        vec![("a".to_owned(), 1, "a 1 is broken".to_owned())],
        "once, for the failed event; not for the parked ones"
    );
    assert!(p.bystander.dead().is_empty());
    p.stop().await;
}

#[tokio::test]
async fn redrive_all_empties_the_dlq() {
    let env = TestEnv::new().await;
    create_effects_table(&env.pool).await;
    let broken = Arc::new(AtomicBool::new(true));
    let view = Arc::new(Breakable::new(&env, "view", &broken, &["a", "c"]));
    let ledger = Arc::new(Breakable::new(&env, "ledger", &broken, &["a", "c"]));
    let shutdown = CancellationToken::new();
    let tasks = [
        spawn_consumer(&env, view.clone(), &shutdown),
        spawn_consumer(&env, ledger.clone(), &shutdown),
    ];
    for sequence in 1..=2 {
        env.publish_simple("order", "a", sequence).await;
        env.publish_simple("order", "c", sequence).await;
    }
    env.publish_simple("order", "b", 1).await;
    eventually(
        "each consumer dead-letters a1, c1 and parks a2, c2",
        || async { dlq_len(&env).await == 8 },
    )
    .await;
    settled(&env, "view").await;
    settled(&env, "ledger").await;
    assert_eq!(dlq::parked(&env.pool).await.unwrap().len(), 4);
    broken.store(false, Ordering::SeqCst);

    let view_letters: Vec<u64> = dlq::list(&env.js, &env.ns, Some("view"))
        .await
        .unwrap()
        .iter()
        .map(|l| l.dlq_sequence)
        .collect();
    let report = dlq::redrive_all(&env.js, &env.pool, &env.ns, Some("view"))
        .await
        .unwrap();
    let mut redriven = report.redriven.clone();
    redriven.sort_unstable();
    assert_eq!(redriven, view_letters);
    assert_eq!(report.unparked.len(), 2);
    for id in ["a", "c"] {
        eventually("view applies the re-driven events in order", || async {
            effects(&env.pool, "view", id).await == vec![1, 2]
        })
        .await;
    }
    settled(&env, "view").await;
    settled(&env, "ledger").await;
    assert_eq!(
        dlq::list(&env.js, &env.ns, Some("ledger"))
            .await
            .unwrap()
            .len(),
        4,
        "ledger skipped what was re-driven for view and kept its own dead letters"
    );
    assert!(effects(&env.pool, "ledger", "a").await.is_empty());

    let report = dlq::redrive_all(&env.js, &env.pool, &env.ns, None)
        .await
        .unwrap();
    assert_eq!(report.redriven.len(), 4);
    for id in ["a", "c"] {
        eventually("ledger applies the re-driven events in order", || async {
            effects(&env.pool, "ledger", id).await == vec![1, 2]
        })
        .await;
    }
    settled(&env, "view").await;
    settled(&env, "ledger").await;
    assert_eq!(dlq_len(&env).await, 0);
    assert!(dlq::parked(&env.pool).await.unwrap().is_empty());
    assert_eq!(
        view.calls_for("a"),
        vec![1, 1, 2],
        "view did not see ledger's re-drive"
    );
    assert_eq!(effects(&env.pool, "view", "b").await, vec![1]);

    shutdown.cancel();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    env.cleanup().await;
}
