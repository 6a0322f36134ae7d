//! The reserve step of the booking saga on an in-memory seat inventory and booking, through
//! a `BookingPort` kept in memory: seats held once however often the step runs, a booking
//! for more seats than are left rejected as sold out, and seats reserved for a booking
//! cancelled meanwhile given back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordo_aggregates::booking::{BookingRequest, BookingStatus};
use ordo_aggregates::common::{
    AreaId, BookingId, Money, PaymentId, Quantity, RefundId, SessionId, ShowId, Sku, TicketId,
};
use ordo_aggregates::inventory::SeatHold;
use ordo_sagas::booking::{Booked, BookingSettings, Decision, SOLD_OUT};
use ordo_sagas::port::{BookingSnapshot, PaymentSnapshot};
use ordo_sagas::{
    BookingPort, BookingSaga, ChargeRequest, PaymentPort, PaymentProvider, ProviderError, StepError,
};
use ordo_store::CommandMetadata;
use uuid::Uuid;

/// One seat area's inventory and one booking, in memory.
struct SeatsInMemory {
    state: Mutex<Seats>,
}

struct Seats {
    /// Seats neither reserved nor sold.
    available: u32,
    /// Seats reserved per booking, and whether they were given back.
    reservations: HashMap<BookingId, (u32, bool)>,
    /// The booking's status, its deadline and the reason it was closed.
    status: BookingStatus,
    expires_at: Option<DateTime<Utc>>,
    reason: Option<String>,
    /// Cancels the booking as soon as its seats are reserved, as its fan might meanwhile.
    cancel_once_reserved: bool,
    /// The bookings recorded held, by id.
    booked: HashMap<BookingId, BookingRequest>,
}

impl SeatsInMemory {
    fn new(available: u32) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(Seats {
                available,
                reservations: HashMap::new(),
                status: BookingStatus::Pending,
                expires_at: None,
                reason: None,
                cancel_once_reserved: false,
                booked: HashMap::new(),
            }),
        })
    }

    fn seats(&self) -> std::sync::MutexGuard<'_, Seats> {
        self.state.lock().unwrap()
    }
}

fn refused(code: &str) -> StepError {
    StepError::Refused {
        code: code.into(),
        detail: code.into(),
    }
}

fn not_in_the_reserve_step() -> StepError {
    StepError::Failed(anyhow::anyhow!("not a command of the reserve step"))
}

#[async_trait]
impl PaymentPort for SeatsInMemory {
    async fn payment(&self, _: PaymentId) -> Result<PaymentSnapshot, StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn void_payment(
        &self,
        _: PaymentId,
        _: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn refund_payment(
        &self,
        _: PaymentId,
        _: RefundId,
        _: Money,
        _: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        Err(not_in_the_reserve_step())
    }
}

#[async_trait]
impl BookingPort for SeatsInMemory {
    async fn reserve_seats(
        &self,
        _: &Sku,
        booking_id: BookingId,
        quantity: Quantity,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        let mut seats = self.seats();
        let quantity = quantity.get();
        match seats.reservations.get(&booking_id) {
            Some((_, true)) => return Err(refused("reservation_closed")),
            Some(_) => return Ok(()),
            None if quantity > seats.available => return Err(refused("insufficient_stock")),
            None => {}
        }
        seats.available -= quantity;
        seats.reservations.insert(booking_id, (quantity, false));
        if seats.cancel_once_reserved {
            seats.status = BookingStatus::Cancelled;
        }
        Ok(())
    }

    async fn release_seats(
        &self,
        _: &Sku,
        booking_id: BookingId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        let mut seats = self.seats();
        if let Some((quantity, false)) = seats.reservations.get(&booking_id).copied() {
            seats.available += quantity;
            seats.reservations.insert(booking_id, (quantity, true));
        }
        Ok(())
    }

