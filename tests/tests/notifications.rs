//! End to end: the notification inbox fed by the order stream: one entry per event even
//! when JetStream delivers it twice, reading and marking it, ownership, the live SSE
//! stream and its resumption with `Last-Event-ID`, and the email spool.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use ordo_tests::{eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};

/// Ordo with its mail spool in the test's scratch directory.
async fn start() -> TestOrdo {
    let builder = TestOrdo::builder();
    let spool = builder.scratch_dir().join("mail");
    builder
        .env("ORDO_MAIL_SPOOL_DIR", spool.display())
        .start()
        .await
}

/// Where Ordo spools its emails.
fn spool(ordo: &TestOrdo) -> PathBuf {
    ordo.scratch_dir().join("mail")
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
        .get_stream(ordo_tests::stream_name(namespace, "ORDER"))
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
    let ordo = start().await;
    let api = ordo.api();
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
    let sequence = deliver_again(ordo.namespace(), &order_id).await;
    let client = async_nats::connect(ordo_tests::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    eventually(
        "the duplicate acknowledged by notifications-orders",
        Duration::from_secs(20),
        || {
            let js = js.clone();
            let stream = ordo.stream_name("ORDER");
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
            .fetch_one(ordo.pool())
            .await
            .unwrap();
    assert_eq!(count, 1);
    assert_eq!(inbox(&customer, "").await.len(), 1);

    // The email copy is in the spool, once, named by the notification id.
    let mail = spool(&ordo).join(format!("{id}.eml"));
    let text = eventually("the spooled email", Duration::from_secs(10), || async {
        std::fs::read_to_string(&mail).ok()
    })
    .await;
    assert!(
        text.contains("To: Test Customer <nora@example.com>"),
        "{text}"
    );
    assert!(text.contains("Subject: Order confirmed"), "{text}");
    let files = std::fs::read_dir(spool(&ordo)).unwrap().filter(|f| {
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

    ordo.stop().await;
}

#[tokio::test]
async fn the_stream_pushes_a_notification_created_after_connecting() {
    let ordo = start().await;
    let api = ordo.api();
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
    ordo.stop().await;
}

#[tokio::test]
async fn a_booking_notifies_its_payment_deadline_then_its_tickets() {
    let ordo = start().await;
    let api = ordo.api();
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
    ordo.stop().await;
}

/// One Server-Sent Event as the client sees it.
#[derive(Debug, Default, Clone)]
struct SseEvent {
    event: Option<String>,
    id: Option<String>,
    data: String,
    retry: Option<String>,
}

impl SseEvent {
    fn entry(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }

    fn seq(&self) -> i64 {
        self.id.as_deref().unwrap().parse().unwrap()
    }
}

/// An open `/notifications/stream` response, read one event at a time.
struct EventStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<String>>,
    buffer: String,
}

impl EventStream {
    /// The next event (comments such as keep-alives skipped), failing after `timeout`.
    async fn next(&mut self, what: &str, timeout: Duration) -> SseEvent {
        let read = async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let mut event = SseEvent::default();
                    let mut fields = 0;
                    for line in block.lines() {
                        let Some((name, value)) = line.split_once(':') else {
                            continue;
                        };
                        let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                        match name {
                            "" => continue,
                            "event" => event.event = Some(value),
                            "id" => event.id = Some(value),
                            "data" => event.data.push_str(&value),
                            "retry" => event.retry = Some(value),
                            _ => {}
                        }
                        fields += 1;
                    }
                    if fields > 0 {
                        return event;
                    }
                    continue;
                }
                let chunk = self
                    .body
                    .next()
                    .await
                    .unwrap_or_else(|| panic!("the stream ended while waiting for {what}"))
                    .unwrap();
                self.buffer.push_str(&chunk);
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; unread: {:?}",
                    self.buffer
                )
            })
    }

    /// The next notification event.
    async fn notification(&mut self, what: &str) -> SseEvent {
        let event = self.next(what, Duration::from_secs(20)).await;
        assert_eq!(event.event.as_deref(), Some("notification"), "{event:?}");
        event
    }
}

