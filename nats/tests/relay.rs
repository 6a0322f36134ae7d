//! The outbox relay against real Postgres and NATS: completeness, order, headers,
//! de-duplication after crashes, and a single leader among concurrent relays.

mod common;

use std::time::Duration;

use common::{assert_exactly_once_in_order, eventually, TestEnv};
use ordo_nats::envelope::header;
use ordo_nats::Relay;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Interleaves events of several aggregates of two types, as concurrent commands would.
async fn insert_interleaved(env: &TestEnv, per_aggregate: i64) -> i64 {
    let aggregates = [
        ("order", "o-1"),
        ("order", "o-2"),
        ("inventory", "sku-1"),
        ("inventory", "sku-2"),
    ];
    for sequence in 1..=per_aggregate {
        for (aggregate_type, aggregate_id) in aggregates {
            env.insert_simple(aggregate_type, aggregate_id, sequence)
                .await;
        }
    }
    per_aggregate * aggregates.len() as i64
}

/// A real order id (the event store's write-side triggers read order ids as uuids).
const EXPIRED_ORDER: &str = "00000000-0000-4000-8000-000000000003";

#[tokio::test]
async fn relay_publishes_every_event_once_in_order_with_headers() {
    let env = TestEnv::new().await;
    let total = insert_interleaved(&env, 5).await;
    // A unit variant, and metadata without a uuid correlation id.
    env.insert_event(
        "order",
        EXPIRED_ORDER,
        1,
        "OrderExpired",
        json!("OrderExpired"),
        json!({"correlation_id": "req-1"}),
    )
    .await;
    assert_eq!(env.outbox_depth().await, total + 1);

    let relay = Relay::new(env.pool.clone(), env.js.clone(), env.ns.clone());
    let mut relayed = 0;
    loop {
        let n = relay.relay_batch(3).await.unwrap();
        if n == 0 {
            break;
        }
        relayed += n;
    }
    assert_eq!(relayed as i64, total + 1);
    assert_eq!(env.outbox_depth().await, 0);

    let orders = env.read_stream("order").await;
    let inventory = env.read_stream("inventory").await;
    assert_eq!(orders.len(), 11);
    assert_eq!(inventory.len(), 10);
    let counts = assert_exactly_once_in_order(&orders);
    assert_eq!(counts["o-1"], 5);
    assert_eq!(counts["o-2"], 5);
    assert_eq!(counts[EXPIRED_ORDER], 1);
    assert_eq!(assert_exactly_once_in_order(&inventory)["sku-2"], 5);

    let first = &orders[0];
    assert_eq!(
        first.subject,
        format!("{}.events.order.o-1.ItemAdded", env.ns)
    );
    assert_eq!(first.payload, json!({"n": 1}));
    assert_eq!(first.correlation_id, "6b1d1c2e-0000-4000-8000-000000000001");
    assert_eq!(first.causation_id, "cmd-o-1-1");
    assert_eq!(first.user_id.as_deref(), Some("user-1"));
    assert_eq!(
        first.event_id,
        ordo_nats::envelope::event_id("order", "o-1", 1)
    );

    // The raw headers, as an operator sees them with `nats stream get`.
    let stream = env
        .js
        .get_stream(env.ns.stream_name("order"))
        .await
        .unwrap();
    let raw = stream.get_raw_message(first.stream_sequence).await.unwrap();
    let h = |name: &str| raw.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(h(header::MSG_ID).as_deref(), Some("order:o-1:1"));
    assert_eq!(h(header::SEQUENCE).as_deref(), Some("1"));
    assert_eq!(h(header::EVENT_TYPE).as_deref(), Some("ItemAdded"));
    assert_eq!(h(header::EVENT_VERSION).as_deref(), Some("1.0"));
    assert_eq!(h(header::AGGREGATE_TYPE).as_deref(), Some("order"));
    assert_eq!(h(header::AGGREGATE_ID).as_deref(), Some("o-1"));
    assert!(h(header::RECORDED_AT).is_some());
    let tp = h(header::TRACEPARENT).unwrap();
    assert!(
        tp.starts_with("00-6b1d1c2e000040008000000000000001-"),
        "{tp}"
    );

    let expired = orders
        .iter()
        .find(|e| e.aggregate_id == EXPIRED_ORDER)
        .unwrap();
    assert_eq!(expired.payload, json!({}));
    assert_eq!(expired.correlation_id, "req-1");
    let raw = stream
        .get_raw_message(expired.stream_sequence)
        .await
        .unwrap();
    assert!(raw.headers.get(header::TRACEPARENT).is_none());

    env.cleanup().await;
}

