//! The consumer loop against real Postgres and NATS: retries, dead letters, poison
//! messages, duplicate deliveries, out-of-order arrival and graceful shutdown.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{create_effects_table, effects, eventually, TestEnv};
use ordo_nats::consumer::{consumer_pending, dlq_header};
use ordo_nats::envelope::header;
use ordo_nats::{
    apply_once, run_consumer, ConsumerSpec, EventHandler, EventRow, HandlerError, OutgoingEvent,
    ReceivedEvent,
};
use serde_json::json;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A configurable handler: fails some attempts, then records the event once via
/// `apply_once`, counting every call.
struct Recorder {
    pool: PgPool,
    consumer: String,
    calls: AtomicUsize,
    /// Attempts (per delivery count) that fail with a retryable error before success.
    fail_first: i64,
    /// Aggregates whose events always fail, retryably.
    always_fail: Option<String>,
    /// Aggregates whose events fail permanently.
    permanent_fail: Option<String>,
    /// How long each call takes.
    slow: Duration,
}

impl Recorder {
    fn new(env: &TestEnv, consumer: &str) -> Self {
        Self {
            pool: env.pool.clone(),
            consumer: consumer.into(),
            calls: AtomicUsize::new(0),
            fail_first: 0,
            always_fail: None,
            permanent_fail: None,
            slow: Duration::ZERO,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.slow).await;
        if event.delivered <= self.fail_first {
            return Err(HandlerError::retry(anyhow::anyhow!(
                "flaky attempt {}",
                event.delivered
            )));
        }
        if self.always_fail.as_deref() == Some(event.aggregate_id.as_str()) {
            return Err(HandlerError::retry(anyhow::anyhow!(
                "stock service always fails"
            )));
        }
        if self.permanent_fail.as_deref() == Some(event.aggregate_id.as_str()) {
            return Err(HandlerError::permanent(anyhow::anyhow!("unknown sku")));
        }
        let (consumer, aggregate_id, sequence) = (
            self.consumer.clone(),
            event.aggregate_id.clone(),
            event.sequence,
        );
        apply_once(&self.pool, &self.consumer, event, move |tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO test_effects (consumer, aggregate_id, sequence) VALUES ($1, $2, $3)")
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
}

fn fast_spec(name: &str) -> ConsumerSpec {
    ConsumerSpec {
        max_deliver: 3,
        backoff: vec![Duration::from_millis(20), Duration::from_millis(40)],
        ..ConsumerSpec::new(name, "order")
    }
}

fn spawn_consumer(
    env: &TestEnv,
    spec: ConsumerSpec,
    handler: Arc<Recorder>,
    shutdown: &CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    let (js, pool, ns, shutdown) = (
        env.js.clone(),
        env.pool.clone(),
        env.ns.clone(),
        shutdown.clone(),
    );
    tokio::spawn(async move { run_consumer(js, pool, &ns, spec, handler, shutdown).await })
}

/// Publishes an `order` event straight to the stream, optionally under another msg id.
async fn publish(env: &TestEnv, aggregate_id: &str, sequence: i64, msg_id: Option<&str>) {
    let row = EventRow {
        position: sequence,
        aggregate_type: "order".into(),
        aggregate_id: aggregate_id.into(),
        sequence,
        event_type: "ItemAdded".into(),
        event_version: "1.0".into(),
        payload: json!({"ItemAdded": {"n": sequence}}),
        metadata: json!({"correlation_id": "req-1"}),
        recorded_at: chrono::Utc::now(),
    };
    let mut event = OutgoingEvent::from_row(&env.ns, &row);
    if let Some(id) = msg_id {
        event.headers.insert(header::MSG_ID, id);
    }
    env.js
        .publish_with_headers(event.subject, event.headers, event.payload)
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn setup() -> TestEnv {
    let env = TestEnv::new().await;
    create_effects_table(&env.pool).await;
    env
}

#[tokio::test]
async fn a_flaky_handler_applies_the_event_exactly_once_after_retries() {
    let env = setup().await;
    let handler = Arc::new(Recorder {
        fail_first: 2,
        ..Recorder::new(&env, "flaky")
    });
    let shutdown = CancellationToken::new();
    let task = spawn_consumer(&env, fast_spec("flaky"), handler.clone(), &shutdown);
    publish(&env, "o-1", 1, None).await;

    eventually("the event is applied", || async {
        effects(&env.pool, "flaky", "o-1").await == vec![1]
    })
    .await;
    eventually("the consumer has nothing in flight", || async {
        let lag = consumer_pending(&env.js, &env.ns, "flaky", "order")
            .await
            .unwrap();
        lag.pending == 0 && lag.ack_pending == 0
    })
    .await;
    assert_eq!(handler.calls(), 3, "two failures, then success");
    assert_eq!(env.stream_len(&env.ns.dlq_stream()).await, 0);
    common::stop_consumer(shutdown, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn an_always_failing_event_is_dead_lettered_and_the_consumer_moves_on() {
    let env = setup().await;
    let handler = Arc::new(Recorder {
        always_fail: Some("o-bad".into()),
        ..Recorder::new(&env, "dl")
    });
    let shutdown = CancellationToken::new();
    let task = spawn_consumer(&env, fast_spec("dl"), handler.clone(), &shutdown);
    publish(&env, "o-bad", 1, None).await;
    publish(&env, "o-good", 1, None).await;

    eventually("the good event is applied", || async {
        effects(&env.pool, "dl", "o-good").await == vec![1]
    })
    .await;
    let dlq = env.ns.dlq_stream();
    eventually("the bad event is dead-lettered", || async {
        env.stream_len(&dlq).await == 1
    })
    .await;

    let stream = env.js.get_stream(&dlq).await.unwrap();
    let dead = stream.get_raw_message(1).await.unwrap();
    assert_eq!(dead.subject.as_str(), env.ns.dlq_subject("dl"));
    let h = |name: &str| {
        dead.headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(h(dlq_header::ERROR), "stock service always fails");
    assert_eq!(h(dlq_header::ATTEMPTS), "3");
    assert_eq!(h(dlq_header::CONSUMER), "dl");
    assert_eq!(h(dlq_header::ORIGINAL_STREAM), env.ns.stream_name("order"));
    assert_eq!(h(dlq_header::STREAM_SEQUENCE), "1");
    assert_eq!(
        h(dlq_header::ORIGINAL_SUBJECT),
        env.ns.event_subject("order", "o-bad", "ItemAdded")
    );
    assert_eq!(h(dlq_header::ORIGINAL_MSG_ID), "order:o-bad:1");
    assert!(!h(dlq_header::FAILED_AT).is_empty());
    // The original headers and payload travel with it, so it can be re-driven.
    assert_eq!(
        h(header::EVENT_ID),
        ordo_nats::envelope::event_id("order", "o-bad", 1).to_string()
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&dead.payload).unwrap(),
        json!({"n": 1})
    );

    eventually("nothing is left in flight", || async {
        let lag = consumer_pending(&env.js, &env.ns, "dl", "order")
            .await
            .unwrap();
        lag.pending == 0 && lag.ack_pending == 0
    })
    .await;
    assert_eq!(
        handler.calls(),
        4,
        "three attempts at the bad event, one at the good one"
    );
    assert!(effects(&env.pool, "dl", "o-bad").await.is_empty());
    common::stop_consumer(shutdown, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_at_once() {
    let env = setup().await;
    let handler = Arc::new(Recorder {
        permanent_fail: Some("o-x".into()),
        ..Recorder::new(&env, "perm")
    });
    let shutdown = CancellationToken::new();
    let task = spawn_consumer(&env, fast_spec("perm"), handler.clone(), &shutdown);
    publish(&env, "o-x", 1, None).await;
    let dlq = env.ns.dlq_stream();
    eventually("the event is dead-lettered", || async {
        env.stream_len(&dlq).await == 1
    })
    .await;
    let dead = env
        .js
        .get_stream(&dlq)
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    assert_eq!(
        dead.headers.get(dlq_header::ATTEMPTS).unwrap().as_str(),
        "1"
    );
    assert_eq!(
        dead.headers.get(dlq_header::ERROR).unwrap().as_str(),
        "unknown sku"
    );
    assert_eq!(handler.calls(), 1);
    common::stop_consumer(shutdown, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_the_consumer_moves_on() {
    let env = setup().await;
    let handler = Arc::new(Recorder::new(&env, "poison"));
    let shutdown = CancellationToken::new();
    let task = spawn_consumer(&env, fast_spec("poison"), handler.clone(), &shutdown);
    env.js
        .publish(
            env.ns.event_subject("order", "o-1", "Garbage"),
            "not json".into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    publish(&env, "o-1", 1, None).await;

    eventually("the next event is applied", || async {
        effects(&env.pool, "poison", "o-1").await == vec![1]
    })
    .await;
    let dlq = env.ns.dlq_stream();
    eventually("the poison message is dead-lettered", || async {
        env.stream_len(&dlq).await == 1
    })
    .await;
    let dead = env
        .js
        .get_stream(&dlq)
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    let error = dead
        .headers
        .get(dlq_header::ERROR)
        .unwrap()
        .as_str()
        .to_owned();
    assert!(error.starts_with("poison message"), "{error}");
    assert_eq!(&dead.payload[..], b"not json");
    assert_eq!(
        handler.calls(),
        1,
        "the handler never sees the poison message"
    );
    common::stop_consumer(shutdown, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_duplicate_delivery_is_skipped_by_the_claim() {
    let env = setup().await;
    let handler = Arc::new(Recorder::new(&env, "dup"));
    let shutdown = CancellationToken::new();
    let task = spawn_consumer(&env, fast_spec("dup"), handler.clone(), &shutdown);
    publish(&env, "o-1", 1, None).await;
    // The same event again under another msg id: JetStream cannot de-duplicate it.
    publish(&env, "o-1", 1, Some("order:o-1:1:again")).await;
    publish(&env, "o-1", 2, None).await;
    assert_eq!(env.stream_len(&env.ns.stream_name("order")).await, 3);

    eventually("every message is handled", || async {
        handler.calls() == 3
    })
    .await;
    eventually("both events are applied", || async {
        effects(&env.pool, "dup", "o-1").await == vec![1, 2]
    })
    .await;
    eventually("nothing is left in flight", || async {
        consumer_pending(&env.js, &env.ns, "dup", "order")
            .await
            .unwrap()
            .ack_pending
            == 0
    })
    .await;
    assert_eq!(
        effects(&env.pool, "dup", "o-1").await,
        vec![1, 2],
        "applied once each"
    );
    common::stop_consumer(shutdown, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn an_event_arriving_before_its_predecessor_waits_for_it() {
    let env = setup().await;
    let handler = Arc::new(Recorder::new(&env, "gap"));
    let shutdown = CancellationToken::new();
    let spec = ConsumerSpec {
        max_deliver: 20,
        ..fast_spec("gap")
    };
    let task = spawn_consumer(&env, spec, handler.clone(), &shutdown);
    publish(&env, "o-1", 2, None).await;
    publish(&env, "o-1", 1, None).await;
    eventually("both events are applied, in order", || async {
        effects(&env.pool, "gap", "o-1").await == vec![1, 2]
    })
    .await;
    assert!(
        handler.calls() >= 3,
        "event 2 was tried before event 1 arrived"
    );
    assert_eq!(env.stream_len(&env.ns.dlq_stream()).await, 0);
    common::stop_consumer(shutdown, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn shutdown_finishes_the_event_in_hand() {
    let env = setup().await;
    let handler = Arc::new(Recorder {
        slow: Duration::from_millis(300),
        ..Recorder::new(&env, "slow")
    });
    let shutdown = CancellationToken::new();
    let task = spawn_consumer(&env, fast_spec("slow"), handler.clone(), &shutdown);
    publish(&env, "o-1", 1, None).await;
    eventually("the handler has started", || async { handler.calls() == 1 }).await;
    common::stop_consumer(shutdown, task).await;
    assert_eq!(
        effects(&env.pool, "slow", "o-1").await,
        vec![1],
        "the event in hand was finished"
    );
    eventually("its ack reached the server", || async {
        let lag = consumer_pending(&env.js, &env.ns, "slow", "order")
            .await
            .unwrap();
        lag.pending == 0 && lag.ack_pending == 0
    })
    .await;
    env.cleanup().await;
}

#[tokio::test]
async fn ensure_consumer_is_idempotent_and_applies_changes() {
    let env = setup().await;
    let spec = fast_spec("ensure");
    ordo_nats::ensure_consumer(&env.js, &env.ns, &spec)
        .await
        .unwrap();
    ordo_nats::ensure_consumer(&env.js, &env.ns, &spec)
        .await
        .unwrap();
    let changed = ConsumerSpec {
        max_ack_pending: 10,
        ..spec
    };
    let consumer = ordo_nats::ensure_consumer(&env.js, &env.ns, &changed)
        .await
        .unwrap();
    assert_eq!(consumer.cached_info().config.max_ack_pending, 10);
    assert_eq!(
        consumer.cached_info().config.filter_subject,
        env.ns.stream_filter("order")
    );
    assert_eq!(consumer.cached_info().config.max_deliver, 4);
    env.cleanup().await;
}

/// Records events once, each only after the gate opens.
struct Gated {
    recorder: Recorder,
    open: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl EventHandler for Gated {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let mut open = self.open.clone();
        open.wait_for(|open| *open).await.ok();
        self.recorder.handle(event).await
    }
}

#[tokio::test]
async fn a_consumer_deleted_with_no_pull_request_waiting_is_set_up_again() {
    // One lane holding at most 32 events, and pull requests of 34: with the handler held,
    // the 34th event waits to be handed over while the request it came with is complete,
    // so when the stream goes no pull request is waiting to be told (no 409). The next
    // request reaches no one; the loop must notice the consumer is gone.
    let env = setup().await;
    let (gate, open) = tokio::sync::watch::channel(false);
    let handler = Arc::new(Gated {
        recorder: Recorder::new(&env, "orphan"),
        open,
    });
    let spec = ConsumerSpec {
        lanes: 1,
        batch: 34,
        ..fast_spec("orphan")
    };
    let shutdown = CancellationToken::new();
    let (js, pool, ns, token) = (
        env.js.clone(),
        env.pool.clone(),
        env.ns.clone(),
        shutdown.clone(),
    );
    let handler_for_loop: Arc<dyn EventHandler> = handler.clone();
    let task =
        tokio::spawn(
            async move { run_consumer(js, pool, &ns, spec, handler_for_loop, token).await },
        );
    for n in 1..=34 {
        publish(&env, &format!("a-{n}"), 1, None).await;
    }
    let stream = env.ns.stream_name("order");
    eventually(
        "34 events delivered and no pull request waiting",
        || async {
            let Ok(mut consumer) = env
                .js
                .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                    "orphan", &stream,
                )
                .await
            else {
                return false;
            };
            let Ok(info) = consumer.info().await else {
                return false;
            };
            info.num_ack_pending == 34 && info.num_waiting == 0
        },
    )
    .await;

    env.js.delete_stream(&stream).await.unwrap();
    ordo_nats::definitions::ensure_streams(&env.js, &env.ns)
        .await
        .unwrap();
    gate.send(true).unwrap();
    publish(&env, "b-1", 1, None).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while effects(&env.pool, "orphan", "b-1").await != vec![1] {
        assert!(
            std::time::Instant::now() < deadline,
            "the consumer was never set up again on the recreated stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(effects(&env.pool, "orphan", "a-34").await, vec![1]);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the consumer stops on shutdown")
        .unwrap()
        .unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_consumer_whose_stream_was_deleted_and_recreated_sets_itself_up_again() {
    let env = setup().await;
    let handler = Arc::new(Recorder::new(&env, "lost"));
    let shutdown = CancellationToken::new();
    let task = spawn_consumer(&env, fast_spec("lost"), handler.clone(), &shutdown);
    publish(&env, "o-1", 1, None).await;
    eventually("the first event is applied", || async {
        effects(&env.pool, "lost", "o-1").await == vec![1]
    })
    .await;

    // The stream goes (and its consumer with it) and comes back empty, as an operator
    // deleting a damaged stream and refilling it does. Whether or not the server told the
    // loop's pull request, the loop must find its consumer gone and create it again.
    let stream = env.ns.stream_name("order");
    env.js.delete_stream(&stream).await.unwrap();
    ordo_nats::definitions::ensure_streams(&env.js, &env.ns)
        .await
        .unwrap();
    publish(&env, "o-1", 2, None).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while effects(&env.pool, "lost", "o-1").await != vec![1, 2] {
        assert!(
            std::time::Instant::now() < deadline,
            "the consumer never read the recreated stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::stop_consumer(shutdown, task).await;
    env.cleanup().await;
}
