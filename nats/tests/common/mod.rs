//! The test harness: a fresh Postgres database and a fresh NATS namespace per test, typed
//! helpers to write events as postgres-es would, and a bounded poll to await conditions.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, Context};
use ordo_nats::definitions::ensure_streams;
use ordo_nats::{Namespace, ReceivedEvent};
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Executor;

pub const NATS_URL: &str = "127.0.0.1:4222";

/// One test's world: its own database and its own stream names.
pub struct TestEnv {
    pub pool: PgPool,
    pub database: String,
    pub client: async_nats::Client,
    pub js: Context,
    pub ns: Namespace,
}

impl TestEnv {
    /// A fresh database (migrated) and namespace, with every stream created.
    pub async fn new() -> Self {
        let database = format!("ordo_test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPool::connect(&ordo_tests::admin_database_url())
            .await
            .expect("postgres is running");
        admin
            .execute(format!("CREATE DATABASE {database}").as_str())
            .await
            .unwrap();
        admin.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect(&ordo_tests::database_url(&database))
            .await
            .unwrap();
        ordo_schemas::MIGRATOR.run(&pool).await.unwrap();

        let client = async_nats::connect(NATS_URL)
            .await
            .expect("nats is running");
        let js = jetstream::new(client.clone());
        let ns = Namespace::parse(&format!(
            "t{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
        .unwrap();
        ensure_streams(&js, &ns).await.unwrap();
        Self {
            pool,
            database,
            client,
            js,
            ns,
        }
    }

    /// Inserts an event row the way postgres-es does (the trigger fills the outbox) and
    /// announces it, as the command bus does after its commit.
    pub async fn insert_event(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
        event_type: &str,
        payload: Value,
        metadata: Value,
    ) {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             VALUES ($1, $2, $3, $4, '1.0', $5, $6)",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence)
        .bind(event_type)
        .bind(payload)
        .bind(metadata)
        .execute(&self.pool)
        .await
        .unwrap();
        ordo_store::announce::Announcer::of(&self.pool).outbox_written();
    }

    /// Inserts a simple `ItemAdded { n }` event with a uuid correlation id.
    pub async fn insert_simple(&self, aggregate_type: &str, aggregate_id: &str, sequence: i64) {
        self.insert_event(
            aggregate_type,
            aggregate_id,
            sequence,
            "ItemAdded",
            json!({"ItemAdded": {"n": sequence}}),
            json!({
                "correlation_id": "6b1d1c2e-0000-4000-8000-000000000001",
                "causation_id": format!("cmd-{aggregate_id}-{sequence}"),
                "user_id": "user-1",
            }),
        )
        .await;
    }

    /// Publishes an `ItemAdded { n: sequence }` event straight to its stream, as the relay
    /// would, and waits for the stream's ack.
    pub async fn publish_simple(&self, aggregate_type: &str, aggregate_id: &str, sequence: i64) {
        let row = ordo_nats::EventRow {
            position: sequence,
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            sequence,
            event_type: "ItemAdded".into(),
            event_version: "1.0".into(),
            payload: json!({"ItemAdded": {"n": sequence}}),
            metadata: json!({"correlation_id": "req-1"}),
            recorded_at: chrono::Utc::now(),
        };
        let event = ordo_nats::OutgoingEvent::from_row(&self.ns, &row);
        self.js
            .publish_with_headers(event.subject, event.headers, event.payload)
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Every event in one aggregate type's stream, in stream order.
    pub async fn read_stream(&self, aggregate_type: &str) -> Vec<ReceivedEvent> {
        self.read_stream_named(&self.ns.stream_name(aggregate_type))
            .await
    }

    /// Every message of a stream, parsed as events.
    pub async fn read_stream_named(&self, name: &str) -> Vec<ReceivedEvent> {
        let stream = self.js.get_stream(name).await.unwrap();
        let info = stream.get_info().await.unwrap();
        let mut events = Vec::new();
        for seq in info.state.first_sequence..=info.state.last_sequence {
            if info.state.messages == 0 {
                break;
            }
            let msg = stream.get_raw_message(seq).await.unwrap();
            events.push(
                ReceivedEvent::from_parts(
                    name,
                    seq,
                    1,
                    &msg.subject,
                    Some(&msg.headers),
                    &msg.payload,
                )
                .unwrap(),
            );
        }
        events
    }

    /// The number of messages in a stream.
    pub async fn stream_len(&self, name: &str) -> u64 {
        let stream = self.js.get_stream(name).await.unwrap();
        stream.get_info().await.unwrap().state.messages
    }

    pub async fn outbox_depth(&self) -> i64 {
        ordo_nats::outbox_depth(&self.pool).await.unwrap()
    }

    /// Drops the database and the streams.
    pub async fn cleanup(self) {
        self.pool.close().await;
        let admin = PgPool::connect(&ordo_tests::admin_database_url())
            .await
            .unwrap();
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database).as_str())
            .await
            .ok();
        for config in ordo_nats::definitions::stream_configs(&self.ns).unwrap() {
            self.js.delete_stream(&config.name).await.ok();
        }
    }
}

/// Polls `condition` every 20 ms for up to 10 s; panics with `what` if it never holds.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if condition().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `events` holds, for each aggregate, exactly the sequences 1..=n once each and
/// in order; returns the count per aggregate id.
pub fn assert_exactly_once_in_order(
    events: &[ReceivedEvent],
) -> std::collections::BTreeMap<String, i64> {
    let mut last = std::collections::BTreeMap::new();
    for event in events {
        let previous = last.entry(event.aggregate_id.clone()).or_insert(0_i64);
        assert_eq!(
            event.sequence,
            *previous + 1,
            "aggregate {} got sequence {} after {}",
            event.aggregate_id,
            event.sequence,
            previous
        );
        *previous = event.sequence;
    }
    last
}

/// An event as a consumer would receive it, without going through NATS.
pub fn received(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> ReceivedEvent {
    ReceivedEvent {
        stream: "TEST".into(),
        stream_sequence: sequence as u64,
        subject: format!("ordo.events.{aggregate_type}.{aggregate_id}.ItemAdded"),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence,
        event_type: "ItemAdded".into(),
        event_version: "1.0".into(),
        event_id: ordo_nats::envelope::event_id(aggregate_type, aggregate_id, sequence),
        correlation_id: "c".into(),
        causation_id: "c".into(),
        user_id: None,
        recorded_at: chrono::Utc::now(),
        payload: json!({"n": sequence}),
        delivered: 1,
    }
}

/// A table where test handlers record their effects.
pub async fn create_effects_table(pool: &PgPool) {
    sqlx::query(
        "CREATE TABLE test_effects (consumer text NOT NULL, aggregate_id text NOT NULL, \
         sequence bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// The sequences a consumer's effects recorded for one aggregate, in the order applied.
pub async fn effects(pool: &PgPool, consumer: &str, aggregate_id: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT sequence FROM test_effects WHERE consumer = $1 AND aggregate_id = $2 \
         ORDER BY applied_at, sequence",
    )
    .bind(consumer)
    .bind(aggregate_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Stops a consumer started with `shutdown` and checks that it ended cleanly in time.
pub async fn stop_consumer(
    shutdown: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the consumer stops on shutdown")
        .unwrap()
        .unwrap();
}
