//! End to end: after-sales through HTTP against real Postgres and NATS — a delivered order
//! partly returned and refunded to its original payment, its returned units back in stock
//! once; a refund only before shipping; withdrawal and rejection; an exchange that ships a
//! replacement through fulfilment; a refund beyond what the payment captured refused; and
//! a crash at each step of the process that loses nothing and does nothing twice.

use std::time::Duration;

use ordo_aggregates::common::{Money, PaymentId, RefundId};
use ordo_aggregates::payment::{Payment, PaymentCommand};
use ordo_store::{CommandBus, CommandMetadata};
use ordo_tests::{assert_problem, event_types, eventually, Api, TestOrdo};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const FAST: &[(&str, &str)] = &[
    ("ORDO_SANDBOX_DELAY", "50ms"),
    ("ORDO_SANDBOX_CARRIER_DELAY", "200ms"),
    ("ORDO_DEADLINE_SCAN_INTERVAL", "200ms"),
    ("ORDO_CONSUMER_ACK_WAIT", "2s"),
];

async fn shop(ordo: &TestOrdo) -> (Api, Api) {
    let admin = ordo.admin().await;
    let created = admin
        .post(
            "/api/v1/products",
            json!({"sku": "PARCEL", "name": "Parcel", "category": "test", "price": 900, "currency": "EUR"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let restocked = admin
        .post("/api/v1/inventory/PARCEL/restock", json!({"quantity": 50}))
        .await;
    assert_eq!(restocked.status, 200);
    let (customer, _) = ordo.api().register("dora@example.com").await;
    (admin, customer)
}

/// Places and pays an order of `quantity` parcels; answers its id once paid.
async fn paid_order(customer: &Api, quantity: i64) -> String {
    let placed = customer
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"items": [{"sku": "PARCEL", "quantity": quantity}]})),
            &[("prefer", "wait=15")],
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
        .post(
            &format!("/api/v1/orders/{order_id}/pay"),
            json!({"payment_method": "card", "payment_token": "tok_success"}),
        )
        .await;
    assert_eq!(paid.status, 202, "{:?}", paid.body);
    wait_order(customer, &order_id, "paid").await;
    order_id
}

async fn order(customer: &Api, order_id: &str) -> Value {
    customer
        .get(&format!("/api/v1/orders/{order_id}"))
        .await
        .body
}

async fn wait_order(customer: &Api, order_id: &str, status: &str) -> Value {
    eventually(
        &format!("order {order_id} {status}"),
        Duration::from_secs(30),
        || async {
            let body = order(customer, order_id).await;
            (body["status"] == status).then_some(body)
        },
    )
    .await
}

/// Ships the paid order with the sandbox carrier and waits until it is delivered.
async fn delivered_order(admin: &Api, customer: &Api, quantity: i64) -> String {
    let order_id = paid_order(customer, quantity).await;
    let shipment_id = eventually(
        &format!("order {order_id} has its shipment"),
        Duration::from_secs(30),
        || async {
            order(customer, &order_id).await["shipments"][0]["shipment_id"]
                .as_str()
                .map(str::to_owned)
        },
    )
    .await;
    ship(admin, &shipment_id, "SBX-AS").await;
    wait_order(customer, &order_id, "delivered").await;
    order_id
}

async fn ship(admin: &Api, shipment_id: &str, tracking_no: &str) {
    let picked = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/pick"),
            json!({}),
        )
        .await;
    assert_eq!(picked.status, 200, "{:?}", picked.body);
    let shipped = admin
        .post(
            &format!("/api/v1/admin/shipments/{shipment_id}/ship"),
            json!({"carrier": "sandbox", "tracking_no": tracking_no}),
        )
        .await;
    assert_eq!(shipped.status, 200, "{:?}", shipped.body);
}

/// Asks for `kind` of `quantity` parcels of the order; answers the request's id.
async fn request(customer: &Api, order_id: &str, kind: &str, quantity: i64) -> String {
    let asked = customer
        .post(
            "/api/v1/aftersales",
            json!({
                "order_id": order_id,
                "kind": kind,
                "lines": [{"sku": "PARCEL", "quantity": quantity}],
                "reason": "The box was crushed.",
                "evidence": ["https://img.example.com/crushed.jpg"],
            }),
        )
        .await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    assert_eq!(asked.body["status"], "requested");
    asked.body["aftersale_id"].as_str().unwrap().to_string()
}

