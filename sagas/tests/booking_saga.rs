//! The booking saga, given/when/then: given the saga's state (its row, and the booking and
//! payment as the write side has them), when one event arrives, then these commands are
//! issued, in this order, and the saga stands here. Every step and every compensation,
//! against real Postgres (the saga's rows and the claims of the events it handled) and a
//! port that records commands instead of executing them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordo_aggregates::booking::{BookingEvent, BookingRequest, BookingStatus};
use ordo_aggregates::common::{
    AreaId, BookingId, Currency, Money, PaymentId, Quantity, RefundId, SessionId, ShowId, Sku,
    TicketId, UserId,
};
use ordo_aggregates::inventory::SeatHold;
use ordo_aggregates::payment::{PaymentEvent, PaymentStatus};
use ordo_aggregates::show::SeatArea;
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_sagas::booking::{ticket_ids, BookingSettings, BOOKING_SAGA};
use ordo_sagas::port::{BookingSnapshot, PaymentSnapshot};
use ordo_sagas::{
    BookingPort, BookingSaga, ChargeRequest, PaymentPort, PaymentProvider, ProviderError, StepError,
};
use ordo_store::CommandMetadata;
use ordo_tests::TestDatabase;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

fn cny(minor: i64) -> Money {
    Money::new(minor, Currency::parse("CNY").unwrap()).unwrap()
}

fn booking_id() -> BookingId {
    BookingId::from(Uuid::from_u128(0xB0))
}

fn payment_id() -> PaymentId {
    PaymentId::from(Uuid::from_u128(0xFA))
}

fn session_id() -> SessionId {
    SessionId::from(Uuid::from_u128(0x5E))
}

fn area() -> AreaId {
    AreaId::parse("VIP").unwrap()
}

fn request() -> BookingRequest {
    BookingRequest {
        booking_id: booking_id(),
        customer_id: UserId::from(Uuid::from_u128(0xC0)),
        show_id: ShowId::from(Uuid::from_u128(0x50)),
        session_id: session_id(),
        area_id: area(),
        quantity: 2,
        unit_price: cny(2500),
        total: cny(5000),
    }
}

/// The write side as the saga sees it, and what it was told to do.
struct Given {
    booking: Mutex<BookingSnapshot>,
    payment: Mutex<PaymentSnapshot>,
    /// Seats neither reserved nor sold.
    seats_left: u32,
    /// Commands the aggregates refuse, by name.
    refusing: HashSet<&'static str>,
    /// Every command and provider call, in order.
    issued: Mutex<Vec<String>>,
}

impl Given {
    fn booking(status: BookingStatus) -> Self {
        Self {
            booking: Mutex::new(BookingSnapshot {
                status: Some(status),
                request: Some(request()),
                expires_at: None,
                reason: None,
                payment: None,
            }),
            payment: Mutex::new(PaymentSnapshot {
                status: Some(PaymentStatus::Created),
                order_id: Some(*booking_id().as_uuid()),
                amount: Some(cny(5000)),
                captured: None,
                refunded: None,
                method: "card".into(),
                sealed_token: "tok_success".into(),
            }),
            seats_left: 10,
            refusing: HashSet::new(),
            issued: Mutex::new(Vec::new()),
        }
    }

    fn with_payment(self, status: PaymentStatus) -> Self {
        self.booking.lock().unwrap().payment = Some(payment_id());
        {
            let mut payment = self.payment.lock().unwrap();
            payment.status = Some(status);
            if status.is_captured() {
                payment.captured = Some(cny(5000));
            }
        }
        self
    }

    fn seats_left(mut self, seats: u32) -> Self {
        self.seats_left = seats;
        self
    }

    fn refusing(mut self, command: &'static str) -> Self {
        self.refusing.insert(command);
        self
    }

    fn issue(&self, command: &'static str, detail: String) -> Result<(), StepError> {
        let line = if detail.is_empty() {
            command.to_string()
        } else {
            format!("{command} {detail}")
        };
        self.issued.lock().unwrap().push(line);
        if self.refusing.contains(command) {
            return Err(StepError::Refused {
                code: "invalid_transition".into(),
                detail: format!("{command} refused"),
            });
        }
        Ok(())
    }

    fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

#[async_trait]
impl PaymentPort for Given {
    async fn payment(&self, _: PaymentId) -> Result<PaymentSnapshot, StepError> {
        Ok(self.payment.lock().unwrap().clone())
    }

    async fn void_payment(
        &self,
        payment_id: PaymentId,
        _: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("void_payment", payment_id.to_string())
    }

    async fn refund_payment(
        &self,
        payment_id: PaymentId,
        _: RefundId,
        amount: Money,
        _: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("refund_payment", format!("{payment_id} {amount}"))
    }
}

#[async_trait]
impl BookingPort for Given {
    async fn reserve_seats(
        &self,
        seats: &Sku,
        _: BookingId,
        quantity: Quantity,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("reserve_seats", format!("{seats} {quantity}"))?;
        if quantity.get() > self.seats_left {
            return Err(StepError::Refused {
                code: "insufficient_stock".into(),
                detail: "too few seats".into(),
            });
        }
        Ok(())
    }

    async fn release_seats(
        &self,
        seats: &Sku,
        _: BookingId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("release_seats", seats.to_string())
    }

    async fn commit_seats(
        &self,
        seats: &Sku,
        _: BookingId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("commit_seats", seats.to_string())
    }

    async fn return_seats(
        &self,
        seats: &Sku,
        _: BookingId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("return_seats", seats.to_string())
    }

    async fn reserve_seats_for(
        &self,
        seats: &Sku,
        _: BookingId,
        quantity: Quantity,
        _: SeatHold,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("reserve_seats_for", format!("{seats} {quantity}"))
    }

    async fn record_held_booking(
        &self,
        _: &BookingRequest,
        _: u32,
        _: DateTime<Utc>,
        _: CommandMetadata,
    ) -> Result<bool, StepError> {
        self.issue("record_held_booking", String::new())?;
        Ok(true)
    }

    async fn request_booking(
        &self,
        _: &BookingRequest,
        _: u32,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("request_booking", String::new())
    }

    async fn attach_payment(
        &self,
        _: BookingId,
        payment_id: PaymentId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("attach_payment", payment_id.to_string())
    }

    async fn session_areas(
        &self,
        _: ShowId,
        _: SessionId,
    ) -> Result<Option<Vec<SeatArea>>, StepError> {
        Ok(None)
    }

    async fn hold_seats(
        &self,
        _: BookingId,
        _: DateTime<Utc>,
        _: CommandMetadata,
    ) -> Result<bool, StepError> {
        self.issue("hold_seats", String::new())?;
        let mut booking = self.booking.lock().unwrap();
        booking.status = Some(BookingStatus::PendingPayment);
        Ok(true)
    }

    async fn reject_booking(
        &self,
        _: BookingId,
        reason: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        self.issue("reject_booking", reason.to_string())?;
        let mut booking = self.booking.lock().unwrap();
        booking.status = Some(BookingStatus::Rejected);
        booking.reason = Some(reason.to_string());
        Ok(())
    }

    async fn mark_booking_paid(
        &self,
        _: BookingId,
        payment_id: PaymentId,
        tickets: Vec<TicketId>,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        assert_eq!(tickets, ticket_ids(booking_id(), 2), "one ticket per seat");
        self.issue("mark_booking_paid", payment_id.to_string())
    }

    async fn expire_booking(&self, _: BookingId, _: CommandMetadata) -> Result<(), StepError> {
        self.issue("expire_booking", String::new())
    }

    async fn complete_booking(&self, _: BookingId, _: CommandMetadata) -> Result<(), StepError> {
        self.issue("complete_booking", String::new())
    }

    async fn booking(&self, _: BookingId) -> Result<BookingSnapshot, StepError> {
        Ok(self.booking.lock().unwrap().clone())
    }

    async fn session_starts_at(
        &self,
        _: ShowId,
        _: SessionId,
    ) -> Result<Option<DateTime<Utc>>, StepError> {
        Ok(Some("2030-05-01T20:00:00Z".parse().unwrap()))
    }
}

/// The provider, recording what it is asked.
struct Provider(Arc<Given>);

#[async_trait]
impl PaymentProvider for Provider {
    async fn charge(&self, request: ChargeRequest) -> Result<(), ProviderError> {
        let _ = self.0.issue(
            "provider_charge",
            format!("{} {}", request.payment_id, request.amount),
        );
        Ok(())
    }

