//! The life of a booking of seats in one area of a show session: requested, seats held
//! until a payment deadline (or rejected when sold out), paid with tickets issued, then
//! checked in ticket by ticket and completed, or cancelled, expired or refunded.
//! Repeating a transition that already happened is a no-op, so the booking saga may
//! retry any step safely.
//!
//! A booking is normally recorded once its area's reservation has decided it
//! ([`BookingCommand::RequestHeld`]: requested and held in one step); one whose reservation
//! could not be made at once is recorded pending ([`BookingCommand::Request`]) and held or
//! rejected later.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    AreaId, BookingId, DomainError, ErrorKind, Money, PaymentId, SessionId, ShowId, TicketId,
    UserId,
};

/// Where a booking stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Requested; seats are being reserved.
    Pending,
    /// Seats are held until a deadline; waiting for payment.
    PendingPayment,
    /// Paid; tickets are issued.
    Paid,
    /// The session is over; the booking is closed.
    Completed,
    /// Refused, typically because the area is sold out.
    Rejected,
    /// Cancelled before payment.
    Cancelled,
    /// Not paid before the deadline.
    Expired,
    /// Paid, then refunded; its tickets are no longer valid.
    Refunded,
}

impl BookingStatus {
    /// The snake_case name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            BookingStatus::Pending => "pending",
            BookingStatus::PendingPayment => "pending_payment",
            BookingStatus::Paid => "paid",
            BookingStatus::Completed => "completed",
            BookingStatus::Rejected => "rejected",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Expired => "expired",
            BookingStatus::Refunded => "refunded",
        }
    }
}

impl std::fmt::Display for BookingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Commands accepted by a [`Booking`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BookingCommand {
    /// Requests seats.
    Request {
        /// The booking's id (also the aggregate id).
        booking_id: BookingId,
        /// Who books.
        customer_id: UserId,
        /// The show.
        show_id: ShowId,
        /// The session.
        session_id: SessionId,
        /// The seat area.
        area_id: AreaId,
        /// Number of seats, 1 to `max_per_booking`.
        quantity: u32,
        /// Price of one seat.
        unit_price: Money,
        /// Most seats one booking may take.
        max_per_booking: u32,
    },
    /// Requests seats that the area's reservation has already taken for this booking,
    /// held until `expires_at`: records the request and the hold together. Repeated with
    /// the same request it changes nothing (a booking recorded pending is held).
    RequestHeld {
        /// The booking's id (also the aggregate id and the reservation's id).
        booking_id: BookingId,
        /// Who books.
        customer_id: UserId,
        /// The show.
        show_id: ShowId,
        /// The session.
        session_id: SessionId,
        /// The seat area.
        area_id: AreaId,
        /// Number of seats, 1 to `max_per_booking`.
        quantity: u32,
        /// Price of one seat.
        unit_price: Money,
        /// Most seats one booking may take.
        max_per_booking: u32,
        /// Payment deadline.
        expires_at: DateTime<Utc>,
    },
    /// The seats are reserved and held until `expires_at`.
    HoldSeats {
        /// Payment deadline.
        expires_at: DateTime<Utc>,
    },
    /// The booking cannot be served.
    Reject {
        /// Why, e.g. "sold_out".
        reason: String,
    },
    /// The customer starts paying with this payment.
    AttachPayment {
        /// The payment started.
        payment_id: PaymentId,
    },
    /// The attached payment was captured; tickets are issued.
    MarkPaid {
        /// The captured payment.
        payment_id: PaymentId,
        /// One ticket per seat.
        tickets: Vec<TicketId>,
    },
    /// The booking is cancelled before payment.
    Cancel {
        /// Why.
        reason: String,
    },
    /// The booking was not paid before its deadline.
    Expire,
    /// The paid booking was refunded.
    Refund {
        /// Why.
        reason: String,
    },
    /// The session is over; the booking is closed.
    Complete,
    /// The owner asks for a refund of the paid booking; an admin approves it (with
    /// [`BookingCommand::Refund`]) or rejects it.
    RequestRefund {
        /// Why, in the owner's words.
        reason: String,
    },
    /// The owner takes back an open refund request.
    WithdrawRefundRequest,
    /// An admin grants the open refund request: the booking is refunded (as with
    /// [`BookingCommand::Refund`]), refused when no request is open.
    ApproveRefundRequest,
    /// An admin refuses the open refund request; the booking stays paid.
    RejectRefundRequest {
        /// Why.
        reason: String,
    },
    /// A ticket is scanned at the entrance.
    CheckIn {
        /// The ticket scanned.
        ticket_id: TicketId,
    },
}

/// Events of a [`Booking`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BookingEvent {
    /// Seats were requested.
    BookingRequested {
        /// The booking's id.
        booking_id: BookingId,
        /// Who books.
        customer_id: UserId,
        /// The show.
        show_id: ShowId,
        /// The session.
        session_id: SessionId,
        /// The seat area.
        area_id: AreaId,
        /// Number of seats.
        quantity: u32,
        /// Price of one seat.
        unit_price: Money,
        /// Quantity times unit price.
        total: Money,
    },
    /// Seats are held until the payment deadline.
    SeatsHeld {
        /// Payment deadline.
        expires_at: DateTime<Utc>,
    },
    /// The booking was refused.
    BookingRejected {
        /// Why.
        reason: String,
    },
    /// A payment was started for the booking.
    PaymentAttached {
        /// The payment started.
        payment_id: PaymentId,
    },
    /// The booking was paid and its tickets issued.
    BookingPaid {
        /// The captured payment.
        payment_id: PaymentId,
        /// One ticket per seat.
        tickets: Vec<TicketId>,
    },
    /// The booking was cancelled.
    BookingCancelled {
        /// Why.
        reason: String,
    },
    /// The booking was not paid in time.
    BookingExpired {},
    /// The booking was refunded.
    BookingRefunded {
        /// Why.
        reason: String,
    },
    /// The booking is closed.
    BookingCompleted {},
    /// The owner asked for a refund.
    BookingRefundRequested {
        /// Why, in the owner's words.
        reason: String,
    },
    /// The owner withdrew the refund request.
    BookingRefundRequestWithdrawn {},
    /// An admin rejected the refund request.
    BookingRefundRequestRejected {
        /// Why.
        reason: String,
    },
    /// A ticket was checked in.
    TicketCheckedIn {
        /// The ticket.
        ticket_id: TicketId,
    },
}

