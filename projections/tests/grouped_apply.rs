//! A projection handler given many events at once, against a real Postgres: the events
//! handed over together are applied in shared transactions, each exactly once; a malformed
//! one among them fails alone (the others apply), one that arrived before its aggregate's
//! earlier event waits, and a redelivery of them all changes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::join_all;
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_projections::products::ProductsProjection;
use ordo_projections::ProjectionHandler;
use ordo_tests::TestDatabase;
use serde_json::{json, Value};

const PRODUCTS: usize = 60;

fn event(sku: &str, sequence: i64, payload: Value) -> ReceivedEvent {
    ReceivedEvent {
        stream: "ORDO_PRODUCT".into(),
        stream_sequence: sequence as u64,
        subject: format!("ordo.product.{sku}"),
        aggregate_type: "product".into(),
        aggregate_id: sku.into(),
        sequence,
        event_type: "ProductCreated".into(),
        event_version: "1".into(),
        event_id: uuid::Uuid::new_v4(),
        correlation_id: format!("req-{sku}"),
        causation_id: format!("req-{sku}"),
        user_id: None,
        recorded_at: chrono::Utc::now(),
        payload,
        delivered: 1,
    }
}

fn created(sku: &str) -> ReceivedEvent {
    event(
        sku,
        1,
        json!({
            "sku": sku,
            "name": format!("Product {sku}"),
            "description": "A product",
            "category": "tools",
            "price": {"amount_minor": 1000, "currency": "EUR"},
        }),
    )
}

#[tokio::test]
async fn events_handed_over_together_apply_once_in_shared_transactions_and_a_bad_one_fails_alone() {
    let database = TestDatabase::create().await.unwrap();
    let pool = database.pool_of(10).await.unwrap();
    ordo_schemas::MIGRATOR.run(&pool).await.unwrap();
    let handler = Arc::new(ProjectionHandler::new(
        pool.clone(),
        Arc::new(ProductsProjection),
    ));

    let skus: Vec<String> = (0..PRODUCTS).map(|n| format!("GROUPED-{n:03}")).collect();
    let (first, second) = skus.split_at(PRODUCTS / 2);

    // Good events only: they share transactions.
    let first_events: Vec<ReceivedEvent> = first.iter().map(|sku| created(sku)).collect();
    let outcomes = join_all(first_events.iter().map(|event| handler.handle(event))).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let transactions: BTreeSet<String> = sqlx::query_scalar("SELECT xmin::text FROM products")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        transactions.len() < first.len(),
        "{} events took {} transactions",
        first.len(),
        transactions.len()
    );

    // Then more, with a malformed one among them (no upgrade of the consumer would ever
    // read it) and the third event of an aggregate whose second never came.
    let mut events: Vec<ReceivedEvent> = second.iter().map(|sku| created(sku)).collect();
    events.insert(second.len() / 2, event("GROUPED-BAD", 1, json!({"sku": 5})));
    events.push(event(&skus[0], 3, json!({"sku": skus[0]})));
    let outcomes = join_all(events.iter().map(|event| handler.handle(event))).await;
    let mut failed = Vec::new();
    for (event, outcome) in events.iter().zip(&outcomes) {
        if let Err(err) = outcome {
            failed.push((event.aggregate_id.clone(), event.sequence, err));
        }
    }
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        matches!(failed[0], (ref sku, 1, HandlerError::Permanent(_)) if sku == "GROUPED-BAD"),
        "{failed:?}"
    );
    assert!(
        matches!(failed[1], (ref sku, 3, HandlerError::Gap { expected: 2, .. }) if *sku == skus[0]),
        "{failed:?}"
    );
    events.extend(first_events);

    let stored: Vec<String> = sqlx::query_scalar("SELECT sku FROM products ORDER BY sku")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(stored, skus);
    let positions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, last_sequence FROM consumer_positions
         WHERE consumer = 'projection-products' AND last_sequence > 0 ORDER BY aggregate_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        positions,
        skus.iter().map(|sku| (sku.clone(), 1)).collect::<Vec<_>>()
    );

    // Delivered again, all at once: the applied ones are recognised, nothing changes.
    let again = join_all(events.iter().map(|event| handler.handle(event))).await;
    assert_eq!(again.iter().filter(|outcome| outcome.is_err()).count(), 2);
    let (count, versions): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(version)::bigint FROM products")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((count, versions), (PRODUCTS as i64, PRODUCTS as i64));
}
