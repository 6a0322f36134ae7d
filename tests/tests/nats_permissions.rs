//! NATS authorization: Ordo's server configuration (`nats/server/ordo.conf`) started by each
//! test on a free port with fresh passwords. Anonymous connections are refused; a forged
//! event from anyone but Ordo and its relay is refused by the server; the analyst reads
//! streams and nothing else; operators call `ordo.admin.>`; `ordo serve` works end to end
//! as user `ordo`, and split into gateway, relay and workers processes with their own users.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use ordo_tests::{eventually, Api, TestOrdo, TestOrdoBuilder};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The users of the shipped configuration.
const USERS: &[&str] = &["ordo", "relay", "worker", "gateway", "operator", "analyst"];

/// A nats-server running Ordo's configuration, stopped and removed when dropped.
struct AuthorizedNats {
    _server: Child,
    port: u16,
    store: PathBuf,
    passwords: HashMap<&'static str, String>,
}

impl AuthorizedNats {
    async fn start() -> Self {
        let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nats/server/ordo.conf");
        let binary = std::env::var("ORDO_TEST_NATS_SERVER").unwrap_or_else(|_| {
            [
                "/usr/sbin/nats-server",
                "/usr/bin/nats-server",
                "/usr/local/bin/nats-server",
            ]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .unwrap_or("nats-server")
            .to_string()
        });
        let port = free_port();
        let store = std::env::temp_dir().join(format!("ordo-nats-auth-{}", Uuid::new_v4()));
        let passwords: HashMap<&'static str, String> = USERS
            .iter()
            .map(|user| (*user, Uuid::new_v4().simple().to_string()))
            .collect();
        let mut command = Command::new(binary);
        command
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (user, password) in &passwords {
            // nats-server parses the variable as a configuration value: quoted, it is a
            // string whatever it looks like (a leading digit would make it a number).
            command.env(
                format!("ORDO_NATS_{}_PASSWORD", user.to_uppercase()),
                format!("\"{password}\""),
            );
        }
        let server = command
            .spawn()
            .expect("nats-server starts (is it installed?)");
        let nats = Self {
            _server: server,
            port,
            store,
            passwords,
        };
        // Generous: tests start their servers at once on a loaded machine.
        eventually(
            "the nats-server to listen",
            Duration::from_secs(30),
            || async {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Connects as `user`, recording the errors the server reports (permission violations).
    async fn connect(&self, user: &str) -> Client {
        let errors = Arc::new(Mutex::new(Vec::new()));
        let recorded = errors.clone();
        let client = async_nats::ConnectOptions::with_user_and_password(
            user.to_string(),
            self.passwords[user].clone(),
        )
        .event_callback(move |event| {
            let recorded = recorded.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    recorded.lock().unwrap().push(error.to_string());
                }
            }
        })
        .connect(self.url())
        .await
        .unwrap_or_else(|err| panic!("{user} connects: {err}"));
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(2))
            .build(client.clone());
        Client {
            nats: client,
            jetstream,
            errors,
        }
    }

    /// The password of `user`.
    fn password(&self, user: &str) -> &str {
        &self.passwords[user]
    }

    /// An Ordo on this server, in the namespace of the shipped configuration (`ordo`),
    /// connecting as `user`.
    fn ordo(&self, user: &str) -> TestOrdoBuilder {
        TestOrdo::builder()
            .nats(&self.url(), "ordo")
            .env("ORDO_NATS_USER", user)
            .env("ORDO_NATS_PASSWORD", self.password(user))
            .env("ORDO_SANDBOX_DELAY", "50ms")
    }
}

