//! The checkout saga, given / when / then: given the saga's state (the events it has
//! handled, with the order, its payment and the stock as the write side holds them), when
//! one event arrives, then these commands are issued (to the aggregates and to the payment
//! provider) and the saga stands here. Every step and every compensation has its case.
//!
//! The write side and the provider are kept in memory behind the saga's ports; the saga's
//! own rows live in a fresh Postgres database per test, as in production.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordo_aggregates::common::{
    CartId, CouponId, Currency, Money, OrderId, PaymentId, Quantity, RefundId, Sku, UserId,
};
use ordo_aggregates::order::{OrderEvent, OrderLine, OrderStatus};
use ordo_aggregates::payment::{PaymentEvent, PaymentStatus};
use ordo_nats::envelope::{event_id, untag_payload};
use ordo_nats::{EventHandler, HandlerError, ReceivedEvent};
use ordo_sagas::checkout::{step_id, CheckoutSettings};
use ordo_sagas::port::{OrderSnapshot, PaymentSnapshot};
use ordo_sagas::{
    repository, ChargeRequest, CheckoutPort, CheckoutSaga, PaymentPort, PaymentProvider,
    ProviderError, StepError,
};
use ordo_store::CommandMetadata;
use ordo_tests::TestDatabase;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// A command the saga issued, to an aggregate or to the provider.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    ReserveStock(Sku, u32),
    ReleaseStock(Sku),
    CommitStock(Sku),
    ConfirmOrder,
    RejectOrder { reason: String, short: Vec<Sku> },
    CancelOrder(String),
    ExpireOrder,
    MarkOrderPaid(PaymentId),
    MarkOrderRefunded(PaymentId),
    VoidPayment(PaymentId),
    RefundPayment { payment: PaymentId, amount: Money },
    Charge(PaymentId, Money),
    ProviderVoid(PaymentId),
    ProviderRefund(PaymentId, RefundId, Money),
}

use Command::*;

/// The write side of one order as the saga's ports see it, and the provider.
#[derive(Default)]
struct Shop {
    /// Units left per SKU; a reservation of more is refused.
    stock: HashMap<Sku, u32>,
    order_status: Option<OrderStatus>,
    order_payment: Option<PaymentId>,
    order_total: Option<Money>,
    payments: HashMap<PaymentId, PaymentSnapshot>,
    /// Every command issued, in order.
    issued: Vec<Command>,
}

#[derive(Default)]
struct InMemory(Mutex<Shop>);

impl InMemory {
    fn shop(&self) -> std::sync::MutexGuard<'_, Shop> {
        self.0.lock().unwrap()
    }

    fn issue(&self, command: Command) {
        self.shop().issued.push(command);
    }
}

fn refused(code: &str) -> StepError {
    StepError::Refused {
        code: code.into(),
        detail: code.into(),
    }
}

#[async_trait]
impl PaymentPort for InMemory {
    async fn payment(&self, payment_id: PaymentId) -> Result<PaymentSnapshot, StepError> {
        Ok(self
            .shop()
            .payments
            .get(&payment_id)
            .cloned()
            .unwrap_or_else(|| snapshot(None, None, eur(0))))
    }

    async fn void_payment(
        &self,
        payment_id: PaymentId,
        _: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue(VoidPayment(payment_id));
        Ok(())
    }

    async fn refund_payment(
        &self,
        payment_id: PaymentId,
        _: RefundId,
        amount: Money,
        _: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue(RefundPayment {
            payment: payment_id,
            amount,
        });
        Ok(())
    }
}

#[async_trait]
impl CheckoutPort for InMemory {
    async fn reserve_stock(
        &self,
        sku: &Sku,
        _: OrderId,
        quantity: Quantity,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        let mut shop = self.shop();
        shop.issued.push(ReserveStock(sku.clone(), quantity.get()));
        let left = shop.stock.get(sku).copied().unwrap_or(0);
        if left < quantity.get() {
            return Err(refused("insufficient_stock"));
        }
        shop.stock.insert(sku.clone(), left - quantity.get());
        Ok(())
    }