async fn admin_step(admin: &Api, aftersale_id: &str, step: &str) -> Value {
    let answer = admin
        .post(
            &format!("/api/v1/admin/aftersales/{aftersale_id}/{step}"),
            json!({}),
        )
        .await;
    assert_eq!(answer.status, 200, "{step}: {:?}", answer.body);
    answer.body
}

async fn wait_aftersale(api: &Api, aftersale_id: &str, status: &str) -> Value {
    eventually(
        &format!("after-sales request {aftersale_id} {status}"),
        Duration::from_secs(60),
        || async {
            let body = api
                .get(&format!("/api/v1/aftersales/{aftersale_id}"))
                .await
                .body;
            (body["status"] == status).then_some(body)
        },
    )
    .await
}

async fn on_hand(api: &Api) -> i64 {
    api.get("/api/v1/inventory/PARCEL").await.body["on_hand"]
        .as_i64()
        .unwrap()
}

async fn wait_on_hand(api: &Api, expected: i64) {
    eventually(
        &format!("{expected} parcels on hand"),
        Duration::from_secs(30),
        || async { (on_hand(api).await == expected).then_some(()) },
    )
    .await;
}

async fn payment_of(customer: &Api, order_id: &str) -> Value {
    let payment_id = order(customer, order_id).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    customer
        .get(&format!("/api/v1/payments/{payment_id}"))
        .await
        .body
}

fn count(events: &[String], event_type: &str) -> usize {
    events.iter().filter(|e| e.as_str() == event_type).count()
}