impl Drop for AuthorizedNats {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

struct Client {
    nats: async_nats::Client,
    jetstream: jetstream::Context,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Client {
    /// Waits until the server has reported a permission violation naming `subject`.
    async fn refused(&self, subject: &str) {
        eventually(
            &format!("a permissions violation on {subject}"),
            Duration::from_secs(5),
            || async {
                let errors = self.errors.lock().unwrap();
                errors
                    .iter()
                    .any(|e| e.contains("Permissions Violation") && e.contains(subject))
                    .then_some(())
            },
        )
        .await;
    }

    async fn messages(&self, stream: &str) -> u64 {
        let mut stream = self.jetstream.get_stream(stream).await.expect("stream");
        stream.info().await.expect("stream info").state.messages
    }
}

fn free_port() -> u16 {
    ordo_tests::process::free_port().expect("a free port")
}

const PAYMENTS: &str = "ORDO_PAYMENT";

/// The payment stream as Ordo makes it, created as user `ordo`.
async fn payment_stream(ordo: &Client) {
    ordo.jetstream
        .create_stream(jetstream::stream::Config {
            name: PAYMENTS.into(),
            subjects: vec!["ordo.events.payment.>".into()],
            ..Default::default()
        })
        .await
        .expect("ordo creates the stream");
}

fn forged_capture() -> (String, async_nats::HeaderMap, String) {
    let payment_id = Uuid::new_v4();
    let subject = format!("ordo.events.payment.{payment_id}.PaymentCaptured");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("payment:{payment_id}:2").as_str());
    headers.insert("Ordo-Event-Type", "PaymentCaptured");
    let payload = json!({"payment_id": payment_id, "amount": 100, "currency": "EUR"});
    (subject, headers, payload.to_string())
}

#[tokio::test]
async fn anonymous_connections_and_wrong_passwords_are_refused() {
    let nats = AuthorizedNats::start().await;
    let anonymous = async_nats::connect(nats.url()).await;
    let err = anonymous.expect_err("an anonymous connection is refused");
    assert!(
        err.to_string().to_lowercase().contains("authorization"),
        "{err}"
    );
    let wrong = async_nats::ConnectOptions::with_user_and_password("ordo".into(), "guess".into())
        .connect(nats.url())
        .await;
    assert!(wrong.is_err(), "a wrong password is refused");
    // The right one is accepted: the refusals above are about credentials.
    let ordo = nats.connect("ordo").await;
    ordo.nats.flush().await.expect("ordo is connected");
}

#[tokio::test]
async fn a_forged_payment_captured_is_refused_unless_it_comes_from_ordo_or_its_relay() {
    let nats = AuthorizedNats::start().await;
    let ordo = nats.connect("ordo").await;
    payment_stream(&ordo).await;

    for user in ["analyst", "worker", "gateway", "operator"] {
        let client = nats.connect(user).await;
        let (subject, headers, payload) = forged_capture();
        // The server drops the message and says why; the publish is never acknowledged.
        let published = client
            .jetstream
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await;
        if let Ok(ack) = published {
            assert!(ack.await.is_err(), "{user}'s forged event was acknowledged");
        }
        client.refused(&subject).await;
        assert_eq!(ordo.messages(PAYMENTS).await, 0, "{user} got an event in");
    }

    // The same message from the relay is stored: the refusals above are permissions.
    let relay = nats.connect("relay").await;
    let (subject, headers, payload) = forged_capture();
    relay
        .jetstream
        .publish_with_headers(subject, headers, payload.into())
        .await
        .expect("relay publishes")
        .await
        .expect("JetStream stores the relay's event");
    assert_eq!(ordo.messages(PAYMENTS).await, 1);
}

#[tokio::test]
async fn the_analyst_reads_streams_and_can_do_nothing_else() {
    let nats = AuthorizedNats::start().await;
    let ordo = nats.connect("ordo").await;
    payment_stream(&ordo).await;
    let relay = nats.connect("relay").await;
    let (subject, headers, payload) = forged_capture();
    relay
        .jetstream
        .publish_with_headers(subject.clone(), headers, payload.clone().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // An admin endpoint that answers whoever reaches it.
    let mut admin = ordo.nats.subscribe("ordo.admin.status").await.unwrap();
    let responder = ordo.nats.clone();
    tokio::spawn(async move {
        while let Some(request) = admin.next().await {
            if let Some(reply) = request.reply {
                let _ = responder.publish(reply, "{}".into()).await;
            }
        }
    });
    ordo.nats.flush().await.unwrap();

    let analyst = nats.connect("analyst").await;
    // Reads: stream state, a message by sequence, the whole stream with an ordered consumer.
    assert_eq!(analyst.messages(PAYMENTS).await, 1);
    let stream = analyst.jetstream.get_stream(PAYMENTS).await.unwrap();
    let stored = stream
        .get_raw_message(1)
        .await
        .expect("analyst gets a message");
    assert_eq!(stored.subject.as_str(), subject);
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("analyst makes an ordered consumer");
    let mut messages = consumer.messages().await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .expect("a message within 5 s")
        .expect("a message")
        .expect("readable");
    assert_eq!(read.payload.as_ref(), payload.as_bytes());

    // Nothing else: no events, no dead letters, no admin, no stream changes.
    let (subject, headers, payload) = forged_capture();
    let _ = analyst
        .nats
        .publish_with_headers(subject.clone(), headers, payload.into())
        .await;
    analyst.refused(&subject).await;
    let _ = analyst
        .nats
        .publish("ordo.dlq.saga-checkout", "{}".into())
        .await;
    analyst.refused("ordo.dlq.saga-checkout").await;
    let asked = tokio::time::timeout(
        Duration::from_secs(3),
        analyst.nats.request("ordo.admin.status", "".into()),
    )
    .await;
    assert!(
        !matches!(asked, Ok(Ok(_))),
        "the analyst's admin request was answered"
    );
    analyst.refused("ordo.admin.status").await;
    assert!(
        analyst.jetstream.delete_stream(PAYMENTS).await.is_err(),
        "the analyst deleted a stream"
    );
    let durable = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("analyst-durable".into()),
            ..Default::default()
        })
        .await;
    assert!(durable.is_err(), "the analyst made a durable consumer");
    assert_eq!(ordo.messages(PAYMENTS).await, 1);