    async fn release_stock(
        &self,
        sku: &Sku,
        _: OrderId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue(ReleaseStock(sku.clone()));
        Ok(())
    }

    async fn commit_stock(
        &self,
        sku: &Sku,
        _: OrderId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue(CommitStock(sku.clone()));
        Ok(())
    }

    async fn confirm_order(&self, _: OrderId, _: CommandMetadata) -> Result<(), StepError> {
        let mut shop = self.shop();
        shop.issued.push(ConfirmOrder);
        shop.order_status = Some(OrderStatus::AwaitingPayment);
        Ok(())
    }

    async fn reject_order(
        &self,
        _: OrderId,
        reason: &str,
        short_skus: Vec<Sku>,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        let mut shop = self.shop();
        shop.issued.push(RejectOrder {
            reason: reason.into(),
            short: short_skus,
        });
        shop.order_status = Some(OrderStatus::Rejected);
        Ok(())
    }

    async fn cancel_order(
        &self,
        _: OrderId,
        reason: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        let mut shop = self.shop();
        shop.issued.push(CancelOrder(reason.into()));
        if shop.order_status != Some(OrderStatus::AwaitingPayment) {
            return Err(refused("invalid_transition"));
        }
        shop.order_status = Some(OrderStatus::Cancelled);
        Ok(())
    }

    async fn expire_order(&self, _: OrderId, _: CommandMetadata) -> Result<(), StepError> {
        let mut shop = self.shop();
        shop.issued.push(ExpireOrder);
        if shop.order_status != Some(OrderStatus::AwaitingPayment) {
            return Err(refused("invalid_transition"));
        }
        shop.order_status = Some(OrderStatus::Expired);
        Ok(())
    }

    async fn mark_order_refunded(
        &self,
        _: OrderId,
        payment_id: PaymentId,
        _: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        let mut shop = self.shop();
        shop.issued.push(MarkOrderRefunded(payment_id));
        match shop.order_status {
            Some(OrderStatus::Paid) => {
                shop.order_status = Some(OrderStatus::Refunded);
                Ok(())
            }
            Some(OrderStatus::Refunded) => Ok(()),
            _ => Err(refused("invalid_transition")),
        }
    }

    async fn mark_order_paid(
        &self,
        _: OrderId,
        payment_id: PaymentId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        let mut shop = self.shop();
        shop.issued.push(MarkOrderPaid(payment_id));
        if shop.order_status != Some(OrderStatus::AwaitingPayment) {
            return Err(refused("invalid_transition"));
        }
        shop.order_status = Some(OrderStatus::Paid);
        Ok(())
    }

    async fn order(&self, _: OrderId) -> Result<OrderSnapshot, StepError> {
        let shop = self.shop();
        Ok(OrderSnapshot {
            status: shop.order_status,
            payment: shop.order_payment,
            total: shop.order_total.clone(),
        })
    }

    // Orders of these tests use no coupon.
    async fn lock_coupon(
        &self,
        _: CouponId,
        _: OrderId,
        _: UserId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        unreachable!("no order of these tests uses a coupon")
    }

    async fn redeem_coupon(
        &self,
        _: CouponId,
        _: OrderId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        unreachable!("no order of these tests uses a coupon")
    }

    async fn release_coupon(
        &self,
        _: CouponId,
        _: OrderId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        unreachable!("no order of these tests uses a coupon")
    }

    async fn remove_ordered_from_cart(
        &self,
        _: CartId,
        _: UserId,
        _: OrderId,
        _: &[(Sku, Quantity)],
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        unreachable!("no order of these tests comes from a cart")
    }
}

#[async_trait]
impl PaymentProvider for InMemory {
    async fn charge(&self, request: ChargeRequest) -> Result<(), ProviderError> {
        self.issue(Charge(request.payment_id, request.amount));
        Ok(())
    }

    async fn void(&self, payment_id: PaymentId) -> Result<(), ProviderError> {
        self.issue(ProviderVoid(payment_id));
        Ok(())
    }

