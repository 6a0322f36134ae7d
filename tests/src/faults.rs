//! Fault runs: a steady load of checkouts against a running Ordo, a fault applied and
//! healed in the middle of it, and the tally of what every order placed became.
//!
//! Each shopper places an order (with an `Idempotency-Key`, retried until it is answered)
//! and pays it (the same way), one checkout after the other. After the fault is healed the
//! load goes on for a while, then stops, and the run waits until every order placed is paid
//! in the orders read model. The tally then counts, from the event store and the read
//! models: orders placed (answered 202), completed (paid), lost (never paid), doubled
//! (an order paid or captured twice, stock committed twice, a read model off by one), and
//! the time from healing until every order placed before it was paid.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::http::{Answer, Api};
use crate::ordo::TestOrdo;

/// The SKU every checkout buys, and its starting stock.
pub const SKU: &str = "FAULTKIT";
const STOCK: i64 = 1_000_000;

/// One order placed by the load, and when.
#[derive(Debug, Clone)]
struct Placed {
    order_id: String,
    at: Instant,
}

/// A steady load of checkouts.
pub struct Load {
    stop: Arc<AtomicBool>,
    placed: Arc<Mutex<Vec<Placed>>>,
    refused: Arc<Mutex<u64>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What became of the orders of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tally {
    /// The fault.
    pub fault: String,
    /// Orders answered 202 to the shoppers.
    pub placed: usize,
    /// Of those, paid in the orders read model at the end.
    pub completed: usize,
    /// Placed and never paid.
    pub lost: usize,
    /// Orders whose effects happened twice (paid, captured or stock committed twice).
    pub doubled: usize,
    /// Orders in the event store that no shopper was answered for (should be 0: keys).
    pub unanswered: i64,
    /// Checkout attempts that gave up (the API kept failing for a minute).
    pub refused: u64,
    /// Seconds from healing until every order placed before it was paid.
    pub recovery_seconds: f64,
    /// Longest pause between two orders placed, in seconds (the outage seen by shoppers).
    pub longest_pause_seconds: f64,
    /// Whether the read models agree with the event store (stock, order rows, streams).
    pub read_models_consistent: bool,
    /// What did not agree, if anything.
    pub notes: Vec<String>,
}

async fn attempt(
    api: &Api,
    method: Method,
    path: &str,
    body: serde_json::Value,
    headers: &[(&str, &str)],
) -> Option<Answer> {
    tokio::time::timeout(
        Duration::from_secs(45),
        api.try_send(method, path, Some(body), headers),
    )
    .await
    .ok()
    .flatten()
}

/// One checkout, retried through failures; the order id once it is placed and paid for.
async fn checkout(api: &Api, placed: &Mutex<Vec<Placed>>) -> Option<()> {
    let key = Uuid::new_v4().to_string();
    let give_up = Instant::now() + Duration::from_secs(60);
    let order_id = loop {
        if Instant::now() > give_up {
            return None;
        }
        let answer = attempt(
            api,
            Method::POST,
            "/api/v1/orders",
            json!({"items": [{"sku": SKU, "quantity": 1}]}),
            &[("idempotency-key", &key), ("prefer", "wait=30")],
        )
        .await;
        match answer {
            Some(a) if a.status == 202 => {
                break a.body["order_id"].as_str()?.to_string();
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    placed.lock().unwrap().push(Placed {
        order_id: order_id.clone(),
        at: Instant::now(),
    });
    // Pay once the saga has reserved the stock.
    let pay_key = format!("pay-{key}");
    while Instant::now() < give_up + Duration::from_secs(60) {
        let answer = attempt(
            api,
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
            &[("idempotency-key", &pay_key)],
        )
        .await;
        match answer {
            Some(a) if a.status == 202 => return Some(()),
            // Paid already (an earlier attempt went through), or not yet payable.
            Some(a)
                if a.status == 409
                    && a.body["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("paid")) =>
            {
                return Some(())
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    // Left unpaid: the tally counts it lost unless it got paid after all.
    Some(())
}

impl Load {
    /// Sets up the shop (one product, plenty of stock) and starts `shoppers` shoppers.
    pub async fn start(ordo: &TestOrdo, shoppers: usize) -> Self {
        let api = ordo.api();
        let admin = api.admin().await;
        let created = admin
            .post(
                "/api/v1/products",
                json!({"sku": SKU, "name": "Fault kit", "category": "test", "price": 1200, "currency": "EUR"}),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let restocked = admin
            .post(
                &format!("/api/v1/inventory/{SKU}/restock"),
                json!({"quantity": STOCK}),
            )
            .await;
        assert_eq!(restocked.status, 200, "{:?}", restocked.body);
        let stop = Arc::new(AtomicBool::new(false));
        let placed = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let mut tasks = Vec::new();
        for i in 0..shoppers {
            let (customer, _) = api
                .register(&format!(
                    "shopper{i}-{}@example.com",
                    Uuid::new_v4().simple()
                ))
                .await;
            let (stop, placed, refused) = (stop.clone(), placed.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if checkout(&customer, &placed).await.is_none() {
                        *refused.lock().unwrap() += 1;
                    }
                }
            }));
        }
        Self {
            stop,
            placed,
            refused,
            tasks,
        }
    }

    /// How many orders are placed so far.
    pub fn placed(&self) -> usize {
        self.placed.lock().unwrap().len()
    }

    /// Waits until `more` orders beyond the current count are placed.
    pub async fn wait_for_orders(&self, more: usize, timeout: Duration) {
        let target = self.placed() + more;
        crate::wait::eventually("orders placed under load", timeout, || async {
            (self.placed() >= target).then_some(())
        })
        .await;
    }

    /// Stops the shoppers (each finishes the checkout it is in), then waits until every
    /// order placed is paid and tallies the run. `healed` is when the fault ended.
    pub async fn finish(
        self,
        fault: &str,
        ordo: &TestOrdo,
        pool: &PgPool,
        healed: Instant,
    ) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let placed = self.placed.lock().unwrap().clone();
        let refused = *self.refused.lock().unwrap();
        let before_heal: Vec<String> = placed
            .iter()
            .filter(|p| p.at <= healed)
            .map(|p| p.order_id.clone())
            .collect();
        let all: Vec<String> = placed.iter().map(|p| p.order_id.clone()).collect();
        let mut recovery = None;
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut paid: HashSet<String>;
        loop {
            paid = paid_orders(pool, &all).await;
            if recovery.is_none() && before_heal.iter().all(|id| paid.contains(id)) {
                recovery = Some(healed.elapsed());
            }
            if paid.len() == all.len() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let redeliveries settle before reading the read models' totals.
        let settled = settle(ordo, pool).await;
        let mut notes = Vec::new();
        if !settled {
            notes.push("the outbox or a consumer still had work after 60 s".into());
        }
        let doubled = doubled_orders(pool).await;
        let unanswered: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'order'",
        )
        .fetch_one(pool)
        .await
        .unwrap_or(0)
            - all.len() as i64;
        let consistent = read_models_agree(ordo, pool, &mut notes).await;
        let mut times: Vec<Instant> = placed.iter().map(|p| p.at).collect();
        times.sort();
        let longest_pause = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        Tally {
            fault: fault.to_string(),
            placed: all.len(),
            completed: paid.len(),
            lost: all.len() - paid.len(),
            doubled,
            unanswered,
            refused,
            recovery_seconds: recovery.map_or(f64::NAN, |d| d.as_secs_f64()),
            longest_pause_seconds: longest_pause.as_secs_f64(),
            read_models_consistent: consistent,
            notes,
        }
    }
}

async fn paid_orders(pool: &PgPool, ids: &[String]) -> HashSet<String> {
    let ids: Vec<Uuid> = ids.iter().filter_map(|id| id.parse().ok()).collect();
    sqlx::query_scalar::<_, Uuid>(
        "SELECT order_id FROM orders WHERE order_id = ANY($1) AND status = 'paid'",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
    .into_iter()
    .map(|id| id.to_string())
    .collect()
}

/// Waits until the outbox is empty and no consumer has anything left to deliver or ack.
async fn settle(ordo: &TestOrdo, pool: &PgPool) -> bool {
    let nats = ordo.nats().await;
    let js = async_nats::jetstream::new(nats);
    let prefix = format!("{}_", ordo.namespace().to_uppercase());
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap_or(1);
        if outbox == 0 && consumers_idle(&js, &prefix).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn consumers_idle(js: &async_nats::jetstream::Context, prefix: &str) -> bool {
    use futures::StreamExt;
    let mut names = js.stream_names();
    while let Some(name) = names.next().await {
        let Ok(name) = name else { return false };
        if !name.starts_with(prefix) || name.ends_with("_DLQ") {
            continue;
        }
        let Ok(stream) = js.get_stream(&name).await else {
            return false;
        };
        let mut consumers = stream.consumers();
        while let Some(info) = consumers.next().await {
            let Ok(info) = info else { return false };
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                return false;
            }
        }
    }
    true
}

/// Orders with an effect applied twice, as the event store records them.
async fn doubled_orders(pool: &PgPool) -> usize {
    let paid_twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT aggregate_id FROM events WHERE aggregate_type = 'order' \
         AND event_type = 'OrderPaid' GROUP BY 1 HAVING count(*) > 1) t",
    )
    .fetch_one(pool)
    .await
    .unwrap_or(-1);
    // Captures counted per order, over every payment of the order.
    let captured_twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT c.payload->'PaymentCreated'->>'order_id' FROM events c \
         JOIN events p ON p.aggregate_type = 'payment' AND p.aggregate_id = c.aggregate_id \
                      AND p.event_type = 'PaymentCaptured' \
         WHERE c.aggregate_type = 'payment' AND c.event_type = 'PaymentCreated' \
         GROUP BY 1 HAVING count(*) > 1) t",
    )
    .fetch_one(pool)
    .await
    .unwrap_or(-1);
    (paid_twice.max(0) + captured_twice.max(0)) as usize
}

/// Whether the read models match the event store: the stock committed is one per paid
/// order and nothing stays reserved, every order has its row, and every stream holds as
/// many messages as the event store holds events of its type.
async fn read_models_agree(ordo: &TestOrdo, pool: &PgPool, notes: &mut Vec<String>) -> bool {
    let mut ok = true;
    let (on_hand, reserved): (i64, i64) =
        sqlx::query_as("SELECT on_hand, reserved FROM inventory_levels WHERE sku = $1")
            .bind(SKU)
            .fetch_one(pool)
            .await
            .unwrap_or((-1, -1));
    let paid: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'paid'")
        .fetch_one(pool)
        .await
        .unwrap_or(-1);
    if on_hand != STOCK - paid || reserved != 0 {
        ok = false;
        notes.push(format!(
            "stock on hand {on_hand} (expected {}), reserved {reserved} (expected 0)",
            STOCK - paid
        ));
    }
    let (orders, rows): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'order'), \
                (SELECT count(*) FROM orders)",
    )
    .fetch_one(pool)
    .await
    .unwrap_or((-1, -2));
    if orders != rows {
        ok = false;
        notes.push(format!(
            "{orders} orders in the event store, {rows} in the read model"
        ));
    }
    let js = async_nats::jetstream::new(ordo.nats().await);
    for aggregate_type in ["order", "payment", "inventory"] {
        let stored: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = $1")
                .bind(aggregate_type)
                .fetch_one(pool)
                .await
                .unwrap_or(-1);
        let messages = match js
            .get_stream(ordo.stream_name(&aggregate_type.to_uppercase()))
            .await
        {
            Ok(mut stream) => stream
                .info()
                .await
                .map(|i| i.state.messages as i64)
                .unwrap_or(-1),
            Err(_) => -1,
        };
        if messages != stored {
            ok = false;
            notes.push(format!(
                "stream of {aggregate_type}: {messages} messages, {stored} events stored"
            ));
        }
    }
    ok
}

impl Tally {
    /// One line of the figures, for logs and RELIABILITY.md.
    pub fn line(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {:.1} s | {:.1} s | {} |",
            self.fault,
            self.placed,
            self.completed,
            self.lost,
            self.doubled,
            self.recovery_seconds,
            self.longest_pause_seconds,
            if self.read_models_consistent && self.unanswered == 0 {
                "yes".to_string()
            } else {
                format!(
                    "no: {}; unanswered {}",
                    self.notes.join("; "),
                    self.unanswered
                )
            }
        )
    }

    /// Whether the run kept every promise: nothing lost, nothing doubled, read models right.
    pub fn passed(&self) -> bool {
        self.placed > 0
            && self.lost == 0
            && self.doubled == 0
            && self.unanswered == 0
            && self.read_models_consistent
    }
}