    async fn commit_seats(
        &self,
        _: &Sku,
        _: BookingId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn return_seats(
        &self,
        _: &Sku,
        _: BookingId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn hold_seats(
        &self,
        _: BookingId,
        expires_at: DateTime<Utc>,
        _: CommandMetadata,
    ) -> Result<bool, StepError> {
        let mut seats = self.seats();
        match seats.status {
            BookingStatus::Pending => {
                seats.status = BookingStatus::PendingPayment;
                seats.expires_at = Some(expires_at);
                Ok(true)
            }
            BookingStatus::PendingPayment => Ok(false),
            _ => Err(refused("invalid_transition")),
        }
    }

    async fn reject_booking(
        &self,
        _: BookingId,
        reason: &str,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        let mut seats = self.seats();
        match seats.status {
            BookingStatus::Pending => {
                seats.status = BookingStatus::Rejected;
                seats.reason = Some(reason.to_string());
                Ok(())
            }
            BookingStatus::Rejected => Ok(()),
            _ => Err(refused("invalid_transition")),
        }
    }

    async fn mark_booking_paid(
        &self,
        _: BookingId,
        _: PaymentId,
        _: Vec<TicketId>,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn expire_booking(&self, _: BookingId, _: CommandMetadata) -> Result<(), StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn complete_booking(&self, _: BookingId, _: CommandMetadata) -> Result<(), StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn booking(&self, booking_id: BookingId) -> Result<BookingSnapshot, StepError> {
        let seats = self.seats();
        Ok(BookingSnapshot {
            status: Some(seats.status),
            request: seats.booked.get(&booking_id).cloned(),
            expires_at: seats.expires_at,
            reason: seats.reason.clone(),
            payment: None,
        })
    }

    async fn session_starts_at(
        &self,
        _: ShowId,
        _: SessionId,
    ) -> Result<Option<DateTime<Utc>>, StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn reserve_seats_for(
        &self,
        item: &Sku,
        booking_id: BookingId,
        quantity: Quantity,
        _: SeatHold,
        metadata: CommandMetadata,
    ) -> Result<(), StepError> {
        self.reserve_seats(item, booking_id, quantity, metadata)
            .await
    }

    async fn record_held_booking(
        &self,
        request: &BookingRequest,
        _: u32,
        expires_at: DateTime<Utc>,
        _: CommandMetadata,
    ) -> Result<bool, StepError> {
        let mut seats = self.seats();
        match seats.booked.get(&request.booking_id) {
            Some(existing) if existing != request => Err(refused("booking_exists")),
            Some(_) => Ok(false),
            None => {
                seats.booked.insert(request.booking_id, request.clone());
                seats.status = BookingStatus::PendingPayment;
                seats.expires_at = Some(expires_at);
                Ok(true)
            }
        }
    }

    async fn request_booking(
        &self,
        _: &BookingRequest,
        _: u32,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn attach_payment(
        &self,
        _: BookingId,
        _: PaymentId,
        _: CommandMetadata,
    ) -> Result<(), StepError> {
        Err(not_in_the_reserve_step())
    }

    async fn session_areas(
        &self,
        _: ShowId,
        _: SessionId,
    ) -> Result<Option<Vec<ordo_aggregates::show::SeatArea>>, StepError> {
        Err(not_in_the_reserve_step())
    }
}

/// The reserve step charges nobody.
struct NoProvider;

#[async_trait]
impl PaymentProvider for NoProvider {
    async fn charge(&self, _: ChargeRequest) -> Result<(), ProviderError> {
        Err(ProviderError::Refused("not in the reserve step".into()))
    }

    async fn void(&self, _: PaymentId) -> Result<(), ProviderError> {
        Err(ProviderError::Refused("not in the reserve step".into()))
    }

    async fn refund(&self, _: PaymentId, _: RefundId, _: Money) -> Result<(), ProviderError> {
        Err(ProviderError::Refused("not in the reserve step".into()))
    }
}

fn saga(seats: &Arc<SeatsInMemory>) -> Arc<BookingSaga> {
    // The reserve step keeps no saga state: the pool is never connected.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://unused@127.0.0.1:1/unused")
        .unwrap();
    BookingSaga::new(
        pool,
        seats.clone(),
        Arc::new(NoProvider),
        BookingSettings {
            booking_timeout: Duration::from_secs(900),
            callback_base_url: "http://127.0.0.1:1".into(),
            max_per_booking: 6,
        },
    )
}

async fn reserve(saga: &BookingSaga, quantity: u32) -> Decision {
    saga.reserve_seats(
        BookingId::from(Uuid::from_u128(1)),
        SessionId::from(Uuid::from_u128(2)),
        &AreaId::parse("vip-a").unwrap(),
        quantity,
        "correlation",
        "cause",
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_seats_are_held_once_however_often_the_step_runs() {
    let seats = SeatsInMemory::new(10);
    let saga = saga(&seats);
    let first = reserve(&saga, 2).await;
    assert_eq!(first.status, BookingStatus::PendingPayment);
    assert!(first.expires_at.is_some());
    // The saga repeating the step the gateway ran answers what the booking says.
    let again = reserve(&saga, 2).await;
    assert_eq!(again, first);
    assert_eq!(seats.seats().available, 8);
}

#[tokio::test]
async fn a_booking_for_more_seats_than_are_left_is_rejected_as_sold_out() {
    let seats = SeatsInMemory::new(1);
    let decision = reserve(&saga(&seats), 2).await;
    assert_eq!(decision.status, BookingStatus::Rejected);
    assert_eq!(decision.reason.as_deref(), Some(SOLD_OUT));
    assert_eq!(seats.seats().available, 1);
    assert!(seats.seats().reservations.is_empty());
}

#[tokio::test]
async fn seats_reserved_for_a_booking_cancelled_meanwhile_go_back_for_good() {
    let seats = SeatsInMemory::new(10);
    seats.seats().cancel_once_reserved = true;
    let saga = saga(&seats);
    assert_eq!(reserve(&saga, 2).await.status, BookingStatus::Cancelled);
    assert_eq!(seats.seats().available, 10);
    // Repeated, the step does not take them again.
    assert_eq!(reserve(&saga, 2).await.status, BookingStatus::Cancelled);
    assert_eq!(seats.seats().available, 10);
}

fn request(n: u128, quantity: u32) -> BookingRequest {
    BookingRequest::new(
        BookingId::from(Uuid::from_u128(100 + n)),
        Uuid::from_u128(3).into(),
        Uuid::from_u128(4).into(),
        SessionId::from(Uuid::from_u128(2)),
        AreaId::parse("vip-a").unwrap(),
        quantity,
        Money::new(
            1280,
            ordo_aggregates::common::Currency::parse("CNY").unwrap(),
        )
        .unwrap(),
        6,
    )
    .unwrap()
}

#[tokio::test]
async fn a_flash_sale_books_exactly_the_seats_and_records_nothing_for_the_others() {
    let seats = SeatsInMemory::new(3);
    let saga = saga(&seats);
    let (mut held, mut sold_out) = (0, 0);
    for n in 0..10 {
        match saga
            .book(&request(n, 1), CommandMetadata::from_request("flash", None))
            .await
            .unwrap()
        {
            Booked::Decided(decision) => {
                assert_eq!(decision.status, BookingStatus::PendingPayment);
                assert!(decision.expires_at.is_some());
                held += 1;
            }
            Booked::SoldOut => sold_out += 1,
            other => panic!("booking {n}: {other:?}"),
        }
    }
    assert_eq!((held, sold_out), (3, 7));
    assert_eq!(seats.seats().available, 0);
    assert_eq!(seats.seats().reservations.len(), 3);
    assert_eq!(
        seats.seats().booked.len(),
        3,
        "only the winners are recorded"
    );
    // A winner asking again is answered its booking, and takes no seat again.
    let again = saga
        .book(&request(0, 1), CommandMetadata::from_request("again", None))
        .await
        .unwrap();
    assert!(
        matches!(&again, Booked::Decided(d) if d.status == BookingStatus::PendingPayment),
        "{again:?}"
    );
    assert_eq!(seats.seats().reservations.len(), 3);
    // The same id with other content is refused, and records nothing.
    let changed = saga
        .book(
            &request(0, 2),
            CommandMetadata::from_request("changed", None),
        )
        .await
        .unwrap();
    assert!(
        matches!(changed, Booked::AlreadyRequested(_)),
        "{changed:?}"
    );
    assert_eq!(seats.seats().booked.len(), 3);
}