    async fn refund(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        amount: Money,
    ) -> Result<(), ProviderError> {
        self.issue(ProviderRefund(payment_id, refund_id, amount));
        Ok(())
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}

fn sku(raw: &str) -> Sku {
    Sku::parse(raw).unwrap()
}

fn snapshot(
    status: Option<PaymentStatus>,
    order_id: Option<Uuid>,
    amount: Money,
) -> PaymentSnapshot {
    let captured = status
        .is_some_and(|s| s.is_captured())
        .then(|| amount.clone());
    PaymentSnapshot {
        status,
        order_id,
        amount: Some(amount),
        captured,
        refunded: None,
        method: "card".into(),
        sealed_token: "tok_visa".into(),
    }
}

/// One checkout under test: the saga, its write side in memory, its rows in Postgres.
struct Checkout {
    _database: TestDatabase,
    pool: PgPool,
    shop: Arc<InMemory>,
    saga: Arc<CheckoutSaga>,
    order_id: OrderId,
    /// The next sequence of each aggregate's events.
    sequences: Mutex<HashMap<String, i64>>,
}

const HAMMER: &str = "HAMMER";
const NAILS: &str = "NAILS";

impl Checkout {
    /// A checkout with a fresh database; the shop holds 10 hammers and 100 nails.
    async fn new() -> Self {
        Self::with_timeout(Duration::from_secs(900)).await
    }

    async fn with_timeout(payment_timeout: Duration) -> Self {
        Self::with_grace(payment_timeout, Duration::from_secs(120)).await
    }

    async fn with_grace(payment_timeout: Duration, payment_grace: Duration) -> Self {
        let database = TestDatabase::create().await.unwrap();
        let pool = database.pool().await.unwrap();
        ordo_schemas::MIGRATOR.run(&pool).await.unwrap();
        let shop = Arc::new(InMemory::default());
        shop.shop().stock = HashMap::from([(sku(HAMMER), 10), (sku(NAILS), 100)]);
        let saga = CheckoutSaga::new(
            pool.clone(),
            shop.clone(),
            shop.clone(),
            CheckoutSettings {
                payment_timeout,
                payment_grace,
                callback_base_url: "http://127.0.0.1:8080".into(),
            },
        );
        Self {
            _database: database,
            pool,
            shop,
            saga,
            order_id: OrderId::new_v4(),
            sequences: Mutex::new(HashMap::new()),
        }
    }

    /// The order's event as the order stream delivers it.
    fn order_event(&self, event: &OrderEvent) -> ReceivedEvent {
        self.received("order", &self.order_id.to_string(), event)
    }

    /// A payment's event as the payment stream delivers it.
    fn payment_event(&self, payment_id: PaymentId, event: &PaymentEvent) -> ReceivedEvent {
        self.received("payment", &payment_id.to_string(), event)
    }

    fn received(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event: &impl Serialize,
    ) -> ReceivedEvent {
        let tagged = serde_json::to_value(event).unwrap();
        let event_type = match &tagged {
            serde_json::Value::Object(map) => map.keys().next().unwrap().clone(),
            serde_json::Value::String(name) => name.clone(),
            other => panic!("not an event: {other}"),
        };
        let sequence = {
            let mut sequences = self.sequences.lock().unwrap();
            let next = sequences.entry(aggregate_id.to_string()).or_insert(0);
            *next += 1;
            *next
        };
        ReceivedEvent {
            stream: format!("ORDO_{}", aggregate_type.to_uppercase()),
            stream_sequence: 1,
            subject: format!("ordo.events.{aggregate_type}.{aggregate_id}.{event_type}"),
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            sequence,
            event_version: if event_type == "PaymentRefunded" {
                "2"
            } else {
                "1"
            }
            .into(),
            event_id: event_id(aggregate_type, aggregate_id, sequence),
            correlation_id: "request-1".into(),
            causation_id: "request-1".into(),
            user_id: None,
            recorded_at: Utc::now(),
            payload: untag_payload(&event_type, &tagged),
            event_type,
            delivered: 1,
        }
    }