#[tokio::test]
async fn republishing_after_a_crash_before_the_outbox_delete_adds_no_duplicates() {
    let env = TestEnv::new().await;
    let total = insert_interleaved(&env, 4).await;
    let relay = Relay::new(env.pool.clone(), env.js.clone(), env.ns.clone());
    while relay.relay_batch(500).await.unwrap() > 0 {}

    // The crash: the events were published but their outbox rows were never deleted.
    sqlx::query("INSERT INTO outbox (position) SELECT position FROM events")
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(env.outbox_depth().await, total);
    let again = relay.relay_batch(500).await.unwrap();
    assert_eq!(
        again as i64, total,
        "the re-sends are acknowledged as duplicates"
    );
    assert_eq!(env.outbox_depth().await, 0);

    let orders = env.read_stream("order").await;
    let inventory = env.read_stream("inventory").await;
    assert_eq!((orders.len() + inventory.len()) as i64, total);
    assert_exactly_once_in_order(&orders);
    assert_exactly_once_in_order(&inventory);
    env.cleanup().await;
}

#[tokio::test]
async fn relay_killed_mid_flight_and_restarted_loses_and_duplicates_nothing() {
    let env = TestEnv::new().await;
    let per_aggregate = 150;
    let total = insert_interleaved(&env, per_aggregate).await;

    // Kill the relay task several times while it works through the backlog, each time
    // right after it has made some progress, then let a fresh one finish.
    for round in 0..4 {
        let relay =
            Relay::new(env.pool.clone(), env.js.clone(), env.ns.clone()).with_batch_size(25);
        let probe = relay.clone();
        let task = tokio::spawn(relay.run(CancellationToken::new()));
        eventually("the relay makes progress", || async {
            probe.published_count() > 0
        })
        .await;
        task.abort();
        let _ = task.await;
        assert!(
            env.outbox_depth().await > 0 || round > 0,
            "the first relay should be killed before it drained the outbox"
        );
    }
    let relay = Relay::new(env.pool.clone(), env.js.clone(), env.ns.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));
    eventually("the outbox drains", || async {
        env.outbox_depth().await == 0
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();

    let orders = env.read_stream("order").await;
    let inventory = env.read_stream("inventory").await;
    assert_eq!(
        (orders.len() + inventory.len()) as i64,
        total,
        "no loss, no duplicate"
    );
    let counts = assert_exactly_once_in_order(&orders);
    assert!(counts.values().all(|&n| n == per_aggregate));
    let counts = assert_exactly_once_in_order(&inventory);
    assert!(counts.values().all(|&n| n == per_aggregate));
    env.cleanup().await;
}

#[tokio::test]
async fn two_relays_at_once_elect_one_publisher() {
    let env = TestEnv::new().await;
    let first = Relay::new(env.pool.clone(), env.js.clone(), env.ns.clone()).with_batch_size(10);
    let second = Relay::new(env.pool.clone(), env.js.clone(), env.ns.clone()).with_batch_size(10);
    let shutdown = CancellationToken::new();
    let tasks = [
        tokio::spawn(first.clone().run(shutdown.clone())),
        tokio::spawn(second.clone().run(shutdown.clone())),
    ];
    // Events arrive while both run, so both have work to compete for.
    let total = insert_interleaved(&env, 30).await;
    eventually("every event is relayed", || async {
        first.published_count() + second.published_count() == total as u64
    })
    .await;
    assert_eq!(env.outbox_depth().await, 0);
    assert!(
        first.published_count() == 0 || second.published_count() == 0,
        "only the leader publishes: {} and {}",
        first.published_count(),
        second.published_count()
    );
    let orders = env.read_stream("order").await;
    let inventory = env.read_stream("inventory").await;
    assert_eq!((orders.len() + inventory.len()) as i64, total);
    assert_exactly_once_in_order(&orders);
    assert_exactly_once_in_order(&inventory);

    shutdown.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    env.cleanup().await;
}

#[tokio::test]
async fn a_stand_by_relay_takes_over_when_the_leader_stops() {
    let env = TestEnv::new().await;
    let leader = Relay::new(env.pool.clone(), env.js.clone(), env.ns.clone());
    let standby = Relay::new(env.pool.clone(), env.js.clone(), env.ns.clone());
    let leader_stop = CancellationToken::new();
    let standby_stop = CancellationToken::new();
    let leader_task = tokio::spawn(leader.clone().run(leader_stop.clone()));
    env.insert_simple("order", "o-1", 1).await;
    eventually("the leader relays", || async {
        leader.published_count() == 1
    })
    .await;
    let standby_task = tokio::spawn(standby.clone().run(standby_stop.clone()));

    leader_task.abort();
    let _ = leader_task.await;
    env.insert_simple("order", "o-1", 2).await;
    eventually("the stand-by takes over", || async {
        standby.published_count() == 1
    })
    .await;
    let orders = env.read_stream("order").await;
    assert_eq!(
        orders.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2]
    );

    standby_stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), standby_task)
        .await
        .expect("the relay stops on shutdown")
        .unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn relay_wakes_on_notify_and_stops_on_shutdown() {
    let env = TestEnv::new().await;
    let relay = Relay::new(env.pool.clone(), env.js.clone(), env.ns.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.clone().run(shutdown.clone()));
    for sequence in 1..=3 {
        env.insert_simple("payment", "p-1", sequence).await;
        eventually("the event is relayed", || async {
            relay.published_count() == sequence as u64
        })
        .await;
    }
    assert_eq!(env.stream_len(&env.ns.stream_name("payment")).await, 3);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the relay stops on shutdown")
        .unwrap();
    env.cleanup().await;
}
