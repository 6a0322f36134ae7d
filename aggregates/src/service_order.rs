//! A service order of the marketplace: a customer asks for a home service, an admin
//! reviews it, verified providers whose skills and areas match race to accept it, the
//! customer pays into escrow, the provider does the work, the customer confirms (or the
//! order confirms itself after a while), the escrow is paid out to the provider, and the
//! customer reviews the provider.
//!
//! ```text
//! pending_review -> pending -> accepted -> paid -> in_progress -> done -> completed -> reviewed
//!        |             |          |         |          |           |        (payout released
//!     rejected      cancelled  cancelled cancelled  cancelled  cancelled     once, on its own)
//! ```
//!
//! - Acceptance is first come, first served: the first provider's `Accept` wins, every later
//!   one is refused with `already_accepted`, however many race (the command bus runs the
//!   commands of one order one after the other, and the event store's key on the sequence
//!   refuses a second writer elsewhere). Only a verified provider whose skills hold the
//!   order's service type and whose areas hold its location may accept.
//! - Cancelling: the customer before acceptance (nothing to refund) or after it until the
//!   work starts (the escrowed payment, if any, is refunded); an admin at any point before
//!   the payout is released, refunding what was paid.
//! - The payout is released once, only for a completed (or reviewed) order that was paid
//!   and not cancelled: the saga re-checks nothing itself, this aggregate refuses.
//! - The description, the address and the review's comment are personal data of the
//!   customer ([`PersonalText`]).
//! - The review is moderated like a product's ([`crate::review`]): a comment holding one
//!   of the sensitive words is held (`ServiceOrderReviewHeld` instead of
//!   `ServiceOrderReviewed`: pending_moderation) and neither counted in the provider's
//!   rating nor told to the provider until an admin publishes it; an admin may reject it.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    DomainError, ErrorKind, Money, ParseError, PaymentId, PayoutId, PersonalText, Reason, RefundId,
    Title, UserId,
};
use crate::provider::{Qualification, ServiceArea, ServiceType, VerificationStatus};
use crate::review::ReviewStatus;

/// Bounds of a service order's texts, in characters.
pub mod limits {
    /// Longest description.
    pub const DESCRIPTION_MAX: usize = 5000;
    /// Longest address.
    pub const ADDRESS_MAX: usize = 300;
    /// Longest review comment.
    pub const COMMENT_MAX: usize = 2000;
}

/// Parses a description: 1 to 5000 characters, lines allowed.
pub fn parse_description(subject: UserId, raw: &str) -> Result<PersonalText, ParseError> {
    PersonalText::parse_text(
        subject,
        raw,
        "description",
        1,
        limits::DESCRIPTION_MAX,
        false,
    )
}

/// Parses the address a service takes place at: 1 to 300 characters, lines allowed.
pub fn parse_address(subject: UserId, raw: &str) -> Result<PersonalText, ParseError> {
    PersonalText::parse_text(subject, raw, "address", 1, limits::ADDRESS_MAX, false)
}

/// Parses a review's comment: at most 2000 characters, lines allowed, may be empty.
pub fn parse_comment(subject: UserId, raw: &str) -> Result<PersonalText, ParseError> {
    PersonalText::parse_text(subject, raw, "comment", 0, limits::COMMENT_MAX, false)
}

/// A rating from 1 to 5 stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct Stars(u8);

impl Stars {
    /// Parses a rating; anything outside 1..=5 is refused, naming `field`.
    pub fn parse(raw: i64, field: &'static str) -> Result<Self, ParseError> {
        if (1..=5).contains(&raw) {
            Ok(Stars(raw as u8))
        } else {
            Err(ParseError::new(
                field,
                format!("{field} must be a whole number from 1 to 5"),
            ))
        }
    }

    /// The number of stars.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Stars {
    type Error = ParseError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Stars::parse(value, "rating")
    }
}

impl From<Stars> for u8 {
    fn from(value: Stars) -> Self {
        value.0
    }
}

/// The three aspects of a provider's work a review rates besides the overall rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDimensions {
    /// How well the work was done.
    pub professionalism: Stars,
    /// How the provider behaved.
    pub attitude: Stars,
    /// Whether the provider came on time.
    pub punctuality: Stars,
}

/// A customer's review of the provider who carried out the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The overall rating.
    pub rating: Stars,
    /// What the customer wrote (personal data of the customer).
    pub comment: PersonalText,
    /// The rating of each aspect.
    pub dimensions: ReviewDimensions,
}

/// What the customer asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRequest {
    /// Who asked.
    pub customer_id: UserId,
    /// A short title ("Fix the kitchen sink").
    pub title: Title,
    /// What is to be done.
    pub description: PersonalText,
    /// The kind of service.
    pub service_type: ServiceType,
    /// What the customer pays, held in escrow until the work is confirmed; more than zero.
    pub price: Money,
    /// The area of the city.
    pub location: ServiceArea,
    /// Where exactly.
    pub address: PersonalText,
}

/// Where a service order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceOrderStatus {
    /// Waiting for an admin's review.
    PendingReview,
    /// Approved: open to matching providers.
    Pending,
    /// A provider accepted it; waiting for payment.
    Accepted,
    /// Paid: the money is held in escrow.
    Paid,
    /// The provider started the work.
    InProgress,
    /// The provider marked the work done; waiting for the customer's confirmation.
    Done,
    /// Confirmed by the customer (or by itself after the confirmation period).
    Completed,
    /// The customer reviewed the provider.
    Reviewed,
    /// Refused by an admin's review.
    Rejected,
    /// Cancelled by the customer or an admin.
    Cancelled,
}