    async fn void(&self, payment_id: PaymentId) -> Result<(), ProviderError> {
        let _ = self.0.issue("provider_void", payment_id.to_string());
        Ok(())
    }

    async fn refund(
        &self,
        payment_id: PaymentId,
        _: RefundId,
        amount: Money,
    ) -> Result<(), ProviderError> {
        let _ = self
            .0
            .issue("provider_refund", format!("{payment_id} {amount}"));
        Ok(())
    }
}

/// A saga over `given`, with its own database.
struct World {
    _db: TestDatabase,
    pool: PgPool,
    given: Arc<Given>,
    saga: Arc<BookingSaga>,
    /// The booking's events handled so far.
    booking_events: AtomicI64,
}

impl World {
    async fn start(given: Given) -> Self {
        let db = TestDatabase::create().await.expect("database");
        let pool = db.pool().await.expect("pool");
        ordo_schemas::MIGRATOR.run(&pool).await.expect("migrations");
        let given = Arc::new(given);
        let saga = BookingSaga::new(
            pool.clone(),
            given.clone(),
            Arc::new(Provider(given.clone())),
            BookingSettings {
                booking_timeout: Duration::from_secs(900),
                callback_base_url: "http://127.0.0.1:1".into(),
                max_per_booking: 6,
            },
        );
        Self {
            _db: db,
            pool,
            given,
            saga,
            booking_events: AtomicI64::new(0),
        }
    }

    /// Given the saga row in `status` (with its deadline).
    async fn saga_in(self, status: &str, deadline: Option<DateTime<Utc>>) -> Self {
        sqlx::query(
            "INSERT INTO sagas (saga_id, saga_type, status, data, deadline)
             VALUES ($1, $2, $3, '{}', $4)",
        )
        .bind(booking_id().as_uuid())
        .bind(BOOKING_SAGA)
        .bind(status)
        .bind(deadline)
        .execute(&self.pool)
        .await
        .unwrap();
        self
    }

    /// When this booking event arrives (the booking's next).
    async fn when_booking(&self, event: BookingEvent) {
        let mut message = message("booking", &booking_id().to_string(), &event);
        message.sequence = self.booking_events.fetch_add(1, Ordering::SeqCst) + 1;
        self.saga
            .bookings()
            .handle(&message)
            .await
            .expect("handled");
    }

    /// When this payment event arrives.
    async fn when_payment(&self, event: PaymentEvent) {
        let message = message("payment", &payment_id().to_string(), &event);
        self.saga
            .payments()
            .handle(&message)
            .await
            .expect("handled");
    }

    /// Then exactly these commands were issued, in order.
    fn then_issued(&self, expected: &[&str]) {
        assert_eq!(self.given.issued(), expected);
    }

    /// Then the saga stands in `status`, with or without a deadline.
    async fn then_saga(&self, status: &str, has_deadline: bool) {
        let (found, deadline): (String, Option<DateTime<Utc>>) =
            sqlx::query_as("SELECT status, deadline FROM sagas WHERE saga_id = $1")
                .bind(booking_id().as_uuid())
                .fetch_one(&self.pool)
                .await
                .unwrap();
        assert_eq!((found.as_str(), deadline.is_some()), (status, has_deadline));
    }

