//! The booking saga, one instance per booking of seats (its id is the booking id):
//!
//! ```text
//! (request)        -> price the seats from the Show aggregate, then reserve them on the
//!                     area's inventory item, the reservation carrying the booking (one
//!                     step on the area's single writer): none left -> sold out, nothing
//!                     recorded; reserved -> record the booking requested and held until
//!                     the payment deadline (BookingRequested + SeatsHeld, one command)
//! StockReserved    -> (of a booking, on the inventory stream) record that booking held,
//!                     if a crash cut the request short after its reservation
//! BookingRequested -> (a booking recorded pending, because its reservation could not be
//!                     made at once) reserve the seats -> hold them (SeatsHeld); none
//!                     left -> reject (sold_out)
//! SeatsHeld        -> remember the deadline
//! PaymentCreated   -> attach the payment to the booking, then ask the provider to charge;
//!                     booking no longer payable -> void the payment, never charged
//! PaymentCaptured  -> mark the booking paid with one ticket per seat
//!                     booking no longer payable -> refund the capture
//! BookingPaid      -> commit the seats; the booking completes 7 days after its session
//! BookingCancelled -> release the seats, void (or refund) the attached payment
//! deadline passed  -> expire the booking; BookingExpired -> release the seats
//! BookingRefunded  -> refund the payment, return the seats to sale
//! PaymentVoided / PaymentRefunded -> tell the provider
//! ```
//!
//! The HTTP gateway prices a booking with [`BookingSaga::quote`] from the Show aggregate
//! (write-side state: the session's show from [`crate::show_state`], the price from the
//! Show itself, never from a read model) and books it with [`BookingSaga::book`]: the seat
//! area's single writer decides the buyer in one step, the reservation, however many buyers
//! race (a batch of reservations is one append; a sold-out batch writes nothing), and only
//! a buyer who got seats records a booking. The reservation's event carries the booking, so
//! a crash between the two loses nothing: the saga, reading the inventory stream, records
//! the booking held from it (a no-op when the gateway did), and its payment deadline
//! releases the seats as for any booking. Paying is one command as well, the
//! payment's `Create`: the saga attaches it and charges it. The booking aggregate
//! arbitrates every race (paying, cancelling, expiring are transitions of one booking) and
//! the inventory item guarantees that no more seats are held or sold than the area has.
//!
//! Every message is decoded once by the contracts of its stream (`ordo_contracts::booking`,
//! `ordo_contracts::payment`) and matched on the typed event.
//!
//! The saga issues its commands through a [`BookingPort`]; the gateway gives it
//! [`crate::StorePort`], the command buses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordo_aggregates::booking::{BookingEvent, BookingRequest, BookingStatus};
use ordo_aggregates::common::{
    AreaId, BookingId, Money, PaymentId, Quantity, RefundId, SessionId, ShowId, TicketId,
};
use ordo_aggregates::inventory::{InventoryEvent, SeatHold};
use ordo_aggregates::payment::PaymentEvent;
pub use ordo_aggregates::show::seat_inventory_id;
use ordo_aggregates::show::SeatArea;
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use ordo_store::CommandMetadata;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::crash_points::crash_after;
use crate::deadlines::step_id;
use crate::handling::{
    begin_claimed, finish, log_step, provider_failure, retry, step_failure, tell_provider_refund,
    tell_provider_void,
};
use crate::port::{BookingPort, BookingSnapshot, StepError};
use crate::provider::{ChargeRequest, PaymentProvider};
use crate::repository;
use crate::show_state::SessionShows;

/// Durable consumer name of the booking saga on the booking stream.
pub const BOOKING_CONSUMER: &str = "saga-booking";
/// Durable consumer name of the booking saga on the payment stream.
pub const BOOKING_PAYMENTS_CONSUMER: &str = "saga-booking-payments";
/// Durable consumer name of the booking saga on the inventory stream (the reservations
/// that decided a booking).
pub const BOOKING_SEATS_CONSUMER: &str = "saga-booking-seats";
/// The saga type stored in `sagas.saga_type`.
pub const BOOKING_SAGA: &str = "booking";
/// A paid booking completes this long after its session starts.
pub const COMPLETE_AFTER: chrono::Duration = chrono::Duration::days(7);
/// Why a booking is rejected when its area has too few seats left.
pub const SOLD_OUT: &str = "sold_out";
/// The refusals of a reservation that mean the booking cannot have its seats: too few are
/// left, or its reservation was given back already.
const SEATS_UNAVAILABLE: [&str; 2] = ["insufficient_stock", "reservation_closed"];
/// How long a session's seat areas and prices, read from the Show aggregate, are served
/// from memory: in a flash sale the Show is loaded once per this time, not once per fan,
/// and fans arriving together while it loads wait for that one load. A changed price
/// applies to bookings requested this long after the change at the latest.
const PRICE_TTL: Duration = Duration::from_secs(2);

