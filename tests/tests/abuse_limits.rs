//! End to end: the limits on what one client can make `ordo serve` hold. Notification
//! streams are capped per user (429 with Retry-After, while another user still streams)
//! and end when the token that opened them expires; `Prefer: wait` is woken when the
//! projection's position is written, and a user's concurrent waits beyond the cap are
//! answered at once; `X-Forwarded-For` from a peer that is not
//! a trusted proxy does not buy a fresh per-IP bucket; `/metrics` moves to its own address.

use std::time::{Duration, Instant};

use futures::StreamExt;
use ordo_tests::{Api, TestOrdo};
use reqwest::Method;
use uuid::Uuid;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

fn email(name: &str) -> String {
    format!("{name}-{}@example.com", Uuid::new_v4().simple())
}

/// Opens the caller's notification stream.
async fn open_stream(customer: &Api) -> reqwest::Response {
    customer
        .client
        .get(format!("{}/api/v1/notifications/stream", customer.base))
        .bearer_auth(customer.token.as_deref().expect("logged in"))
        .send()
        .await
        .expect("the request is answered")
}

/// The body of an open stream, as text chunks.
fn chunks(response: reqwest::Response) -> futures::stream::BoxStream<'static, String> {
    response
        .bytes_stream()
        .map(|chunk| chunk.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
        .take_while(|chunk| futures::future::ready(chunk.is_ok()))
        .map(|chunk| chunk.unwrap_or_default())
        .boxed()
}