    /// Then the step log reads `expected`.
    async fn then_logged(&self, expected: &[&str]) {
        let steps: Vec<(String,)> =
            sqlx::query_as("SELECT step FROM saga_steps WHERE saga_id = $1 ORDER BY step_no")
                .bind(booking_id().as_uuid())
                .fetch_all(&self.pool)
                .await
                .unwrap();
        let steps: Vec<&str> = steps.iter().map(|(s,)| s.as_str()).collect();
        assert_eq!(steps, expected);
    }
}

/// The message JetStream delivers for `event`, the first of its aggregate.
fn message<E: Serialize>(aggregate_type: &str, aggregate_id: &str, event: &E) -> ReceivedEvent {
    let tagged = serde_json::to_value(event).unwrap();
    let (event_type, payload) = tagged
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let event_version = if event_type == "PaymentRefunded" {
        "2"
    } else {
        "1"
    };
    ReceivedEvent {
        stream: format!("ORDO_{}", aggregate_type.to_uppercase()),
        stream_sequence: 1,
        subject: format!("ordo.events.{aggregate_type}.{aggregate_id}.{event_type}"),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence: 1,
        event_type,
        event_version: event_version.into(),
        event_id: Uuid::new_v4(),
        correlation_id: "correlation".into(),
        causation_id: "cause".into(),
        user_id: None,
        recorded_at: Utc::now(),
        payload,
        delivered: 1,
    }
}

fn seats() -> String {
    ordo_aggregates::show::seat_inventory_id(session_id(), &area()).to_string()
}

fn requested() -> BookingEvent {
    let r = request();
    BookingEvent::BookingRequested {
        booking_id: r.booking_id,
        customer_id: r.customer_id,
        show_id: r.show_id,
        session_id: r.session_id,
        area_id: r.area_id,
        quantity: r.quantity,
        unit_price: r.unit_price,
        total: r.total,
    }
}

#[tokio::test]
async fn a_booking_left_pending_has_its_seats_reserved_then_held() {
    let world = World::start(Given::booking(BookingStatus::Pending)).await;
    world.when_booking(requested()).await;
    world.then_issued(&[&format!("reserve_seats {} 2", seats()), "hold_seats"]);
    world.then_saga("reserving", false).await;
    world.then_logged(&["reserve_seats"]).await;
}

#[tokio::test]
async fn a_booking_the_gateway_decided_already_is_left_alone() {
    let world = World::start(Given::booking(BookingStatus::PendingPayment)).await;
    world.when_booking(requested()).await;
    world.then_issued(&[]);
    world.then_saga("reserving", false).await;
}

#[tokio::test]
async fn a_booking_of_more_seats_than_are_left_is_rejected_as_sold_out() {
    let world = World::start(Given::booking(BookingStatus::Pending).seats_left(1)).await;
    world.when_booking(requested()).await;
    world.then_issued(&[
        &format!("reserve_seats {} 2", seats()),
        "reject_booking sold_out",
    ]);
    world
        .when_booking(BookingEvent::BookingRejected {
            reason: "sold_out".into(),
        })
        .await;
    world.then_saga("rejected", false).await;
}

#[tokio::test]
async fn held_seats_wait_for_payment_until_their_deadline() {
    let world = World::start(Given::booking(BookingStatus::PendingPayment))
        .await
        .saga_in("reserving", None)
        .await;
    let expires_at = Utc::now() + chrono::Duration::minutes(15);
    world
        .when_booking(BookingEvent::SeatsHeld { expires_at })
        .await;
    world.then_issued(&[]);
    world.then_saga("awaiting_payment", true).await;
}

#[tokio::test]
async fn a_payment_created_is_attached_then_charged() {
    let world = World::start(Given::booking(BookingStatus::PendingPayment))
        .await
        .saga_in("awaiting_payment", None)
        .await;
    world.when_payment(created()).await;
    world.then_issued(&[
        &format!("attach_payment {}", payment_id()),
        &format!("provider_charge {} {}", payment_id(), cny(5000)),
    ]);
    world
        .then_logged(&["attach_payment", "charge_requested"])
        .await;
}

#[tokio::test]
async fn a_payment_the_booking_no_longer_takes_is_voided_and_never_charged() {
    let world = World::start(Given::booking(BookingStatus::Expired).refusing("attach_payment"))
        .await
        .saga_in("expired", None)
        .await;
    world.when_payment(created()).await;
    world.then_issued(&[
        &format!("attach_payment {}", payment_id()),
        &format!("void_payment {}", payment_id()),
    ]);
    world
        .then_logged(&["payment_not_wanted", "void_payment"])
        .await;
}

#[tokio::test]
async fn a_capture_marks_the_booking_paid_with_its_tickets() {
    let world = World::start(
        Given::booking(BookingStatus::PendingPayment).with_payment(PaymentStatus::Captured),
    )
    .await
    .saga_in("awaiting_payment", None)
    .await;
    world.when_payment(captured()).await;
    world.then_issued(&[&format!("mark_booking_paid {}", payment_id())]);
    world.then_logged(&["mark_paid"]).await;
}

#[tokio::test]
async fn a_capture_the_booking_no_longer_wants_is_refunded() {
    let world = World::start(
        Given::booking(BookingStatus::Cancelled)
            .with_payment(PaymentStatus::Captured)
            .refusing("mark_booking_paid"),
    )
    .await
    .saga_in("cancelled", None)
    .await;
    world.when_payment(captured()).await;
    world.then_issued(&[
        &format!("mark_booking_paid {}", payment_id()),
        &format!("refund_payment {} {}", payment_id(), cny(5000)),
    ]);
    world
        .then_logged(&["capture_not_wanted", "refund_payment"])
        .await;
}

#[tokio::test]
async fn a_failed_payment_keeps_the_seats_held() {
    let world = World::start(
        Given::booking(BookingStatus::PendingPayment).with_payment(PaymentStatus::Failed),
    )
    .await
    .saga_in(
        "awaiting_payment",
        Some(Utc::now() + chrono::Duration::minutes(10)),
    )
    .await;
    world
        .when_payment(PaymentEvent::PaymentFailed {
            reason: "declined".into(),
        })
        .await;
    world.then_issued(&[]);
    world.then_logged(&["payment_failed"]).await;
    world.then_saga("awaiting_payment", true).await;
}

#[tokio::test]
async fn a_paid_booking_commits_its_seats_and_completes_a_week_after_its_session() {
    let world =
        World::start(Given::booking(BookingStatus::Paid).with_payment(PaymentStatus::Captured))
            .await
            .saga_in("awaiting_payment", None)
            .await;
    world
        .when_booking(BookingEvent::BookingPaid {
            payment_id: payment_id(),
            tickets: ticket_ids(booking_id(), 2),
        })
        .await;
    world.then_issued(&[&format!("commit_seats {}", seats())]);
    world.then_saga("paid", true).await;
}

#[tokio::test]
async fn a_cancelled_booking_releases_its_seats_and_voids_its_payment() {
    let world =
        World::start(Given::booking(BookingStatus::Cancelled).with_payment(PaymentStatus::Created))
            .await
            .saga_in("awaiting_payment", None)
            .await;
    world
        .when_booking(BookingEvent::BookingCancelled {
            reason: "changed my mind".into(),
        })
        .await;
    world.then_issued(&[
        &format!("release_seats {}", seats()),
        &format!("void_payment {}", payment_id()),
    ]);
    world.then_saga("cancelled", false).await;
}

#[tokio::test]
async fn a_cancelled_booking_already_charged_is_refunded() {
    let world = World::start(
        Given::booking(BookingStatus::Cancelled).with_payment(PaymentStatus::Captured),
    )
    .await
    .saga_in("awaiting_payment", None)
    .await;
    world
        .when_booking(BookingEvent::BookingCancelled {
            reason: "changed my mind".into(),
        })
        .await;
    world.then_issued(&[
        &format!("release_seats {}", seats()),
        &format!("refund_payment {} {}", payment_id(), cny(5000)),
    ]);
}

#[tokio::test]
async fn an_expired_booking_releases_its_seats_and_lets_its_payment_run() {
    let world =
        World::start(Given::booking(BookingStatus::Expired).with_payment(PaymentStatus::Created))
            .await
            .saga_in("awaiting_payment", None)
            .await;
    world.when_booking(BookingEvent::BookingExpired {}).await;
    world.then_issued(&[&format!("release_seats {}", seats())]);
    world.then_saga("expired", false).await;
}

#[tokio::test]
async fn a_refunded_booking_refunds_its_payment_and_returns_its_seats() {
    let world =
        World::start(Given::booking(BookingStatus::Refunded).with_payment(PaymentStatus::Captured))
            .await
            .saga_in("paid", None)
            .await;
    world
        .when_booking(BookingEvent::BookingRefunded {
            reason: "postponed".into(),
        })
        .await;
    world.then_issued(&[
        &format!("refund_payment {} {}", payment_id(), cny(5000)),
        &format!("return_seats {}", seats()),
    ]);
    world.then_saga("refunded", false).await;
}

#[tokio::test]
async fn a_completed_booking_closes_its_saga() {
    let world = World::start(Given::booking(BookingStatus::Completed))
        .await
        .saga_in("paid", None)
        .await;
    world.when_booking(BookingEvent::BookingCompleted {}).await;
    world.then_issued(&[]);
    world.then_saga("completed", false).await;
}

#[tokio::test]
async fn voids_and_refunds_of_a_payment_are_told_to_the_provider() {
    let world =
        World::start(Given::booking(BookingStatus::Cancelled).with_payment(PaymentStatus::Voided))
            .await
            .saga_in("cancelled", None)
            .await;
    world
        .when_payment(PaymentEvent::PaymentVoided {
            reason: "booking cancelled".into(),
        })
        .await;
    world.then_issued(&[&format!("provider_void {}", payment_id())]);

    let world =
        World::start(Given::booking(BookingStatus::Refunded).with_payment(PaymentStatus::Refunded))
            .await
            .saga_in("refunded", None)
            .await;
    world
        .when_payment(PaymentEvent::PaymentRefunded {
            refund_id: RefundId::from(Uuid::from_u128(0xEF)),
            amount: cny(5000),
            total_refunded: cny(5000),
            reason: "booking refunded".into(),
        })
        .await;
    world.then_issued(&[&format!("provider_refund {} {}", payment_id(), cny(5000))]);
}

#[tokio::test]
async fn an_unpaid_booking_past_its_deadline_is_expired_and_a_paid_one_completed() {
    let world = World::start(Given::booking(BookingStatus::PendingPayment))
        .await
        .saga_in(
            "awaiting_payment",
            Some(Utc::now() - chrono::Duration::seconds(1)),
        )
        .await;
    assert_eq!(world.saga.run_overdue().await.unwrap(), 1);
    world.then_issued(&["expire_booking"]);
    world.then_saga("awaiting_payment", false).await;

    let world = World::start(Given::booking(BookingStatus::Paid))
        .await
        .saga_in("paid", Some(Utc::now() - chrono::Duration::seconds(1)))
        .await;
    assert_eq!(world.saga.run_overdue().await.unwrap(), 1);
    world.then_issued(&["complete_booking"]);
}

#[tokio::test]
async fn an_event_delivered_again_issues_nothing_again() {
    let world = World::start(Given::booking(BookingStatus::Pending)).await;
    let message = message("booking", &booking_id().to_string(), &requested());
    world.saga.bookings().handle(&message).await.unwrap();
    world.saga.bookings().handle(&message).await.unwrap();
    world.then_issued(&[&format!("reserve_seats {} 2", seats()), "hold_seats"]);
    world.then_logged(&["reserve_seats"]).await;
}

fn created() -> PaymentEvent {
    PaymentEvent::PaymentCreated {
        payment_id: payment_id(),
        order_id: *booking_id().as_uuid(),
        customer_id: UserId::from(Uuid::from_u128(0xC0)),
        amount: cny(5000),
        method: "card".into(),
        sealed_token: "tok_success".into(),
    }
}

fn captured() -> PaymentEvent {
    PaymentEvent::PaymentCaptured {
        provider_ref: "sandbox-1".into(),
        amount: cny(5000),
    }
}

/// When a capture the event store does not back arrives, the saga refuses it for good.
async fn when_payment_refused(world: &World, event: PaymentEvent) -> String {
    let message = message("payment", &payment_id().to_string(), &event);
    match world.saga.payments().handle(&message).await {
        Err(HandlerError::Permanent(err)) => err.to_string(),
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_capture_the_event_store_does_not_hold_pays_nothing() {
    // A forged `PaymentCaptured`: the payment aggregate was never captured.
    let world = World::start(
        Given::booking(BookingStatus::PendingPayment).with_payment(PaymentStatus::Created),
    )
    .await
    .saga_in("awaiting_payment", None)
    .await;
    let why = when_payment_refused(&world, captured()).await;
    assert!(why.contains("not captured"), "{why}");
    world.then_issued(&[]);
    world.then_saga("awaiting_payment", false).await;
}

#[tokio::test]
async fn a_capture_of_another_amount_than_the_bookings_total_pays_nothing() {
    let given = Given::booking(BookingStatus::PendingPayment).with_payment(PaymentStatus::Captured);
    {
        let mut payment = given.payment.lock().unwrap();
        payment.amount = Some(cny(100));
        payment.captured = Some(cny(100));
    }
    let world = World::start(given)
        .await
        .saga_in("awaiting_payment", None)
        .await;
    let why = when_payment_refused(&world, captured()).await;
    assert!(why.contains("totals"), "{why}");
    world.then_issued(&[]);
}