/// Settings of the booking saga.
#[derive(Debug, Clone)]
pub struct BookingSettings {
    /// How long held seats wait for payment.
    pub booking_timeout: Duration,
    /// Base URL the payment provider calls back (`http://127.0.0.1:8080`).
    pub callback_base_url: String,
    /// Most seats one booking may take.
    pub max_per_booking: u32,
}

/// The id of the `index`-th ticket (from 0) of a booking: deterministic, so marking a
/// booking paid again after a crash issues the same tickets.
pub fn ticket_id(booking_id: BookingId, index: u32) -> TicketId {
    TicketId::from(Uuid::new_v5(
        booking_id.as_uuid(),
        format!("ticket:{index}").as_bytes(),
    ))
}

/// The tickets of a booking of `quantity` seats.
pub fn ticket_ids(booking_id: BookingId, quantity: u32) -> Vec<TicketId> {
    (0..quantity).map(|i| ticket_id(booking_id, i)).collect()
}

/// Where the reserve step left a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The booking's status after the step.
    pub status: BookingStatus,
    /// The payment deadline, when seats are held.
    pub expires_at: Option<DateTime<Utc>>,
    /// Why it was rejected, if it was.
    pub reason: Option<String>,
}

/// What [`BookingSaga::book`] made of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Booked {
    /// Decided on the write side: its seats held until the deadline or, for a request
    /// repeated with the same id, the booking as it stands.
    Decided(Decision),
    /// Too few seats are left: nothing was recorded.
    SoldOut,
    /// A booking with this id was requested before with other content.
    AlreadyRequested(String),
    /// Recorded pending: the reservation could not be made now, and the saga makes it
    /// from `BookingRequested`.
    Pending,
}

/// A booking priced: the show of its session and the price of one seat, from the Show
/// aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The show the session belongs to.
    pub show_id: ShowId,
    /// The price of one seat of the area.
    pub unit_price: Money,
}

/// Why a booking could not be priced.
#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    /// No show has that session, or the session has no such area.
    #[error("no seat area {area_id} in session {session_id}")]
    UnknownSeatArea {
        /// The session asked for.
        session_id: SessionId,
        /// The area asked for.
        area_id: AreaId,
    },
    /// The store could not be read.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Runs bookings. Feed it the booking stream through [`BookingSaga::bookings`] and the
/// payment stream through [`BookingSaga::payments`]; run [`BookingSaga::run_deadlines`].
pub struct BookingSaga {
    pool: PgPool,
    port: Arc<dyn BookingPort>,
    provider: Arc<dyn PaymentProvider>,
    settings: BookingSettings,
    sessions: SessionShows,
    prices: Mutex<HashMap<SessionId, Arc<PricedSession>>>,
    /// One gate per session being priced, so that one load serves everyone waiting.
    pricing: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
}

/// A session's seat areas read from its Show, with when they were read.
struct PricedSession {
    read_at: Instant,
    show_id: ShowId,
    areas: HashMap<AreaId, SeatArea>,
}

impl PricedSession {
    fn area(&self, area_id: &AreaId) -> Option<(ShowId, SeatArea)> {
        self.areas
            .get(area_id)
            .map(|area| (self.show_id, area.clone()))
    }
}

#[derive(Clone, Copy)]
enum Feed {
    Bookings,
    Payments,
    Seats,
}

/// One of the saga's two event handlers.
pub struct BookingHandler {
    saga: Arc<BookingSaga>,
    feed: Feed,
}