/// Reads an open stream until its opening `retry:` field has come.
async fn opened(body: &mut futures::stream::BoxStream<'static, String>) {
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !text.contains("retry:") {
            text.push_str(&body.next().await.expect("the stream is open"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no opening retry field; read {text:?}"));
}

#[tokio::test]
async fn notification_streams_are_capped_per_user_and_end_with_their_token() {
    let token_lifetime = Duration::from_secs(8);
    let ordo =
        TestOrdo::with_env(&[("ORDO_SSE_PER_USER", "2"), ("ORDO_ACCESS_TOKEN_TTL", "8s")]).await;
    let api = ordo.api();
    let (ada, _) = api.register(&email("ada")).await;
    let issued = Instant::now();

    let mut first = chunks({
        let response = open_stream(&ada).await;
        assert_eq!(response.status(), 200);
        response
    });
    opened(&mut first).await;
    let second = open_stream(&ada).await;
    assert_eq!(second.status(), 200);

    // The attack: one account opening streams without end. The third is refused.
    let third = open_stream(&ada).await;
    assert_eq!(third.status(), 429);
    assert!(
        third
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|secs| secs >= 1),
        "429 without Retry-After: {:?}",
        third.headers()
    );
    assert_eq!(
        third
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );

    // Another user is not affected.
    let (bob, _) = api.register(&email("bob")).await;
    let mut bobs = chunks({
        let response = open_stream(&bob).await;
        assert_eq!(response.status(), 200);
        response
    });
    opened(&mut bobs).await;

    // Ada's stream ends when her token expires: the body finishes, neither sooner than the
    // token's life (less the time the requests above took) nor long after it.
    let ended = tokio::time::timeout(token_lifetime + Duration::from_secs(15), async {
        while first.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its token by 15 s");
    let lived = issued.elapsed();
    assert!(
        lived + Duration::from_secs(2) >= token_lifetime,
        "the stream ended after {lived:?}, before its token expired"
    );
    // The expired token opens no new stream.
    assert_eq!(open_stream(&ada).await.status(), 401);
    drop(second);
    ordo.stop().await;
}

/// What the wait test reads: a product, answered with `Preference-Applied` when it waited.
const PRODUCT: &str = "/api/v1/products/WIDGET";

#[tokio::test]
async fn waits_are_woken_by_notification_and_beyond_a_users_cap_answered_at_once() {
    let ordo = TestOrdo::with_env(&[("ORDO_PREFER_WAIT_PER_USER", "1")]).await;
    let api = ordo.api();
    // A product to read, once its read model has it.
    let admin = api.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            serde_json::json!({"sku": "WIDGET", "name": "Widget", "category": "test",
                               "price": 500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    ordo_tests::eventually(
        "the product's read model",
        Duration::from_secs(20),
        || async { (api.get(PRODUCT).await.status == 200).then_some(()) },
    )
    .await;
    let (ada, ada_id) = api.register(&email("ada")).await;
    let pool = ordo.pool();
    let ada_id = Uuid::parse_str(&ada_id).expect("a user id");
    let last_write = |version: i64| {
        sqlx::query(
            "INSERT INTO last_writes (user_id, aggregate_type, aggregate_id, version)
             VALUES ($1, 'product', 'WIDGET', $2)
             ON CONFLICT (user_id) DO UPDATE SET version = $2",
        )
        .bind(ada_id)
        .bind(version)
        .execute(pool)
    };

    // A wait is woken when the projection's position is announced (whichever process
    // applied it): here the position is moved by hand once the process listens and
    // announced the way the applying process's announcer does, and the wait ends long
    // before its 20 seconds.
    last_write(1_000_000).await.expect("last write recorded");
    let woken = {
        let ada = ada.clone();
        tokio::spawn(async move {
            let sent = Instant::now();
            let answer = ada
                .send(Method::GET, PRODUCT, None, &[("Prefer", "wait=20")])
                .await;
            (answer, sent.elapsed())
        })
    };
    ordo_tests::eventually("the position listener", Duration::from_secs(20), || async {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query ILIKE 'LISTEN%ordo_consumer_positions%'",
        )
        .fetch_one(pool)
        .await
        .expect("pg_stat_activity");
        (listening > 0).then_some(())
    })
    .await;
    let moved = sqlx::query(
        "UPDATE consumer_positions SET last_sequence = 1000000
         WHERE consumer = 'projection-products' AND aggregate_type = 'product'
           AND aggregate_id = 'WIDGET'",
    )
    .execute(pool)
    .await
    .expect("position moved");
    assert_eq!(
        moved.rows_affected(),
        1,
        "the projection's position of WIDGET"
    );
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(ordo_store::announce::POSITIONS_CHANNEL)
        .bind(r#"[{"c":"projection-products","t":"product","i":"WIDGET","s":1000000}]"#)
        .execute(pool)
        .await
        .expect("position announced");
    let (answer, took) = woken.await.expect("the woken request ends");
    assert_eq!(
        answer.header("preference-applied").as_deref(),
        Some("wait=20")
    );
    assert!(
        took < Duration::from_secs(10),
        "the wait was not woken: {took:?}"
    );

    // From here on a last write the product projection will never reach: a wait for it
    // lasts its full time.
    last_write(2_000_000).await.expect("last write recorded");

    // The attack: one account holding many waiting requests. Three at once, one place:
    // one waits its full time, the others are answered at once and say they did not wait.
    let wait_for = Duration::from_secs(8);
    let requests = (0..3).map(|_| {
        let ada = ada.clone();
        tokio::spawn(async move {
            let sent = Instant::now();
            let answer = ada
                .send(Method::GET, PRODUCT, None, &[("Prefer", "wait=8")])
                .await;
            (answer, sent.elapsed())
        })
    });
    let answers = futures::future::join_all(requests).await;
    let mut waited = 0;
    for answer in answers {
        let (answer, took) = answer.expect("the request task ends");
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        match answer.header("preference-applied") {
            Some(applied) => {
                assert_eq!(applied, "wait=8");
                assert!(took >= wait_for, "claimed to wait but took {took:?}");
                waited += 1;
            }
            None => assert!(
                took < Duration::from_secs(5),
                "a request over the cap took {took:?}"
            ),
        }
    }
    assert_eq!(waited, 1, "requests that waited, with one place");

    // Another user's wait is not refused by Ada's, and Ada's place is free again.
    let (bob, _) = api.register(&email("bob")).await;
    let answer = bob
        .send(Method::GET, PRODUCT, None, &[("Prefer", "wait=2")])
        .await;
    assert_eq!(
        answer.header("preference-applied").as_deref(),
        Some("wait=2")
    );
    ordo.stop().await;
}

/// Sends `count` health probes, each claiming another client in `X-Forwarded-For`;
/// answers how many were refused with 429.
async fn refused_with_forged_clients(api: &Api, count: u8) -> usize {
    let mut refused = 0;
    for n in 0..count {
        let forwarded = format!("203.0.113.{n}");
        let answer = api
            .send(
                Method::GET,
                "/healthz",
                None,
                &[("X-Forwarded-For", &forwarded)],
            )
            .await;
        if answer.status == 429 {
            assert!(answer.header("retry-after").is_some());
            refused += 1;
        }
    }
    refused
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let limits = [
        ("ORDO_RATE_LIMIT_PER_IP", "1"),
        ("ORDO_RATE_LIMIT_PER_IP_BURST", "3"),
    ];
    let ordo = TestOrdo::with_env(&limits).await;
    // The attack: every request names a new client, hoping for a fresh bucket each time.
    let refused = refused_with_forged_clients(&ordo.api(), 10).await;
    assert!(
        refused >= 5,
        "only {refused} of 10 refused: X-Forwarded-For from an untrusted peer was believed"
    );

    // The same requests through a trusted proxy (here the test itself) name real clients.
    let trusted = [
        limits[0],
        limits[1],
        ("ORDO_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("ORDO_ROLES", "gateway"),
    ];
    let mut proxied = ordo.spawn_another_with(&trusted).await;
    assert_eq!(refused_with_forged_clients(&proxied.api(), 10).await, 0);
    // And one forwarded client is still limited.
    let api = proxied.api();
    let mut refused_same = 0;
    for _ in 0..10 {
        let answer = api
            .send(
                Method::GET,
                "/healthz",
                None,
                &[("X-Forwarded-For", "198.51.100.7")],
            )
            .await;
        refused_same += usize::from(answer.status == 429);
    }
    assert!(
        refused_same >= 5,
        "one forwarded client got {refused_same} refusals of 10"
    );
    proxied.kill().await;
    ordo.stop().await;
}

#[tokio::test]
async fn metrics_move_to_their_own_address() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let ordo = TestOrdo::with_env(&[("ORDO_METRICS_ADDR", &addr)]).await;
    let api = ordo.api();
    assert_eq!(api.get("/healthz").await.status, 200);
    assert_eq!(api.get("/metrics").await.status, 404);

    let internal = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("the metrics address answers");
    assert_eq!(internal.status(), 200);
    let text = internal.text().await.expect("a body");
    assert!(
        text.contains("ordo_http_requests_total"),
        "no request metrics on the internal address: {text}"
    );
    // The internal address serves nothing else.
    let other = reqwest::get(format!("http://{addr}/api/v1/openapi.json"))
        .await
        .expect("answered");
    assert_eq!(other.status(), 404);
    ordo.stop().await;
}
