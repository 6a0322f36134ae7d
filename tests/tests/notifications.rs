//! End to end: the notification inbox fed by the order stream: one entry per event even
//! when JetStream delivers it twice, reading and marking it, ownership, the live SSE
//! stream and the email spool.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use ordo_tests::{
    delete_streams, eventually, unique_namespace, Api, OrdoProcess, SpawnOptions, TestDatabase,
};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

struct World {
    _db: TestDatabase,
    ordo: OrdoProcess,
    namespace: String,
    pool: PgPool,
    spool: PathBuf,
}

impl World {
    async fn start() -> Self {
        let db = TestDatabase::create().await.expect("database");
        let namespace = unique_namespace();
        let spool = std::env::temp_dir().join(format!("ordo-mail-{namespace}"));
        let options = SpawnOptions {
            env: vec![("ORDO_MAIL_SPOOL_DIR".into(), spool.display().to_string())],
        };
        let ordo = OrdoProcess::spawn(&db.url, &namespace, options)
            .await
            .expect("ordo serve starts");
        let pool = db.pool().await.expect("pool");
        Self {
            _db: db,
            ordo,
            namespace,
            pool,
            spool,
        }
    }

    async fn stop(mut self) {
        self.pool.close().await;
        self.ordo.kill().await;
        delete_streams(&self.namespace).await;
        let _ = std::fs::remove_dir_all(&self.spool);
    }
}

async fn shop(api: &Api) {
    let admin = api.admin().await;
    let created = admin
        .post("/api/v1/products", json!({"sku": "WIDGET", "name": "Widget", "category": "test", "price": 500, "currency": "EUR"}))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/WIDGET/restock", json!({"quantity": 50}))
        .await;
    assert_eq!(restocked.status, 200);
}

async fn place(customer: &Api) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "WIDGET", "quantity": 1}]})),
            &[("prefer", "wait=15")],
        )
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    placed.body["order_id"].as_str().unwrap().to_string()
}