    // An operator's request is answered.
    let operator = nats.connect("operator").await;
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        operator.nats.request("ordo.admin.status", "".into()),
    )
    .await
    .expect("an answer within 5 s")
    .expect("the operator's request is answered");
    assert_eq!(answer.payload.as_ref(), b"{}");
}

async fn shop(api: &Api) -> Api {
    let admin = api.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "WIDGET", "name": "Widget", "category": "test", "price": 500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/WIDGET/restock", json!({"quantity": 10}))
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    let (customer, _) = api.register("nats-permissions@example.com").await;
    customer
}

/// Places an order, waits until the checkout saga has reserved its stock, pays it and waits
/// until it is paid: events published by the relay and consumed by the workers all the way.
async fn order_and_pay(customer: &Api) {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "WIDGET", "quantity": 2}]})),
            &[("prefer", "wait=20")],
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
            &[],
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    eventually("the order paid", Duration::from_secs(30), || async {
        let body: Value = customer
            .get(&format!("/api/v1/orders/{order_id}"))
            .await
            .body;
        (body["status"] == "paid").then_some(())
    })
    .await;
}

#[tokio::test]
async fn ordo_serve_as_user_ordo_works_end_to_end_and_answers_operators() {
    let nats = AuthorizedNats::start().await;
    let ordo = nats.ordo("ordo").start().await;
    let customer = shop(&ordo.api()).await;
    order_and_pay(&customer).await;

    let analyst = nats.connect("analyst").await;
    assert!(
        analyst.messages("ORDO_ORDER").await >= 2,
        "order events published"
    );

    let operator = nats.connect("operator").await;
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        operator.nats.request("ordo.admin.status", "".into()),
    )
    .await
    .expect("an answer within 5 s")
    .expect("ordo answers the operator");
    let status: Value = serde_json::from_slice(&answer.payload).expect("JSON status");
    assert!(status["roles"].to_string().contains("relay"), "{status}");
    ordo.stop().await;
}

#[tokio::test]
async fn gateway_relay_and_workers_each_with_their_own_user_work_end_to_end() {
    let nats = AuthorizedNats::start().await;
    // The payment secret is shared: the workers' saga checks the gateway's callbacks.
    let payment_secret = Uuid::new_v4().to_string();
    let gateway = nats
        .ordo("gateway")
        .roles("gateway")
        .env("ORDO_PAYMENT_SECRET", &payment_secret)
        .start()
        .await;
    let provider = format!("{}/sandbox/provider", gateway.base_url());
    let shared = [
        ("ORDO_PAYMENT_SECRET", payment_secret.as_str()),
        ("ORDO_PAYMENT_PROVIDER_URL", provider.as_str()),
        ("ORDO_PUBLIC_URL", gateway.base_url()),
        ("ORDO_DATABASE_MAX_CONNECTIONS", "10"),
    ];
    let as_user = |user: &'static str| {
        let mut env = vec![
            ("ORDO_NATS_USER", user),
            ("ORDO_NATS_PASSWORD", nats.password(user)),
        ];
        env.extend(shared);
        env
    };
    let mut relay = gateway.spawn_role("relay", &as_user("relay")).await;
    let mut workers = gateway.spawn_role("workers", &as_user("worker")).await;

    let customer = shop(&gateway.api()).await;
    order_and_pay(&customer).await;
    assert!(relay.is_running(), "the relay still runs");
    assert!(workers.is_running(), "the workers still run");
    relay.kill().await;
    workers.kill().await;
    gateway.stop().await;
}
