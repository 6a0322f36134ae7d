//! The upcasters at work in the real event store: a version 1 `PaymentRefunded` row,
//! written straight into `events` with SQL, loads through postgres-es as the version 2
//! event, and the payment it belongs to keeps working. Each test gets a fresh database on
//! the Postgres server of `ORDO_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), with every migration applied.

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{CqrsFramework, DomainEvent, EventStore};
use ordo_aggregates::common::{Currency, Money, RefundId};
use ordo_aggregates::payment::{Payment, PaymentCommand, PaymentEvent, PaymentStatus};
use ordo_schemas::upcasters::{self, REASON_NOT_RECORDED};
use postgres_es::PostgresEventRepository;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use uuid::Uuid;

type Store = PersistedEventStore<PostgresEventRepository, Payment>;

/// A database made for one test. [`TestDatabase::drop`] removes it; a test that panics
/// leaves it behind for inspection.
struct TestDatabase {
    name: String,
    server: PgConnectOptions,
    pool: PgPool,
}

impl TestDatabase {
    async fn create() -> Self {
        let url = std::env::var("ORDO_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let server: PgConnectOptions = url.parse().expect("a Postgres URL");
        let name = format!("ordo_test_{}", Uuid::new_v4().simple());
        let mut admin = server
            .connect()
            .await
            .expect("connect to the Postgres server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        admin.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(server.clone().database(&name))
            .await
            .expect("connect to the test database");
        ordo_schemas::MIGRATOR
            .run(&pool)
            .await
            .expect("run the migrations");
        Self { name, server, pool }
    }

    async fn drop(self) {
        self.pool.close().await;
        let mut admin = self
            .server
            .connect()
            .await
            .expect("reconnect to the server");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .expect("drop the test database");
        admin.close().await.ok();
    }
}

fn eur(minor: i64) -> Value {
    json!({"amount_minor": minor, "currency": "EUR"})
}

fn money(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}

/// Writes one row of `events` as an older build would have, bypassing the event store.
async fn insert(
    pool: &PgPool,
    payment_id: &str,
    sequence: i64,
    event_type: &str,
    version: &str,
    payload: Value,
) {
    sqlx::query(
        "INSERT INTO events \
         (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('payment', $1, $2, $3, $4, $5, $6)",
    )
    .bind(payment_id)
    .bind(sequence)
    .bind(event_type)
    .bind(version)
    .bind(payload)
    .bind(json!({"correlation_id": "3b0c7a52-9f3e-4d8e-b5f1-2a6c1e0d9f47"}))
    .execute(pool)
    .await
    .expect("insert an event row");
}

/// A payment of 10.00 EUR, created and captured, then refunded by `refunded_minor` in a
/// version 1 event: refund id and amount only.
async fn captured_then_refunded_v1(pool: &PgPool, refunded_minor: i64) -> (String, Uuid) {
    let payment_id = Uuid::new_v4();
    let refund_id = Uuid::new_v4();
    let id = payment_id.to_string();
    insert(
        pool,
        &id,
        1,
        "PaymentCreated",
        "1",
        json!({"PaymentCreated": {
            "payment_id": payment_id,
            "order_id": Uuid::new_v4(),
            "customer_id": Uuid::new_v4(),
            "amount": eur(1000),
            "method": "card",
            "token": "tok_visa_4242",
        }}),
    )
    .await;
    insert(
        pool,
        &id,
        2,
        "PaymentCaptured",
        "1",
        json!({"PaymentCaptured": {"provider_ref": "cap_1", "amount": eur(1000)}}),
    )
    .await;
    insert(
        pool,
        &id,
        3,
        "PaymentRefunded",
        "1",
        json!({"PaymentRefunded": {"refund_id": refund_id, "amount": eur(refunded_minor)}}),
    )
    .await;
    (id, refund_id)
}

fn store(pool: &PgPool) -> Store {
    PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()))
        .with_upcasters(upcasters::all())
}

#[tokio::test]
async fn version_1_refund_loads_as_version_2_from_postgres() {
    let db = TestDatabase::create().await;
    let (id, refund_id) = captured_then_refunded_v1(&db.pool, 1000).await;
    let store = store(&db.pool);

    let events = store.load_events(&id).await.expect("load the events");
    assert_eq!(events.len(), 3);
    let refund = &events[2];
    assert_eq!(refund.sequence, 3);
    assert_eq!(refund.payload.event_version(), "2");
    assert_eq!(
        refund.payload,
        PaymentEvent::PaymentRefunded {
            refund_id: RefundId::from(refund_id),
            amount: money(1000),
            total_refunded: money(1000),
            reason: REASON_NOT_RECORDED.to_owned(),
        }
    );

    let payment = store
        .load_aggregate(&id)
        .await
        .expect("load the payment")
        .aggregate;
    assert_eq!(payment.status(), Some(PaymentStatus::Refunded));
    assert_eq!(payment.total_refunded(), Some(&money(1000)));
    assert_eq!(payment.refunds().len(), 1);

    // The row itself is left as it was written.
    let (version, payload): (String, Value) = sqlx::query_as(
        "SELECT event_version, payload::jsonb FROM events \
         WHERE aggregate_id = $1 AND sequence = 3",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(version, "1");
    assert!(payload["PaymentRefunded"].get("reason").is_none());
    db.drop().await;
}

#[tokio::test]
async fn version_1_refund_does_not_load_without_upcasters() {
    let db = TestDatabase::create().await;
    let (id, _) = captured_then_refunded_v1(&db.pool, 1000).await;
    let bare: Store =
        PersistedEventStore::new_event_store(PostgresEventRepository::new(db.pool.clone()));
    assert!(bare.load_events(&id).await.is_err());
    db.drop().await;
}

#[tokio::test]
async fn refund_after_an_upcast_refund_is_stored_as_version_2_with_the_running_total() {
    let db = TestDatabase::create().await;
    let (id, _) = captured_then_refunded_v1(&db.pool, 300).await;
    let cqrs = CqrsFramework::new(store(&db.pool), vec![], ());

    cqrs.execute(
        &id,
        PaymentCommand::Refund {
            refund_id: RefundId::new_v4(),
            amount: money(200),
            reason: "second item returned".to_owned(),
        },
    )
    .await
    .expect("refund again");

    let (version, payload): (String, Value) = sqlx::query_as(
        "SELECT event_version, payload::jsonb FROM events \
         WHERE aggregate_id = $1 AND sequence = 4",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await
    .expect("the new refund row");
    assert_eq!(version, "2");
    assert_eq!(payload["PaymentRefunded"]["total_refunded"], eur(500));
    assert_eq!(payload["PaymentRefunded"]["reason"], "second item returned");

    let payment = store(&db.pool).load_aggregate(&id).await.unwrap().aggregate;
    assert_eq!(payment.status(), Some(PaymentStatus::PartiallyRefunded));
    assert_eq!(payment.total_refunded(), Some(&money(500)));
    db.drop().await;
}