impl BookingSaga {
    /// A saga issuing commands through `port`, charging through `provider`, keeping its
    /// state in `pool`.
    pub fn new(
        pool: PgPool,
        port: Arc<dyn BookingPort>,
        provider: Arc<dyn PaymentProvider>,
        settings: BookingSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            sessions: SessionShows::new(pool.clone()),
            pool,
            port,
            provider,
            settings,
            prices: Mutex::new(HashMap::new()),
            pricing: Mutex::new(HashMap::new()),
        })
    }

    /// Prices a booking of seats of an area from write-side state: the session's show
    /// ([`crate::show_state`]) and the area's price in the Show aggregate. Whether seats
    /// are left is for the reservation to decide ([`BookingSaga::book`]).
    pub async fn quote(
        &self,
        session_id: SessionId,
        area_id: &AreaId,
    ) -> Result<Quote, QuoteError> {
        let unknown = || QuoteError::UnknownSeatArea {
            session_id,
            area_id: area_id.clone(),
        };
        let (show_id, area) = self
            .seat_area(session_id, area_id)
            .await?
            .ok_or_else(unknown)?;
        Ok(Quote {
            show_id,
            unit_price: area.price,
        })
    }

    /// Books the seats of `request` in one step on the seat area's single writer: the
    /// reservation, keyed by the booking id, carries the booking (buyer, price, payment
    /// deadline). Reserved, the booking is recorded requested and held; refused, nothing
    /// is recorded and the buyer is told it is sold out. Only when the reservation cannot
    /// be made now (the store failing) is the booking recorded pending, for the saga to
    /// reserve from its event. Repeating a request with the same booking id answers the
    /// booking as it stands.
    pub async fn book(
        &self,
        request: &BookingRequest,
        metadata: CommandMetadata,
    ) -> Result<Booked, StepError> {
        let booking_id = request.booking_id;
        let saga_id = *booking_id.as_uuid();
        let step = |name: &str| CommandMetadata {
            command_id: step_id(saga_id, name).to_string(),
            ..metadata.clone()
        };
        let quantity = Quantity::parse(i64::from(request.quantity))
            .map_err(|e| StepError::Failed(anyhow::anyhow!("{e}")))?;
        let expires_at = self.deadline();
        let hold = SeatHold {
            customer_id: request.customer_id,
            show_id: request.show_id,
            session_id: request.session_id,
            area_id: request.area_id.clone(),
            unit_price: request.unit_price.clone(),
            expires_at,
        };
        let seats = seat_inventory_id(request.session_id, &request.area_id);
        match self
            .port
            .reserve_seats_for(&seats, booking_id, quantity, hold, step("reserve_seats"))
            .await
        {
            Ok(()) => {}
            // No seat left, and none reserved under this id: sold out, whatever a request
            // repeated with this id recorded before (rejected, or pending and about to be).
            Err(StepError::Refused { code, .. }) if code == "insufficient_stock" => {
                return Ok(Booked::SoldOut)
            }
            Err(StepError::Refused { code, detail }) => {
                // A repeated request finds its booking; a new one was never recorded.
                let booking = self.port.booking(booking_id).await?;
                return Ok(match booking.request {
                    Some(existing) if existing != *request => Booked::AlreadyRequested(format!(
                        "booking {booking_id} was requested with other content"
                    )),
                    Some(_) => Booked::Decided(self.decision(booking_id).await?),
                    None if SEATS_UNAVAILABLE.contains(&code.as_str()) => Booked::SoldOut,
                    None => Booked::AlreadyRequested(detail),
                });
            }
            Err(StepError::Failed(err)) => {
                tracing::warn!(error = %err, %booking_id, "reserving seats failed; the booking is recorded pending for the saga to reserve");
                self.port
                    .request_booking(request, self.settings.max_per_booking, step("request"))
                    .await?;
                crash_after(BOOKING_SAGA, "requested");
                return Ok(Booked::Pending);
            }
        }
        // The seats are reserved for the booking and it is not recorded yet: from here on
        // the reservation's event completes it.
        crash_after(BOOKING_SAGA, "seats_reserved");
        match self
            .port
            .record_held_booking(
                request,
                self.settings.max_per_booking,
                expires_at,
                step("request_held"),
            )
            .await
        {
            Ok(true) => Ok(Booked::Decided(Decision {
                status: BookingStatus::PendingPayment,
                expires_at: Some(expires_at),
                reason: None,
            })),
            // Recorded before (a repeated request, or the saga was first): as it stands.
            Ok(false) => Ok(Booked::Decided(self.decision(booking_id).await?)),
            Err(StepError::Refused { detail, .. }) => Ok(Booked::AlreadyRequested(detail)),
            Err(err) => Err(err),
        }
    }

    /// The payment deadline of seats held now.
    fn deadline(&self) -> DateTime<Utc> {
        Utc::now()
            + chrono::Duration::from_std(self.settings.booking_timeout)
                .unwrap_or(chrono::Duration::minutes(15))
    }

    /// A reservation of seats that decided a booking: records the booking held from it.
    /// The gateway normally did already (then this changes nothing); after a crash between
    /// the two, this is what records it, with the reservation's own deadline.
    async fn on_seat_event(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let decoded = ordo_contracts::inventory(event)?;
        let InventoryEvent::StockReserved {
            reservation_id,
            quantity,
            booking: Some(hold),
        } = decoded.event
        else {
            return Ok(());
        };
        let booking_id = BookingId::from(*reservation_id.as_uuid());
        // The seats are taken already: the limit per booking was checked when they were.
        let request = BookingRequest::new(
            booking_id,
            hold.customer_id,
            hold.show_id,
            hold.session_id,
            hold.area_id,
            quantity,
            hold.unit_price,
            quantity,
        )
        .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("booking {booking_id}: {e}")))?;
        let metadata = Self::metadata(event, *booking_id.as_uuid(), "request_held");
        match self
            .port
            .record_held_booking(&request, quantity, hold.expires_at, metadata)
            .await
        {
            Ok(recorded) => {
                if recorded {
                    crash_after(BOOKING_SAGA, "held_booking_recorded");
                }
                Ok(())
            }
            // Another booking has this id: the seats wait for an operator.
            Err(StepError::Refused { detail, .. }) => {
                Err(HandlerError::Permanent(anyhow::anyhow!(
                    "the seats reserved for booking {booking_id} cannot be booked: {detail}"
                )))
            }
            Err(StepError::Failed(err)) => Err(HandlerError::Retry(err)),
        }
    }

    /// The show of a session and the seat area as the Show aggregate has it, served from
    /// memory for [`PRICE_TTL`]; concurrent misses of one session share one load.
    async fn seat_area(
        &self,
        session_id: SessionId,
        area_id: &AreaId,
    ) -> anyhow::Result<Option<(ShowId, SeatArea)>> {
        if let Some(priced) = self.priced(session_id) {
            return Ok(priced.area(area_id));
        }
        let gate = self
            .pricing
            .lock()
            .expect("pricing")
            .entry(session_id)
            .or_default()
            .clone();
        let _loading = gate.lock().await;
        // Whoever held the gate before may have loaded it meanwhile.
        if let Some(priced) = self.priced(session_id) {
            return Ok(priced.area(area_id));
        }
        let Some(show_id) = self.sessions.show_of(session_id).await? else {
            return Ok(None);
        };
        let Some(areas) = self
            .port
            .session_areas(show_id, session_id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        else {
            return Ok(None);
        };
        let priced = Arc::new(PricedSession {
            read_at: Instant::now(),
            show_id,
            areas: areas
                .into_iter()
                .map(|area| (area.area_id.clone(), area))
                .collect(),
        });
        {
            let mut prices = self.prices.lock().expect("prices");
            if prices.len() > 10_000 {
                prices.retain(|_, priced| priced.read_at.elapsed() < PRICE_TTL);
            }
            prices.insert(session_id, priced.clone());
        }
        self.pricing.lock().expect("pricing").remove(&session_id);
        Ok(priced.area(area_id))
    }

    /// The session's areas, when read less than [`PRICE_TTL`] ago.
    fn priced(&self, session_id: SessionId) -> Option<Arc<PricedSession>> {
        self.prices
            .lock()
            .expect("prices")
            .get(&session_id)
            .filter(|priced| priced.read_at.elapsed() < PRICE_TTL)
            .cloned()
    }

    /// The handler for the booking stream.
    pub fn bookings(self: &Arc<Self>) -> BookingHandler {
        BookingHandler {
            saga: self.clone(),
            feed: Feed::Bookings,
        }
    }

    /// The handler for the payment stream.
    pub fn payments(self: &Arc<Self>) -> BookingHandler {
        BookingHandler {
            saga: self.clone(),
            feed: Feed::Payments,
        }
    }

    /// The handler for the inventory stream.
    pub fn seats(self: &Arc<Self>) -> BookingHandler {
        BookingHandler {
            saga: self.clone(),
            feed: Feed::Seats,
        }
    }

    /// The reserve step: holds `quantity` seats of the area for the booking, then marks it
    /// pending payment, or rejects it as sold out. Idempotent: the reservation is keyed by
    /// the booking id and every booking transition repeated is a no-op, so the gateway and
    /// the saga may both run it.
    pub async fn reserve_seats(
        &self,
        booking_id: BookingId,
        session_id: SessionId,
        area_id: &AreaId,
        quantity: u32,
        correlation_id: &str,
        causation_id: &str,
    ) -> Result<Decision, StepError> {
        let saga_id = *booking_id.as_uuid();
        let metadata = |step: &str| {
            CommandMetadata::caused_by(
                correlation_id,
                causation_id,
                step_id(saga_id, step).to_string(),
            )
        };
        let quantity = Quantity::parse(i64::from(quantity))
            .map_err(|e| StepError::Failed(anyhow::anyhow!("{e}")))?;
        let seats = seat_inventory_id(session_id, area_id);
        match self
            .port
            .reserve_seats(&seats, booking_id, quantity, metadata("reserve_seats"))
            .await
        {
            Ok(()) => {
                // The seats are reserved and the booking does not hold them yet.
                crash_after(BOOKING_SAGA, "seats_reserved");
                let expires_at = self.deadline();
                match self
                    .port
                    .hold_seats(booking_id, expires_at, metadata("hold_seats"))
                    .await
                {
                    Ok(true) => Ok(Decision {
                        status: BookingStatus::PendingPayment,
                        expires_at: Some(expires_at),
                        reason: None,
                    }),
                    // Held before (a repeated step): answer what the booking says.
                    Ok(false) => self.decision(booking_id).await,
                    Err(StepError::Refused { .. }) => {
                        // The booking was decided otherwise meanwhile (cancelled, rejected):
                        // the seats just reserved go back.
                        self.port
                            .release_seats(&seats, booking_id, metadata("release_seats"))
                            .await?;
                        self.decision(booking_id).await
                    }
                    Err(err) => Err(err),
                }
            }
            Err(StepError::Refused { code, .. }) if SEATS_UNAVAILABLE.contains(&code.as_str()) => {
                match self
                    .port
                    .reject_booking(booking_id, SOLD_OUT, metadata("reject"))
                    .await
                {
                    Ok(()) | Err(StepError::Refused { .. }) => self.decision(booking_id).await,
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// The booking's status as the write side knows it.
    pub async fn decision(&self, booking_id: BookingId) -> Result<Decision, StepError> {
        let booking = self.port.booking(booking_id).await?;
        Ok(Decision {
            status: booking.status.unwrap_or(BookingStatus::Pending),
            expires_at: booking.expires_at,
            reason: booking.reason,
        })
    }

    async fn load(&self, booking_id: BookingId) -> Result<BookingSnapshot, HandlerError> {
        self.port.booking(booking_id).await.map_err(step_failure)
    }

    /// What the booking requested; a booking not found yet is retried.
    async fn request(&self, booking_id: BookingId) -> Result<BookingRequest, HandlerError> {
        self.load(booking_id)
            .await?
            .request
            .ok_or_else(|| retry(anyhow::anyhow!("booking {booking_id} not found")))
    }

    /// Expires every booking whose payment deadline has passed and completes every paid
    /// booking whose session is a week over. Returns how many bookings it moved. Safe to
    /// run from several processes at once: both transitions are idempotent.
    pub async fn run_overdue(&self) -> anyhow::Result<usize> {
        let overdue = crate::repository::overdue(
            &self.pool,
            BOOKING_SAGA,
            &["awaiting_payment", "paid"],
            500,
        )
        .await?;
        let mut moved = 0;
        for (saga_id, status) in overdue {
            let booking_id = BookingId::from(saga_id);
            let step = if status == "paid" {
                "complete"
            } else {
                "expire"
            };
            let metadata = CommandMetadata::caused_by(
                &saga_id.to_string(),
                &format!("deadline:{saga_id}"),
                step_id(saga_id, step).to_string(),
            );
            let moved_on = if status == "paid" {
                self.port.complete_booking(booking_id, metadata).await
            } else {
                self.port.expire_booking(booking_id, metadata).await
            };
            match moved_on {
                Ok(()) => {
                    moved += 1;
                    crash_after(BOOKING_SAGA, step);
                }
                // Paid, cancelled or refunded in the meantime: nothing to do.
                Err(StepError::Refused { .. }) => {}
                Err(StepError::Failed(err)) => return Err(err),
            }
            // The deadline is handled; the resulting event drives what follows.
            crate::repository::clear_deadline(&self.pool, saga_id, &status).await?;
        }
        Ok(moved)
    }

    /// Runs [`BookingSaga::run_overdue`] every `every` until shutdown.
    pub async fn run_deadlines(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        crate::deadlines::run_every(every, shutdown, "handling overdue bookings", || {
            self.run_overdue()
        })
        .await;
    }

    fn metadata(event: &ReceivedEvent, saga_id: Uuid, step: &str) -> CommandMetadata {
        crate::deadlines::step_metadata(event, saga_id, step)
    }

    async fn on_booking_event(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let decoded = ordo_contracts::booking(event)?;
        let booking_id = decoded.id;
        let saga_id = *booking_id.as_uuid();
        match decoded.event {
            BookingEvent::BookingRequested {
                customer_id,
                show_id,
                session_id,
                area_id,
                quantity,
                ..
            } => {
                let data = serde_json::json!({
                    "customer_id": customer_id,
                    "show_id": show_id,
                    "session_id": session_id,
                    "area_id": area_id,
                    "quantity": quantity,
                });
                // Started outside the step's transaction: even if the step keeps failing,
                // the saga exists, shows its error and can be marked stuck and resumed.
                repository::start(
                    &mut *self.pool.acquire().await.map_err(retry)?,
                    saga_id,
                    BOOKING_SAGA,
                    "reserving",
                    &data,
                )
                .await
                .map_err(retry)?;
                // A booking is normally recorded held; only one recorded pending (its
                // reservation could not be made at once) still needs the step.
                if self.load(booking_id).await?.status == Some(BookingStatus::Pending) {
                    let decision = self
                        .reserve_seats(
                            booking_id,
                            session_id,
                            &area_id,
                            quantity,
                            &event.correlation_id,
                            &event.event_id.to_string(),
                        )
                        .await
                        .map_err(step_failure)?;
                    log(
                        conn,
                        saga_id,
                        "reserve_seats",
                        Some(decision.status.to_string()),
                    )
                    .await?;
                }
            }
            BookingEvent::SeatsHeld { expires_at } => {
                repository::set_status(conn, saga_id, "awaiting_payment", Some(expires_at))
                    .await
                    .map_err(retry)?;
            }
            BookingEvent::BookingRejected { .. } => {
                repository::set_status(conn, saga_id, "rejected", None)
                    .await
                    .map_err(retry)?;
            }
            BookingEvent::BookingCancelled { .. } => {
                self.release(conn, event, booking_id, "cancelled").await?;
            }
            BookingEvent::BookingExpired {} => {
                self.release(conn, event, booking_id, "expired").await?;
            }
            BookingEvent::BookingPaid { .. } => {
                let request = self.request(booking_id).await?;
                self.port
                    .commit_seats(
                        &seat_inventory_id(request.session_id, &request.area_id),
                        booking_id,
                        Self::metadata(event, saga_id, "commit_seats"),
                    )
                    .await
                    .map_err(step_failure)?;
                log(conn, saga_id, "commit_seats", None).await?;
                let completes_at = self
                    .port
                    .session_starts_at(request.show_id, request.session_id)
                    .await
                    .map_err(step_failure)?
                    .map(|starts_at| starts_at + COMPLETE_AFTER);
                repository::set_status(conn, saga_id, "paid", completes_at)
                    .await
                    .map_err(retry)?;
            }
            BookingEvent::BookingRefunded { .. } => {
                let booking = self.load(booking_id).await?;
                let request = booking
                    .request
                    .as_ref()
                    .ok_or_else(|| retry(anyhow::anyhow!("booking {booking_id} not found")))?;
                if let Some(payment_id) = booking.payment {
                    self.refund(conn, event, saga_id, payment_id, "booking refunded")
                        .await?;
                }
                self.port
                    .return_seats(
                        &seat_inventory_id(request.session_id, &request.area_id),
                        booking_id,
                        Self::metadata(event, saga_id, "return_seats"),
                    )
                    .await
                    .map_err(step_failure)?;
                log(conn, saga_id, "return_seats", None).await?;
                repository::set_status(conn, saga_id, "refunded", None)
                    .await
                    .map_err(retry)?;
            }
            BookingEvent::BookingCompleted {} => {
                repository::set_status(conn, saga_id, "completed", None)
                    .await
                    .map_err(retry)?;
            }
            // A refund request waits for an admin; its approval is `BookingRefunded`.
            BookingEvent::BookingRefundRequested { .. }
            | BookingEvent::BookingRefundRequestWithdrawn {}
            | BookingEvent::BookingRefundRequestRejected { .. } => {}
            // Attaching a payment is the saga's own step (on PaymentCreated); a ticket
            // checked in changes nothing it drives.
            BookingEvent::PaymentAttached { .. } | BookingEvent::TicketCheckedIn { .. } => {}
        }
        Ok(())
    }

    /// A booking cancelled or expired (`status`): its seats go back to sale. A cancelled
    /// booking stops its payment. An expired one does not: the fan may still complete it
    /// at the provider, and a late capture is refunded.
    async fn release(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        booking_id: BookingId,
        status: &str,
    ) -> Result<(), HandlerError> {
        let saga_id = *booking_id.as_uuid();
        let booking = self.load(booking_id).await?;
        let request = booking
            .request
            .as_ref()
            .ok_or_else(|| retry(anyhow::anyhow!("booking {booking_id} not found")))?;
        self.port
            .release_seats(
                &seat_inventory_id(request.session_id, &request.area_id),
                booking_id,
                Self::metadata(event, saga_id, "release_seats"),
            )
            .await
            .map_err(step_failure)?;
        log(conn, saga_id, "release_seats", None).await?;
        if status == "cancelled" {
            if let Some(payment_id) = booking.payment {
                self.settle_unwanted_payment(conn, event, saga_id, payment_id, status)
                    .await?;
            }
        }
        repository::set_status(conn, saga_id, status, None)
            .await
            .map_err(retry)
    }

    /// Refunds the whole captured amount of a payment (one deterministic refund id).
    async fn refund(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        saga_id: Uuid,
        payment_id: PaymentId,
        why: &str,
    ) -> Result<(), HandlerError> {
        let payment = self.port.payment(payment_id).await.map_err(step_failure)?;
        if !payment.status.is_some_and(|s| s.is_captured()) {
            return Ok(());
        }
        // What is left: an earlier attempt of this step, or a refund by hand, may have
        // returned some or all of it already. A refusal now is a real problem (retried,
        // then the saga is stuck for an operator), never swallowed.
        if let Some(amount) = payment.refundable() {
            let refund_id = RefundId::from(step_id(*payment_id.as_uuid(), "refund:booking"));
            self.port
                .refund_payment(
                    payment_id,
                    refund_id,
                    amount,
                    why,
                    Self::metadata(event, saga_id, &format!("refund_payment:{payment_id}")),
                )
                .await
                .map_err(step_failure)?;
        }
        log(
            conn,
            saga_id,
            "refund_payment",
            Some(format!("{payment_id}: {why}")),
        )
        .await
    }

    /// A payment the booking no longer wants: void it if it was not captured, refund it if
    /// it was.
    async fn settle_unwanted_payment(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
        saga_id: Uuid,
        payment_id: PaymentId,
        why: &str,
    ) -> Result<(), HandlerError> {
        let payment = self.port.payment(payment_id).await.map_err(step_failure)?;
        match payment.status {
            Some(status) if status.is_captured() => {
                self.refund(conn, event, saga_id, payment_id, &format!("booking {why}"))
                    .await
            }
            Some(_) => {
                match self
                    .port
                    .void_payment(
                        payment_id,
                        &format!("booking {why}"),
                        Self::metadata(event, saga_id, &format!("void_payment:{payment_id}")),
                    )
                    .await
                {
                    // Already failed or voided: nothing to stop.
                    Ok(()) | Err(StepError::Refused { .. }) => {}
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
                log(conn, saga_id, "void_payment", Some(payment_id.to_string())).await
            }
            None => Ok(()),
        }
    }

    async fn on_payment_event(
        &self,
        conn: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let decoded = ordo_contracts::payment(event)?;
        let payment_id = decoded.id;
        let payment = self.port.payment(payment_id).await.map_err(step_failure)?;
        let Some(saga_id) = payment.order_id else {
            return Err(retry(anyhow::anyhow!("payment {payment_id} not found")));
        };
        // Payments of orders share the stream: only a booking's payments are ours.
        let booking_id = BookingId::from(saga_id);
        let booking = self.load(booking_id).await?;
        let Some(request) = booking.request.as_ref() else {
            return Ok(());
        };
        match decoded.event {
            PaymentEvent::PaymentCreated { amount, .. } => {
                // Attach first: the provider charges only a payment the booking knows.
                match self
                    .port
                    .attach_payment(
                        booking_id,
                        payment_id,
                        Self::metadata(event, saga_id, &format!("attach_payment:{payment_id}")),
                    )
                    .await
                {
                    Ok(()) => {
                        log(
                            conn,
                            saga_id,
                            "attach_payment",
                            Some(payment_id.to_string()),
                        )
                        .await?
                    }
                    Err(StepError::Refused { detail, .. }) => {
                        // Expired, cancelled or paid meanwhile: this payment is never
                        // charged, and is voided.
                        log(conn, saga_id, "payment_not_wanted", Some(detail)).await?;
                        let why = booking
                            .status
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_else(|| "gone".into());
                        return self
                            .settle_unwanted_payment(conn, event, saga_id, payment_id, &why)
                            .await;
                    }
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
                let request = ChargeRequest {
                    payment_id,
                    amount,
                    method: payment.method.clone(),
                    sealed_token: payment.sealed_token.clone(),
                    callback_url: format!(
                        "{}/api/v1/payments/{payment_id}/callbacks",
                        self.settings.callback_base_url.trim_end_matches('/')
                    ),
                };
                self.provider
                    .charge(request)
                    .await
                    .map_err(provider_failure)?;
                log(
                    conn,
                    saga_id,
                    "charge_requested",
                    Some(payment_id.to_string()),
                )
                .await?;
            }
            PaymentEvent::PaymentCaptured { .. } => {
                // Only a capture the event store backs, in full and for the booking's
                // total, pays the booking: anything else is dead-lettered, never acted on.
                payment
                    .backs_capture_of("booking", *booking_id.as_uuid(), Some(&request.total))
                    .map_err(|why| {
                        HandlerError::Permanent(anyhow::anyhow!(
                            "PaymentCaptured for payment {payment_id} not acted on: {why}"
                        ))
                    })?;
                let tickets = ticket_ids(booking_id, request.quantity);
                match self
                    .port
                    .mark_booking_paid(
                        booking_id,
                        payment_id,
                        tickets,
                        Self::metadata(event, saga_id, &format!("mark_paid:{payment_id}")),
                    )
                    .await
                {
                    Ok(()) => log(conn, saga_id, "mark_paid", Some(payment_id.to_string())).await?,
                    Err(StepError::Refused { detail, .. }) => {
                        // Cancelled or expired before this capture (or paid by another
                        // payment): the money goes back.
                        log(conn, saga_id, "capture_not_wanted", Some(detail)).await?;
                        let why = booking
                            .status
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_else(|| "gone".into());
                        self.settle_unwanted_payment(conn, event, saga_id, payment_id, &why)
                            .await?;
                    }
                    Err(StepError::Failed(err)) => return Err(HandlerError::Retry(err)),
                }
            }
            PaymentEvent::PaymentFailed { .. } => {
                // The seats stay held until the deadline: the fan may pay again.
                log(
                    conn,
                    saga_id,
                    "payment_failed",
                    Some(payment_id.to_string()),
                )
                .await?;
            }
            PaymentEvent::PaymentVoided { .. } => {
                tell_provider_void(
                    self.provider.as_ref(),
                    conn,
                    BOOKING_SAGA,
                    saga_id,
                    payment_id,
                )
                .await?;
            }
            PaymentEvent::PaymentRefunded {
                refund_id, amount, ..
            } => {
                tell_provider_refund(
                    self.provider.as_ref(),
                    conn,
                    BOOKING_SAGA,
                    saga_id,
                    payment_id,
                    refund_id,
                    amount,
                )
                .await?;
            }
            // The provider's authorization changes nothing until the capture.
            PaymentEvent::PaymentAuthorized { .. } => {}
        }
        Ok(())
    }
}

#[async_trait]
impl EventHandler for BookingHandler {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let saga = &self.saga;
        let (consumer, payments) = match self.feed {
            Feed::Bookings => (BOOKING_CONSUMER, false),
            Feed::Payments => (BOOKING_PAYMENTS_CONSUMER, true),
            // Recording a booking held is a no-op once done, and reservations of different
            // bookings need no order among them: nothing to claim.
            Feed::Seats => return saga.on_seat_event(event).await,
        };
        let Some(mut tx) = begin_claimed(&saga.pool, consumer, event).await? else {
            return Ok(());
        };
        let outcome = if payments {
            saga.on_payment_event(&mut tx, event).await
        } else {
            saga.on_booking_event(&mut tx, event).await
        };
        finish(&saga.pool, tx, outcome, event, saga_of(event)).await
    }

    async fn on_dead_letter(&self, event: &ReceivedEvent, error: &str) {
        if let Some(saga_id) = saga_of(event) {
            let _ = repository::mark_stuck(
                &self.saga.pool,
                saga_id,
                &format!("{}: {error}", event.event_type),
            )
            .await;
        }
    }
}

async fn log(
    conn: &mut PgConnection,
    saga_id: Uuid,
    step: &str,
    detail: Option<String>,
) -> Result<(), HandlerError> {
    log_step(conn, BOOKING_SAGA, saga_id, step, detail).await
}

/// The booking saga an event of a booking belongs to (its id is the booking's).
fn saga_of(event: &ReceivedEvent) -> Option<Uuid> {
    (event.aggregate_type == "booking")
        .then(|| event.aggregate_id.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_inventory_ids_are_valid_skus_and_distinct_per_area() {
        let session = SessionId::from(Uuid::from_u128(7));
        let upper = seat_inventory_id(session, &AreaId::parse("VIP-A").unwrap());
        let lower = seat_inventory_id(session, &AreaId::parse("vip-a").unwrap());
        let long = seat_inventory_id(session, &AreaId::parse(&"A".repeat(64)).unwrap());
        assert!(upper.as_str().ends_with("-VIP-A"));
        assert_ne!(upper, lower);
        assert!(long.as_str().len() <= 64);
        assert!(!upper.as_str().contains('.'));
    }

    #[test]
    fn ticket_ids_are_deterministic_and_distinct() {
        let booking = BookingId::from(Uuid::from_u128(9));
        assert_eq!(ticket_ids(booking, 3), ticket_ids(booking, 3));
        assert_ne!(ticket_id(booking, 0), ticket_id(booking, 1));
    }
}