    /// Handles an order event; forgets the commands it issued (the "given").
    async fn given_order(&self, event: OrderEvent) {
        self.when_order(event).await.unwrap();
        self.shop.shop().issued.clear();
    }

    /// Handles a payment event; forgets the commands it issued (the "given").
    async fn given_payment(&self, payment_id: PaymentId, event: PaymentEvent) {
        self.when_payment(payment_id, event).await.unwrap();
        self.shop.shop().issued.clear();
    }

    async fn when_order(&self, event: OrderEvent) -> Result<(), HandlerError> {
        self.saga.orders().handle(&self.order_event(&event)).await
    }

    async fn when_payment(
        &self,
        payment_id: PaymentId,
        event: PaymentEvent,
    ) -> Result<(), HandlerError> {
        self.saga
            .payments()
            .handle(&self.payment_event(payment_id, &event))
            .await
    }

    /// The commands issued since the last "given".
    fn issued(&self) -> Vec<Command> {
        std::mem::take(&mut self.shop.shop().issued)
    }

    async fn saga_status(&self) -> (String, Option<DateTime<Utc>>) {
        let saga = repository::find(&self.pool, *self.order_id.as_uuid())
            .await
            .unwrap()
            .expect("the saga exists");
        (saga.status, saga.deadline)
    }

    // The givens of the cases below.

    fn placed(&self, hammers: u32, nails: u32) -> OrderEvent {
        let line = |raw: &str, quantity: u32, price: i64| OrderLine {
            sku: sku(raw),
            quantity: Quantity::parse(i64::from(quantity)).unwrap(),
            unit_price: eur(price),
        };
        OrderEvent::OrderPlaced {
            order_id: self.order_id,
            customer_id: UserId::new_v4(),
            lines: vec![line(HAMMER, hammers, 1500), line(NAILS, nails, 10)],
            total: eur(1500 * i64::from(hammers) + 10 * i64::from(nails)),
            pricing: None,
            delivery_address: None,
            from_cart: None,
        }
    }

    /// Given: placed for 2 hammers and 50 nails, reserved and confirmed.
    async fn awaiting_payment(&self) {
        self.shop.shop().order_total = Some(eur(3500));
        self.given_order(self.placed(2, 50)).await;
        self.given_order(OrderEvent::OrderConfirmed {}).await;
    }

    /// Given: awaiting payment, with a payment of `status` attached.
    async fn with_payment(&self, status: PaymentStatus) -> PaymentId {
        self.awaiting_payment().await;
        let payment_id = PaymentId::new_v4();
        self.attach(payment_id, status);
        self.given_order(OrderEvent::PaymentAttached { payment_id })
            .await;
        payment_id
    }

    /// The write side holds a payment of `status` for this order, attached to it.
    fn attach(&self, payment_id: PaymentId, status: PaymentStatus) {
        let mut shop = self.shop.shop();
        shop.payments.insert(
            payment_id,
            snapshot(Some(status), Some(*self.order_id.as_uuid()), eur(3500)),
        );
        shop.order_payment = Some(payment_id);
    }

