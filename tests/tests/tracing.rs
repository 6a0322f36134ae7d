//! Tracing end to end: `ordo serve` exports OpenTelemetry spans over OTLP/HTTP to a
//! receiver this test runs, and one checkout (placing the order, then paying it, both sent
//! by a client in its own trace) is one trace: the HTTP requests, the commands and their
//! commits, the relay's publishes, the checkout saga's steps, the payment provider call and
//! the projections, each span linked to its parent across NATS and carrying its request id.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use ordo_tests::{eventually, TestOrdo};
use prost::Message;
use reqwest::Method;
use serde_json::json;

/// Every span the receiver was sent.
type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver on a free port: `POST /v1/traces` with a protobuf body.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(received): State<Received>, body: Bytes| async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
                let mut spans = received.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans);
                    }
                }
                axum::http::StatusCode::OK
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), received)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            AnyValue::BoolValue(b) => b.to_string(),
            other => format!("{other:?}"),
        })
}

/// `(span name, attribute, value)` facts a checkout's trace must show.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("http", "path", "/api/v1/orders"),
    ("command", "aggregate_type", "order"),
    ("command", "aggregate_type", "inventory"),
    ("command", "aggregate_type", "payment"),
    ("commit", "aggregate_type", "order"),
    ("relay", "", ""),
    ("event", "consumer", "saga-checkout"),
    ("event", "consumer", "saga-checkout-payments"),
    ("payment_provider", "call", "/charges"),
    ("event", "consumer", "projection-orders"),
    ("projection", "projection", "projection-orders"),
];

fn shows(spans: &[&Span], (name, key, value): (&str, &str, &str)) -> bool {
    spans.iter().any(|span| {
        span.name == name && (key.is_empty() || attribute(span, key).as_deref() == Some(value))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_checkout_is_one_trace_from_the_request_to_the_projections() {
    let (endpoint, received) = receiver().await;
    let ordo = TestOrdo::builder()
        .env("ORDO_OTLP_ENDPOINT", &endpoint)
        .env("ORDO_OTLP_FLUSH_INTERVAL", "200ms")
        .env("ORDO_SANDBOX_DELAY", "50ms")
        .start()
        .await;
    let api = ordo.api();
    let admin = api.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "LAMP", "name": "Lamp", "category": "home", "price": 1500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/LAMP/restock", json!({"quantity": 5}))
        .await;
    assert_eq!(restocked.status, 200);
    let (customer, _) = api.register("tracy@example.com").await;

    // The shop front traces its checkout: both calls carry its trace context.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "LAMP", "quantity": 1}]})),
            &[("prefer", "wait=15"), ("traceparent", &traceparent)],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    assert_eq!(
        placed.body["status"], "awaiting_payment",
        "{:?}",
        placed.body
    );
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    let paid = customer
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(json!({"payment_method": "card", "payment_token": "tok_success"})),
            &[("prefer", "wait=15"), ("traceparent", &traceparent)],
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    let request_ids: HashSet<String> = [&placed, &paid]
        .iter()
        .map(|answer| answer.header("x-request-id").expect("a request id"))
        .collect();
    assert_eq!(request_ids.len(), 2);

    let trace_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let client_span_bytes: Vec<u8> = (0..8)
        .map(|i| u8::from_str_radix(&client_span[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let spans = eventually("the checkout's spans", Duration::from_secs(30), || {
        let received = received.clone();
        let trace_bytes = trace_bytes.clone();
        let client_span_bytes = client_span_bytes.clone();
        async move {
            let all = received.lock().unwrap().clone();
            let traced: Vec<&Span> = all.iter().filter(|s| s.trace_id == trace_bytes).collect();
            // A parent ends after its children: wait for it to be exported too.
            let ids: HashSet<&[u8]> = traced.iter().map(|s| s.span_id.as_slice()).collect();
            let complete = traced.iter().all(|s| {
                s.parent_span_id == client_span_bytes || ids.contains(s.parent_span_id.as_slice())
            });
            (complete && EXPECTED.iter().all(|expected| shows(&traced, *expected)))
                .then(|| traced.into_iter().cloned().collect::<Vec<Span>>())
        }
    })
    .await;

    // Every span names the request that caused it, and hangs from a span of the trace (or
    // from the client's): the context crossed the relay and NATS intact.
    let ids: HashMap<&[u8], &Span> = spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    for span in &spans {
        let request_id = attribute(span, "request_id");
        assert!(
            request_id
                .as_ref()
                .is_some_and(|id| request_ids.contains(id)),
            "span {} has request id {request_id:?}, not one of {request_ids:?}",
            span.name
        );
        assert!(
            span.parent_span_id == client_span_bytes
                || ids.contains_key(span.parent_span_id.as_slice()),
            "span {} has a parent outside the trace",
            span.name
        );
    }
    // The saga's step that charges the provider descends from the pay request, through the
    // payment's commit, the relay and the saga's consumer.
    let charge = spans.iter().find(|s| s.name == "payment_provider").unwrap();
    let mut chain = vec![charge.name.clone()];
    let mut at = charge;
    while let Some(parent) = ids.get(at.parent_span_id.as_slice()) {
        chain.push(parent.name.clone());
        at = parent;
    }
    assert_eq!(chain.last().map(String::as_str), Some("http"), "{chain:?}");
    for step in ["event", "relay", "command"] {
        assert!(chain.iter().any(|name| name == step), "{chain:?}");
    }
    assert_eq!(
        attribute(at, "request_id"),
        paid.header("x-request-id"),
        "the charge descends from the pay request"
    );
    drop(ordo);
}