impl DomainEvent for BookingEvent {
    fn event_type(&self) -> String {
        match self {
            BookingEvent::BookingRequested { .. } => "BookingRequested",
            BookingEvent::SeatsHeld { .. } => "SeatsHeld",
            BookingEvent::BookingRejected { .. } => "BookingRejected",
            BookingEvent::PaymentAttached { .. } => "PaymentAttached",
            BookingEvent::BookingPaid { .. } => "BookingPaid",
            BookingEvent::BookingCancelled { .. } => "BookingCancelled",
            BookingEvent::BookingExpired {} => "BookingExpired",
            BookingEvent::BookingRefunded { .. } => "BookingRefunded",
            BookingEvent::BookingCompleted {} => "BookingCompleted",
            BookingEvent::BookingRefundRequested { .. } => "BookingRefundRequested",
            BookingEvent::BookingRefundRequestWithdrawn {} => "BookingRefundRequestWithdrawn",
            BookingEvent::BookingRefundRequestRejected { .. } => "BookingRefundRequestRejected",
            BookingEvent::TicketCheckedIn { .. } => "TicketCheckedIn",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`BookingCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    /// A booking needs at least one seat.
    #[error("a booking needs at least one seat")]
    InvalidQuantity,
    /// More seats than one booking may take.
    #[error("{requested} seats requested, at most {max} per booking")]
    TooManyTickets {
        /// Seats requested.
        requested: u32,
        /// Most seats per booking.
        max: u32,
    },
    /// The total is too large to be represented.
    #[error("booking total is too large")]
    AmountOverflow,
    /// The booking was already requested with other content.
    #[error("booking already requested")]
    AlreadyRequested,
    /// The booking's status does not allow the action.
    #[error("cannot {action} a booking that is {from}")]
    InvalidTransition {
        /// Status of the booking.
        from: BookingStatus,
        /// What was attempted.
        action: &'static str,
    },
    /// The payment named is not the one attached to the booking.
    #[error("payment {got} is not the payment of this booking")]
    PaymentMismatch {
        /// The payment attached, if any.
        expected: Option<PaymentId>,
        /// The payment named by the command.
        got: PaymentId,
    },
    /// The number of tickets differs from the number of seats.
    #[error("{got} tickets issued for {expected} seats")]
    TicketCountMismatch {
        /// Seats booked.
        expected: u32,
        /// Tickets given.
        got: usize,
    },
    /// The same ticket id was given twice.
    #[error("ticket {ticket_id} given twice")]
    DuplicateTicket {
        /// The repeated ticket.
        ticket_id: TicketId,
    },
    /// The ticket does not belong to this booking.
    #[error("ticket {ticket_id} does not belong to this booking")]
    UnknownTicket {
        /// The ticket.
        ticket_id: TicketId,
    },
    /// The ticket was already checked in.
    #[error("ticket {ticket_id} already checked in")]
    AlreadyCheckedIn {
        /// The ticket.
        ticket_id: TicketId,
    },
    /// The booking is not paid (or was refunded), so its tickets do not admit anyone.
    #[error("ticket {ticket_id} is not valid: the booking is {status}")]
    TicketNotValid {
        /// The ticket.
        ticket_id: TicketId,
        /// Status of the booking.
        status: BookingStatus,
    },
    /// A refund request is already open with another reason.
    #[error("a refund of this booking is already requested")]
    RefundAlreadyRequested,
    /// An admin already rejected a refund request of this booking.
    #[error("a refund of this booking was requested and rejected")]
    RefundRequestRejected,
    /// A ticket of the booking was used, so it is no longer refunded on request.
    #[error("a ticket of this booking was checked in")]
    TicketsUsed,
    /// No refund request is open.
    #[error("no refund of this booking is requested")]
    NoRefundRequest,
    /// The booking was never requested.
    #[error("booking not found")]
    BookingNotFound,
}

impl BookingError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            BookingError::InvalidQuantity => "invalid_quantity",
            BookingError::TooManyTickets { .. } => "too_many_tickets",
            BookingError::AmountOverflow => "amount_overflow",
            BookingError::AlreadyRequested => "booking_exists",
            BookingError::InvalidTransition { .. } => "invalid_transition",
            BookingError::PaymentMismatch { .. } => "payment_mismatch",
            BookingError::TicketCountMismatch { .. } => "ticket_count_mismatch",
            BookingError::DuplicateTicket { .. } => "duplicate_ticket",
            BookingError::UnknownTicket { .. } => "unknown_ticket",
            BookingError::AlreadyCheckedIn { .. } => "already_checked_in",
            BookingError::TicketNotValid { .. } => "ticket_not_valid",
            BookingError::RefundAlreadyRequested => "refund_already_requested",
            BookingError::RefundRequestRejected => "refund_request_rejected",
            BookingError::TicketsUsed => "tickets_checked_in",
            BookingError::NoRefundRequest => "no_refund_request",
            BookingError::BookingNotFound => "booking_not_found",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BookingError::InvalidQuantity
            | BookingError::TooManyTickets { .. }
            | BookingError::AmountOverflow
            | BookingError::TicketCountMismatch { .. }
            | BookingError::DuplicateTicket { .. } => ErrorKind::Invalid,
            BookingError::AlreadyRequested
            | BookingError::InvalidTransition { .. }
            | BookingError::PaymentMismatch { .. }
            | BookingError::UnknownTicket { .. }
            | BookingError::AlreadyCheckedIn { .. }
            | BookingError::TicketNotValid { .. }
            | BookingError::RefundAlreadyRequested
            | BookingError::RefundRequestRejected
            | BookingError::TicketsUsed
            | BookingError::NoRefundRequest => ErrorKind::Refused,
            BookingError::BookingNotFound => ErrorKind::NotFound,
        }
    }
}

impl DomainError for BookingError {
    fn code(&self) -> &'static str {
        BookingError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        BookingError::kind(self)
    }
}

/// What was requested, fixed at request time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingRequest {
    /// The booking's id.
    pub booking_id: BookingId,
    /// Who books.
    pub customer_id: UserId,
    /// The show.
    pub show_id: ShowId,
    /// The session.
    pub session_id: SessionId,
    /// The seat area.
    pub area_id: AreaId,
    /// Number of seats.
    pub quantity: u32,
    /// Price of one seat.
    pub unit_price: Money,
    /// Quantity times unit price.
    pub total: Money,
}

/// A booking of seats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Booking {
    request: Option<BookingRequest>,
    status: Option<BookingStatus>,
    expires_at: Option<DateTime<Utc>>,
    attached_payment: Option<PaymentId>,
    tickets: Vec<TicketId>,
    checked_in: BTreeSet<TicketId>,
    reason: Option<String>,
    #[serde(default)]
    refund_request: Option<RefundRequest>,
}

/// Where the owner's refund request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundRequestStatus {
    /// Waiting for an admin.
    Requested,
    /// Taken back by the owner (a new one may be made).
    Withdrawn,
    /// Refused by an admin (final).
    Rejected,
    /// Approved: the booking was refunded.
    Approved,
}

impl RefundRequestStatus {
    /// The snake_case name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            RefundRequestStatus::Requested => "requested",
            RefundRequestStatus::Withdrawn => "withdrawn",
            RefundRequestStatus::Rejected => "rejected",
            RefundRequestStatus::Approved => "approved",
        }
    }
}

/// The owner's latest refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// Why, in the owner's words.
    pub reason: String,
    /// Where it stands.
    pub status: RefundRequestStatus,
    /// Why an admin rejected it.
    pub rejection_reason: Option<String>,
}

impl BookingRequest {
    /// A request checked against the booking's rules: 1 to `max_per_booking` seats, a
    /// total that can be represented.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        booking_id: BookingId,
        customer_id: UserId,
        show_id: ShowId,
        session_id: SessionId,
        area_id: AreaId,
        quantity: u32,
        unit_price: Money,
        max_per_booking: u32,
    ) -> Result<Self, BookingError> {
        if quantity == 0 {
            return Err(BookingError::InvalidQuantity);
        }
        if quantity > max_per_booking {
            return Err(BookingError::TooManyTickets {
                requested: quantity,
                max: max_per_booking,
            });
        }
        let total = unit_price
            .checked_mul(quantity)
            .ok_or(BookingError::AmountOverflow)?;
        Ok(Self {
            booking_id,
            customer_id,
            show_id,
            session_id,
            area_id,
            quantity,
            unit_price,
            total,
        })
    }

    fn requested(&self) -> BookingEvent {
        BookingEvent::BookingRequested {
            booking_id: self.booking_id,
            customer_id: self.customer_id,
            show_id: self.show_id,
            session_id: self.session_id,
            area_id: self.area_id.clone(),
            quantity: self.quantity,
            unit_price: self.unit_price.clone(),
            total: self.total.clone(),
        }
    }
}

impl Booking {
    /// What was requested, once requested.
    pub fn request(&self) -> Option<&BookingRequest> {
        self.request.as_ref()
    }

    /// The status, once requested.
    pub fn status(&self) -> Option<BookingStatus> {
        self.status
    }

    /// Who booked, once requested.
    pub fn customer_id(&self) -> Option<UserId> {
        self.request.as_ref().map(|r| r.customer_id)
    }

    /// Number of seats, once requested.
    pub fn quantity(&self) -> Option<u32> {
        self.request.as_ref().map(|r| r.quantity)
    }

    /// The total, once requested.
    pub fn total(&self) -> Option<&Money> {
        self.request.as_ref().map(|r| &r.total)
    }

    /// The payment deadline, once seats are held.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// The payment most recently attached (the one that paid, once paid).
    pub fn attached_payment(&self) -> Option<PaymentId> {
        self.attached_payment
    }

    /// Tickets issued (empty before payment).
    pub fn tickets(&self) -> &[TicketId] {
        &self.tickets
    }

    /// Tickets already checked in.
    pub fn checked_in(&self) -> &BTreeSet<TicketId> {
        &self.checked_in
    }

    /// Why the booking was rejected, cancelled or refunded.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The owner's latest refund request, if any.
    pub fn refund_request(&self) -> Option<&RefundRequest> {
        self.refund_request.as_ref()
    }

    fn requested(&self) -> Result<(&BookingRequest, BookingStatus), BookingError> {
        match (&self.request, self.status) {
            (Some(r), Some(s)) => Ok((r, s)),
            _ => Err(BookingError::BookingNotFound),
        }
    }
}

fn refuse<T>(from: BookingStatus, action: &'static str) -> Result<T, BookingError> {
    Err(BookingError::InvalidTransition { from, action })
}

impl Aggregate for Booking {
    const TYPE: &'static str = "booking";
    type Command = BookingCommand;
    type Event = BookingEvent;
    type Error = BookingError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use BookingStatus as S;
        let event = match command {
            BookingCommand::Request {
                booking_id,
                customer_id,
                show_id,
                session_id,
                area_id,
                quantity,
                unit_price,
                max_per_booking,
            } => {
                let request = BookingRequest::new(
                    booking_id,
                    customer_id,
                    show_id,
                    session_id,
                    area_id,
                    quantity,
                    unit_price,
                    max_per_booking,
                )?;
                if let Some(existing) = &self.request {
                    return if *existing == request {
                        Ok(())
                    } else {
                        Err(BookingError::AlreadyRequested)
                    };
                }
                request.requested()
            }
            BookingCommand::RequestHeld {
                booking_id,
                customer_id,
                show_id,
                session_id,
                area_id,
                quantity,
                unit_price,
                max_per_booking,
                expires_at,
            } => {
                let request = BookingRequest::new(
                    booking_id,
                    customer_id,
                    show_id,
                    session_id,
                    area_id,
                    quantity,
                    unit_price,
                    max_per_booking,
                )?;
                match (&self.request, self.status) {
                    (Some(existing), _) if *existing != request => {
                        return Err(BookingError::AlreadyRequested)
                    }
                    (Some(_), Some(S::Pending)) => BookingEvent::SeatsHeld { expires_at },
                    (Some(_), _) => return Ok(()),
                    (None, _) => {
                        sink.write(request.requested(), self).await;
                        BookingEvent::SeatsHeld { expires_at }
                    }
                }
            }
            BookingCommand::HoldSeats { expires_at } => match self.requested()?.1 {
                S::Pending => BookingEvent::SeatsHeld { expires_at },
                S::PendingPayment => return Ok(()),
                from => return refuse(from, "hold seats for"),
            },
            BookingCommand::Reject { reason } => match self.requested()?.1 {
                S::Pending => BookingEvent::BookingRejected { reason },
                S::Rejected => return Ok(()),
                from => return refuse(from, "reject"),
            },
            BookingCommand::AttachPayment { payment_id } => match self.requested()?.1 {
                S::PendingPayment | S::Paid if self.attached_payment == Some(payment_id) => {
                    return Ok(())
                }
                S::PendingPayment => BookingEvent::PaymentAttached { payment_id },
                from => return refuse(from, "attach a payment to"),
            },
            BookingCommand::MarkPaid {
                payment_id,
                tickets,
            } => {
                let (request, status) = self.requested()?;
                match status {
                    S::PendingPayment if self.attached_payment == Some(payment_id) => {
                        if tickets.len() != request.quantity as usize {
                            return Err(BookingError::TicketCountMismatch {
                                expected: request.quantity,
                                got: tickets.len(),
                            });
                        }
                        let mut seen = BTreeSet::new();
                        for t in &tickets {
                            if !seen.insert(t) {
                                return Err(BookingError::DuplicateTicket { ticket_id: *t });
                            }
                        }
                        BookingEvent::BookingPaid {
                            payment_id,
                            tickets,
                        }
                    }
                    S::PendingPayment => {
                        return Err(BookingError::PaymentMismatch {
                            expected: self.attached_payment,
                            got: payment_id,
                        })
                    }
                    S::Paid if self.attached_payment == Some(payment_id) => return Ok(()),
                    from => return refuse(from, "mark paid"),
                }
            }
            BookingCommand::Cancel { reason } => match self.requested()?.1 {
                S::Pending | S::PendingPayment => BookingEvent::BookingCancelled { reason },
                S::Cancelled => return Ok(()),
                from => return refuse(from, "cancel"),
            },
            BookingCommand::Expire => match self.requested()?.1 {
                S::PendingPayment => BookingEvent::BookingExpired {},
                S::Expired => return Ok(()),
                from => return refuse(from, "expire"),
            },
            BookingCommand::Refund { reason } => match self.requested()?.1 {
                S::Paid => BookingEvent::BookingRefunded { reason },
                S::Refunded => return Ok(()),
                from => return refuse(from, "refund"),
            },
            BookingCommand::Complete => match self.requested()?.1 {
                S::Paid => BookingEvent::BookingCompleted {},
                S::Completed => return Ok(()),
                from => return refuse(from, "complete"),
            },
            BookingCommand::RequestRefund { reason } => {
                let status = self.requested()?.1;
                match &self.refund_request {
                    Some(open) if open.status == RefundRequestStatus::Requested => {
                        if open.reason == reason {
                            return Ok(());
                        }
                        return Err(BookingError::RefundAlreadyRequested);
                    }
                    Some(r) if r.status == RefundRequestStatus::Rejected => {
                        return Err(BookingError::RefundRequestRejected)
                    }
                    _ => {}
                }
                if status != S::Paid {
                    return refuse(status, "request a refund of");
                }
                if !self.checked_in.is_empty() {
                    return Err(BookingError::TicketsUsed);
                }
                BookingEvent::BookingRefundRequested { reason }
            }
            BookingCommand::WithdrawRefundRequest => {
                self.requested()?;
                match self.refund_request.as_ref().map(|r| r.status) {
                    Some(RefundRequestStatus::Requested) => {
                        BookingEvent::BookingRefundRequestWithdrawn {}
                    }
                    Some(RefundRequestStatus::Withdrawn) => return Ok(()),
                    _ => return Err(BookingError::NoRefundRequest),
                }
            }
            BookingCommand::ApproveRefundRequest => {
                let status = self.requested()?.1;
                match self.refund_request.as_ref() {
                    Some(r) if r.status == RefundRequestStatus::Requested => {
                        if status != S::Paid {
                            return refuse(status, "refund");
                        }
                        BookingEvent::BookingRefunded {
                            reason: format!("refund requested by the customer: {}", r.reason),
                        }
                    }
                    Some(r) if r.status == RefundRequestStatus::Approved => return Ok(()),
                    _ => return Err(BookingError::NoRefundRequest),
                }
            }
            BookingCommand::RejectRefundRequest { reason } => {
                self.requested()?;
                match self.refund_request.as_ref().map(|r| r.status) {
                    Some(RefundRequestStatus::Requested) => {
                        BookingEvent::BookingRefundRequestRejected { reason }
                    }
                    Some(RefundRequestStatus::Rejected) => return Ok(()),
                    _ => return Err(BookingError::NoRefundRequest),
                }
            }
            BookingCommand::CheckIn { ticket_id } => {
                let status = self.requested()?.1;
                if !self.tickets.contains(&ticket_id) {
                    return Err(BookingError::UnknownTicket { ticket_id });
                }
                if status != S::Paid {
                    return Err(BookingError::TicketNotValid { ticket_id, status });
                }
                if self.checked_in.contains(&ticket_id) {
                    return Err(BookingError::AlreadyCheckedIn { ticket_id });
                }
                BookingEvent::TicketCheckedIn { ticket_id }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            BookingEvent::BookingRequested {
                booking_id,
                customer_id,
                show_id,
                session_id,
                area_id,
                quantity,
                unit_price,
                total,
            } => {
                self.request = Some(BookingRequest {
                    booking_id,
                    customer_id,
                    show_id,
                    session_id,
                    area_id,
                    quantity,
                    unit_price,
                    total,
                });
                self.status = Some(BookingStatus::Pending);
            }
            BookingEvent::SeatsHeld { expires_at } => {
                self.expires_at = Some(expires_at);
                self.status = Some(BookingStatus::PendingPayment);
            }
            BookingEvent::BookingRejected { reason } => {
                self.reason = Some(reason);
                self.status = Some(BookingStatus::Rejected);
            }
            BookingEvent::PaymentAttached { payment_id } => {
                self.attached_payment = Some(payment_id);
            }
            BookingEvent::BookingPaid {
                payment_id,
                tickets,
            } => {
                self.attached_payment = Some(payment_id);
                self.tickets = tickets;
                self.status = Some(BookingStatus::Paid);
            }
            BookingEvent::BookingCancelled { reason } => {
                self.reason = Some(reason);
                self.status = Some(BookingStatus::Cancelled);
            }
            BookingEvent::BookingExpired {} => self.status = Some(BookingStatus::Expired),
            BookingEvent::BookingRefunded { reason } => {
                self.reason = Some(reason);
                self.status = Some(BookingStatus::Refunded);
                if let Some(request) = self.refund_request.as_mut() {
                    if request.status == RefundRequestStatus::Requested {
                        request.status = RefundRequestStatus::Approved;
                    }
                }
            }
            BookingEvent::BookingRefundRequested { reason } => {
                self.refund_request = Some(RefundRequest {
                    reason,
                    status: RefundRequestStatus::Requested,
                    rejection_reason: None,
                });
            }
            BookingEvent::BookingRefundRequestWithdrawn {} => {
                if let Some(request) = self.refund_request.as_mut() {
                    request.status = RefundRequestStatus::Withdrawn;
                }
            }
            BookingEvent::BookingRefundRequestRejected { reason } => {
                if let Some(request) = self.refund_request.as_mut() {
                    request.status = RefundRequestStatus::Rejected;
                    request.rejection_reason = Some(reason);
                }
            }
            BookingEvent::BookingCompleted {} => self.status = Some(BookingStatus::Completed),
            BookingEvent::TicketCheckedIn { ticket_id } => {
                self.checked_in.insert(ticket_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<BookingEvent>) -> AggregateTestExecutor<Booking> {
        TestFramework::<Booking>::with(()).given(events)
    }

    fn request(quantity: u32) -> BookingCommand {
        BookingCommand::Request {
            booking_id: id(1),
            customer_id: id(2),
            show_id: id(3),
            session_id: id(4),
            area_id: AreaId::parse("A").unwrap(),
            quantity,
            unit_price: eur(5000),
            max_per_booking: 4,
        }
    }

    fn requested() -> Vec<BookingEvent> {
        vec![BookingEvent::BookingRequested {
            booking_id: id(1),
            customer_id: id(2),
            show_id: id(3),
            session_id: id(4),
            area_id: AreaId::parse("A").unwrap(),
            quantity: 2,
            unit_price: eur(5000),
            total: eur(10000),
        }]
    }

    fn deadline() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 5, 1, 20, 15, 0).unwrap()
    }

    fn with(mut events: Vec<BookingEvent>, more: BookingEvent) -> Vec<BookingEvent> {
        events.push(more);
        events
    }

    fn held() -> Vec<BookingEvent> {
        with(
            requested(),
            BookingEvent::SeatsHeld {
                expires_at: deadline(),
            },
        )
    }

    fn p(n: u128) -> PaymentId {
        id(n)
    }

    fn t(n: u128) -> TicketId {
        id(n)
    }

    fn attached(n: u128) -> Vec<BookingEvent> {
        with(held(), BookingEvent::PaymentAttached { payment_id: p(n) })
    }

    fn paid() -> Vec<BookingEvent> {
        with(
            attached(7),
            BookingEvent::BookingPaid {
                payment_id: p(7),
                tickets: vec![t(100), t(101)],
            },
        )
    }

    fn refunded() -> Vec<BookingEvent> {
        with(
            paid(),
            BookingEvent::BookingRefunded {
                reason: "show cancelled".into(),
            },
        )
    }

    fn invalid(from: BookingStatus, action: &'static str) -> BookingError {
        BookingError::InvalidTransition { from, action }
    }

    fn state(events: Vec<BookingEvent>) -> Booking {
        let mut b = Booking::default();
        for e in events {
            b.apply(e);
        }
        b
    }

    fn mark_paid(payment: u128, tickets: Vec<TicketId>) -> BookingCommand {
        BookingCommand::MarkPaid {
            payment_id: p(payment),
            tickets,
        }
    }

    fn request_held(quantity: u32) -> BookingCommand {
        BookingCommand::RequestHeld {
            booking_id: id(1),
            customer_id: id(2),
            show_id: id(3),
            session_id: id(4),
            area_id: AreaId::parse("A").unwrap(),
            quantity,
            unit_price: eur(5000),
            max_per_booking: 4,
            expires_at: deadline(),
        }
    }

    #[test]
    fn a_booking_its_reservation_decided_is_requested_and_held_in_one_step() {
        given(vec![])
            .when(request_held(2))
            .then_expect_events(held());
        let b = state(held());
        assert_eq!(b.status(), Some(BookingStatus::PendingPayment));
        assert_eq!(b.expires_at(), Some(deadline()));
    }

    #[test]
    fn requesting_held_seats_again_changes_nothing_and_holds_a_pending_booking() {
        given(held())
            .when(request_held(2))
            .then_expect_events(vec![]);
        given(paid())
            .when(request_held(2))
            .then_expect_events(vec![]);
        given(requested())
            .when(request_held(2))
            .then_expect_events(vec![BookingEvent::SeatsHeld {
                expires_at: deadline(),
            }]);
        given(held())
            .when(request_held(3))
            .then_expect_error(BookingError::AlreadyRequested);
        given(vec![])
            .when(request_held(5))
            .then_expect_error(BookingError::TooManyTickets {
                requested: 5,
                max: 4,
            });
    }

    #[test]
    fn request_records_seats_and_total() {
        given(vec![])
            .when(request(2))
            .then_expect_events(requested());
        let b = state(requested());
        assert_eq!(b.status(), Some(BookingStatus::Pending));
        assert_eq!(b.total(), Some(&eur(10000)));
        assert_eq!(b.quantity(), Some(2));
    }

    #[test]
    fn request_refuses_zero_or_too_many_seats() {
        given(vec![])
            .when(request(0))
            .then_expect_error(BookingError::InvalidQuantity);
        let err = given(vec![]).when(request(5)).inspect_result().unwrap_err();
        assert_eq!(
            err,
            BookingError::TooManyTickets {
                requested: 5,
                max: 4
            }
        );
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(err.code(), "too_many_tickets");
        given(vec![])
            .when(request(4))
            .inspect_result()
            .expect("the maximum itself is allowed");
    }

    #[test]
    fn request_refuses_a_total_that_overflows() {
        given(vec![])
            .when(BookingCommand::Request {
                booking_id: id(1),
                customer_id: id(2),
                show_id: id(3),
                session_id: id(4),
                area_id: AreaId::parse("A").unwrap(),
                quantity: 2,
                unit_price: eur(i64::MAX),
                max_per_booking: 4,
            })
            .then_expect_error(BookingError::AmountOverflow);
    }

    #[test]
    fn request_repeated_identically_is_a_no_op() {
        given(paid()).when(request(2)).then_expect_events(vec![]);
    }

    #[test]
    fn request_with_other_content_is_refused() {
        given(requested())
            .when(request(3))
            .then_expect_error(BookingError::AlreadyRequested);
    }

    #[test]
    fn commands_on_a_booking_never_requested_are_not_found() {
        for c in [
            BookingCommand::HoldSeats {
                expires_at: deadline(),
            },
            BookingCommand::Reject { reason: "x".into() },
            BookingCommand::AttachPayment { payment_id: p(1) },
            mark_paid(1, vec![]),
            BookingCommand::Cancel { reason: "x".into() },
            BookingCommand::Expire,
            BookingCommand::Refund { reason: "x".into() },
            BookingCommand::Complete,
            BookingCommand::CheckIn { ticket_id: t(1) },
        ] {
            let err = given(vec![]).when(c).inspect_result().unwrap_err();
            assert_eq!(err, BookingError::BookingNotFound);
            assert_eq!(err.kind(), ErrorKind::NotFound);
        }
    }

    #[test]
    fn hold_seats_starts_the_payment_deadline() {
        given(requested())
            .when(BookingCommand::HoldSeats {
                expires_at: deadline(),
            })
            .then_expect_events(vec![BookingEvent::SeatsHeld {
                expires_at: deadline(),
            }]);
        let b = state(held());
        assert_eq!(b.status(), Some(BookingStatus::PendingPayment));
        assert_eq!(b.expires_at(), Some(deadline()));
    }

    #[test]
    fn hold_seats_repeated_is_a_no_op() {
        given(held())
            .when(BookingCommand::HoldSeats {
                expires_at: deadline(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn hold_seats_after_rejection_is_refused() {
        given(with(
            requested(),
            BookingEvent::BookingRejected {
                reason: "sold_out".into(),
            },
        ))
        .when(BookingCommand::HoldSeats {
            expires_at: deadline(),
        })
        .then_expect_error(invalid(BookingStatus::Rejected, "hold seats for"));
    }

    #[test]
    fn reject_when_sold_out() {
        let rejected = BookingEvent::BookingRejected {
            reason: "sold_out".into(),
        };
        given(requested())
            .when(BookingCommand::Reject {
                reason: "sold_out".into(),
            })
            .then_expect_events(vec![rejected.clone()]);
        let b = state(with(requested(), rejected.clone()));
        assert_eq!(b.status(), Some(BookingStatus::Rejected));
        assert_eq!(b.reason(), Some("sold_out"));
        given(with(requested(), rejected))
            .when(BookingCommand::Reject {
                reason: "sold_out".into(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn reject_once_seats_are_held_is_refused() {
        given(held())
            .when(BookingCommand::Reject {
                reason: "sold_out".into(),
            })
            .then_expect_error(invalid(BookingStatus::PendingPayment, "reject"));
    }

    #[test]
    fn attach_payment_while_pending_payment() {
        given(held())
            .when(BookingCommand::AttachPayment { payment_id: p(7) })
            .then_expect_events(vec![BookingEvent::PaymentAttached { payment_id: p(7) }]);
        given(attached(7))
            .when(BookingCommand::AttachPayment { payment_id: p(8) })
            .then_expect_events(vec![BookingEvent::PaymentAttached { payment_id: p(8) }]);
    }

    #[test]
    fn attach_payment_repeated_is_a_no_op() {
        given(attached(7))
            .when(BookingCommand::AttachPayment { payment_id: p(7) })
            .then_expect_events(vec![]);
        given(paid())
            .when(BookingCommand::AttachPayment { payment_id: p(7) })
            .then_expect_events(vec![]);
    }

    #[test]
    fn attach_payment_before_seats_are_held_is_refused() {
        given(requested())
            .when(BookingCommand::AttachPayment { payment_id: p(7) })
            .then_expect_error(invalid(BookingStatus::Pending, "attach a payment to"));
    }

    #[test]
    fn mark_paid_issues_the_tickets() {
        given(attached(7))
            .when(mark_paid(7, vec![t(100), t(101)]))
            .then_expect_events(vec![BookingEvent::BookingPaid {
                payment_id: p(7),
                tickets: vec![t(100), t(101)],
            }]);
        let b = state(paid());
        assert_eq!(b.status(), Some(BookingStatus::Paid));
        assert_eq!(b.tickets(), &[t(100), t(101)]);
    }

    #[test]
    fn mark_paid_needs_one_distinct_ticket_per_seat() {
        given(attached(7))
            .when(mark_paid(7, vec![t(100)]))
            .then_expect_error(BookingError::TicketCountMismatch {
                expected: 2,
                got: 1,
            });
        given(attached(7))
            .when(mark_paid(7, vec![t(100), t(100)]))
            .then_expect_error(BookingError::DuplicateTicket { ticket_id: t(100) });
    }

    #[test]
    fn mark_paid_with_another_payment_is_refused() {
        given(attached(7))
            .when(mark_paid(8, vec![t(100), t(101)]))
            .then_expect_error(BookingError::PaymentMismatch {
                expected: Some(p(7)),
                got: p(8),
            });
    }

    #[test]
    fn mark_paid_repeated_is_a_no_op() {
        given(paid())
            .when(mark_paid(7, vec![t(100), t(101)]))
            .then_expect_events(vec![]);
    }

    #[test]
    fn mark_paid_after_expiry_is_refused() {
        given(with(attached(7), BookingEvent::BookingExpired {}))
            .when(mark_paid(7, vec![t(100), t(101)]))
            .then_expect_error(invalid(BookingStatus::Expired, "mark paid"));
    }

    #[test]
    fn cancel_before_payment() {
        let cancelled = BookingEvent::BookingCancelled {
            reason: "changed mind".into(),
        };
        for events in [requested(), held()] {
            given(events)
                .when(BookingCommand::Cancel {
                    reason: "changed mind".into(),
                })
                .then_expect_events(vec![cancelled.clone()]);
        }
        given(with(held(), cancelled))
            .when(BookingCommand::Cancel {
                reason: "again".into(),
            })
            .then_expect_events(vec![]);
        given(paid())
            .when(BookingCommand::Cancel { reason: "x".into() })
            .then_expect_error(invalid(BookingStatus::Paid, "cancel"));
    }

    #[test]
    fn expire_an_unpaid_booking() {
        given(attached(7))
            .when(BookingCommand::Expire)
            .then_expect_events(vec![BookingEvent::BookingExpired {}]);
        given(with(held(), BookingEvent::BookingExpired {}))
            .when(BookingCommand::Expire)
            .then_expect_events(vec![]);
        given(paid())
            .when(BookingCommand::Expire)
            .then_expect_error(invalid(BookingStatus::Paid, "expire"));
        given(requested())
            .when(BookingCommand::Expire)
            .then_expect_error(invalid(BookingStatus::Pending, "expire"));
    }

    #[test]
    fn refund_a_paid_booking() {
        given(paid())
            .when(BookingCommand::Refund {
                reason: "show cancelled".into(),
            })
            .then_expect_events(vec![BookingEvent::BookingRefunded {
                reason: "show cancelled".into(),
            }]);
        given(refunded())
            .when(BookingCommand::Refund { reason: "x".into() })
            .then_expect_events(vec![]);
        given(held())
            .when(BookingCommand::Refund { reason: "x".into() })
            .then_expect_error(invalid(BookingStatus::PendingPayment, "refund"));
    }

    #[test]
    fn complete_a_paid_booking() {
        given(paid())
            .when(BookingCommand::Complete)
            .then_expect_events(vec![BookingEvent::BookingCompleted {}]);
        given(with(paid(), BookingEvent::BookingCompleted {}))
            .when(BookingCommand::Complete)
            .then_expect_events(vec![]);
        given(refunded())
            .when(BookingCommand::Complete)
            .then_expect_error(invalid(BookingStatus::Refunded, "complete"));
    }

    #[test]
    fn check_in_admits_each_ticket_once() {
        given(paid())
            .when(BookingCommand::CheckIn { ticket_id: t(100) })
            .then_expect_events(vec![BookingEvent::TicketCheckedIn { ticket_id: t(100) }]);
        let events = with(paid(), BookingEvent::TicketCheckedIn { ticket_id: t(100) });
        let err = given(events.clone())
            .when(BookingCommand::CheckIn { ticket_id: t(100) })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, BookingError::AlreadyCheckedIn { ticket_id: t(100) });
        assert_eq!(err.code(), "already_checked_in");
        given(events)
            .when(BookingCommand::CheckIn { ticket_id: t(101) })
            .then_expect_events(vec![BookingEvent::TicketCheckedIn { ticket_id: t(101) }]);
    }

    #[test]
    fn check_in_refuses_a_ticket_of_another_booking() {
        given(paid())
            .when(BookingCommand::CheckIn { ticket_id: t(999) })
            .then_expect_error(BookingError::UnknownTicket { ticket_id: t(999) });
    }

    #[test]
    fn check_in_refuses_tickets_of_a_refunded_booking() {
        given(refunded())
            .when(BookingCommand::CheckIn { ticket_id: t(100) })
            .then_expect_error(BookingError::TicketNotValid {
                ticket_id: t(100),
                status: BookingStatus::Refunded,
            });
    }

    fn refund_requested() -> Vec<BookingEvent> {
        with(
            paid(),
            BookingEvent::BookingRefundRequested {
                reason: "cannot come".into(),
            },
        )
    }

    fn request_refund(reason: &str) -> BookingCommand {
        BookingCommand::RequestRefund {
            reason: reason.into(),
        }
    }

    #[test]
    fn the_owner_requests_a_refund_of_a_paid_booking_once() {
        given(paid())
            .when(request_refund("cannot come"))
            .then_expect_events(vec![BookingEvent::BookingRefundRequested {
                reason: "cannot come".into(),
            }]);
        let b = state(refund_requested());
        let request = b.refund_request().unwrap();
        assert_eq!(request.status, RefundRequestStatus::Requested);
        assert_eq!(b.status(), Some(BookingStatus::Paid));
        given(refund_requested())
            .when(request_refund("cannot come"))
            .then_expect_events(vec![]);
        given(refund_requested())
            .when(request_refund("another reason"))
            .then_expect_error(BookingError::RefundAlreadyRequested);
        given(held())
            .when(request_refund("x"))
            .then_expect_error(invalid(
                BookingStatus::PendingPayment,
                "request a refund of",
            ));
        given(with(
            paid(),
            BookingEvent::TicketCheckedIn { ticket_id: t(100) },
        ))
        .when(request_refund("x"))
        .then_expect_error(BookingError::TicketsUsed);
    }

    #[test]
    fn an_approved_request_refunds_the_booking() {
        given(refund_requested())
            .when(BookingCommand::Refund {
                reason: "cannot come".into(),
            })
            .then_expect_events(vec![BookingEvent::BookingRefunded {
                reason: "cannot come".into(),
            }]);
        let b = state(with(
            refund_requested(),
            BookingEvent::BookingRefunded {
                reason: "cannot come".into(),
            },
        ));
        assert_eq!(b.status(), Some(BookingStatus::Refunded));
        assert_eq!(
            b.refund_request().unwrap().status,
            RefundRequestStatus::Approved
        );
        given(refund_requested())
            .when(BookingCommand::ApproveRefundRequest)
            .then_expect_events(vec![BookingEvent::BookingRefunded {
                reason: "refund requested by the customer: cannot come".into(),
            }]);
        given(b_refunded_on_request())
            .when(BookingCommand::ApproveRefundRequest)
            .then_expect_events(vec![]);
        given(paid())
            .when(BookingCommand::ApproveRefundRequest)
            .then_expect_error(BookingError::NoRefundRequest);
        given(with(
            refund_requested(),
            BookingEvent::BookingRefundRequestWithdrawn {},
        ))
        .when(BookingCommand::ApproveRefundRequest)
        .then_expect_error(BookingError::NoRefundRequest);
    }

    fn b_refunded_on_request() -> Vec<BookingEvent> {
        with(
            refund_requested(),
            BookingEvent::BookingRefunded {
                reason: "refund requested by the customer: cannot come".into(),
            },
        )
    }

    #[test]
    fn a_rejected_request_leaves_the_booking_paid_and_is_final() {
        let rejected = with(
            refund_requested(),
            BookingEvent::BookingRefundRequestRejected {
                reason: "too late".into(),
            },
        );
        given(refund_requested())
            .when(BookingCommand::RejectRefundRequest {
                reason: "too late".into(),
            })
            .then_expect_events(vec![BookingEvent::BookingRefundRequestRejected {
                reason: "too late".into(),
            }]);
        let b = state(rejected.clone());
        assert_eq!(b.status(), Some(BookingStatus::Paid));
        let request = b.refund_request().unwrap();
        assert_eq!(request.status, RefundRequestStatus::Rejected);
        assert_eq!(request.rejection_reason.as_deref(), Some("too late"));
        given(rejected.clone())
            .when(request_refund("please"))
            .then_expect_error(BookingError::RefundRequestRejected);
        given(rejected.clone())
            .when(BookingCommand::RejectRefundRequest { reason: "x".into() })
            .then_expect_events(vec![]);
        given(rejected)
            .when(BookingCommand::WithdrawRefundRequest)
            .then_expect_error(BookingError::NoRefundRequest);
        given(paid())
            .when(BookingCommand::RejectRefundRequest { reason: "x".into() })
            .then_expect_error(BookingError::NoRefundRequest);
    }

    #[test]
    fn a_withdrawn_request_may_be_made_again() {
        let withdrawn = with(
            refund_requested(),
            BookingEvent::BookingRefundRequestWithdrawn {},
        );
        given(refund_requested())
            .when(BookingCommand::WithdrawRefundRequest)
            .then_expect_events(vec![BookingEvent::BookingRefundRequestWithdrawn {}]);
        given(withdrawn.clone())
            .when(BookingCommand::WithdrawRefundRequest)
            .then_expect_events(vec![]);
        given(withdrawn.clone())
            .when(BookingCommand::RejectRefundRequest { reason: "x".into() })
            .then_expect_error(BookingError::NoRefundRequest);
        given(withdrawn)
            .when(request_refund("changed my mind again"))
            .then_expect_events(vec![BookingEvent::BookingRefundRequested {
                reason: "changed my mind again".into(),
            }]);
        given(paid())
            .when(BookingCommand::WithdrawRefundRequest)
            .then_expect_error(BookingError::NoRefundRequest);
    }

    #[test]
    fn statuses_and_events_have_stable_names() {
        assert_eq!(BookingStatus::PendingPayment.as_str(), "pending_payment");
        assert_eq!(
            serde_json::to_value(BookingStatus::PendingPayment).unwrap(),
            "pending_payment"
        );
        for e in paid() {
            let json = serde_json::to_value(&e).unwrap();
            assert!(json.get(e.event_type()).is_some(), "{json}");
            assert_eq!(e.event_version(), "1");
        }
    }
}
