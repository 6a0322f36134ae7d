//! The rule for events this build does not know, against real Postgres and NATS: the
//! products projection reads an event of an unknown type, and one of an unknown version; it
//! retries each with its back-off, then dead-letters it with an error that says to upgrade
//! the consumer, and parks its aggregate, so that aggregate's later events wait behind it
//! while other aggregates flow on. A malformed event, which no upgrade fixes, is
//! dead-lettered at once.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, Context};
use ordo_nats::definitions::ensure_streams;
use ordo_nats::{dlq, run_consumer, ConsumerSpec, DeadLetter, EventRow, Namespace, OutgoingEvent};
use ordo_projections::products::ProductsProjection;
use ordo_projections::ProjectionHandler;
use ordo_tests::{eventually, TestDatabase};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const CONSUMER: &str = "projection-products";
const WAIT: Duration = Duration::from_secs(20);
/// Deliveries before a failing event is dead-lettered.
const ATTEMPTS: i64 = 3;

/// One test's world: its own database and stream names, and the products projection
/// running as a consumer of the product stream.
struct World {
    _database: TestDatabase,
    pool: PgPool,
    js: Context,
    ns: Namespace,
    shutdown: CancellationToken,
    consumer: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl World {
    async fn start() -> Self {
        let database = TestDatabase::create().await.unwrap();
        let pool = database.pool_of(10).await.unwrap();
        ordo_schemas::MIGRATOR.run(&pool).await.unwrap();
        let client = async_nats::connect(ordo_tests::nats_url()).await.unwrap();
        let js = jetstream::new(client);
        let ns = Namespace::parse(&ordo_tests::unique_namespace()).unwrap();
        ensure_streams(&js, &ns).await.unwrap();

        let mut spec = ConsumerSpec::new(CONSUMER, "product");
        spec.max_deliver = ATTEMPTS;
        spec.backoff = vec![Duration::from_millis(100)];
        let handler = Arc::new(ProjectionHandler::new(
            pool.clone(),
            Arc::new(ProductsProjection),
        ));
        let shutdown = CancellationToken::new();
        let consumer = {
            let (js, pool, ns, shutdown) = (js.clone(), pool.clone(), ns.clone(), shutdown.clone());
            tokio::spawn(async move { run_consumer(js, pool, &ns, spec, handler, shutdown).await })
        };
        Self {
            _database: database,
            pool,
            js,
            ns,
            shutdown,
            consumer,
        }
    }

    /// Publishes an event to the product stream as the relay would.
    async fn publish(
        &self,
        sku: &str,
        sequence: i64,
        event_type: &str,
        version: &str,
        payload: Value,
    ) {
        let row = EventRow {
            position: sequence,
            aggregate_type: "product".into(),
            aggregate_id: sku.into(),
            sequence,
            event_type: event_type.into(),
            event_version: version.into(),
            payload: json!({ event_type: payload }),
            metadata: json!({"correlation_id": format!("req-{sku}-{sequence}")}),
            recorded_at: chrono::Utc::now(),
        };
        let event = OutgoingEvent::from_row(&self.ns, &row);
        self.js
            .publish_with_headers(event.subject, event.headers, event.payload)
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn created(&self, sku: &str, name: &str) {
        self.publish(
            sku,
            1,
            "ProductCreated",
            "1",
            json!({
                "sku": sku,
                "name": name,
                "description": "A product",
                "category": "tools",
                "price": {"amount_minor": 1000, "currency": "EUR"},
            }),
        )
        .await;
    }

    /// The product's name and version in the read model, once it is there.
    async fn product(&self, sku: &str) -> Option<(String, i64)> {
        sqlx::query_as("SELECT name, version FROM products WHERE sku = $1")
            .bind(sku)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    async fn dead_letters(&self) -> Vec<DeadLetter> {
        dlq::list(&self.js, &self.ns, Some(CONSUMER))
            .await
            .unwrap_or_default()
    }

    /// The dead letter of `sku`'s event `sequence`, once there is one.
    async fn dead_letter(&self, sku: &str, sequence: i64) -> DeadLetter {
        eventually(
            &format!("{sku} event {sequence} is dead-lettered"),
            WAIT,
            || async {
                self.dead_letters()
                    .await
                    .into_iter()
                    .find(|letter| letter.aggregate_id == sku && letter.sequence == sequence)
            },
        )
        .await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.consumer.await;
        ordo_tests::delete_streams(self.ns.as_str()).await;
    }
}

#[tokio::test]
async fn an_unknown_event_type_is_retried_then_dead_lettered_and_parks_its_aggregate() {
    let world = World::start().await;
    world.created("SKU-A", "Hammer").await;
    eventually("SKU-A is in the catalog", WAIT, || async {
        world.product("SKU-A").await
    })
    .await;

    // A newer build wrote an event type this one does not know.
    world
        .publish(
            "SKU-A",
            2,
            "ProductDiscontinued",
            "1",
            json!({"reason": "old"}),
        )
        .await;
    let letter = world.dead_letter("SKU-A", 2).await;
    assert_eq!(letter.attempts, ATTEMPTS, "retried before it was given up");
    assert!(!letter.parked);
    assert_eq!(letter.event_type, "ProductDiscontinued");
    assert!(
        letter.error.contains("product event ProductDiscontinued")
            && letter.error.contains("upgrade this consumer"),
        "{}",
        letter.error
    );

    // The aggregate is parked: its later event waits behind the dead letter, unapplied.
    world
        .publish(
            "SKU-A",
            3,
            "ProductUpdated",
            "1",
            json!({"name": "Big hammer"}),
        )
        .await;
    let waiting = world.dead_letter("SKU-A", 3).await;
    assert!(waiting.parked, "{waiting:?}");
    assert_eq!(
        waiting.error,
        format!("parked behind dead letter {}", letter.dlq_sequence)
    );
    let parks = dlq::parked(&world.pool).await.unwrap();
    assert!(
        parks.iter().any(|park| park.consumer == CONSUMER
            && park.aggregate_id == "SKU-A"
            && park.dlq_sequence == letter.dlq_sequence),
        "{parks:?}"
    );

    // Another aggregate flows on.
    world.created("SKU-B", "Saw").await;
    let saw = eventually("SKU-B is in the catalog", WAIT, || async {
        world.product("SKU-B").await
    })
    .await;
    assert_eq!(saw, ("Saw".to_string(), 1));
    assert_eq!(
        world.product("SKU-A").await,
        Some(("Hammer".to_string(), 1)),
        "SKU-A's later event was not applied"
    );
    world.stop().await;
}

#[tokio::test]
async fn an_unknown_version_is_retried_then_dead_lettered_and_a_malformed_event_at_once() {
    let world = World::start().await;
    // A known type at a version this build cannot read.
    world
        .publish(
            "SKU-C",
            1,
            "ProductCreated",
            "3",
            json!({"sku": "SKU-C", "title": "Drill"}),
        )
        .await;
    // A known type and version whose payload does not fit it.
    world
        .publish(
            "SKU-D",
            1,
            "ProductCreated",
            "1",
            json!({"sku": "SKU-D", "name": "Drill"}),
        )
        .await;
    world.created("SKU-E", "Pliers").await;

    let newer = world.dead_letter("SKU-C", 1).await;
    assert_eq!(newer.attempts, ATTEMPTS, "retried before it was given up");
    assert!(
        newer.error.contains("version 3") && newer.error.contains("upgrade this consumer"),
        "{}",
        newer.error
    );
    let malformed = world.dead_letter("SKU-D", 1).await;
    assert_eq!(
        malformed.attempts, 1,
        "no upgrade fixes it: dead-lettered at once"
    );
    assert!(malformed.error.contains("malformed"), "{}", malformed.error);
    assert!(!malformed.error.contains("upgrade"), "{}", malformed.error);

    eventually("SKU-E is in the catalog", WAIT, || async {
        world.product("SKU-E").await
    })
    .await;
    assert_eq!(world.product("SKU-C").await, None);
    assert_eq!(world.product("SKU-D").await, None);
    world.stop().await;
}