impl ServiceOrderStatus {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceOrderStatus::PendingReview => "pending_review",
            ServiceOrderStatus::Pending => "pending",
            ServiceOrderStatus::Accepted => "accepted",
            ServiceOrderStatus::Paid => "paid",
            ServiceOrderStatus::InProgress => "in_progress",
            ServiceOrderStatus::Done => "done",
            ServiceOrderStatus::Completed => "completed",
            ServiceOrderStatus::Reviewed => "reviewed",
            ServiceOrderStatus::Rejected => "rejected",
            ServiceOrderStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for ServiceOrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who cancelled an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    /// The customer who published it.
    Customer,
    /// An admin.
    Admin,
}

/// The escrowed payment paid out to the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// Its id.
    pub payout_id: PayoutId,
    /// Who receives it.
    pub provider_id: UserId,
    /// How much.
    pub amount: Money,
}

/// Commands accepted by a [`ServiceOrder`].
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceOrderCommand {
    /// A customer publishes the order; it waits for an admin's review.
    Publish(ServiceRequest),
    /// An admin approves it: matching providers may now accept it.
    Approve,
    /// An admin refuses it.
    Reject {
        /// Why.
        reason: Reason,
    },
    /// A provider accepts it, qualified as their aggregate says.
    Accept {
        /// The provider.
        provider_id: UserId,
        /// Their verification, skills and areas.
        qualification: Qualification,
    },
    /// The saga attaches the payment the customer created.
    AttachPayment {
        /// The payment.
        payment_id: PaymentId,
    },
    /// The saga records the attached payment's capture: the money is in escrow.
    MarkPaid {
        /// The payment captured.
        payment_id: PaymentId,
    },
    /// The accepting provider starts the work.
    Start {
        /// Who asks.
        provider_id: UserId,
    },
    /// The accepting provider marks the work done.
    Complete {
        /// Who asks.
        provider_id: UserId,
    },
    /// The customer confirms the work, or the confirmation period ran out.
    Confirm {
        /// True when the period ran out.
        automatic: bool,
    },
    /// The saga pays the escrow out to the provider.
    ReleasePayout {
        /// The payout's (deterministic) id.
        payout_id: PayoutId,
    },
    /// The customer or an admin cancels it.
    Cancel {
        /// Who.
        by: CancelledBy,
        /// Why, when given.
        reason: Option<Reason>,
    },
    /// The saga records the refund of the escrowed payment of a cancelled order.
    RecordRefund {
        /// The payment's refund.
        refund_id: RefundId,
        /// How much went back.
        amount: Money,
    },
    /// The customer reviews the provider of a completed order, once.
    Review {
        /// The review.
        review: Review,
        /// Whether its comment holds a sensitive word ([`crate::review::flags`]): it is
        /// then held for an admin.
        flagged: bool,
    },
    /// An admin publishes a held review.
    PublishReview,
    /// An admin rejects the review: it no longer counts in the provider's rating.
    RejectReview {
        /// Why.
        reason: Reason,
    },
}

/// Events of a [`ServiceOrder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServiceOrderEvent {
    /// A customer published the order.
    ServiceOrderPublished {
        /// What was asked for.
        request: ServiceRequest,
    },
    /// An admin approved it.
    ServiceOrderApproved {},
    /// An admin refused it.
    ServiceOrderRejected {
        /// Why.
        reason: Reason,
    },
    /// A provider accepted it.
    ServiceOrderAccepted {
        /// The provider.
        provider_id: UserId,
    },
    /// A payment was attached.
    ServicePaymentAttached {
        /// The payment.
        payment_id: PaymentId,
    },
    /// The payment was captured and is held in escrow.
    ServiceOrderPaid {
        /// The payment.
        payment_id: PaymentId,
        /// The amount held.
        amount: Money,
    },
    /// The provider started the work.
    WorkStarted {},
    /// The provider marked the work done.
    WorkDone {},
    /// The work was confirmed.
    ServiceOrderConfirmed {
        /// True when the confirmation period ran out.
        automatic: bool,
    },
    /// The escrow was paid out to the provider.
    PayoutReleased {
        /// The payout.
        payout: Payout,
    },
    /// The order was cancelled.
    ServiceOrderCancelled {
        /// Who cancelled it.
        by: CancelledBy,
        /// Why, when given.
        #[serde(default)]
        reason: Option<Reason>,
        /// The escrowed payment goes back to the customer.
        refund_due: bool,
    },
    /// The escrowed payment of the cancelled order went back to the customer.
    ServiceOrderRefunded {
        /// The payment's refund.
        refund_id: RefundId,
        /// How much.
        amount: Money,
    },
    /// The customer reviewed the provider.
    ServiceOrderReviewed {
        /// The provider reviewed.
        provider_id: UserId,
        /// The review.
        review: Review,
    },
    /// The customer reviewed the provider, and the comment holds a sensitive word: the
    /// review waits for an admin (pending_moderation).
    ServiceOrderReviewHeld {
        /// The provider reviewed.
        provider_id: UserId,
        /// The review.
        review: Review,
    },
    /// An admin published the held review.
    ServiceOrderReviewPublished {},
    /// An admin rejected the review.
    ServiceOrderReviewRejected {
        /// Why.
        reason: Reason,
    },
}