    fn set_order_status(&self, status: OrderStatus) {
        self.shop.shop().order_status = Some(status);
    }
}

fn created(payment_id: PaymentId, order_id: OrderId) -> PaymentEvent {
    PaymentEvent::PaymentCreated {
        payment_id,
        order_id: *order_id.as_uuid(),
        customer_id: UserId::new_v4(),
        amount: eur(3500),
        method: "card".into(),
        sealed_token: "tok_visa".into(),
    }
}

fn captured() -> PaymentEvent {
    PaymentEvent::PaymentCaptured {
        provider_ref: "sandbox-1".into(),
        amount: eur(3500),
    }
}

#[tokio::test]
async fn placed_with_every_line_in_stock_reserves_each_line_then_confirms() {
    let checkout = Checkout::new().await;
    checkout.when_order(checkout.placed(2, 50)).await.unwrap();
    assert_eq!(
        checkout.issued(),
        vec![
            ReserveStock(sku(HAMMER), 2),
            ReserveStock(sku(NAILS), 50),
            ConfirmOrder,
        ]
    );
    let (status, deadline) = checkout.saga_status().await;
    assert_eq!(status, "awaiting_payment");
    let deadline = deadline.expect("a payment deadline");
    assert!(
        deadline > Utc::now() + chrono::Duration::minutes(14),
        "{deadline}"
    );
}

#[tokio::test]
async fn placed_with_a_line_short_releases_every_line_and_rejects() {
    let checkout = Checkout::new().await;
    checkout.when_order(checkout.placed(11, 50)).await.unwrap();
    assert_eq!(
        checkout.issued(),
        vec![
            ReserveStock(sku(HAMMER), 11),
            ReserveStock(sku(NAILS), 50),
            ReleaseStock(sku(HAMMER)),
            ReleaseStock(sku(NAILS)),
            RejectOrder {
                reason: "insufficient_stock".into(),
                short: vec![sku(HAMMER)],
            },
        ]
    );
    assert_eq!(checkout.saga_status().await, ("rejected".into(), None));
}

#[tokio::test]
async fn the_saga_does_not_react_to_its_own_steps() {
    let checkout = Checkout::new().await;
    checkout.given_order(checkout.placed(1, 1)).await;
    checkout
        .when_order(OrderEvent::OrderConfirmed {})
        .await
        .unwrap();
    checkout
        .when_order(OrderEvent::PaymentAttached {
            payment_id: PaymentId::new_v4(),
        })
        .await
        .unwrap();
    assert_eq!(checkout.issued(), vec![]);
    assert_eq!(checkout.saga_status().await.0, "awaiting_payment");
}

#[tokio::test]
async fn a_created_payment_is_charged_at_the_provider() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    checkout
        .when_payment(payment_id, created(payment_id, checkout.order_id))
        .await
        .unwrap();
    assert_eq!(checkout.issued(), vec![Charge(payment_id, eur(3500))]);
}

#[tokio::test]
async fn a_payment_of_another_saga_is_left_alone() {
    let checkout = Checkout::new().await;
    checkout.awaiting_payment().await;
    // A booking's payment shares the stream: its order id names no checkout.
    let payment_id = PaymentId::new_v4();
    let booking = OrderId::new_v4();
    checkout.shop.shop().payments.insert(
        payment_id,
        snapshot(
            Some(PaymentStatus::Created),
            Some(*booking.as_uuid()),
            eur(3500),
        ),
    );
    checkout
        .when_payment(payment_id, created(payment_id, booking))
        .await
        .unwrap();
    assert_eq!(checkout.issued(), vec![]);
}

#[tokio::test]
async fn a_capture_marks_the_order_paid() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    checkout
        .given_payment(payment_id, created(payment_id, checkout.order_id))
        .await;
    checkout.attach(payment_id, PaymentStatus::Captured);
    checkout.when_payment(payment_id, captured()).await.unwrap();
    assert_eq!(checkout.issued(), vec![MarkOrderPaid(payment_id)]);
}

#[tokio::test]
async fn a_capture_the_order_no_longer_wants_is_refunded() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    checkout
        .given_payment(payment_id, created(payment_id, checkout.order_id))
        .await;
    // The order expired before the capture arrived.
    checkout.set_order_status(OrderStatus::Expired);
    checkout.attach(payment_id, PaymentStatus::Captured);
    checkout.when_payment(payment_id, captured()).await.unwrap();
    assert_eq!(
        checkout.issued(),
        vec![
            MarkOrderPaid(payment_id),
            RefundPayment {
                payment: payment_id,
                amount: eur(3500),
            },
        ]
    );
}

