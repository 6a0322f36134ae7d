//! End to end: a real `ordo serve` against real Postgres and NATS, driven over HTTP.

use std::time::Duration;

use futures::StreamExt;
use ordo_tests::{eventually, nats_url, Api, TestDatabase, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

async fn create_product(admin: &Api, sku: &str, price: i64, stock: i64) {
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": sku, "name": format!("Product {sku}"), "description": "", "category": "test", "price": price, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post(
            &format!("/api/v1/inventory/{sku}/restock"),
            json!({"quantity": stock}),
        )
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
}

async fn inventory(api: &Api, sku: &str) -> Value {
    api.get(&format!("/api/v1/inventory/{sku}")).await.body
}

async fn order_status(api: &Api, order_id: &str) -> Option<String> {
    let answer = api.get(&format!("/api/v1/orders/{order_id}")).await;
    (answer.status == 200).then(|| {
        answer.body["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

/// Reads every message of a namespace's order stream whose subject names `order_id`.
async fn order_events_in_jetstream(namespace: &str, order_id: &str) -> Vec<(String, String)> {
    let client = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream(ordo_tests::stream_name(namespace, "ORDER"))
        .await
        .expect("order stream");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("{namespace}.events.order.{order_id}.>"),
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut seen = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(500), messages.next()).await
    {
        let headers = message.headers.clone().unwrap_or_default();
        let sequence = headers
            .get("Ordo-Sequence")
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let event_type = message
            .subject
            .as_str()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string();
        seen.push((sequence, event_type));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_within_stock_are_confirmed_and_beyond_stock_are_rejected() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = api.admin().await;
    create_product(&admin, "WIDGET", 500, 10).await;
    create_product(&admin, "GADGET", 2500, 2).await;

    let (alice, _) = api.register("alice@example.com").await;
    let placed = alice
        .post(
            "/api/v1/orders",
            json!({"items": [{"sku": "WIDGET", "quantity": 3}]}),
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let alice_order = placed.body["order_id"].as_str().unwrap().to_string();
    assert_eq!(
        placed.header("location").unwrap(),
        format!("/api/v1/orders/{alice_order}")
    );

    let confirmed = eventually(
        "alice's order confirmed",
        Duration::from_secs(15),
        || async {
            order_status(&alice, &alice_order)
                .await
                .filter(|s| s != "pending")
        },
    )
    .await;
    assert_eq!(confirmed, "awaiting_payment");
    let widget = eventually("widget stock reserved", Duration::from_secs(10), || async {
        let level = inventory(&api, "WIDGET").await;
        (level["reserved"] == 3).then_some(level)
    })
    .await;
    assert_eq!(widget["available"], 7);
    assert_eq!(widget["on_hand"], 10);

    let (bob, _) = api.register("bob@example.com").await;
    let placed = bob
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "WIDGET", "quantity": 1}, {"sku": "GADGET", "quantity": 5}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    assert_eq!(placed.body["status"], "rejected");
    let bob_order = placed.body["order_id"].as_str().unwrap().to_string();
    let view = bob.get(&format!("/api/v1/orders/{bob_order}")).await;
    assert_eq!(view.body["reason"], "insufficient_stock");
    assert_eq!(view.body["short_skus"], json!(["GADGET"]));
    assert_eq!(view.body["total_amount"], 500 + 5 * 2500);

    // Nothing stays reserved for the rejected order: the widget line was released.
    eventually(
        "bob's reservations released",
        Duration::from_secs(10),
        || async {
            let widget = inventory(&api, "WIDGET").await;
            let gadget = inventory(&api, "GADGET").await;
            (widget["reserved"] == 3
                && widget["version"].as_i64() >= Some(4)
                && gadget["reserved"] == 0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(inventory(&api, "GADGET").await["available"], 2);

    // Each customer sees only their own orders; anyone else gets 404.
    assert_eq!(
        bob.get(&format!("/api/v1/orders/{alice_order}"))
            .await
            .status,
        404
    );
    assert_eq!(
        admin
            .get(&format!("/api/v1/orders/{alice_order}"))
            .await
            .status,
        200
    );
    let listed = alice.get("/api/v1/orders").await;
    assert_eq!(listed.body["orders"].as_array().unwrap().len(), 1);

    // Both orders' events are in JetStream, in sequence order.
    let alice_events = order_events_in_jetstream(ordo.namespace(), &alice_order).await;
    assert_eq!(
        alice_events,
        vec![
            ("1".into(), "OrderPlaced".into()),
            ("2".into(), "OrderConfirmed".into())
        ]
    );
    let bob_events = order_events_in_jetstream(ordo.namespace(), &bob_order).await;
    assert_eq!(
        bob_events,
        vec![
            ("1".into(), "OrderPlaced".into()),
            ("2".into(), "OrderRejected".into())
        ]
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_problem_and_changes_nothing() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = api.admin().await;
    create_product(&admin, "WIDGET", 500, 10).await;
    let (alice, _) = api.register("alice@example.com").await;

    let problem = |answer: &ordo_tests::Answer, status: u16, code: &str| {
        assert_eq!(answer.status, status, "{:?}", answer.body);
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{:?}",
            answer.body
        );
        assert_eq!(
            answer.body["type"],
            format!("urn:ordo:problem:{code}"),
            "{:?}",
            answer.body
        );
    };

    // Malformed JSON.
    let response = alice
        .client
        .post(format!("{}/api/v1/orders", alice.base))
        .bearer_auth(alice.token.as_deref().unwrap())
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let cases = [
        (json!({"items": []}), "validation_failed"),
        (
            json!({"items": [{"sku": "WIDGET", "quantity": -2}]}),
            "validation_failed",
        ),
        (
            json!({"items": [{"sku": "WIDGET", "quantity": 0}]}),
            "validation_failed",
        ),
        (
            json!({"items": [{"sku": "WIDGET", "quantity": 1}, {"sku": "widget", "quantity": 2}]}),
            "validation_failed",
        ),
        (
            json!({"items": [{"sku": "bad sku!", "quantity": 1}]}),
            "validation_failed",
        ),
        (json!({"lines": []}), "validation_failed"),
    ];
    for (body, code) in cases {
        let answer = alice.post("/api/v1/orders", body.clone()).await;
        problem(&answer, 422, code);
    }
    // A SKU the catalog does not have names nothing: 404, with its own problem type.
    let unknown = alice
        .post(
            "/api/v1/orders",
            json!({"items": [{"sku": "NOPE", "quantity": 1}]}),
        )
        .await;
    problem(&unknown, 404, "unknown_sku");

    // Missing and forged tokens; wrong role.
    let anonymous = ordo.api();
    problem(
        &anonymous.post("/api/v1/orders", json!({"items": []})).await,
        401,
        "unauthorized",
    );
    let mut forged = alice.clone();
    forged.token = Some("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl".into());
    problem(&forged.get("/api/v1/orders").await, 401, "unauthorized");
    problem(
        &alice
            .post(
                "/api/v1/products",
                json!({"sku": "X1", "name": "x", "category": "c", "price": 1, "currency": "EUR"}),
            )
            .await,
        403,
        "forbidden",
    );
    problem(
        &alice
            .post("/api/v1/inventory/WIDGET/restock", json!({"quantity": 5}))
            .await,
        403,
        "forbidden",
    );

    // Duplicate SKU, bad product fields, unknown product restock, negative restock.
    problem(
        &admin
            .post("/api/v1/products", json!({"sku": "widget", "name": "again", "category": "c", "price": 1, "currency": "EUR"}))
            .await,
        409,
        "product_exists",
    );
    problem(
        &admin
            .post(
                "/api/v1/products",
                json!({"sku": "NEW1", "name": "", "category": "c", "price": 1, "currency": "EUR"}),
            )
            .await,
        422,
        "validation_failed",
    );
    problem(
        &admin
            .post("/api/v1/products", json!({"sku": "NEW2", "name": "n", "category": "c", "price": -1, "currency": "EUR"}))
            .await,
        422,
        "validation_failed",
    );
    problem(
        &admin
            .post("/api/v1/inventory/NOPE/restock", json!({"quantity": 5}))
            .await,
        404,
        "not_found",
    );
    problem(
        &admin
            .post("/api/v1/inventory/WIDGET/restock", json!({"quantity": -5}))
            .await,
        422,
        "validation_failed",
    );

    // Weak password and duplicate email.
    problem(
        &api.post(
            "/api/v1/auth/register",
            json!({"email": "weak@example.com", "password": "short", "full_name": "W"}),
        )
        .await,
        422,
        "validation_failed",
    );
    problem(
        &api.post(
            "/api/v1/auth/register",
            json!({"email": "ALICE@example.com", "password": "Secure-pass-123", "full_name": "A"}),
        )
        .await,
        409,
        "email_taken",
    );

    // Nothing changed: no order, stock as restocked, no stray product.
    assert_eq!(alice.get("/api/v1/orders").await.body["orders"], json!([]));
    // The restock was the admin's write, not alice's: her reads do not wait for it, so
    // wait for the read model to show it, then check that nothing else moved.
    let level = eventually(
        "the restock shown by the inventory read model",
        Duration::from_secs(30),
        || async {
            let level = alice.get("/api/v1/inventory/WIDGET").await;
            (level.status == 200).then_some(level)
        },
    )
    .await;
    assert_eq!(level.body["on_hand"], 10, "{:?}", level.body);
    assert_eq!(level.body["reserved"], 0, "{:?}", level.body);
    assert_eq!(api.get("/api/v1/products/NEW1").await.status, 404);
    assert_eq!(api.get("/api/v1/products/NEW2").await.status, 404);
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_flow_into_event_metadata_and_reads_can_wait_for_writes() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = api.admin().await;
    let created = admin
        .send(
            Method::POST,
            "/api/v1/products",
            Some(json!({"sku": "TRACED", "name": "Traced", "category": "test", "price": 100, "currency": "EUR"})),
            &[("x-request-id", "trace-me-42")],
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        created.header("x-request-id").as_deref(),
        Some("trace-me-42")
    );
    assert_eq!(created.body["version"], 1);

    // Read-your-writes: the admin's GET waits for the projection to reach version 1.
    let read = admin
        .send(
            Method::GET,
            "/api/v1/products/TRACED",
            None,
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["version"], 1);
    assert_eq!(
        read.header("preference-applied").as_deref(),
        Some("wait=10")
    );

    // A request without an id gets one.
    let anonymous = api.get("/api/v1/products").await;
    assert!(anonymous
        .header("x-request-id")
        .is_some_and(|id| id.len() >= 32));

    let db = sqlx::PgPool::connect(ordo.database_url()).await.unwrap();
    let (metadata,): (Value,) = sqlx::query_as(
        "SELECT metadata::jsonb FROM events WHERE aggregate_type = 'product' AND aggregate_id = 'TRACED'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(metadata["correlation_id"], "trace-me-42");
    assert!(metadata["user_id"].is_string());
    db.close().await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_places_one_order() {
    let ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = api.admin().await;
    create_product(&admin, "WIDGET", 500, 10).await;
    let (alice, _) = api.register("alice@example.com").await;
    let body = json!({"items": [{"sku": "WIDGET", "quantity": 2}]});
    let first = alice
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(body.clone()),
            &[("idempotency-key", "checkout-1"), ("prefer", "wait=10")],
        )
        .await;
    let second = alice
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(body),
            &[("idempotency-key", "checkout-1"), ("prefer", "wait=10")],
        )
        .await;
    assert_eq!(first.status, 202);
    assert_eq!(second.status, 202);
    assert_eq!(first.body["order_id"], second.body["order_id"]);
    let different = alice
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "WIDGET", "quantity": 3}]})),
            &[("idempotency-key", "checkout-1")],
        )
        .await;
    assert_eq!(different.status, 409, "{:?}", different.body);
    let level = eventually("stock reserved once", Duration::from_secs(10), || async {
        let level = inventory(&api, "WIDGET").await;
        (level["reserved"] != 0).then_some(level)
    })
    .await;
    assert_eq!(level["reserved"], 2);
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_with_exit_zero() {
    let mut ordo = TestOrdo::start().await;
    let status = ordo.terminate().await.expect("terminates");
    assert!(status.success(), "exit status {status}");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_process_mid_flow_loses_and_duplicates_nothing() {
    let mut ordo = TestOrdo::start().await;
    let api = ordo.api();
    let admin = api.admin().await;
    create_product(&admin, "WIDGET", 500, 1000).await;
    let (alice, _) = api.register("alice@example.com").await;

    // Orders keep arriving while the process is killed with SIGKILL.
    let mut placed = Vec::new();
    for round in 0..3 {
        for _ in 0..15 {
            let answer = alice
                .post(
                    "/api/v1/orders",
                    json!({"items": [{"sku": "WIDGET", "quantity": 1}]}),
                )
                .await;
            assert_eq!(answer.status, 202, "{:?}", answer.body);
            placed.push(answer.body["order_id"].as_str().unwrap().to_string());
        }
        if round < 2 {
            ordo.restart().await.expect("restarts after SIGKILL");
        }
    }

    // Every order is decided exactly once and every committed event reaches JetStream once.
    let db = sqlx::PgPool::connect(ordo.database_url()).await.unwrap();
    eventually("every order decided", Duration::from_secs(30), || async {
        let (pending,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM orders WHERE status <> 'awaiting_payment'")
                .fetch_one(&db)
                .await
                .unwrap();
        let (decided,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM orders WHERE status = 'awaiting_payment'")
                .fetch_one(&db)
                .await
                .unwrap();
        (pending == 0 && decided == placed.len() as i64).then_some(())
    })
    .await;
    eventually("outbox drained", Duration::from_secs(30), || async {
        let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
            .fetch_one(&db)
            .await
            .unwrap();
        (left == 0).then_some(())
    })
    .await;
    let (committed,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_type = 'order'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(committed, 2 * placed.len() as i64);

    let client = async_nats::connect(nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(ordo.stream_name("ORDER")).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(
        info.state.messages as i64, committed,
        "one message per committed event"
    );

    let expected = placed.len() as i64;
    // Events the killed process held come back after the ack wait; the ones behind them
    // wait for them, so catching up takes a few retry delays.
    let level = eventually(
        "inventory projection caught up",
        Duration::from_secs(60),
        || async {
            let level = inventory(&api, "WIDGET").await;
            (level["version"].as_i64() == Some(1 + expected)).then_some(level)
        },
    )
    .await;
    assert_eq!(
        level["reserved"], expected,
        "each order reserved exactly once"
    );
    db.close().await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let ordo = TestOrdo::start().await;
    let doc = ordo.api().get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    for path in [
        "/api/v1/auth/register",
        "/api/v1/products",
        "/api/v1/inventory/{sku}/restock",
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/pay",
        "/api/v1/payments/{payment_id}/callbacks",
        "/api/v1/admin/sagas/{saga_id}",
    ] {
        assert!(
            doc.body["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let unknown = ordo.api().get("/api/v1/nowhere").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["type"], "urn:ordo:problem:not_found");
    ordo.stop().await;
}

/// Runs `ordo migrate` with the given environment and answers (success, stderr).
async fn migrate_with(env: &[(&str, &str)]) -> (bool, String) {
    let output = tokio::process::Command::new(ordo_tests::ordo_binary())
        .arg("migrate")
        .env_remove("ORDO_DATABASE_URL")
        .env_remove("ORDO_NATS_URL")
        .env_remove("ORDO_NATS_NAMESPACE")
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_or_unreachable_servers_fail_with_a_clear_message() {
    let db = TestDatabase::create().await.unwrap();
    let nats = nats_url();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("ORDO_DATABASE_URL", "postgres://ordo:ordo@127.0.0.1:1/ordo"),
                ("ORDO_NATS_URL", &nats),
            ],
            "cannot connect to Postgres",
        ),
        (
            vec![("ORDO_DATABASE_URL", "not a url"), ("ORDO_NATS_URL", &nats)],
            "ORDO_DATABASE_URL",
        ),
        (
            vec![
                ("ORDO_DATABASE_URL", &db.url),
                ("ORDO_NATS_URL", "nats://127.0.0.1:1"),
            ],
            "cannot connect to NATS",
        ),
        (
            vec![
                ("ORDO_DATABASE_URL", &db.url),
                ("ORDO_NATS_URL", &nats),
                ("ORDO_NATS_NAMESPACE", "Bad.Name"),
            ],
            "ORDO_NATS_NAMESPACE",
        ),
    ];
    for (env, expected) in cases {
        let (ok, stderr) = migrate_with(&env).await;
        assert!(!ok, "{env:?} should fail");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (ok, stderr) = migrate_with(&[
        ("ORDO_DATABASE_URL", &db.url),
        ("ORDO_NATS_URL", &nats),
        ("ORDO_HTTP_ADDR", "nonsense"),
    ])
    .await;
    assert!(!ok);
    assert!(
        stderr.contains("http-addr") || stderr.contains("HTTP_ADDR") || stderr.contains("invalid"),
        "{stderr}"
    );
}