async fn inbox(customer: &Api, query: &str) -> Vec<Value> {
    let answer = customer.get(&format!("/api/v1/notifications{query}")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["notifications"].as_array().unwrap().clone()
}

/// Publishes a copy of the `OrderConfirmed` event of `order_id` under a new message id, so
/// JetStream delivers it to the consumers a second time.
async fn deliver_again(namespace: &str, order_id: &str) -> u64 {
    let client = async_nats::connect(ordo_tests::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream(format!("{}_ORDER", namespace.to_uppercase()))
        .await
        .unwrap();
    let subject = format!("{namespace}.events.order.{order_id}.OrderConfirmed");
    let original = stream
        .get_last_raw_message_by_subject(&subject)
        .await
        .unwrap();
    let mut headers = original.headers.clone();
    headers.insert("Nats-Msg-Id", format!("again-{}", uuid::Uuid::new_v4()));
    let ack = js
        .publish_with_headers(subject, headers, original.payload.clone())
        .await
        .unwrap()
        .await
        .unwrap();
    ack.sequence
}

#[tokio::test]
async fn an_order_confirmed_twice_delivered_notifies_once_and_can_be_read() {
    let world = World::start().await;
    let api = world.ordo.api();
    shop(&api).await;
    let (customer, user_id) = api.register("nora@example.com").await;
    let order_id = place(&customer).await;

    let entries = eventually(
        "the order confirmed notification",
        Duration::from_secs(20),
        || async {
            let entries = inbox(&customer, "").await;
            (!entries.is_empty()).then_some(entries)
        },
    )
    .await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["kind"], "order_confirmed");
    assert_eq!(entry["data"]["order_id"], order_id);
    assert!(entry["read_at"].is_null());
    let id = entry["notification_id"].as_str().unwrap().to_string();

    // The same event again: the consumer must see it, and the inbox must not change.
    let sequence = deliver_again(&world.namespace, &order_id).await;
    let client = async_nats::connect(ordo_tests::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    eventually(
        "the duplicate acknowledged by notifications-orders",
        Duration::from_secs(20),
        || {
            let js = js.clone();
            let stream = format!("{}_ORDER", world.namespace.to_uppercase());
            async move {
                let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
                    .get_consumer_from_stream("notifications-orders", &stream)
                    .await
                    .ok()?;
                let info = consumer.info().await.ok()?;
                (info.ack_floor.stream_sequence >= sequence).then_some(())
            }
        },
    )
    .await;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE user_id = $1::uuid")
            .bind(&user_id)
            .fetch_one(&world.pool)
            .await
            .unwrap();
    assert_eq!(count, 1);
    assert_eq!(inbox(&customer, "").await.len(), 1);

    // The email copy is in the spool, once, named by the notification id.
    let mail = world.spool.join(format!("{id}.eml"));
    let text = eventually("the spooled email", Duration::from_secs(10), || async {
        std::fs::read_to_string(&mail).ok()
    })
    .await;
    assert!(
        text.contains("To: Test Customer <nora@example.com>"),
        "{text}"
    );
    assert!(text.contains("Subject: Order confirmed"), "{text}");
    let files = std::fs::read_dir(&world.spool).unwrap().filter(|f| {
        f.as_ref()
            .map(|f| f.file_name().to_string_lossy().ends_with(".eml"))
            .unwrap_or(false)
    });
    assert_eq!(files.count(), 1);

    // Read it; it leaves the unread list; a second read keeps the first time.
    assert_eq!(inbox(&customer, "?unread=true").await.len(), 1);
    let read = customer
        .post(&format!("/api/v1/notifications/{id}/read"), json!({}))
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    let read_at = read.body["read_at"].clone();
    assert!(read_at.is_string());
    assert!(inbox(&customer, "?unread=true").await.is_empty());
    let again = customer
        .post(&format!("/api/v1/notifications/{id}/read"), json!({}))
        .await;
    assert_eq!(again.body["read_at"], read_at);

    // Somebody else's notification does not exist for them.
    let (other, _) = api.register("otto@example.com").await;
    let answer = other
        .post(&format!("/api/v1/notifications/{id}/read"), json!({}))
        .await;
    assert_eq!(answer.status, 404, "{:?}", answer.body);
    assert!(inbox(&other, "").await.is_empty());
    let anonymous = api.get("/api/v1/notifications").await;
    assert_eq!(anonymous.status, 401);

    world.stop().await;
}

#[tokio::test]
async fn the_stream_pushes_a_notification_created_after_connecting() {
    let world = World::start().await;
    let api = world.ordo.api();
    shop(&api).await;
    let (customer, _) = api.register("sara@example.com").await;

    let response = customer
        .client
        .get(format!("{}/api/v1/notifications/stream", customer.base))
        .bearer_auth(customer.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = response.bytes_stream();

    let order_id = place(&customer).await;
    let mut text = String::new();
    let received = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains("event: notification")
                && text.contains("order_confirmed")
                && text.ends_with("\n\n")
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(received, Ok(true), "stream so far: {text}");
    let data = text
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("a data line");
    let entry: Value = serde_json::from_str(data).unwrap();
    assert_eq!(entry["kind"], "order_confirmed");
    assert_eq!(entry["data"]["order_id"], order_id);
    world.stop().await;
}

#[tokio::test]
async fn a_booking_notifies_its_payment_deadline_then_its_tickets() {
    let world = World::start().await;
    let api = world.ordo.api();
    let admin = api.admin().await;
    let created = admin
        .post(
            "/api/v1/shows",
            json!({"title": "Rock Night", "category": "concert", "city": "Lyon", "venue": "Arena",
                   "sessions": [{"starts_at": "2030-06-01T19:00:00Z", "seat_areas": [
                       {"area_id": "floor", "name": "Floor", "price": 4500, "currency": "EUR", "capacity": 10}]}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let session_id = created.body["session_ids"][0].as_str().unwrap().to_string();
    let (fan, _) = api.register("fan@example.com").await;
    let booked = fan
        .send(
            Method::POST,
            "/api/v1/bookings",
            Some(json!({"session_id": session_id, "seat_area_id": "floor", "quantity": 2})),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(booked.status, 202, "{:?}", booked.body);
    let booking_id = booked.body["booking_id"].as_str().unwrap().to_string();

    let pending = eventually(
        "the pending payment notification",
        Duration::from_secs(20),
        || async {
            inbox(&fan, "")
                .await
                .into_iter()
                .find(|n| n["kind"] == "booking_pending_payment")
        },
    )
    .await;
    let expires_at = pending["data"]["expires_at"].as_str().unwrap().to_string();
    assert!(
        pending["body"]
            .as_str()
            .unwrap()
            .contains(&format!("pay before {expires_at}")),
        "{pending}"
    );
    assert_eq!(pending["data"]["booking_id"], booking_id.as_str());

    let paid = fan
        .post(
            &format!("/api/v1/bookings/{booking_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_visa"}),
        )
        .await;
    assert!(paid.status == 202 || paid.status == 200, "{:?}", paid.body);
    let issued = eventually(
        "the tickets issued notification",
        Duration::from_secs(30),
        || async {
            inbox(&fan, "")
                .await
                .into_iter()
                .find(|n| n["kind"] == "tickets_issued")
        },
    )
    .await;
    assert_eq!(
        issued["data"]["tickets"].as_array().unwrap().len(),
        2,
        "{issued}"
    );
    // The payment's own notification comes through the payment stream.
    eventually(
        "the payment captured notification",
        Duration::from_secs(20),
        || async {
            inbox(&fan, "")
                .await
                .into_iter()
                .find(|n| n["kind"] == "payment_captured")
        },
    )
    .await;
    world.stop().await;
}
