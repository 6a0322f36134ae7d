//! End to end: what operators do — the NATS admin service, `/metrics`, projection status
//! and rebuilds beside the live tables, refilling a lost stream from the event store, and
//! clear refusals of bad input.

use std::time::Duration;

use async_nats::jetstream;
use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

const FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "20ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
    ("ORDO_CONSUMER_MAX_DELIVER", "2"),
    ("ORDO_CONSUMER_BACKOFF", "100ms"),
    ("ORDO_METRICS_INTERVAL", "300ms"),
];

/// A request to the admin service of `ordo` over NATS; answers the JSON body or the
/// service error `(code, message)`.
async fn admin_service(
    ordo: &TestOrdo,
    endpoint: &str,
    body: &str,
) -> Result<Value, (String, String)> {
    let subject = format!("{}.admin.{endpoint}", ordo.namespace());
    let message = tokio::time::timeout(
        Duration::from_secs(30),
        ordo.nats()
            .await
            .request(subject.clone(), body.to_owned().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("{subject} answered in time"))
    .unwrap_or_else(|err| panic!("{subject}: {err}"));
    if let Some(headers) = &message.headers {
        if let Some(code) = headers.get("Nats-Service-Error-Code") {
            let text = headers
                .get("Nats-Service-Error")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            return Err((code.as_str().to_owned(), text));
        }
    }
    Ok(serde_json::from_slice(&message.payload).expect("a JSON answer"))
}

/// A catalog of two products and a customer.
async fn shop(api: &Api) -> (Api, Api) {
    let admin = api.admin().await;
    for (sku, price, stock) in [("WIDGET", 500, 1000), ("GADGET", 2500, 1000)] {
        let created = admin
            .post("/api/v1/products", json!({"sku": sku, "name": sku, "category": "test", "price": price, "currency": "EUR"}))
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let restocked = admin
            .post(
                &format!("/api/v1/inventory/{sku}/restock"),
                json!({"quantity": stock}),
            )
            .await;
        assert_eq!(restocked.status, 200);
    }
    let (customer, _) = api.register("erin@example.com").await;
    (admin, customer)
}

/// Places an order without waiting for the saga; answers its id.
async fn place(customer: &Api) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "WIDGET", "quantity": 1}, {"sku": "GADGET", "quantity": 1}]})),
            &[],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    placed.body["order_id"].as_str().unwrap().to_string()
}

/// Places an order, waits until it awaits payment, and pays it.
async fn place_and_pay(customer: &Api) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "WIDGET", "quantity": 2}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    eventually(
        "order awaiting payment",
        Duration::from_secs(20),
        || async {
            let body = customer
                .get(&format!("/api/v1/orders/{order_id}"))
                .await
                .body;
            (body["status"] == "awaiting_payment").then_some(())
        },
    )
    .await;
    let paid = customer
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(json!({"payment_method": "card", "payment_token": "tok_success"})),
            &[],
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    order_id
}

/// Waits until every projection and saga consumer of the namespace has nothing pending.
async fn consumers_idle(ordo: &TestOrdo) {
    let js = jetstream::new(ordo.nats().await);
    eventually("consumers idle", Duration::from_secs(30), || {
        let js = js.clone();
        async move {
            for (kind, names) in [
                ("ORDER", &["projection-orders", "saga-checkout"][..]),
                (
                    "PAYMENT",
                    &["projection-payments", "saga-checkout-payments"][..],
                ),
                ("INVENTORY", &["projection-inventory"][..]),
                ("PRODUCT", &["projection-products"][..]),
            ] {
                let stream = js.get_stream(ordo.stream_name(kind)).await.ok()?;
                for name in names {
                    let info = stream.consumer_info(*name).await.ok()?;
                    if info.num_pending > 0 || info.num_ack_pending > 0 {
                        return None;
                    }
                }
            }
            Some(())
        }
    })
    .await;
}