#[tokio::test]
async fn a_paid_order_commits_the_stock_of_every_line() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Captured).await;
    checkout.set_order_status(OrderStatus::Paid);
    checkout
        .when_order(OrderEvent::OrderPaid { payment_id })
        .await
        .unwrap();
    assert_eq!(
        checkout.issued(),
        vec![CommitStock(sku(HAMMER)), CommitStock(sku(NAILS))]
    );
    assert_eq!(checkout.saga_status().await.0, "paid");
}

#[tokio::test]
async fn a_failed_payment_leaves_the_order_waiting_for_another() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    checkout
        .given_payment(payment_id, created(payment_id, checkout.order_id))
        .await;
    checkout.attach(payment_id, PaymentStatus::Failed);
    checkout
        .when_payment(
            payment_id,
            PaymentEvent::PaymentFailed {
                reason: "card_declined".into(),
            },
        )
        .await
        .unwrap();
    // Nothing is cancelled or released: the customer may pay again before the deadline.
    assert_eq!(checkout.issued(), vec![]);
    let (status, deadline) = checkout.saga_status().await;
    assert_eq!(status, "awaiting_payment");
    assert!(deadline.is_some());
}

#[tokio::test]
async fn a_payment_in_flight_at_the_deadline_holds_the_order() {
    let checkout = Checkout::with_timeout(Duration::ZERO).await;
    checkout.with_payment(PaymentStatus::Created).await;
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 0);
    assert_eq!(checkout.issued(), vec![]);
    let (status, deadline) = checkout.saga_status().await;
    assert_eq!(status, "payment_held");
    assert!(deadline.unwrap() > Utc::now() + chrono::Duration::seconds(60));
    // Held, not overdue again before the grace passes.
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 0);
    assert_eq!(checkout.issued(), vec![]);
}

#[tokio::test]
async fn a_held_order_whose_grace_passed_voids_the_payment_then_expires() {
    let checkout = Checkout::with_grace(Duration::ZERO, Duration::ZERO).await;
    let payment_id = checkout.with_payment(PaymentStatus::Authorized).await;
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 0);
    assert_eq!(checkout.saga_status().await.0, "payment_held");
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 1);
    assert_eq!(
        checkout.issued(),
        vec![VoidPayment(payment_id), ExpireOrder]
    );
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 0);
}

#[tokio::test]
async fn a_held_order_whose_payment_was_captured_is_not_expired() {
    let checkout = Checkout::with_grace(Duration::ZERO, Duration::ZERO).await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 0);
    checkout.attach(payment_id, PaymentStatus::Captured);
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 0);
    assert_eq!(checkout.issued(), vec![]);
    assert_eq!(checkout.saga_status().await, ("payment_held".into(), None));
}