async fn notification_kinds(api: &Api) -> Vec<String> {
    api.get("/api/v1/notifications").await.body["notifications"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|n| n["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_order_is_partly_returned_refunded_and_its_units_back_in_stock_once() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let other = ordo.customer("eve@example.com").await;
    let order_id = delivered_order(&admin, &customer, 2).await;
    wait_on_hand(&admin, 48).await;

    let aftersale_id = request(&customer, &order_id, "return_refund", 1).await;
    // Someone else's request does not exist for them, nor does the order.
    assert_eq!(
        other
            .api
            .get(&format!("/api/v1/aftersales/{aftersale_id}"))
            .await
            .status,
        404
    );
    let foreign = other
        .api
        .post(
            "/api/v1/aftersales",
            json!({"order_id": order_id, "kind": "refund_only", "lines": [{"sku": "PARCEL", "quantity": 1}], "reason": "mine"}),
        )
        .await;
    assert_problem(&foreign, 404, "unknown_order");
    // Only one parcel is left to ask about, and only SKUs of the order.
    let beyond = customer
        .post(
            "/api/v1/aftersales",
            json!({"order_id": order_id, "kind": "refund_only", "lines": [{"sku": "PARCEL", "quantity": 2}], "reason": "all"}),
        )
        .await;
    assert_problem(&beyond, 409, "quantity_exceeded");
    let unknown = customer
        .post(
            "/api/v1/aftersales",
            json!({"order_id": order_id, "kind": "refund_only", "lines": [{"sku": "TEAPOT", "quantity": 1}], "reason": "?"}),
        )
        .await;
    assert_problem(&unknown, 404, "not_in_order");

    let listed = eventually("the request is listed", Duration::from_secs(20), || async {
        let body = customer.get("/api/v1/aftersales").await.body;
        (body["aftersales"].as_array()?.len() == 1).then_some(body)
    })
    .await;
    let view = &listed["aftersales"][0];
    assert_eq!(view["aftersale_id"], aftersale_id.as_str());
    assert_eq!(view["refund_amount"], 900, "{view}");
    assert_eq!(view["lines"][0]["refund"], 900);

    // Receiving before approval is refused; approval waits for the goods.
    let early = admin
        .post(
            &format!("/api/v1/admin/aftersales/{aftersale_id}/receive"),
            json!({}),
        )
        .await;
    assert_problem(&early, 409, "invalid_transition");
    let approved = admin_step(&admin, &aftersale_id, "approve").await;
    assert_eq!(approved["status"], "awaiting_return");
    let withdraw = customer
        .post(
            &format!("/api/v1/aftersales/{aftersale_id}/withdraw"),
            json!({}),
        )
        .await;
    assert_problem(&withdraw, 409, "invalid_transition");
    let sent = customer
        .post(
            &format!("/api/v1/aftersales/{aftersale_id}/return-shipment"),
            json!({"carrier": "sf-express", "tracking_no": "SF-RET-1"}),
        )
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let received = admin_step(&admin, &aftersale_id, "receive").await;
    assert_eq!(received["status"], "received");
    let again = admin_step(&admin, &aftersale_id, "receive").await;
    assert_eq!(again["changed"], false, "a repeated receipt is a no-op");

    let closed = wait_aftersale(&customer, &aftersale_id, "closed").await;
    assert_eq!(closed["return_shipment"]["tracking_no"], "SF-RET-1");
    assert!(closed["refund_id"].is_string(), "{closed}");
    wait_on_hand(&admin, 49).await;
    let payment = eventually(
        "the payment shows the refund",
        Duration::from_secs(20),
        || async {
            let payment = payment_of(&customer, &order_id).await;
            (payment["status"] == "partially_refunded").then_some(payment)
        },
    )
    .await;
    assert_eq!(payment["refunded"], 900, "{payment}");
    eventually("after-sales notices", Duration::from_secs(20), || async {
        let kinds = notification_kinds(&customer).await;
        (kinds.iter().any(|k| k == "aftersale_approved")
            && kinds.iter().any(|k| k == "aftersale_refunded"))
        .then_some(())
    })
    .await;

    let inventory = event_types(ordo.pool(), "inventory", "PARCEL").await;
    assert_eq!(count(&inventory, "StockReturned"), 1, "{inventory:?}");
    let payment_id = payment["payment_id"].as_str().unwrap();
    let payments = event_types(ordo.pool(), "payment", payment_id).await;
    assert_eq!(count(&payments, "PaymentRefunded"), 1, "{payments:?}");
    let events = event_types(ordo.pool(), "aftersale", &aftersale_id).await;
    assert_eq!(
        events,
        [
            "AfterSaleRequested",
            "AfterSaleApproved",
            "ReturnShipped",
            "ReturnReceived",
            "AfterSaleRefunded",
            "AfterSaleClosed"
        ]
    );
    // The order's other parcel may still be returned; the first no more.
    request(&customer, &order_id, "return_refund", 1).await;
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_is_refunded_before_shipping_and_requests_are_withdrawn_or_rejected() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let order_id = paid_order(&customer, 3).await;
    // Goods not shipped yet cannot be returned or exchanged, only refunded.
    let early = customer
        .post(
            "/api/v1/aftersales",
            json!({"order_id": order_id, "kind": "return_refund", "lines": [{"sku": "PARCEL", "quantity": 1}], "reason": "changed my mind"}),
        )
        .await;
    assert_problem(&early, 409, "aftersale_not_allowed");

    let refund = request(&customer, &order_id, "refund_only", 1).await;
    let approved = admin_step(&admin, &refund, "approve").await;
    assert_eq!(approved["status"], "approved");
    let closed = wait_aftersale(&customer, &refund, "closed").await;
    assert!(closed["refund_id"].is_string(), "{closed}");
    eventually(
        "the payment shows the refund",
        Duration::from_secs(20),
        || async { (payment_of(&customer, &order_id).await["refunded"] == 900).then_some(()) },
    )
    .await;

    let withdrawn = request(&customer, &order_id, "refund_only", 1).await;
    let answer = customer
        .post(
            &format!("/api/v1/aftersales/{withdrawn}/withdraw"),
            json!({}),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "withdrawn");
    let late = admin
        .post(
            &format!("/api/v1/admin/aftersales/{withdrawn}/approve"),
            json!({}),
        )
        .await;
    assert_problem(&late, 409, "invalid_transition");

    // A withdrawn request gives its units back: they may be asked about again.
    let rejected = request(&customer, &order_id, "refund_only", 2).await;
    let answer = admin
        .post(
            &format!("/api/v1/admin/aftersales/{rejected}/reject"),
            json!({"reason": "The parcels are on their way."}),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "rejected");
    let view = wait_aftersale(&customer, &rejected, "rejected").await;
    assert_eq!(view["rejection_reason"], "The parcels are on their way.");
    eventually("the rejection notice", Duration::from_secs(20), || async {
        notification_kinds(&customer)
            .await
            .iter()
            .any(|k| k == "aftersale_rejected")
            .then_some(())
    })
    .await;
    let payment_id = order(&customer, &order_id).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let payments = event_types(ordo.pool(), "payment", &payment_id).await;
    assert_eq!(count(&payments, "PaymentRefunded"), 1, "{payments:?}");
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_takes_the_goods_back_and_ships_a_replacement() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let order_id = delivered_order(&admin, &customer, 2).await;
    wait_on_hand(&admin, 48).await;
    let exchange = request(&customer, &order_id, "exchange", 1).await;
    admin_step(&admin, &exchange, "approve").await;
    admin_step(&admin, &exchange, "receive").await;
    let closed = wait_aftersale(&customer, &exchange, "closed").await;
    let replacement = closed["replacement_shipment_id"]
        .as_str()
        .expect("a replacement shipment")
        .to_owned();
    assert!(closed.get("refund_id").is_none(), "{closed}");
    // One unit came back, one left again for the replacement.
    let inventory = event_types(ordo.pool(), "inventory", "PARCEL").await;
    assert_eq!(count(&inventory, "StockReturned"), 1, "{inventory:?}");
    wait_on_hand(&admin, 48).await;
    // The replacement ships like any parcel, and the carrier delivers it.
    let shipment = eventually(
        "the replacement shipment",
        Duration::from_secs(20),
        || async {
            let answer = customer
                .get(&format!("/api/v1/shipments/{replacement}"))
                .await;
            (answer.status == 200).then_some(answer.body)
        },
    )
    .await;
    assert_eq!(shipment["order_id"], order_id.as_str());
    ship(&admin, &replacement, "SBX-SWAP").await;
    eventually(
        "the replacement delivered",
        Duration::from_secs(30),
        || async {
            let body = customer
                .get(&format!("/api/v1/shipments/{replacement}"))
                .await
                .body;
            (body["status"] == "delivered").then_some(())
        },
    )
    .await;
    let parcels = order(&customer, &order_id).await["shipments"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(parcels, 2, "the order shows its replacement parcel");
    let payment = payment_of(&customer, &order_id).await;
    assert_eq!(
        payment["status"], "captured",
        "nothing refunded for an exchange"
    );
    ordo.stop().await;
}

/// Refunds `amount` of the payment directly on the write side: money given back by other
/// means than after-sales, leaving less to refund.
async fn refund_by_hand(ordo: &TestOrdo, payment_id: &str, amount: i64) {
    let payments: CommandBus<Payment> = CommandBus::new(ordo.pool().clone(), ());
    let id: PaymentId = payment_id.parse().unwrap();
    payments
        .execute(
            &id.to_string(),
            PaymentCommand::Refund {
                refund_id: RefundId::from(Uuid::new_v4()),
                amount: Money::new(amount, "EUR".parse().unwrap()).unwrap(),
                reason: "goodwill".into(),
            },
            CommandMetadata::from_request("test", None),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_beyond_what_the_payment_captured_is_refused() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let order_id = delivered_order(&admin, &customer, 2).await;
    let payment_id = order(&customer, &order_id).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Asked while the payment can refund it, then 15.00 of the 18.00 given back by hand.
    let asked = request(&customer, &order_id, "refund_only", 1).await;
    refund_by_hand(&ordo, &payment_id, 1500).await;
    let refused = customer
        .post(
            "/api/v1/aftersales",
            json!({"order_id": order_id, "kind": "refund_only", "lines": [{"sku": "PARCEL", "quantity": 1}], "reason": "also broken"}),
        )
        .await;
    assert_problem(&refused, 409, "refund_exceeds_captured");
    // Approved now, the payment refuses the 9.00: the request waits for an admin.
    admin_step(&admin, &asked, "approve").await;
    let failed = wait_aftersale(&customer, &asked, "refund_failed").await;
    assert!(
        failed["refund_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("refund_exceeds_captured")),
        "{failed}"
    );
    let payments = event_types(ordo.pool(), "payment", &payment_id).await;
    assert_eq!(
        count(&payments, "PaymentRefunded"),
        1,
        "only the refund by hand: {payments:?}"
    );
    ordo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_racing_for_the_same_units_never_both_get_them() {
    let ordo = TestOrdo::with_env(FAST).await;
    let (_admin, customer) = shop(&ordo).await;
    let order_id = paid_order(&customer, 2).await;
    // Eight requests of one unit each at once, for an order of two units.
    let asked = futures::future::join_all((0..8).map(|n| {
        customer.post(
            "/api/v1/aftersales",
            json!({"order_id": order_id, "kind": "refund_only", "lines": [{"sku": "PARCEL", "quantity": 1}], "reason": format!("request {n}")}),
        )
    }))
    .await;
    let granted = asked.iter().filter(|a| a.status == 201).count();
    assert_eq!(
        granted,
        2,
        "{:?}",
        asked
            .iter()
            .map(|a| (a.status, a.body.clone()))
            .collect::<Vec<_>>()
    );
    for refused in asked.iter().filter(|a| a.status != 201) {
        assert_problem(refused, 409, "quantity_exceeded");
    }
    // The order's own record: two claims, whatever raced.
    let events = event_types(ordo.pool(), "order", &order_id).await;
    assert_eq!(count(&events, "AfterSaleUnitsClaimed"), 2, "{events:?}");
    // A request that lost the race after it was recorded is rejected, never left open.
    eventually(
        "every losing request rejected",
        Duration::from_secs(20),
        || async {
            let listed = customer.get("/api/v1/aftersales").await;
            let requests = listed.body["aftersales"].as_array()?.clone();
            let open = requests
                .iter()
                .filter(|r| r["status"] != "rejected")
                .count();
            (open == 2).then_some(())
        },
    )
    .await;
    ordo.stop().await;
}

/// Waits until the process died (it aborts itself at the crash point).
async fn wait_for_crash(ordo: &mut TestOrdo) {
    eventually(
        "the process crashed at its crash point",
        Duration::from_secs(30),
        || {
            let alive = ordo.is_running();
            async move { (!alive).then_some(()) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_aftersale_step_loses_nothing_and_does_nothing_twice() {
    let mut ordo = TestOrdo::with_env(FAST).await;
    let (admin, customer) = shop(&ordo).await;
    let order_id = delivered_order(&admin, &customer, 6).await;
    wait_on_hand(&admin, 44).await;
    let steps = [
        ("return_refund", "return_stock"),
        ("return_refund", "refund_payment"),
        ("return_refund", "mark_refunded"),
        ("return_refund", "close"),
        ("exchange", "create_replacement"),
        ("exchange", "mark_replacing"),
    ];
    let mut requests = Vec::new();
    for (kind, step) in steps {
        let aftersale_id = request(&customer, &order_id, kind, 1).await;
        admin_step(&admin, &aftersale_id, "approve").await;
        ordo.set_env("ORDO_CRASH_AFTER_STEP", &format!("aftersale:{step}"));
        ordo.restart().await.unwrap();
        admin_step(&admin, &aftersale_id, "receive").await;
        wait_for_crash(&mut ordo).await;
        ordo.set_env("ORDO_CRASH_AFTER_STEP", "");
        ordo.restart().await.unwrap();
        wait_aftersale(&customer, &aftersale_id, "closed").await;
        requests.push((kind, aftersale_id));
    }
    for (kind, aftersale_id) in &requests {
        let events = event_types(ordo.pool(), "aftersale", aftersale_id).await;
        let last = if *kind == "exchange" {
            "ReplacementArranged"
        } else {
            "AfterSaleRefunded"
        };
        assert_eq!(
            events,
            [
                "AfterSaleRequested",
                "AfterSaleApproved",
                "ReturnReceived",
                last,
                "AfterSaleClosed"
            ],
            "{aftersale_id}"
        );
    }
    // Six units came back once each; two left again as replacements.
    let inventory = event_types(ordo.pool(), "inventory", "PARCEL").await;
    assert_eq!(count(&inventory, "StockReturned"), 6, "{inventory:?}");
    wait_on_hand(&admin, 48).await;
    let payment = payment_of(&customer, &order_id).await;
    assert_eq!(payment["refunded"], 4 * 900, "{payment}");
    let payments = event_types(
        ordo.pool(),
        "payment",
        payment["payment_id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(count(&payments, "PaymentRefunded"), 4, "{payments:?}");
    // The order's shipments are read from the shipments read model, which follows.
    let shipments = || async {
        order(&customer, &order_id).await["shipments"]
            .as_array()
            .map_or(0, Vec::len)
    };
    eventually(
        "the order's parcel and two replacements",
        Duration::from_secs(20),
        || async { (shipments().await >= 3).then_some(()) },
    )
    .await;
    assert_eq!(
        shipments().await,
        3,
        "the order's parcel and two replacements, once each"
    );
    ordo.stop().await;
}
