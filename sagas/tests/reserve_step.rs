//! The reserve step of the booking saga on an in-memory seat inventory and booking, through
//! a `BookingPort` kept in memory: seats held once however often the step runs, a booking
//! for more seats than are left rejected as sold out, and seats reserved for a booking
//! cancelled meanwhile given back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordo_aggregates::booking::BookingStatus;
use ordo_aggregates::common::{
    AreaId, BookingId, Money, PaymentId, Quantity, RefundId, SessionId, ShowId, Sku, TicketId,
};
use ordo_sagas::booking::{BookingSettings, Decision, SOLD_OUT};
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

    async fn booking(&self, _: BookingId) -> Result<BookingSnapshot, StepError> {
        let seats = self.seats();
        Ok(BookingSnapshot {
            status: Some(seats.status),
            request: None,
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

    async fn check_seats(&self, _: &Sku, _: Quantity, _: CommandMetadata) -> Result<(), StepError> {
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

    async fn seat_area(
        &self,
        _: ShowId,
        _: SessionId,
        _: &AreaId,
    ) -> Result<Option<ordo_aggregates::show::SeatArea>, StepError> {
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