#[tokio::test]
async fn a_payment_declined_while_the_order_is_held_expires_it() {
    let checkout = Checkout::with_timeout(Duration::ZERO).await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    checkout
        .given_payment(payment_id, created(payment_id, checkout.order_id))
        .await;
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 0);
    checkout.attach(payment_id, PaymentStatus::Failed);
    checkout
        .when_payment(
            payment_id,
            PaymentEvent::PaymentFailed {
                reason: "card_declined".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(checkout.issued(), vec![ExpireOrder]);
}

#[tokio::test]
async fn a_failed_payment_no_longer_attached_changes_nothing() {
    let checkout = Checkout::new().await;
    let first = checkout.with_payment(PaymentStatus::Created).await;
    checkout
        .given_payment(first, created(first, checkout.order_id))
        .await;
    // The customer started another payment meanwhile.
    let second = PaymentId::new_v4();
    checkout.attach(second, PaymentStatus::Created);
    checkout.attach(first, PaymentStatus::Failed);
    checkout.shop.shop().order_payment = Some(second);
    checkout
        .when_payment(
            first,
            PaymentEvent::PaymentFailed {
                reason: "card_declined".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(checkout.issued(), vec![]);
}

#[tokio::test]
async fn a_cancelled_order_releases_its_stock_and_voids_an_uncaptured_payment() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    checkout.set_order_status(OrderStatus::Cancelled);
    checkout
        .when_order(OrderEvent::OrderCancelled {
            reason: "payment_declined".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        checkout.issued(),
        vec![
            ReleaseStock(sku(HAMMER)),
            ReleaseStock(sku(NAILS)),
            VoidPayment(payment_id),
        ]
    );
    assert_eq!(checkout.saga_status().await.0, "cancelled");
}

#[tokio::test]
async fn a_cancelled_order_whose_payment_was_captured_is_refunded() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Captured).await;
    checkout.set_order_status(OrderStatus::Cancelled);
    checkout
        .when_order(OrderEvent::OrderCancelled {
            reason: "customer".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        checkout.issued(),
        vec![
            ReleaseStock(sku(HAMMER)),
            ReleaseStock(sku(NAILS)),
            RefundPayment {
                payment: payment_id,
                amount: eur(3500),
            },
        ]
    );
    assert_eq!(checkout.saga_status().await.0, "cancelled");
}

#[tokio::test]
async fn an_overdue_checkout_is_expired() {
    let checkout = Checkout::with_timeout(Duration::ZERO).await;
    checkout.awaiting_payment().await;
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 1);
    assert_eq!(checkout.issued(), vec![ExpireOrder]);
    // The deadline is handled; the OrderExpired event drives the compensation.
    assert_eq!(
        checkout.saga_status().await,
        ("awaiting_payment".into(), None)
    );
    assert_eq!(checkout.saga.expire_overdue().await.unwrap(), 0);
}

#[tokio::test]
async fn an_expired_order_releases_its_stock_and_leaves_the_payment_open() {
    let checkout = Checkout::new().await;
    checkout.with_payment(PaymentStatus::Created).await;
    checkout.set_order_status(OrderStatus::Expired);
    checkout
        .when_order(OrderEvent::OrderExpired {})
        .await
        .unwrap();
    // A capture that still arrives is refunded (see above), so the payment is not voided.
    assert_eq!(
        checkout.issued(),
        vec![ReleaseStock(sku(HAMMER)), ReleaseStock(sku(NAILS))]
    );
    assert_eq!(checkout.saga_status().await.0, "expired");
}

#[tokio::test]
async fn a_refunded_order_gets_its_payment_back_in_full() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Captured).await;
    checkout.set_order_status(OrderStatus::Refunded);
    checkout
        .when_order(OrderEvent::OrderRefunded {
            payment_id,
            reason: "damaged".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        checkout.issued(),
        vec![RefundPayment {
            payment: payment_id,
            amount: eur(3500),
        }]
    );
    assert_eq!(checkout.saga_status().await.0, "refunded");
}

#[tokio::test]
async fn a_voided_payment_is_voided_at_the_provider() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    checkout
        .given_payment(payment_id, created(payment_id, checkout.order_id))
        .await;
    checkout.set_order_status(OrderStatus::Cancelled);
    checkout.attach(payment_id, PaymentStatus::Voided);
    checkout
        .when_payment(
            payment_id,
            PaymentEvent::PaymentVoided {
                reason: "order cancelled".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(checkout.issued(), vec![ProviderVoid(payment_id)]);
}

#[tokio::test]
async fn a_refund_of_a_paid_order_goes_to_the_provider_and_closes_the_saga() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    checkout
        .given_payment(payment_id, created(payment_id, checkout.order_id))
        .await;
    checkout.attach(payment_id, PaymentStatus::Captured);
    checkout.given_payment(payment_id, captured()).await;
    checkout
        .given_order(OrderEvent::OrderPaid { payment_id })
        .await;
    assert_eq!(checkout.saga_status().await.0, "paid");

    let refund_id = RefundId::from(step_id(*payment_id.as_uuid(), "refund:by-hand"));
    checkout.attach(payment_id, PaymentStatus::Refunded);
    checkout
        .when_payment(
            payment_id,
            PaymentEvent::PaymentRefunded {
                refund_id,
                amount: eur(3500),
                total_refunded: eur(3500),
                reason: "goodwill".into(),
            },
        )
        .await
        .unwrap();
    // Refunded in full: the order is refunded too.
    assert_eq!(
        checkout.issued(),
        vec![
            ProviderRefund(payment_id, refund_id, eur(3500)),
            MarkOrderRefunded(payment_id)
        ]
    );
    assert_eq!(checkout.saga_status().await.0, "refunded");
}