/// Waits until nothing moves any more: the outbox is empty, every consumer idle, and no
/// event was appended meanwhile (a saga step may still be issuing commands).
async fn settled(ordo: &TestOrdo) {
    let mut last = -1_i64;
    loop {
        consumers_idle(ordo).await;
        let (events, outbox): (i64, i64) =
            sqlx::query_as("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox)")
                .fetch_one(ordo.pool())
                .await
                .unwrap();
        if outbox == 0 && events == last {
            return;
        }
        last = events;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every read model's rows as JSON, in a stable order.
async fn read_models(pool: &PgPool) -> Value {
    let mut all = serde_json::Map::new();
    for (table, order) in [
        ("products", "sku"),
        ("inventory_levels", "sku"),
        ("orders", "order_id"),
        ("order_lines", "order_id, line_no"),
        ("payments", "payment_id"),
    ] {
        let rows: Vec<(Value,)> = sqlx::query_as(&format!(
            "SELECT to_jsonb(t) FROM {table} t ORDER BY {order}"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        all.insert(
            table.to_owned(),
            Value::Array(rows.into_iter().map(|r| r.0).collect()),
        );
    }
    Value::Object(all)
}

/// Index names and foreign keys of the read models.
async fn schema_shape(pool: &PgPool) -> Vec<String> {
    let mut shape: Vec<(String,)> = sqlx::query_as(
        "SELECT tablename || ' ' || indexname FROM pg_indexes \
         WHERE schemaname = 'public' \
           AND tablename IN ('products', 'inventory_levels', 'orders', 'order_lines', 'payments')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let fks: Vec<(String,)> = sqlx::query_as(
        "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) \
         FROM pg_constraint WHERE contype IN ('f', 'c') \
           AND conrelid::regclass::text IN ('products', 'inventory_levels', 'orders', 'order_lines', 'payments')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    shape.extend(fks);
    let mut shape: Vec<String> = shape.into_iter().map(|r| r.0).collect();
    shape.sort();
    shape
}

/// Lines of `/metrics` for `name` carrying every one of `labels`.
fn metric_lines<'a>(text: &'a str, name: &str, labels: &[(&str, &str)]) -> Vec<&'a str> {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .collect()
}

fn metric_value(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_service_answers_every_endpoint() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    let order_id = place_and_pay(&customer).await;

    // status: roles, uptime, outbox, relay leadership.
    let status = eventually("the relay leads", Duration::from_secs(10), || async {
        let status = admin_service(&ordo, "status", "").await.unwrap();
        (status["relay_leader"] == true).then_some(status)
    })
    .await;
    assert_eq!(status["service"], "ordo");
    assert_eq!(status["namespace"], ordo.namespace());
    assert_eq!(status["roles"], json!(["gateway", "relay", "workers"]));
    assert!(status["uptime_seconds"].is_u64(), "{status}");
    assert!(status["outbox_depth"].is_i64(), "{status}");

    // The service as `nats micro info` sees it: named ordo, the namespace in its metadata,
    // the endpoints under <ns>.admin.
    let service_id = status["service_id"].as_str().unwrap();
    let info = ordo
        .nats()
        .await
        .request(format!("$SRV.INFO.ordo.{service_id}"), "".into())
        .await
        .unwrap();
    let info: Value = serde_json::from_slice(&info.payload).unwrap();
    assert_eq!(info["name"], "ordo");
    assert_eq!(info["metadata"]["namespace"], ordo.namespace());
    let mut subjects: Vec<String> = info["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap().to_owned())
        .collect();
    subjects.sort();
    let ns = ordo.namespace();
    assert_eq!(
        subjects,
        [
            "dlq.list",
            "dlq.redrive",
            "projections.rebuild",
            "projections.status",
            "saga",
            "status"
        ]
        .map(|s| format!("{ns}.admin.{s}"))
    );
    let ping = ordo
        .nats()
        .await
        .request(format!("$SRV.PING.ordo.{service_id}"), "".into())
        .await
        .unwrap();
    let ping: Value = serde_json::from_slice(&ping.payload).unwrap();
    assert_eq!(ping["version"], env!("CARGO_PKG_VERSION"));

    // projections.status: every projection with its position and lag (once the saga's
    // last events are published and applied too).
    settled(&ordo).await;
    let projections = admin_service(&ordo, "projections.status", "")
        .await
        .unwrap();
    let orders = projections["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "projection-orders")
        .cloned()
        .expect("projection-orders listed");
    assert_eq!(orders["aggregate_type"], "order");
    assert_eq!(orders["aggregates_applied"], 1);
    assert_eq!(orders["pending"], 0);
    assert_eq!(orders["state"], "live");
    assert_eq!(projections["projections"].as_array().unwrap().len(), 15);

    // saga: the checkout of the order.
    let (saga_id,): (uuid::Uuid,) = sqlx::query_as(
        "SELECT saga_id FROM sagas WHERE data->>'order_id' = $1 OR saga_id::text = $1",
    )
    .bind(&order_id)
    .fetch_one(ordo.pool())
    .await
    .unwrap();
    let saga = admin_service(&ordo, "saga", &json!({"saga_id": saga_id}).to_string())
        .await
        .unwrap();
    assert_eq!(saga["saga_id"], saga_id.to_string());
    assert!(!saga["steps"].as_array().unwrap().is_empty(), "{saga}");

    // dlq.list and dlq.redrive: an unreadable message is dead-lettered, listed, re-driven.
    let js = jetstream::new(ordo.nats().await);
    js.publish(
        format!("{ns}.events.order.{}.Garbage", uuid::Uuid::new_v4()),
        "not an event".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let letters = eventually("a dead letter", Duration::from_secs(20), || async {
        let listed = admin_service(&ordo, "dlq.list", r#"{"consumer": "projection-orders"}"#)
            .await
            .unwrap();
        let letters = listed["dead_letters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert!(
        letters[0]["error"].as_str().unwrap().contains("poison"),
        "{letters:?}"
    );
    let all = admin_service(&ordo, "dlq.list", "").await.unwrap();
    assert!(all["dead_letters"].as_array().unwrap().len() >= letters.len());
    let sequence = letters[0]["dlq_sequence"].as_u64().unwrap();
    let redriven = admin_service(
        &ordo,
        "dlq.redrive",
        &json!({"sequence": sequence}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(redriven["redriven"], json!([sequence]));

    // projections.rebuild, waited for: the projection is live again with the same rows.
    settled(&ordo).await;
    let before = read_models(ordo.pool()).await;
    let rebuilt = admin_service(
        &ordo,
        "projections.rebuild",
        r#"{"name": "projection-orders", "wait": true}"#,
    )
    .await
    .unwrap();
    assert_eq!(rebuilt["state"], "live", "{rebuilt}");
    assert_eq!(read_models(ordo.pool()).await["orders"], before["orders"]);
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_service_refuses_bad_input_with_clear_errors() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (code, message) = admin_service(&ordo, "dlq.redrive", "{not json")
        .await
        .unwrap_err();
    assert_eq!(code, "400");
    assert!(message.contains("bad JSON"), "{message}");
    let (code, message) = admin_service(&ordo, "dlq.redrive", "{}").await.unwrap_err();
    assert_eq!(code, "400");
    assert!(message.contains("sequence"), "{message}");
    let (code, message) = admin_service(&ordo, "dlq.redrive", r#"{"sequence": 999999}"#)
        .await
        .unwrap_err();
    assert_eq!(code, "404");
    assert!(message.contains("no dead letter 999999"), "{message}");
    let (code, message) = admin_service(
        &ordo,
        "projections.rebuild",
        r#"{"name": "projection-nope"}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(code, "404");
    assert!(
        message.contains("unknown projection") && message.contains("projection-orders"),
        "{message}"
    );
    let (code, _) = admin_service(&ordo, "projections.rebuild", "")
        .await
        .unwrap_err();
    assert_eq!(code, "400");
    let unknown = uuid::Uuid::new_v4();
    let (code, message) = admin_service(&ordo, "saga", &json!({"saga_id": unknown}).to_string())
        .await
        .unwrap_err();
    assert_eq!(code, "404");
    assert!(message.contains(&format!("no saga {unknown}")), "{message}");
    let (code, message) = admin_service(&ordo, "saga", r#"{"saga_id": "abc"}"#)
        .await
        .unwrap_err();
    assert_eq!(code, "400");
    assert!(message.contains("not a saga id"), "{message}");
    let (code, _) = admin_service(&ordo, "dlq.list", "[1,").await.unwrap_err();
    assert_eq!(code, "400");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_commands_events_consumers_and_sagas() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    let order_id = place_and_pay(&customer).await;
    let seen = customer.get(&format!("/api/v1/orders/{order_id}")).await;
    assert_eq!(seen.status, 200);
    settled(&ordo).await;

    let text = eventually("sampled gauges", Duration::from_secs(10), || async {
        let response = reqwest::get(format!("{}/metrics", ordo.base_url()))
            .await
            .ok()?;
        assert_eq!(response.status(), 200);
        let text = response.text().await.ok()?;
        let sampled = !metric_lines(&text, "ordo_sagas", &[("saga_type", "checkout")]).is_empty()
            && !metric_lines(
                &text,
                "ordo_consumer_pending",
                &[("consumer", "projection-orders")],
            )
            .is_empty();
        sampled.then_some(text)
    })
    .await;

    // HTTP by route template, never by raw path.
    let posts = metric_lines(
        &text,
        "ordo_http_requests_total",
        &[
            ("method", "POST"),
            ("route", "/api/v1/orders"),
            ("status", "202"),
        ],
    );
    assert_eq!(posts.len(), 1, "{text}");
    assert!(metric_value(posts[0]) >= 1.0);
    assert!(!metric_lines(
        &text,
        "ordo_http_request_duration_seconds_bucket",
        &[
            ("method", "GET"),
            ("route", "/api/v1/orders/{order_id}"),
            ("status", "200")
        ],
    )
    .is_empty());
    assert!(!text.contains(&order_id), "raw ids must not become labels");
    // Write side, relay and consumers.
    let accepted = metric_lines(
        &text,
        "ordo_commands_total",
        &[("aggregate_type", "order"), ("outcome", "accepted")],
    );
    assert!(metric_value(accepted[0]) >= 2.0, "{text}");
    let appended = metric_lines(
        &text,
        "ordo_events_appended_total",
        &[("aggregate_type", "order")],
    );
    let (order_events,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_type = 'order'")
            .fetch_one(ordo.pool())
            .await
            .unwrap();
    assert_eq!(metric_value(appended[0]), order_events as f64);
    let (all_events,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(ordo.pool())
        .await
        .unwrap();
    let published = metric_lines(&text, "ordo_relay_events_published_total", &[]);
    assert_eq!(metric_value(published[0]), all_events as f64, "{text}");
    for gauge in [
        "ordo_outbox_depth",
        "ordo_relay_lag_seconds",
        "ordo_relay_leader",
    ] {
        assert_eq!(
            metric_lines(&text, gauge, &[]).len(),
            1,
            "{gauge} in {text}"
        );
    }
    let handled = metric_lines(
        &text,
        "ordo_consumer_events_handled_total",
        &[("consumer", "projection-orders")],
    );
    assert!(metric_value(handled[0]) >= order_events as f64, "{text}");
    assert_eq!(
        metric_value(
            metric_lines(
                &text,
                "ordo_consumer_pending",
                &[("consumer", "saga-checkout")]
            )[0]
        ),
        0.0
    );
    assert!(!metric_lines(
        &text,
        "ordo_consumer_redelivered",
        &[("consumer", "projection-payments")]
    )
    .is_empty());
    assert!(!metric_lines(
        &text,
        "ordo_projection_lag_events",
        &[("projection", "projection-inventory")]
    )
    .is_empty());
    assert!(!metric_lines(
        &text,
        "ordo_dead_letters",
        &[("consumer", "projection-orders")]
    )
    .is_empty());
    let sagas: f64 = metric_lines(&text, "ordo_sagas", &[("saga_type", "checkout")])
        .iter()
        .map(|l| metric_value(l))
        .sum();
    assert_eq!(sagas, 1.0, "{text}");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_status_prints_every_projection_with_its_position_and_lag() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    place_and_pay(&customer).await;
    consumers_idle(&ordo).await;
    let (ok, table, err) = ordo.cli(&["projections", "status"]).await;
    assert!(ok, "{err}");
    let header = table.lines().next().unwrap();
    for column in [
        "projection",
        "type",
        "aggregates",
        "last applied at",
        "pending",
        "state",
    ] {
        assert!(header.contains(column), "{table}");
    }
    let line = table
        .lines()
        .find(|l| l.starts_with("projection-products"))
        .expect("projection-products listed");
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[1], "product");
    assert_eq!(cells[2], "2", "two products applied: {line}");
    assert_eq!(cells[cells.len() - 2], "0", "nothing pending: {line}");
    assert_eq!(cells[cells.len() - 1], "live");

    let (ok, json_lines, _) = ordo.cli(&["projections", "status", "--json"]).await;
    assert!(ok);
    let reports: Vec<Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 15);
    let orders = reports
        .iter()
        .find(|r| r["name"] == "projection-orders")
        .unwrap();
    assert_eq!(
        orders["tables"],
        json!(["orders", "order_lines", "order_discounts"])
    );
    assert!(orders["last_applied_at"].is_string());
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_every_projection_gives_the_same_rows_and_schema() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    for _ in 0..3 {
        place_and_pay(&customer).await;
    }
    place(&customer).await;
    settled(&ordo).await;
    let before = read_models(ordo.pool()).await;
    let shape = schema_shape(ordo.pool()).await;
    assert!(before["payments"].as_array().unwrap().len() >= 3);

    for name in [
        "projection-products",
        "projection-inventory",
        "projection-orders",
        "payments",
    ] {
        let (ok, out, err) = ordo.cli(&["projections", "rebuild", name]).await;
        assert!(ok, "rebuild {name}: {err}");
        assert!(out.starts_with("rebuilt projection-"), "{out}");
    }
    assert_eq!(read_models(ordo.pool()).await, before);
    assert_eq!(schema_shape(ordo.pool()).await, shape);
    // The live consumers carry on after the switch.
    let order_id = place_and_pay(&customer).await;
    eventually(
        "the new order in the read model",
        Duration::from_secs(20),
        || async {
            let body = customer
                .get(&format!("/api/v1/orders/{order_id}"))
                .await
                .body;
            (body["status"] == "paid").then_some(())
        },
    )
    .await;
    let (ok, out, _) = ordo.cli(&["projections", "status"]).await;
    assert!(ok);
    assert!(
        !out.contains("rebuilding") && !out.contains("failed"),
        "{out}"
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_keep_answering_and_live_orders_are_kept_during_a_rebuild() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    let mut placed = Vec::new();
    for _ in 0..40 {
        placed.push(place(&customer).await);
    }
    consumers_idle(&ordo).await;

    let rebuild = async {
        let (ok, out, err) = ordo
            .cli(&["projections", "rebuild", "projection-orders"])
            .await;
        assert!(ok, "rebuild: {err}");
        out
    };
    let traffic = async {
        let mut during = Vec::new();
        let mut reads = 0;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(4) {
            let list = customer.get("/api/v1/orders?limit=5").await;
            assert_eq!(list.status, 200, "{:?}", list.body);
            let one = customer.get(&format!("/api/v1/orders/{}", placed[0])).await;
            assert_eq!(one.status, 200, "{:?}", one.body);
            reads += 2;
            if during.len() < 15 {
                during.push(place(&customer).await);
            }
        }
        (during, reads)
    };
    let (out, (during, reads)) = tokio::join!(rebuild, traffic);
    assert!(out.contains("rebuilt projection-orders"), "{out}");
    assert!(reads > 10, "only {reads} reads");
    placed.extend(during);

    // Every order, before, during and after the rebuild, is in the read model.
    placed.push(place(&customer).await);
    eventually(
        "every order in the read model",
        Duration::from_secs(30),
        || async {
            let (count,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM orders WHERE order_id::text = ANY($1)")
                    .bind(&placed)
                    .fetch_one(ordo.pool())
                    .await
                    .unwrap();
            (count == placed.len() as i64).then_some(())
        },
    )
    .await;
    settled(&ordo).await;
    // And each reflects its last event: the same as rebuilding again from scratch.
    let live = read_models(ordo.pool()).await;
    let (ok, _, err) = ordo.cli(&["projections", "rebuild", "orders"]).await;
    assert!(ok, "{err}");
    let rebuilt = read_models(ordo.pool()).await;
    assert_eq!(live["orders"], rebuilt["orders"]);
    assert_eq!(live["order_lines"], rebuilt["order_lines"]);
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_projection_is_refused_with_the_known_names() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (ok, _, err) = ordo
        .cli(&["projections", "rebuild", "projection-nope"])
        .await;
    assert!(!ok);
    assert!(
        err.contains("unknown projection \"projection-nope\"") && err.contains("projection-orders"),
        "{err}"
    );
    ordo.stop().await;
}

/// The messages of a stream, in order, as their `Nats-Msg-Id`s.
async fn stream_msg_ids(ordo: &TestOrdo, kind: &str) -> Vec<String> {
    let js = jetstream::new(ordo.nats().await);
    let mut stream = js.get_stream(ordo.stream_name(kind)).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut ids = Vec::new();
    if state.messages == 0 {
        return ids;
    }
    for sequence in state.first_sequence..=state.last_sequence {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            ids.push(
                message
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
            );
        }
    }
    ids
}

/// The `Nats-Msg-Id`s of an aggregate type's stored events, in position order.
async fn stored_msg_ids(pool: &PgPool, aggregate_type: &str) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT aggregate_type || ':' || aggregate_id || ':' || sequence FROM events \
         WHERE aggregate_type = $1 ORDER BY position",
    )
    .bind(aggregate_type)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.0)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_stream_is_refilled_from_the_event_store_without_duplicate_effects() {
    let ordo = TestOrdo::with_env(FAST).await;
    let api = ordo.api();
    let (_, customer) = shop(&api).await;
    for _ in 0..3 {
        place_and_pay(&customer).await;
    }
    place(&customer).await;
    settled(&ordo).await;
    let before = read_models(ordo.pool()).await;
    let (events_before,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(ordo.pool())
        .await
        .unwrap();
    let expected = stored_msg_ids(ordo.pool(), "order").await;
    assert!(expected.len() >= 10);

    // The stream is lost.
    let js = jetstream::new(ordo.nats().await);
    js.delete_stream(ordo.stream_name("ORDER")).await.unwrap();
    let (ok, out, err) = ordo.cli(&["streams", "rebuild", "ORDO_ORDER"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("published {} order events", expected.len())),
        "{out}"
    );
    assert_eq!(
        stream_msg_ids(&ordo, "ORDER").await,
        expected,
        "{out} {err}"
    );

    // The consumers re-read it from the start (recreated with the stream) and change
    // nothing: no read model row, no saga command.
    eventually(
        "the consumers re-read the stream",
        Duration::from_secs(30),
        || async {
            let stream = js.get_stream(ordo.stream_name("ORDER")).await.ok()?;
            for name in ["projection-orders", "saga-checkout"] {
                let info = stream.consumer_info(name).await.ok()?;
                if info.delivered.stream_sequence < expected.len() as u64 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    settled(&ordo).await;
    assert_eq!(read_models(ordo.pool()).await, before);
    let (events_after,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(ordo.pool())
        .await
        .unwrap();
    assert_eq!(events_after, events_before);

    // A damaged stream: --purge leaves exactly one message per stored event.
    let (ok, out, err) = ordo
        .cli(&["streams", "rebuild", "ORDO_ORDER", "--purge"])
        .await;
    assert!(ok, "{err}");
    assert!(out.contains(&format!("purged {}", expected.len())), "{out}");
    assert_eq!(stream_msg_ids(&ordo, "ORDER").await, expected);
    settled(&ordo).await;
    assert_eq!(read_models(ordo.pool()).await, before);

    // New traffic still flows.
    let order_id = place_and_pay(&customer).await;
    eventually("the new order paid", Duration::from_secs(20), || async {
        let body = customer
            .get(&format!("/api/v1/orders/{order_id}"))
            .await
            .body;
        (body["status"] == "paid").then_some(())
    })
    .await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stream_is_refused_with_the_valid_names() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (ok, _, err) = ordo.cli(&["streams", "rebuild", "ORDO_NOPE"]).await;
    assert!(!ok);
    let ns = ordo.namespace().to_uppercase();
    assert!(
        err.contains("unknown stream \"ORDO_NOPE\"")
            && err.contains(&format!("{ns}_ORDER"))
            && err.contains(&format!("{ns}_PAYMENT")),
        "{err}"
    );
    let (ok, _, err) = ordo.cli(&["streams", "rebuild", "ORDO_DLQ"]).await;
    assert!(!ok, "the dead-letter stream holds no events to refill");
    assert!(err.contains("unknown stream"), "{err}");
    ordo.stop().await;
}