impl DomainEvent for ServiceOrderEvent {
    fn event_type(&self) -> String {
        match self {
            ServiceOrderEvent::ServiceOrderPublished { .. } => "ServiceOrderPublished",
            ServiceOrderEvent::ServiceOrderApproved {} => "ServiceOrderApproved",
            ServiceOrderEvent::ServiceOrderRejected { .. } => "ServiceOrderRejected",
            ServiceOrderEvent::ServiceOrderAccepted { .. } => "ServiceOrderAccepted",
            ServiceOrderEvent::ServicePaymentAttached { .. } => "ServicePaymentAttached",
            ServiceOrderEvent::ServiceOrderPaid { .. } => "ServiceOrderPaid",
            ServiceOrderEvent::WorkStarted {} => "WorkStarted",
            ServiceOrderEvent::WorkDone {} => "WorkDone",
            ServiceOrderEvent::ServiceOrderConfirmed { .. } => "ServiceOrderConfirmed",
            ServiceOrderEvent::PayoutReleased { .. } => "PayoutReleased",
            ServiceOrderEvent::ServiceOrderCancelled { .. } => "ServiceOrderCancelled",
            ServiceOrderEvent::ServiceOrderRefunded { .. } => "ServiceOrderRefunded",
            ServiceOrderEvent::ServiceOrderReviewed { .. } => "ServiceOrderReviewed",
            ServiceOrderEvent::ServiceOrderReviewHeld { .. } => "ServiceOrderReviewHeld",
            ServiceOrderEvent::ServiceOrderReviewPublished {} => "ServiceOrderReviewPublished",
            ServiceOrderEvent::ServiceOrderReviewRejected { .. } => "ServiceOrderReviewRejected",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`ServiceOrderCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceOrderError {
    /// The order does not exist.
    #[error("no such service order")]
    NotFound,
    /// An order with this id was published with other contents.
    #[error("a service order with this id exists already")]
    AlreadyExists,
    /// The price is zero.
    #[error("price must be more than zero")]
    InvalidPrice,
    /// Another provider accepted the order first.
    #[error("the order has been accepted by another provider")]
    AlreadyAccepted,
    /// The provider is not verified.
    #[error("only verified providers accept service orders (this provider is {0})")]
    ProviderNotVerified(&'static str),
    /// The provider's skills or areas do not match the order.
    #[error("the order's service type or area is not among the provider's skills and areas")]
    ProviderNotMatching,
    /// The order cannot be paid in its state, or not with this payment.
    #[error("the service order is {0}: it is paid once, after acceptance")]
    NotPayable(&'static str),
    /// The order was reviewed already.
    #[error("the service order was reviewed already")]
    AlreadyReviewed,
    /// The order has no review to moderate.
    #[error("the service order has no review")]
    NotReviewed,
    /// A rejected review is not published again.
    #[error("cannot publish a review that is {0}")]
    ReviewNotPublishable(&'static str),
    /// The caller is not the provider who accepted the order.
    #[error("no such service order")]
    NotTheProvider,
    /// The transition is not allowed from the order's state (for this caller).
    #[error("cannot {action} a service order that is {status}")]
    NotAllowed {
        /// What was tried.
        action: &'static str,
        /// The order's status.
        status: &'static str,
    },
}

impl ServiceOrderError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceOrderError::NotFound | ServiceOrderError::NotTheProvider => {
                "service_order_not_found"
            }
            ServiceOrderError::AlreadyExists => "service_order_exists",
            ServiceOrderError::InvalidPrice => "invalid_price",
            ServiceOrderError::AlreadyAccepted => "already_accepted",
            ServiceOrderError::ProviderNotVerified(_) => "provider_not_verified",
            ServiceOrderError::ProviderNotMatching => "provider_not_matching",
            ServiceOrderError::NotPayable(_) => "service_order_not_payable",
            ServiceOrderError::AlreadyReviewed => "already_reviewed",
            ServiceOrderError::NotReviewed => "not_reviewed",
            ServiceOrderError::ReviewNotPublishable(_) => "invalid_transition",
            ServiceOrderError::NotAllowed { .. } => "transition_not_allowed",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceOrderError::NotFound | ServiceOrderError::NotTheProvider => ErrorKind::NotFound,
            ServiceOrderError::InvalidPrice => ErrorKind::Invalid,
            _ => ErrorKind::Refused,
        }
    }
}

impl DomainError for ServiceOrderError {
    fn code(&self) -> &'static str {
        ServiceOrderError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        ServiceOrderError::kind(self)
    }
}

/// A service order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceOrder {
    request: Option<ServiceRequest>,
    status: Option<ServiceOrderStatus>,
    provider_id: Option<UserId>,
    payment_id: Option<PaymentId>,
    escrow: Option<Money>,
    payout: Option<Payout>,
    cancelled_by: Option<CancelledBy>,
    refund_due: bool,
    refunded: Option<(RefundId, Money)>,
    reason: Option<Reason>,
    review: Option<Review>,
    #[serde(default)]
    review_status: Option<ReviewStatus>,
}

impl ServiceOrder {
    /// What was asked for, once published.
    pub fn request(&self) -> Option<&ServiceRequest> {
        self.request.as_ref()
    }

    /// The status, once published.
    pub fn status(&self) -> Option<ServiceOrderStatus> {
        self.status
    }

    /// The provider who accepted it.
    pub fn provider_id(&self) -> Option<UserId> {
        self.provider_id
    }

    /// The payment attached last.
    pub fn payment_id(&self) -> Option<PaymentId> {
        self.payment_id
    }

    /// What is held in escrow (or was, before payout or refund).
    pub fn escrow(&self) -> Option<&Money> {
        self.escrow.as_ref()
    }

    /// The payout to the provider, once released.
    pub fn payout(&self) -> Option<&Payout> {
        self.payout.as_ref()
    }

    /// Who cancelled it.
    pub fn cancelled_by(&self) -> Option<CancelledBy> {
        self.cancelled_by
    }

    /// Whether the cancellation owes the customer a refund.
    pub fn refund_due(&self) -> bool {
        self.refund_due
    }

    /// The refund, once recorded.
    pub fn refunded(&self) -> Option<&(RefundId, Money)> {
        self.refunded.as_ref()
    }

    /// The reason of a rejection or cancellation.
    pub fn reason(&self) -> Option<&Reason> {
        self.reason.as_ref()
    }

    /// The review, once given.
    pub fn review(&self) -> Option<&Review> {
        self.review.as_ref()
    }

    /// Where the review stands in moderation, once given: published, pending_moderation
    /// or rejected.
    pub fn review_status(&self) -> Option<ReviewStatus> {
        self.review
            .as_ref()
            .map(|_| self.review_status.unwrap_or(ReviewStatus::Published))
    }

    /// Whether `user` is a party of the order: its customer or its accepting provider.
    pub fn is_party(&self, user: UserId) -> bool {
        self.request.as_ref().is_some_and(|r| r.customer_id == user)
            || self.provider_id == Some(user)
    }

    fn not_allowed(&self, action: &'static str) -> ServiceOrderError {
        ServiceOrderError::NotAllowed {
            action,
            status: self.status.map(|s| s.as_str()).unwrap_or("missing"),
        }
    }

    fn existing(&self) -> Result<(&ServiceRequest, ServiceOrderStatus), ServiceOrderError> {
        match (&self.request, self.status) {
            (Some(request), Some(status)) => Ok((request, status)),
            _ => Err(ServiceOrderError::NotFound),
        }
    }

    fn decide(
        &self,
        command: ServiceOrderCommand,
    ) -> Result<Vec<ServiceOrderEvent>, ServiceOrderError> {
        use ServiceOrderStatus as S;
        if let ServiceOrderCommand::Publish(request) = command {
            if let Some(existing) = &self.request {
                return if *existing == request {
                    Ok(vec![])
                } else {
                    Err(ServiceOrderError::AlreadyExists)
                };
            }
            if request.price.is_zero() {
                return Err(ServiceOrderError::InvalidPrice);
            }
            return Ok(vec![ServiceOrderEvent::ServiceOrderPublished { request }]);
        }
        let (request, status) = self.existing()?;
        let events = match command {
            ServiceOrderCommand::Publish(_) => unreachable!("handled above"),
            ServiceOrderCommand::Approve => match status {
                S::PendingReview => vec![ServiceOrderEvent::ServiceOrderApproved {}],
                S::Pending => vec![],
                _ => return Err(self.not_allowed("approve")),
            },
            ServiceOrderCommand::Reject { reason } => match status {
                S::PendingReview => vec![ServiceOrderEvent::ServiceOrderRejected { reason }],
                S::Rejected if self.reason.as_ref() == Some(&reason) => vec![],
                _ => return Err(self.not_allowed("reject")),
            },
            ServiceOrderCommand::Accept {
                provider_id,
                qualification,
            } => {
                if let Some(winner) = self.provider_id {
                    return if winner == provider_id {
                        Ok(vec![])
                    } else {
                        Err(ServiceOrderError::AlreadyAccepted)
                    };
                }
                if status != S::Pending {
                    return Err(self.not_allowed("accept"));
                }
                if qualification.status != VerificationStatus::Verified {
                    return Err(ServiceOrderError::ProviderNotVerified(
                        qualification.status.as_str(),
                    ));
                }
                if !qualification.matches(&request.service_type, request.location) {
                    return Err(ServiceOrderError::ProviderNotMatching);
                }
                vec![ServiceOrderEvent::ServiceOrderAccepted { provider_id }]
            }
            ServiceOrderCommand::AttachPayment { payment_id } => match status {
                S::Accepted if self.payment_id == Some(payment_id) => vec![],
                S::Accepted => vec![ServiceOrderEvent::ServicePaymentAttached { payment_id }],
                other => return Err(ServiceOrderError::NotPayable(other.as_str())),
            },
            ServiceOrderCommand::MarkPaid { payment_id } => {
                if self.payment_id != Some(payment_id) {
                    return Err(ServiceOrderError::NotPayable(status.as_str()));
                }
                match status {
                    S::Accepted => vec![ServiceOrderEvent::ServiceOrderPaid {
                        payment_id,
                        amount: request.price.clone(),
                    }],
                    _ if self.escrow.is_some() => vec![],
                    other => return Err(ServiceOrderError::NotPayable(other.as_str())),
                }
            }
            ServiceOrderCommand::Start { provider_id } => {
                if self.provider_id != Some(provider_id) {
                    return Err(ServiceOrderError::NotTheProvider);
                }
                match status {
                    S::Paid => vec![ServiceOrderEvent::WorkStarted {}],
                    S::InProgress => vec![],
                    _ => return Err(self.not_allowed("start")),
                }
            }
            ServiceOrderCommand::Complete { provider_id } => {
                if self.provider_id != Some(provider_id) {
                    return Err(ServiceOrderError::NotTheProvider);
                }
                match status {
                    S::InProgress => vec![ServiceOrderEvent::WorkDone {}],
                    S::Done => vec![],
                    _ => return Err(self.not_allowed("complete")),
                }
            }
            ServiceOrderCommand::Confirm { automatic } => match status {
                S::Done => vec![ServiceOrderEvent::ServiceOrderConfirmed { automatic }],
                S::Completed | S::Reviewed => vec![],
                _ => return Err(self.not_allowed("confirm")),
            },
            ServiceOrderCommand::ReleasePayout { payout_id } => {
                if let Some(payout) = &self.payout {
                    return if payout.payout_id == payout_id {
                        Ok(vec![])
                    } else {
                        Err(self.not_allowed("pay out"))
                    };
                }
                match (status, &self.escrow, self.provider_id) {
                    (S::Completed | S::Reviewed, Some(amount), Some(provider_id)) => {
                        vec![ServiceOrderEvent::PayoutReleased {
                            payout: Payout {
                                payout_id,
                                provider_id,
                                amount: amount.clone(),
                            },
                        }]
                    }
                    _ => return Err(self.not_allowed("pay out")),
                }
            }
            ServiceOrderCommand::Cancel { by, reason } => {
                let allowed = match (by, status) {
                    (_, S::Cancelled) => return Ok(vec![]),
                    (
                        CancelledBy::Customer,
                        S::PendingReview | S::Pending | S::Accepted | S::Paid,
                    ) => true,
                    (CancelledBy::Customer, _) => false,
                    (CancelledBy::Admin, S::Rejected) => false,
                    (CancelledBy::Admin, S::Completed | S::Reviewed) => self.payout.is_none(),
                    (CancelledBy::Admin, _) => true,
                };
                if !allowed {
                    return Err(self.not_allowed("cancel"));
                }
                vec![ServiceOrderEvent::ServiceOrderCancelled {
                    by,
                    reason,
                    refund_due: self.escrow.is_some(),
                }]
            }
            ServiceOrderCommand::RecordRefund { refund_id, amount } => {
                match (&self.refunded, status, self.refund_due) {
                    (Some((recorded, _)), _, _) if *recorded == refund_id => vec![],
                    (None, S::Cancelled, true) => {
                        vec![ServiceOrderEvent::ServiceOrderRefunded { refund_id, amount }]
                    }
                    _ => return Err(self.not_allowed("refund")),
                }
            }
            ServiceOrderCommand::Review { review, flagged } => match (status, self.provider_id) {
                (S::Completed, Some(provider_id)) if flagged => {
                    vec![ServiceOrderEvent::ServiceOrderReviewHeld {
                        provider_id,
                        review,
                    }]
                }
                (S::Completed, Some(provider_id)) => {
                    vec![ServiceOrderEvent::ServiceOrderReviewed {
                        provider_id,
                        review,
                    }]
                }
                (S::Reviewed, _) => return Err(ServiceOrderError::AlreadyReviewed),
                _ => return Err(self.not_allowed("review")),
            },
            ServiceOrderCommand::PublishReview => {
                match self.review_status().ok_or(ServiceOrderError::NotReviewed)? {
                    ReviewStatus::PendingModeration | ReviewStatus::Hidden => {
                        vec![ServiceOrderEvent::ServiceOrderReviewPublished {}]
                    }
                    ReviewStatus::Published => vec![],
                    ReviewStatus::Rejected => {
                        return Err(ServiceOrderError::ReviewNotPublishable("rejected"))
                    }
                }
            }
            ServiceOrderCommand::RejectReview { reason } => {
                match self.review_status().ok_or(ServiceOrderError::NotReviewed)? {
                    ReviewStatus::Rejected => vec![],
                    _ => vec![ServiceOrderEvent::ServiceOrderReviewRejected { reason }],
                }
            }
        };
        Ok(events)
    }
}

impl Aggregate for ServiceOrder {
    const TYPE: &'static str = "service_order";
    type Command = ServiceOrderCommand;
    type Event = ServiceOrderEvent;
    type Error = ServiceOrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use ServiceOrderStatus as S;
        match event {
            ServiceOrderEvent::ServiceOrderPublished { request } => {
                self.request = Some(request);
                self.status = Some(S::PendingReview);
            }
            ServiceOrderEvent::ServiceOrderApproved {} => self.status = Some(S::Pending),
            ServiceOrderEvent::ServiceOrderRejected { reason } => {
                self.status = Some(S::Rejected);
                self.reason = Some(reason);
            }
            ServiceOrderEvent::ServiceOrderAccepted { provider_id } => {
                self.status = Some(S::Accepted);
                self.provider_id = Some(provider_id);
            }
            ServiceOrderEvent::ServicePaymentAttached { payment_id } => {
                self.payment_id = Some(payment_id);
            }
            ServiceOrderEvent::ServiceOrderPaid { amount, .. } => {
                self.status = Some(S::Paid);
                self.escrow = Some(amount);
            }
            ServiceOrderEvent::WorkStarted {} => self.status = Some(S::InProgress),
            ServiceOrderEvent::WorkDone {} => self.status = Some(S::Done),
            ServiceOrderEvent::ServiceOrderConfirmed { .. } => self.status = Some(S::Completed),
            ServiceOrderEvent::PayoutReleased { payout } => self.payout = Some(payout),
            ServiceOrderEvent::ServiceOrderCancelled {
                by,
                reason,
                refund_due,
            } => {
                self.status = Some(S::Cancelled);
                self.cancelled_by = Some(by);
                self.reason = reason;
                self.refund_due = refund_due;
            }
            ServiceOrderEvent::ServiceOrderRefunded { refund_id, amount } => {
                self.refunded = Some((refund_id, amount));
            }
            ServiceOrderEvent::ServiceOrderReviewed { review, .. } => {
                self.status = Some(S::Reviewed);
                self.review = Some(review);
                self.review_status = Some(ReviewStatus::Published);
            }
            ServiceOrderEvent::ServiceOrderReviewHeld { review, .. } => {
                self.status = Some(S::Reviewed);
                self.review = Some(review);
                self.review_status = Some(ReviewStatus::PendingModeration);
            }
            ServiceOrderEvent::ServiceOrderReviewPublished {} => {
                self.review_status = Some(ReviewStatus::Published);
            }
            ServiceOrderEvent::ServiceOrderReviewRejected { .. } => {
                self.review_status = Some(ReviewStatus::Rejected);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::{eur, id};

    fn state(events: Vec<ServiceOrderEvent>) -> ServiceOrder {
        let mut order = ServiceOrder::default();
        for event in events {
            order.apply(event);
        }
        order
    }

    fn given(events: Vec<ServiceOrderEvent>) -> AggregateTestExecutor<ServiceOrder> {
        TestFramework::<ServiceOrder>::with(()).given(events)
    }

    fn customer() -> UserId {
        id(1)
    }

    fn provider(n: u128) -> UserId {
        id(10 + n)
    }

    fn plumbing() -> ServiceType {
        ServiceType::parse("plumbing").unwrap()
    }

    fn request() -> ServiceRequest {
        ServiceRequest {
            customer_id: customer(),
            title: Title::parse("Fix the sink").unwrap(),
            description: PersonalText::clear(customer(), "It drips."),
            service_type: plumbing(),
            price: eur(8000),
            location: ServiceArea::North,
            address: PersonalText::clear(customer(), "1 Main St"),
        }
    }

    fn verified() -> Qualification {
        Qualification {
            status: VerificationStatus::Verified,
            skills: vec![plumbing()],
            service_areas: vec![ServiceArea::North],
        }
    }

    fn accept(n: u128) -> ServiceOrderCommand {
        ServiceOrderCommand::Accept {
            provider_id: provider(n),
            qualification: verified(),
        }
    }

    fn payment() -> PaymentId {
        id(50)
    }

    fn review() -> Review {
        let five = Stars::parse(5, "rating").unwrap();
        Review {
            rating: Stars::parse(4, "rating").unwrap(),
            comment: PersonalText::clear(customer(), "Quick and clean."),
            dimensions: ReviewDimensions {
                professionalism: five,
                attitude: five,
                punctuality: Stars::parse(3, "punctuality").unwrap(),
            },
        }
    }

    fn published() -> Vec<ServiceOrderEvent> {
        vec![ServiceOrderEvent::ServiceOrderPublished { request: request() }]
    }

    fn approved() -> Vec<ServiceOrderEvent> {
        let mut events = published();
        events.push(ServiceOrderEvent::ServiceOrderApproved {});
        events
    }

    fn accepted() -> Vec<ServiceOrderEvent> {
        let mut events = approved();
        events.push(ServiceOrderEvent::ServiceOrderAccepted {
            provider_id: provider(1),
        });
        events
    }

    fn paid() -> Vec<ServiceOrderEvent> {
        let mut events = accepted();
        events.push(ServiceOrderEvent::ServicePaymentAttached {
            payment_id: payment(),
        });
        events.push(ServiceOrderEvent::ServiceOrderPaid {
            payment_id: payment(),
            amount: eur(8000),
        });
        events
    }

    fn done() -> Vec<ServiceOrderEvent> {
        let mut events = paid();
        events.push(ServiceOrderEvent::WorkStarted {});
        events.push(ServiceOrderEvent::WorkDone {});
        events
    }

    fn completed() -> Vec<ServiceOrderEvent> {
        let mut events = done();
        events.push(ServiceOrderEvent::ServiceOrderConfirmed { automatic: false });
        events
    }

    fn payout() -> Payout {
        Payout {
            payout_id: id(60),
            provider_id: provider(1),
            amount: eur(8000),
        }
    }

    #[test]
    fn a_published_order_waits_for_review_and_a_repeat_is_a_no_op() {
        given(vec![])
            .when(ServiceOrderCommand::Publish(request()))
            .then_expect_events(published());
        given(published())
            .when(ServiceOrderCommand::Publish(request()))
            .then_expect_events(vec![]);
        let mut free = request();
        free.price = eur(0);
        given(vec![])
            .when(ServiceOrderCommand::Publish(free))
            .then_expect_error(ServiceOrderError::InvalidPrice);
    }

    #[test]
    fn an_admin_approves_or_rejects_only_an_order_pending_review() {
        given(published())
            .when(ServiceOrderCommand::Approve)
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderApproved {}]);
        let reason = Reason::parse("not a home service").unwrap();
        given(published())
            .when(ServiceOrderCommand::Reject {
                reason: reason.clone(),
            })
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderRejected {
                reason: reason.clone(),
            }]);
        given(accepted())
            .when(ServiceOrderCommand::Reject { reason })
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "reject",
                status: "accepted",
            });
        given(vec![])
            .when(ServiceOrderCommand::Approve)
            .then_expect_error(ServiceOrderError::NotFound);
    }

    #[test]
    fn the_first_provider_wins_and_every_later_one_is_already_accepted() {
        given(approved()).when(accept(1)).then_expect_events(vec![
            ServiceOrderEvent::ServiceOrderAccepted {
                provider_id: provider(1),
            },
        ]);
        given(accepted())
            .when(accept(2))
            .then_expect_error(ServiceOrderError::AlreadyAccepted);
        given(paid())
            .when(accept(3))
            .then_expect_error(ServiceOrderError::AlreadyAccepted);
        // The winner repeating itself is a no-op.
        given(accepted()).when(accept(1)).then_expect_events(vec![]);
    }

    #[test]
    fn only_a_verified_matching_provider_accepts_an_approved_order() {
        given(published())
            .when(accept(1))
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "accept",
                status: "pending_review",
            });
        let mut pending = verified();
        pending.status = VerificationStatus::PendingVerification;
        given(approved())
            .when(ServiceOrderCommand::Accept {
                provider_id: provider(1),
                qualification: pending,
            })
            .then_expect_error(ServiceOrderError::ProviderNotVerified(
                "pending_verification",
            ));
        let mut elsewhere = verified();
        elsewhere.service_areas = vec![ServiceArea::South];
        given(approved())
            .when(ServiceOrderCommand::Accept {
                provider_id: provider(1),
                qualification: elsewhere,
            })
            .then_expect_error(ServiceOrderError::ProviderNotMatching);
        let mut other_skill = verified();
        other_skill.skills = vec![ServiceType::parse("cleaning").unwrap()];
        given(approved())
            .when(ServiceOrderCommand::Accept {
                provider_id: provider(1),
                qualification: other_skill,
            })
            .then_expect_error(ServiceOrderError::ProviderNotMatching);
    }

    #[test]
    fn the_attached_payment_pays_an_accepted_order_once() {
        given(accepted())
            .when(ServiceOrderCommand::AttachPayment {
                payment_id: payment(),
            })
            .then_expect_events(vec![ServiceOrderEvent::ServicePaymentAttached {
                payment_id: payment(),
            }]);
        given(approved())
            .when(ServiceOrderCommand::AttachPayment {
                payment_id: payment(),
            })
            .then_expect_error(ServiceOrderError::NotPayable("pending"));
        let mut attached = accepted();
        attached.push(ServiceOrderEvent::ServicePaymentAttached {
            payment_id: payment(),
        });
        given(attached.clone())
            .when(ServiceOrderCommand::MarkPaid {
                payment_id: payment(),
            })
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderPaid {
                payment_id: payment(),
                amount: eur(8000),
            }]);
        given(attached)
            .when(ServiceOrderCommand::MarkPaid { payment_id: id(51) })
            .then_expect_error(ServiceOrderError::NotPayable("accepted"));
        given(paid())
            .when(ServiceOrderCommand::MarkPaid {
                payment_id: payment(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn only_the_accepting_provider_starts_and_completes_a_paid_order() {
        given(paid())
            .when(ServiceOrderCommand::Start {
                provider_id: provider(1),
            })
            .then_expect_events(vec![ServiceOrderEvent::WorkStarted {}]);
        given(paid())
            .when(ServiceOrderCommand::Start {
                provider_id: provider(2),
            })
            .then_expect_error(ServiceOrderError::NotTheProvider);
        given(accepted())
            .when(ServiceOrderCommand::Start {
                provider_id: provider(1),
            })
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "start",
                status: "accepted",
            });
        let mut started = paid();
        started.push(ServiceOrderEvent::WorkStarted {});
        given(started)
            .when(ServiceOrderCommand::Complete {
                provider_id: provider(1),
            })
            .then_expect_events(vec![ServiceOrderEvent::WorkDone {}]);
    }

    #[test]
    fn confirming_completes_a_done_order_and_the_payout_is_released_once() {
        given(done())
            .when(ServiceOrderCommand::Confirm { automatic: true })
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderConfirmed {
                automatic: true,
            }]);
        given(paid())
            .when(ServiceOrderCommand::Confirm { automatic: false })
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "confirm",
                status: "paid",
            });
        given(completed())
            .when(ServiceOrderCommand::ReleasePayout { payout_id: id(60) })
            .then_expect_events(vec![ServiceOrderEvent::PayoutReleased { payout: payout() }]);
        let mut released = completed();
        released.push(ServiceOrderEvent::PayoutReleased { payout: payout() });
        given(released.clone())
            .when(ServiceOrderCommand::ReleasePayout { payout_id: id(60) })
            .then_expect_events(vec![]);
        given(released)
            .when(ServiceOrderCommand::ReleasePayout { payout_id: id(61) })
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "pay out",
                status: "completed",
            });
        given(done())
            .when(ServiceOrderCommand::ReleasePayout { payout_id: id(60) })
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "pay out",
                status: "done",
            });
    }

    #[test]
    fn the_customer_cancels_until_the_work_starts_with_a_refund_once_paid() {
        given(approved())
            .when(ServiceOrderCommand::Cancel {
                by: CancelledBy::Customer,
                reason: None,
            })
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderCancelled {
                by: CancelledBy::Customer,
                reason: None,
                refund_due: false,
            }]);
        given(paid())
            .when(ServiceOrderCommand::Cancel {
                by: CancelledBy::Customer,
                reason: None,
            })
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderCancelled {
                by: CancelledBy::Customer,
                reason: None,
                refund_due: true,
            }]);
        let mut started = paid();
        started.push(ServiceOrderEvent::WorkStarted {});
        given(started)
            .when(ServiceOrderCommand::Cancel {
                by: CancelledBy::Customer,
                reason: None,
            })
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "cancel",
                status: "in_progress",
            });
    }

    #[test]
    fn an_admin_cancels_until_the_payout_and_the_refund_is_recorded_once() {
        given(completed())
            .when(ServiceOrderCommand::Cancel {
                by: CancelledBy::Admin,
                reason: None,
            })
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderCancelled {
                by: CancelledBy::Admin,
                reason: None,
                refund_due: true,
            }]);
        let mut released = completed();
        released.push(ServiceOrderEvent::PayoutReleased { payout: payout() });
        given(released)
            .when(ServiceOrderCommand::Cancel {
                by: CancelledBy::Admin,
                reason: None,
            })
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "cancel",
                status: "completed",
            });
        let mut cancelled = paid();
        cancelled.push(ServiceOrderEvent::ServiceOrderCancelled {
            by: CancelledBy::Admin,
            reason: None,
            refund_due: true,
        });
        let refund = ServiceOrderEvent::ServiceOrderRefunded {
            refund_id: id(70),
            amount: eur(8000),
        };
        given(cancelled.clone())
            .when(ServiceOrderCommand::RecordRefund {
                refund_id: id(70),
                amount: eur(8000),
            })
            .then_expect_events(vec![refund.clone()]);
        cancelled.push(refund);
        given(cancelled.clone())
            .when(ServiceOrderCommand::RecordRefund {
                refund_id: id(70),
                amount: eur(8000),
            })
            .then_expect_events(vec![]);
        // A cancelled order cannot be paid out.
        given(cancelled)
            .when(ServiceOrderCommand::ReleasePayout { payout_id: id(60) })
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "pay out",
                status: "cancelled",
            });
    }

    #[test]
    fn a_completed_order_is_reviewed_once() {
        given(completed())
            .when(ServiceOrderCommand::Review {
                review: review(),
                flagged: false,
            })
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderReviewed {
                provider_id: provider(1),
                review: review(),
            }]);
        let mut reviewed = completed();
        reviewed.push(ServiceOrderEvent::ServiceOrderReviewed {
            provider_id: provider(1),
            review: review(),
        });
        given(reviewed)
            .when(ServiceOrderCommand::Review {
                review: review(),
                flagged: false,
            })
            .then_expect_error(ServiceOrderError::AlreadyReviewed);
        given(done())
            .when(ServiceOrderCommand::Review {
                review: review(),
                flagged: false,
            })
            .then_expect_error(ServiceOrderError::NotAllowed {
                action: "review",
                status: "done",
            });
    }

    #[test]
    fn a_review_with_a_sensitive_word_waits_for_an_admin() {
        let reviewed = |mut events: Vec<ServiceOrderEvent>| {
            events.push(ServiceOrderEvent::ServiceOrderReviewed {
                provider_id: provider(1),
                review: review(),
            });
            events
        };
        given(completed())
            .when(ServiceOrderCommand::Review {
                review: review(),
                flagged: true,
            })
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderReviewHeld {
                provider_id: provider(1),
                review: review(),
            }]);
        let mut held = completed();
        held.push(ServiceOrderEvent::ServiceOrderReviewHeld {
            provider_id: provider(1),
            review: review(),
        });
        given(held.clone())
            .when(ServiceOrderCommand::Review {
                review: review(),
                flagged: false,
            })
            .then_expect_error(ServiceOrderError::AlreadyReviewed);
        assert_eq!(
            state(held.clone()).review_status(),
            Some(ReviewStatus::PendingModeration)
        );
        assert_eq!(
            state(reviewed(completed())).review_status(),
            Some(ReviewStatus::Published)
        );
        assert_eq!(state(completed()).review_status(), None);
        given(held.clone())
            .when(ServiceOrderCommand::PublishReview)
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderReviewPublished {}]);
        given(reviewed(completed()))
            .when(ServiceOrderCommand::PublishReview)
            .then_expect_events(vec![]);
        let reason = Reason::parse("Insults the provider.").unwrap();
        given(held.clone())
            .when(ServiceOrderCommand::RejectReview {
                reason: reason.clone(),
            })
            .then_expect_events(vec![ServiceOrderEvent::ServiceOrderReviewRejected {
                reason: reason.clone(),
            }]);
        let mut rejected = held;
        rejected.push(ServiceOrderEvent::ServiceOrderReviewRejected {
            reason: reason.clone(),
        });
        assert_eq!(
            state(rejected.clone()).review_status(),
            Some(ReviewStatus::Rejected)
        );
        given(rejected.clone())
            .when(ServiceOrderCommand::RejectReview {
                reason: reason.clone(),
            })
            .then_expect_events(vec![]);
        given(rejected)
            .when(ServiceOrderCommand::PublishReview)
            .then_expect_error(ServiceOrderError::ReviewNotPublishable("rejected"));
        given(completed())
            .when(ServiceOrderCommand::PublishReview)
            .then_expect_error(ServiceOrderError::NotReviewed);
    }

    #[test]
    fn stars_are_one_to_five() {
        assert!(Stars::parse(0, "rating").is_err());
        assert!(Stars::parse(6, "attitude").unwrap_err().field() == "attitude");
        assert_eq!(Stars::parse(5, "rating").unwrap().get(), 5);
        assert!(serde_json::from_str::<Stars>("7").is_err());
    }
}
