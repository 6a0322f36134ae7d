//! Stream and consumer definitions applied to a real nats-server.

mod common;

use std::time::Duration;

use common::TestEnv;
use ordo_nats::definitions::{ensure_consumer_definition, ensure_streams, parse_consumer};
use ordo_nats::AGGREGATE_TYPES;

#[tokio::test]
async fn ensure_streams_is_idempotent_even_when_run_concurrently() {
    // TestEnv::new has already run ensure_streams once.
    let env = TestEnv::new().await;
    ensure_streams(&env.js, &env.ns).await.unwrap();
    let (a, b, c) = tokio::join!(
        ensure_streams(&env.js, &env.ns),
        ensure_streams(&env.js, &env.ns),
        ensure_streams(&env.js, &env.ns),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();

    for aggregate_type in AGGREGATE_TYPES {
        let mut stream = env
            .js
            .get_stream(env.ns.stream_name(aggregate_type))
            .await
            .unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(
            info.config.subjects,
            vec![env.ns.stream_filter(aggregate_type)]
        );
        assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
        assert!(
            info.config.max_messages_per_subject <= 0,
            "no per-subject limit"
        );
    }
    let mut dlq = env.js.get_stream(env.ns.dlq_stream()).await.unwrap();
    assert_eq!(
        dlq.info().await.unwrap().config.subjects,
        vec![env.ns.dlq_filter()]
    );
    env.cleanup().await;
}

#[tokio::test]
async fn a_first_run_creates_streams_concurrently() {
    let env = TestEnv::new().await;
    // Start from nothing, then let several processes race to create everything.
    for config in ordo_nats::definitions::stream_configs(&env.ns).unwrap() {
        env.js.delete_stream(&config.name).await.unwrap();
    }
    let (a, b) = tokio::join!(
        ensure_streams(&env.js, &env.ns),
        ensure_streams(&env.js, &env.ns)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(env.stream_len(&env.ns.stream_name("order")).await, 0);
    env.cleanup().await;
}

#[tokio::test]
async fn a_consumer_definition_file_is_applied_to_its_stream() {
    let env = TestEnv::new().await;
    let json = r#"{
        "durable_name": "projection-orders",
        "filter_subject": "ordo.events.order.>",
        "ack_policy": "explicit",
        "deliver_policy": "all",
        "ack_wait": 30000000000,
        "max_deliver": 9,
        "max_ack_pending": 100
    }"#;
    let definition = parse_consumer("projection-orders.json", json, &env.ns).unwrap();
    ensure_consumer_definition(&env.js, &definition)
        .await
        .unwrap();
    let consumer = ensure_consumer_definition(&env.js, &definition)
        .await
        .unwrap();
    let info = consumer.cached_info();
    assert_eq!(info.stream_name, env.ns.stream_name("order"));
    assert_eq!(info.config.filter_subject, env.ns.stream_filter("order"));
    assert_eq!(info.config.max_deliver, 9);
    env.cleanup().await;
}

#[tokio::test]
async fn the_server_accepts_every_stream_file_as_written() {
    // What `nats stream add --config <file>` sends: the file's JSON, unchanged but for the
    // namespace, as the STREAM.CREATE request body.
    let env = TestEnv::new().await;
    let ns = ordo_nats::Namespace::parse(&format!("{}raw", env.ns)).unwrap();
    for (file, json) in ordo_nats::definitions::STREAM_FILES {
        let raw = json
            .replace("\"ORDO_", &format!("\"{}_", ns.stream_prefix()))
            .replace("\"ordo.", &format!("\"{ns}."));
        let body: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let name = body["name"].as_str().unwrap().to_owned();
        let response: serde_json::Value = env
            .js
            .request(format!("STREAM.CREATE.{name}"), &body)
            .await
            .unwrap();
        assert!(response.get("error").is_none(), "{file}: {response}");
        assert_eq!(
            response["config"]["duplicate_window"], 120_000_000_000_u64,
            "{file}"
        );
        env.js.delete_stream(&name).await.unwrap();
    }
    env.cleanup().await;
}
