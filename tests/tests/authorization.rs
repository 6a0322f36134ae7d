//! End to end: authorization comes before validation. A caller without a token (401) or
//! without the route's role (403) is refused before the body is read, so an invalid body
//! never tells a stranger what the route expects (422), and nothing is written.

use std::time::Duration;

use ordo_tests::{eventually, Answer, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// How many events the event store holds: a refused request adds none.
async fn event_count(ordo: &TestOrdo) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(ordo.pool())
        .await
        .expect("count events")
}

/// A request with an invalid body, and what the route answers a caller who may send it.
struct InvalidRequest {
    method: Method,
    path: String,
    body: Option<Value>,
    /// The answer to an authorized caller: proof that the body really is refused.
    authorized_status: u16,
}

impl InvalidRequest {
    fn new(method: Method, path: impl Into<String>, body: Option<Value>, status: u16) -> Self {
        Self {
            method,
            path: path.into(),
            body,
            authorized_status: status,
        }
    }

    async fn send(&self, api: &Api) -> Answer {
        api.send(self.method.clone(), &self.path, self.body.clone(), &[])
            .await
    }

    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn problem_type(answer: &Answer) -> &str {
    answer.body["type"].as_str().unwrap_or_default()
}

fn assert_refused(answer: &Answer, status: u16, code: &str, request: &InvalidRequest) {
    assert_eq!(
        answer.status,
        status,
        "{}: {:?}",
        request.name(),
        answer.body
    );
    assert_eq!(
        problem_type(answer),
        format!("urn:ordo:problem:{code}"),
        "{}: {:?}",
        request.name(),
        answer.body
    );
}

/// What the read side shows of the test's product and show.
async fn read_models(api: &Api, sku: &str, show_id: &str) -> Value {
    json!({
        "product": api.get(&format!("/api/v1/products/{sku}")).await.body,
        "inventory": api.get(&format!("/api/v1/inventory/{sku}")).await.body,
        "products": api.get("/api/v1/products").await.body,
        "shows": api.get("/api/v1/shows").await.body,
        "sessions": api.get(&format!("/api/v1/shows/{show_id}/sessions")).await.body,
    })
}

#[tokio::test]
async fn admin_routes_refuse_strangers_and_customers_before_reading_the_body() {
    let ordo = TestOrdo::start().await;
    let anonymous = ordo.api();
    let admin = anonymous.admin().await;
    let (customer, _) = anonymous.register("authz-customer@example.com").await;

    let sku = "AUTHZ-1";
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": sku, "name": "Guarded", "category": "test", "price": 1500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post(
            &format!("/api/v1/inventory/{sku}/restock"),
            json!({"quantity": 5}),
        )
        .await;
    assert_eq!(restocked.status, 200, "{:?}", restocked.body);
    let show = admin
        .post(
            "/api/v1/shows",
            json!({"title": "Guarded Show", "category": "concert", "city": "Berlin", "venue": "Hall"}),
        )
        .await;
    assert_eq!(show.status, 201, "{:?}", show.body);
    let show_id = show.body["show_id"].as_str().expect("show id").to_string();

    // The setup is in the read models before the snapshot.
    eventually(
        "the setup to reach the read models",
        Duration::from_secs(20),
        || {
            let anonymous = anonymous.clone();
            let show_id = show_id.clone();
            async move {
                let stock = anonymous.get(&format!("/api/v1/inventory/{sku}")).await;
                let product = anonymous.get(&format!("/api/v1/products/{sku}")).await;
                let show = anonymous.get(&format!("/api/v1/shows/{show_id}")).await;
                (stock.status == 200
                    && stock.body["on_hand"] == 5
                    && product.status == 200
                    && show.status == 200)
                    .then_some(())
            }
        },
    )
    .await;
    let events_before = event_count(&ordo).await;
    let read_before = read_models(&anonymous, sku, &show_id).await;

    let nowhere = Uuid::new_v4();
    let admin_only = [
        InvalidRequest::new(
            Method::POST,
            "/api/v1/products",
            Some(json!({"sku": 42, "name": ["not", "a", "name"]})),
            422,
        ),
        InvalidRequest::new(
            Method::PATCH,
            format!("/api/v1/products/{sku}"),
            Some(json!({"price": "free"})),
            422,
        ),
        InvalidRequest::new(
            Method::POST,
            format!("/api/v1/inventory/{sku}/restock"),
            Some(json!({"quantity": "many"})),
            422,
        ),
        InvalidRequest::new(
            Method::POST,
            "/api/v1/shows",
            Some(json!({"title": 7, "sessions": "all"})),
            422,
        ),
        InvalidRequest::new(
            Method::POST,
            format!("/api/v1/shows/{show_id}/sessions"),
            Some(json!({"starts_at": "soon", "seat_areas": "none"})),
            422,
        ),
        InvalidRequest::new(
            Method::POST,
            format!("/api/v1/tickets/{nowhere}/check-in"),
            Some(json!({"qr_payload": 5})),
            422,
        ),
        InvalidRequest::new(
            Method::POST,
            format!("/api/v1/bookings/{nowhere}/refund"),
            Some(json!({"reason": 5})),
            400,
        ),
        InvalidRequest::new(
            Method::POST,
            format!("/api/v1/orders/{nowhere}/refund"),
            None,
            404,
        ),
        InvalidRequest::new(
            Method::POST,
            format!("/api/v1/admin/sagas/{nowhere}/resume"),
            None,
            404,
        ),
    ];
    for request in &admin_only {
        assert_refused(
            &request.send(&anonymous).await,
            401,
            "unauthorized",
            request,
        );
        assert_refused(&request.send(&customer).await, 403, "forbidden", request);
        let authorized = request.send(&admin).await;
        assert_eq!(
            authorized.status,
            request.authorized_status,
            "{} as admin: {:?}",
            request.name(),
            authorized.body
        );
    }

    let customer_only = [
        InvalidRequest::new(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": "everything"})),
            422,
        ),
        InvalidRequest::new(
            Method::POST,
            "/api/v1/bookings",
            Some(json!({"session_id": "first", "quantity": "two"})),
            422,
        ),
    ];
    for request in &customer_only {
        assert_refused(
            &request.send(&anonymous).await,
            401,
            "unauthorized",
            request,
        );
        let authorized = request.send(&customer).await;
        assert_eq!(
            authorized.status,
            request.authorized_status,
            "{} as customer: {:?}",
            request.name(),
            authorized.body
        );
    }

    assert_eq!(
        event_count(&ordo).await,
        events_before,
        "a refused request wrote events"
    );
    assert_eq!(read_models(&anonymous, sku, &show_id).await, read_before);
    ordo.stop().await;
}