/// Opens the caller's stream, with `headers` and `query` (e.g. `?last_event_id=3`).
async fn open_stream(customer: &Api, query: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = customer
        .client
        .get(format!(
            "{}/api/v1/notifications/stream{query}",
            customer.base
        ))
        .bearer_auth(customer.token.as_deref().unwrap());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Opens the stream and reads its opening `retry:` field, whose `id:` is where it starts.
async fn follow(
    customer: &Api,
    query: &str,
    headers: &[(&str, &str)],
    starts_at: &str,
) -> EventStream {
    let response = open_stream(customer, query, headers).await;
    assert_eq!(response.status(), 200);
    let mut stream = EventStream {
        body: response
            .bytes_stream()
            .map(|chunk| chunk.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
            .boxed(),
        buffer: String::new(),
    };
    let first = stream
        .next("the retry field", Duration::from_secs(10))
        .await;
    assert_eq!(first.retry.as_deref(), Some("3000"), "{first:?}");
    assert_eq!(first.id.as_deref(), Some(starts_at), "{first:?}");
    assert!(first.event.is_none() && first.data.is_empty(), "{first:?}");
    stream
}

/// Places an order and waits until its notification is in the inbox, so entries are
/// created one after the other.
async fn place_and_wait(customer: &Api, entries_before: usize) -> String {
    let order_id = place(customer).await;
    eventually("the new notification", Duration::from_secs(20), || async {
        (inbox(customer, "").await.len() > entries_before).then_some(())
    })
    .await;
    order_id
}

#[tokio::test]
async fn a_stream_resumed_with_last_event_id_sends_exactly_what_it_missed() {
    let ordo = start().await;
    let api = ordo.api();
    shop(&api).await;
    let (customer, user_id) = api.register("rhea@example.com").await;

    // Connected: the first entry arrives live.
    let mut stream = follow(&customer, "", &[], "0").await;
    let first_order = place(&customer).await;
    let first = stream.notification("the first notification").await;
    assert_eq!(first.entry()["data"]["order_id"], first_order.as_str());
    let last_seen = first.id.clone().expect("an id");
    drop(stream);

    // Disconnected: two more entries.
    let missed = [
        place_and_wait(&customer, 1).await,
        place_and_wait(&customer, 2).await,
    ];

    // Reconnected with the last id seen: exactly the two missed ones, in order, then a live
    // one; a duplicate of a replayed entry would come before the live one.
    let mut stream = follow(&customer, "", &[("last-event-id", &last_seen)], &last_seen).await;
    let mut received = Vec::new();
    for (index, order_id) in missed.iter().enumerate() {
        let event = stream.notification(&format!("missed entry {index}")).await;
        assert_eq!(
            event.entry()["data"]["order_id"],
            order_id.as_str(),
            "{event:?}"
        );
        received.push(event);
    }
    let live_order = place(&customer).await;
    let live = stream.notification("the live notification").await;
    assert_eq!(
        live.entry()["data"]["order_id"],
        live_order.as_str(),
        "{live:?}"
    );
    received.push(live);

    let seqs: Vec<i64> = received.iter().map(SseEvent::seq).collect();
    assert!(seqs[0] > first.seq(), "{seqs:?} after {}", first.seq());
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "ids not increasing: {seqs:?}"
    );
    let ids: Vec<String> = received
        .iter()
        .map(|e| e.entry()["notification_id"].as_str().unwrap().to_string())
        .collect();
    // The database agrees: these are all the entries after the one seen, in that order.
    let stored: Vec<(i64, uuid::Uuid)> = sqlx::query_as(
        "SELECT seq, notification_id FROM notifications
         WHERE user_id = $1::uuid AND seq > $2 ORDER BY seq",
    )
    .bind(&user_id)
    .bind(first.seq())
    .fetch_all(ordo.pool())
    .await
    .unwrap();
    let stored_ids: Vec<String> = stored.iter().map(|(_, id)| id.to_string()).collect();
    assert_eq!(ids, stored_ids);
    assert_eq!(seqs, stored.iter().map(|(seq, _)| *seq).collect::<Vec<_>>());
    drop(stream);

    // The query parameter does the same for clients that cannot set headers...
    let mut stream = follow(
        &customer,
        &format!("?last_event_id={last_seen}"),
        &[],
        &last_seen,
    )
    .await;
    for (index, expected) in ids.iter().enumerate() {
        let event = stream
            .notification(&format!("replayed entry {index}"))
            .await;
        assert_eq!(event.entry()["notification_id"], expected.as_str());
    }
    drop(stream);
    // ...and the header, the client's latest position, wins over it.
    let mut stream = follow(
        &customer,
        &format!("?last_event_id={last_seen}"),
        &[("last-event-id", received[1].id.as_deref().unwrap())],
        received[1].id.as_deref().unwrap(),
    )
    .await;
    let event = stream.notification("the entry after the header's id").await;
    assert_eq!(event.entry()["notification_id"], ids[2].as_str());
    drop(stream);

    // An id this inbox never reached (another database's, say) starts from now.
    let newest = seqs[2].to_string();
    drop(follow(&customer, "", &[("last-event-id", "1000000")], &newest).await);
    // A client that drops before its first entry resumes from the opening id.
    drop(follow(&customer, "", &[], &newest).await);
    let while_away = place_and_wait(&customer, 4).await;
    let mut stream = follow(&customer, "", &[("last-event-id", &newest)], &newest).await;
    let event = stream.notification("the entry created while away").await;
    assert_eq!(event.entry()["data"]["order_id"], while_away.as_str());
    drop(stream);
    ordo.stop().await;
}

#[tokio::test]
async fn a_malformed_last_event_id_is_refused() {
    let ordo = start().await;
    let api = ordo.api();
    let (customer, _) = api.register("ida@example.com").await;
    for (query, headers, field) in [
        ("", vec![("last-event-id", "abc")], "Last-Event-ID"),
        ("", vec![("last-event-id", "-1")], "Last-Event-ID"),
        (
            "",
            vec![("last-event-id", "99999999999999999999")],
            "Last-Event-ID",
        ),
        ("?last_event_id=1.5", vec![], "last_event_id"),
    ] {
        let response = open_stream(&customer, query, &headers).await;
        assert_eq!(response.status(), 422, "{query} {headers:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:ordo:problem:validation_failed");
        assert_eq!(problem["field"], field, "{problem}");
    }
    ordo.stop().await;
}

/// The property resuming relies on: two transactions adding entries for the same user run
/// one after the other, so numbers follow commit order; other users do not wait.
#[tokio::test]
async fn entries_of_one_user_are_numbered_in_commit_order() {
    let ordo = start().await;
    const INSERT: &str =
        "INSERT INTO notifications (notification_id, user_id, kind, title, body, created_at)
                          VALUES ($1, $2, 'test', 'Test', 'Test.', now()) RETURNING seq";
    let user = uuid::Uuid::new_v4();
    let mut first = ordo.pool().begin().await.unwrap();
    let first_seq: i64 = sqlx::query_scalar(INSERT)
        .bind(uuid::Uuid::new_v4())
        .bind(user)
        .fetch_one(&mut *first)
        .await
        .unwrap();
    assert_eq!(first_seq, 1);

    let other_seq: i64 = tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::query_scalar(INSERT)
            .bind(uuid::Uuid::new_v4())
            .bind(uuid::Uuid::new_v4())
            .fetch_one(ordo.pool()),
    )
    .await
    .expect("another user's entry does not wait")
    .unwrap();
    assert_eq!(other_seq, 1);

    let pool = ordo.pool().clone();
    let second = tokio::spawn(async move {
        sqlx::query_scalar::<_, i64>(INSERT)
            .bind(uuid::Uuid::new_v4())
            .bind(user)
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    eventually(
        "the second entry of the user waiting for the first's commit",
        Duration::from_secs(10),
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE 'INSERT INTO notifications%'",
            )
            .fetch_one(ordo.pool())
            .await
            .unwrap();
            (waiting == 1).then_some(())
        },
    )
    .await;
    assert!(!second.is_finished());
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), 2);
    ordo.stop().await;
}