#[tokio::test]
async fn an_order_event_this_build_does_not_know_is_retried_and_issues_nothing() {
    let checkout = Checkout::new().await;
    checkout.awaiting_payment().await;
    let mut unknown = checkout.order_event(&OrderEvent::OrderConfirmed {});
    unknown.event_type = "OrderTeleported".into();
    let err = checkout.saga.orders().handle(&unknown).await.unwrap_err();
    assert!(
        matches!(&err, HandlerError::Retry(e) if e.to_string().contains("upgrade this consumer")),
        "{err:?}"
    );
    assert_eq!(checkout.issued(), vec![]);
    assert_eq!(checkout.saga_status().await.0, "awaiting_payment");
}

/// A capture the saga must not act on: dead-lettered (a permanent error), nothing issued,
/// the order left as it was.
async fn assert_dead_lettered(checkout: &Checkout, payment_id: PaymentId, expected: &str) {
    let outcome = checkout.when_payment(payment_id, captured()).await;
    match outcome {
        Err(HandlerError::Permanent(err)) => {
            let message = format!("{err:#}");
            assert!(message.contains(expected), "{message}");
        }
        other => panic!("expected a dead letter, got {other:?}"),
    }
    assert_eq!(checkout.issued(), vec![]);
    assert_eq!(
        checkout.shop.shop().order_status,
        Some(OrderStatus::AwaitingPayment)
    );
}

#[tokio::test]
async fn a_capture_the_event_store_does_not_hold_is_dead_lettered() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Created).await;
    checkout
        .given_payment(payment_id, created(payment_id, checkout.order_id))
        .await;
    // A PaymentCaptured arrives (published by hand on the bus) while the store still
    // holds the payment as created: the provider never captured it.
    assert_dead_lettered(&checkout, payment_id, "as created, not captured").await;
}

#[tokio::test]
async fn a_capture_of_a_failed_payment_is_dead_lettered() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Failed).await;
    assert_dead_lettered(&checkout, payment_id, "as failed, not captured").await;
}

#[tokio::test]
async fn a_capture_of_another_amount_than_the_order_total_is_dead_lettered() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Captured).await;
    // The payment as stored is captured, but for less than the order costs.
    checkout.shop.shop().payments.insert(
        payment_id,
        snapshot(
            Some(PaymentStatus::Captured),
            Some(*checkout.order_id.as_uuid()),
            eur(100),
        ),
    );
    assert_dead_lettered(&checkout, payment_id, "but order").await;
}

#[tokio::test]
async fn a_capture_in_another_currency_than_the_order_total_is_dead_lettered() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Captured).await;
    checkout.shop.shop().order_total =
        Some(Money::new(3500, Currency::parse("USD").unwrap()).unwrap());
    assert_dead_lettered(&checkout, payment_id, "totals").await;
}

#[tokio::test]
async fn a_capture_short_of_the_payment_amount_is_dead_lettered() {
    let checkout = Checkout::new().await;
    let payment_id = checkout.with_payment(PaymentStatus::Captured).await;
    checkout
        .shop
        .shop()
        .payments
        .get_mut(&payment_id)
        .unwrap()
        .captured = Some(eur(1));
    assert_dead_lettered(&checkout, payment_id, "captured").await;
}

#[tokio::test]
async fn a_capture_of_a_payment_the_store_does_not_know_issues_nothing() {
    let checkout = Checkout::new().await;
    checkout.awaiting_payment().await;
    let unknown = PaymentId::new_v4();
    assert!(checkout.when_payment(unknown, captured()).await.is_err());
    assert_eq!(checkout.issued(), vec![]);
    assert_eq!(
        checkout.shop.shop().order_status,
        Some(OrderStatus::AwaitingPayment)
    );
}
