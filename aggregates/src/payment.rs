//! The life of one payment of an order or a booking, as reported by the payment provider:
//! created, authorized, captured, failed or voided, then refunded in one or several parts.
//! Provider callbacks may arrive twice or late, so repeating a transition that already
//! happened is a no-op.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::common::{DomainError, ErrorKind, Money, PaymentId, RefundId, UserId};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Created; the customer has not paid yet.
    Created,
    /// The provider holds the funds.
    Authorized,
    /// The funds were taken.
    Captured,
    /// The provider refused the payment.
    Failed,
    /// The payment was abandoned before any funds were taken.
    Voided,
    /// Part of the captured amount was given back.
    PartiallyRefunded,
    /// The whole captured amount was given back.
    Refunded,
}

impl PaymentStatus {
    /// The snake_case name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Created => "created",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Voided => "voided",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
        }
    }

    /// True once funds have been captured (whatever was refunded since).
    pub fn is_captured(&self) -> bool {
        matches!(
            self,
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded
        )
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Commands accepted by a [`Payment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaymentCommand {
    /// Creates the payment.
    Create {
        /// The payment's id (also the aggregate id).
        payment_id: PaymentId,
        /// The order or booking being paid.
        order_id: Uuid,
        /// Who pays.
        customer_id: UserId,
        /// Amount to take; more than zero.
        amount: Money,
        /// Payment method, e.g. "card" (1 to 50 characters).
        method: String,
        /// The provider's token for the customer's means of payment, sealed by the gateway
        /// (1 to 600 characters): the token itself never enters an event.
        sealed_token: String,
    },
    /// The provider authorized the payment.
    Authorize {
        /// The provider's reference of the operation.
        provider_ref: String,
    },
    /// The provider captured the funds.
    Capture {
        /// The provider's reference of the operation.
        provider_ref: String,
        /// Amount captured; must equal the payment's amount.
        amount: Money,
    },
    /// The provider refused the payment.
    Fail {
        /// Why.
        reason: String,
    },
    /// The payment is abandoned before capture.
    Void {
        /// Why.
        reason: String,
    },
    /// Gives back part or all of the captured amount.
    Refund {
        /// Id of this refund; repeating it is a no-op.
        refund_id: RefundId,
        /// Amount given back; more than zero.
        amount: Money,
        /// Why.
        reason: String,
    },
}

/// Events of a [`Payment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaymentEvent {
    /// The payment was created.
    PaymentCreated {
        /// The payment's id.
        payment_id: PaymentId,
        /// The order or booking being paid.
        order_id: Uuid,
        /// Who pays.
        customer_id: UserId,
        /// Amount to take.
        amount: Money,
        /// Payment method.
        method: String,
        /// The provider's token for the means of payment, sealed (version 2; version 1
        /// carried the token itself, as `token`).
        sealed_token: String,
    },
    /// The provider authorized the payment.
    PaymentAuthorized {
        /// The provider's reference.
        provider_ref: String,
    },
    /// The funds were captured.
    PaymentCaptured {
        /// The provider's reference.
        provider_ref: String,
        /// Amount captured.
        amount: Money,
    },
    /// The provider refused the payment.
    PaymentFailed {
        /// Why.
        reason: String,
    },
    /// The payment was abandoned before capture.
    PaymentVoided {
        /// Why.
        reason: String,
    },
    /// Part or all of the captured amount was given back.
    PaymentRefunded {
        /// Id of this refund.
        refund_id: RefundId,
        /// Amount given back by this refund.
        amount: Money,
        /// Amount given back by all refunds so far, this one included.
        total_refunded: Money,
        /// Why.
        #[serde(default)]
        reason: String,
    },
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        match self {
            PaymentEvent::PaymentCreated { .. } => "PaymentCreated",
            PaymentEvent::PaymentAuthorized { .. } => "PaymentAuthorized",
            PaymentEvent::PaymentCaptured { .. } => "PaymentCaptured",
            PaymentEvent::PaymentFailed { .. } => "PaymentFailed",
            PaymentEvent::PaymentVoided { .. } => "PaymentVoided",
            PaymentEvent::PaymentRefunded { .. } => "PaymentRefunded",
        }
        .to_string()
    }

    /// "2" for [`PaymentEvent::PaymentRefunded`], whose version 1 carried neither
    /// `total_refunded` nor `reason`, and for [`PaymentEvent::PaymentCreated`], whose
    /// version 1 carried the token in the clear (the event store upcasts both on load); "1"
    /// otherwise.
    fn event_version(&self) -> String {
        match self {
            PaymentEvent::PaymentRefunded { .. } | PaymentEvent::PaymentCreated { .. } => "2",
            PaymentEvent::PaymentAuthorized { .. }
            | PaymentEvent::PaymentCaptured { .. }
            | PaymentEvent::PaymentFailed { .. }
            | PaymentEvent::PaymentVoided { .. } => "1",
        }
        .to_string()
    }
}

/// Why a [`PaymentCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The amount must be more than zero.
    #[error("amount must be more than zero")]
    InvalidAmount,
    /// The method is empty or longer than 50 characters.
    #[error("method must be 1 to 50 characters")]
    InvalidMethod,
    /// The sealed token is empty or longer than 600 characters.
    #[error("the sealed token must be 1 to 600 characters")]
    InvalidToken,
    /// The payment already exists with other content.
    #[error("payment already exists")]
    AlreadyExists,
    /// The payment's status does not allow the action.
    #[error("cannot {action} a payment that is {from}")]
    InvalidTransition {
        /// Status of the payment.
        from: PaymentStatus,
        /// What was attempted.
        action: &'static str,
    },
    /// The captured amount differs from the payment's amount.
    #[error("captured amount {got} differs from payment amount {expected}")]
    AmountMismatch {
        /// The payment's amount.
        expected: Money,
        /// The amount reported.
        got: Money,
    },
    /// The refund is in another currency than the payment.
    #[error("refund currency differs from payment currency")]
    CurrencyMismatch,
    /// The refund would give back more than was captured.
    #[error("refund of {requested} exceeds the {refundable} still refundable")]
    RefundExceedsCaptured {
        /// Amount asked.
        requested: Money,
        /// Amount that can still be refunded.
        refundable: Money,
    },
    /// A refund with this id exists with another amount.
    #[error("refund {refund_id} already exists with another amount")]
    RefundMismatch {
        /// The refund.
        refund_id: RefundId,
    },
    /// The payment was never created.
    #[error("payment not found")]
    PaymentNotFound,
}

impl PaymentError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentError::InvalidAmount => "invalid_amount",
            PaymentError::InvalidMethod => "invalid_method",
            PaymentError::InvalidToken => "invalid_token",
            PaymentError::AlreadyExists => "payment_exists",
            PaymentError::InvalidTransition { .. } => "invalid_transition",
            PaymentError::AmountMismatch { .. } => "amount_mismatch",
            PaymentError::CurrencyMismatch => "currency_mismatch",
            PaymentError::RefundExceedsCaptured { .. } => "refund_exceeds_captured",
            PaymentError::RefundMismatch { .. } => "refund_mismatch",
            PaymentError::PaymentNotFound => "payment_not_found",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PaymentError::InvalidAmount
            | PaymentError::InvalidMethod
            | PaymentError::InvalidToken
            | PaymentError::CurrencyMismatch => ErrorKind::Invalid,
            PaymentError::AlreadyExists
            | PaymentError::InvalidTransition { .. }
            | PaymentError::AmountMismatch { .. }
            | PaymentError::RefundExceedsCaptured { .. }
            | PaymentError::RefundMismatch { .. } => ErrorKind::Refused,
            PaymentError::PaymentNotFound => ErrorKind::NotFound,
        }
    }
}

impl DomainError for PaymentError {
    fn code(&self) -> &'static str {
        PaymentError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        PaymentError::kind(self)
    }
}

/// What a payment is for, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDetails {
    /// The payment's id.
    pub payment_id: PaymentId,
    /// The order or booking being paid.
    pub order_id: Uuid,
    /// Who pays.
    pub customer_id: UserId,
    /// Amount to take.
    pub amount: Money,
    /// Payment method.
    pub method: String,
    /// The provider's token for the means of payment, sealed.
    pub sealed_token: String,
}

impl PaymentDetails {
    /// Whether `other` asks for the same payment: every field but the sealed token, which
    /// differs each time the same token is sealed (so a repeated request is recognised).
    fn same_payment(&self, other: &PaymentDetails) -> bool {
        self.payment_id == other.payment_id
            && self.order_id == other.order_id
            && self.customer_id == other.customer_id
            && self.amount == other.amount
            && self.method == other.method
    }
}

/// One payment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Payment {
    details: Option<PaymentDetails>,
    status: Option<PaymentStatus>,
    provider_ref: Option<String>,
    captured: Option<Money>,
    total_refunded: Option<Money>,
    refunds: BTreeMap<RefundId, Money>,
    reason: Option<String>,
}

impl Payment {
    /// What the payment is for, once created.
    pub fn details(&self) -> Option<&PaymentDetails> {
        self.details.as_ref()
    }

    /// The status, once created.
    pub fn status(&self) -> Option<PaymentStatus> {
        self.status
    }

    /// The amount to take, once created.
    pub fn amount(&self) -> Option<&Money> {
        self.details.as_ref().map(|d| &d.amount)
    }

    /// The order or booking paid, once created.
    pub fn order_id(&self) -> Option<Uuid> {
        self.details.as_ref().map(|d| d.order_id)
    }

    /// The provider's latest reference.
    pub fn provider_ref(&self) -> Option<&str> {
        self.provider_ref.as_deref()
    }

    /// The amount captured, once captured.
    pub fn captured(&self) -> Option<&Money> {
        self.captured.as_ref()
    }

    /// The amount refunded so far, once a refund happened.
    pub fn total_refunded(&self) -> Option<&Money> {
        self.total_refunded.as_ref()
    }

    /// Every refund by id.
    pub fn refunds(&self) -> &BTreeMap<RefundId, Money> {
        &self.refunds
    }

    /// Why the payment failed or was voided.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    fn created(&self) -> Result<(&PaymentDetails, PaymentStatus), PaymentError> {
        match (&self.details, self.status) {
            (Some(d), Some(s)) => Ok((d, s)),
            _ => Err(PaymentError::PaymentNotFound),
        }
    }
}

fn refuse<T>(from: PaymentStatus, action: &'static str) -> Result<T, PaymentError> {
    Err(PaymentError::InvalidTransition { from, action })
}

fn bounded(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max
}

impl Aggregate for Payment {
    const TYPE: &'static str = "payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use PaymentStatus as S;
        let event = match command {
            PaymentCommand::Create {
                payment_id,
                order_id,
                customer_id,
                amount,
                method,
                sealed_token,
            } => {
                if amount.is_zero() {
                    return Err(PaymentError::InvalidAmount);
                }
                if !bounded(&method, 50) {
                    return Err(PaymentError::InvalidMethod);
                }
                if !bounded(&sealed_token, 600) {
                    return Err(PaymentError::InvalidToken);
                }
                let details = PaymentDetails {
                    payment_id,
                    order_id,
                    customer_id,
                    amount,
                    method,
                    sealed_token,
                };
                if let Some(existing) = &self.details {
                    return if existing.same_payment(&details) {
                        Ok(())
                    } else {
                        Err(PaymentError::AlreadyExists)
                    };
                }
                PaymentEvent::PaymentCreated {
                    payment_id: details.payment_id,
                    order_id: details.order_id,
                    customer_id: details.customer_id,
                    amount: details.amount,
                    method: details.method,
                    sealed_token: details.sealed_token,
                }
            }
            PaymentCommand::Authorize { provider_ref } => match self.created()?.1 {
                S::Created => PaymentEvent::PaymentAuthorized { provider_ref },
                // A late authorization callback after capture changes nothing.
                s if s == S::Authorized || s.is_captured() => return Ok(()),
                from => return refuse(from, "authorize"),
            },
            PaymentCommand::Capture {
                provider_ref,
                amount,
            } => {
                let (details, status) = self.created()?;
                if matches!(status, S::Failed | S::Voided) {
                    return refuse(status, "capture");
                }
                if amount != details.amount {
                    return Err(PaymentError::AmountMismatch {
                        expected: details.amount.clone(),
                        got: amount,
                    });
                }
                if status.is_captured() {
                    return Ok(());
                }
                PaymentEvent::PaymentCaptured {
                    provider_ref,
                    amount,
                }
            }
            PaymentCommand::Fail { reason } => match self.created()?.1 {
                S::Created | S::Authorized => PaymentEvent::PaymentFailed { reason },
                // A payment that ended without taking funds stays as it ended.
                S::Failed | S::Voided => return Ok(()),
                from => return refuse(from, "fail"),
            },
            PaymentCommand::Void { reason } => match self.created()?.1 {
                S::Created | S::Authorized => PaymentEvent::PaymentVoided { reason },
                S::Voided | S::Failed => return Ok(()),
                from => return refuse(from, "void"),
            },
            PaymentCommand::Refund {
                refund_id,
                amount,
                reason,
            } => {
                let (details, status) = self.created()?;
                if let Some(existing) = self.refunds.get(&refund_id) {
                    return if *existing == amount {
                        Ok(())
                    } else {
                        Err(PaymentError::RefundMismatch { refund_id })
                    };
                }
                if !status.is_captured() {
                    return refuse(status, "refund");
                }
                if amount.is_zero() {
                    return Err(PaymentError::InvalidAmount);
                }
                if amount.currency() != details.amount.currency() {
                    return Err(PaymentError::CurrencyMismatch);
                }
                let captured = self.captured.clone().unwrap_or(details.amount.clone());
                let already = self
                    .total_refunded
                    .clone()
                    .unwrap_or_else(|| Money::zero(captured.currency().clone()));
                let refundable = captured
                    .checked_sub(&already)
                    .unwrap_or_else(|_| Money::zero(captured.currency().clone()));
                if amount.amount_minor() > refundable.amount_minor() {
                    return Err(PaymentError::RefundExceedsCaptured {
                        requested: amount,
                        refundable,
                    });
                }
                let total_refunded = already
                    .checked_add(&amount)
                    .map_err(|_| PaymentError::InvalidAmount)?;
                PaymentEvent::PaymentRefunded {
                    refund_id,
                    amount,
                    total_refunded,
                    reason,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PaymentEvent::PaymentCreated {
                payment_id,
                order_id,
                customer_id,
                amount,
                method,
                sealed_token,
            } => {
                self.details = Some(PaymentDetails {
                    payment_id,
                    order_id,
                    customer_id,
                    amount,
                    method,
                    sealed_token,
                });
                self.status = Some(PaymentStatus::Created);
            }
            PaymentEvent::PaymentAuthorized { provider_ref } => {
                self.provider_ref = Some(provider_ref);
                self.status = Some(PaymentStatus::Authorized);
            }
            PaymentEvent::PaymentCaptured {
                provider_ref,
                amount,
            } => {
                self.provider_ref = Some(provider_ref);
                self.captured = Some(amount);
                self.status = Some(PaymentStatus::Captured);
            }
            PaymentEvent::PaymentFailed { reason } => {
                self.reason = Some(reason);
                self.status = Some(PaymentStatus::Failed);
            }
            PaymentEvent::PaymentVoided { reason } => {
                self.reason = Some(reason);
                self.status = Some(PaymentStatus::Voided);
            }
            PaymentEvent::PaymentRefunded {
                refund_id,
                amount,
                total_refunded,
                ..
            } => {
                let full = self
                    .captured
                    .as_ref()
                    .is_some_and(|c| total_refunded.amount_minor() >= c.amount_minor());
                self.refunds.insert(refund_id, amount);
                self.total_refunded = Some(total_refunded);
                self.status = Some(if full {
                    PaymentStatus::Refunded
                } else {
                    PaymentStatus::PartiallyRefunded
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<PaymentEvent>) -> AggregateTestExecutor<Payment> {
        TestFramework::<Payment>::with(()).given(events)
    }

    fn create_with(amount: Money, method: &str, sealed_token: &str) -> PaymentCommand {
        PaymentCommand::Create {
            payment_id: id(1),
            order_id: Uuid::from_u128(2),
            customer_id: id(3),
            amount,
            method: method.into(),
            sealed_token: sealed_token.into(),
        }
    }

    fn create() -> PaymentCommand {
        create_with(eur(1000), "card", "tok_123")
    }

    fn created() -> Vec<PaymentEvent> {
        vec![PaymentEvent::PaymentCreated {
            payment_id: id(1),
            order_id: Uuid::from_u128(2),
            customer_id: id(3),
            amount: eur(1000),
            method: "card".into(),
            sealed_token: "tok_123".into(),
        }]
    }

    fn authorized() -> Vec<PaymentEvent> {
        with(
            created(),
            PaymentEvent::PaymentAuthorized {
                provider_ref: "auth_1".into(),
            },
        )
    }

    fn captured() -> Vec<PaymentEvent> {
        with(
            authorized(),
            PaymentEvent::PaymentCaptured {
                provider_ref: "cap_1".into(),
                amount: eur(1000),
            },
        )
    }

    fn refunded(events: Vec<PaymentEvent>, n: u128, amount: i64, total: i64) -> Vec<PaymentEvent> {
        with(
            events,
            PaymentEvent::PaymentRefunded {
                refund_id: id(n),
                amount: eur(amount),
                total_refunded: eur(total),
                reason: "return".into(),
            },
        )
    }

    fn with(mut events: Vec<PaymentEvent>, more: PaymentEvent) -> Vec<PaymentEvent> {
        events.push(more);
        events
    }

    fn state(events: Vec<PaymentEvent>) -> Payment {
        let mut p = Payment::default();
        for e in events {
            p.apply(e);
        }
        p
    }

    fn refund(n: u128, amount: Money) -> PaymentCommand {
        PaymentCommand::Refund {
            refund_id: id(n),
            amount,
            reason: "return".into(),
        }
    }

    fn invalid(from: PaymentStatus, action: &'static str) -> PaymentError {
        PaymentError::InvalidTransition { from, action }
    }

    fn failed() -> PaymentEvent {
        PaymentEvent::PaymentFailed {
            reason: "declined".into(),
        }
    }

    fn voided() -> PaymentEvent {
        PaymentEvent::PaymentVoided {
            reason: "order expired".into(),
        }
    }

    #[test]
    fn create_records_the_payment() {
        given(vec![]).when(create()).then_expect_events(created());
        let p = state(created());
        assert_eq!(p.status(), Some(PaymentStatus::Created));
        assert_eq!(p.amount(), Some(&eur(1000)));
        assert_eq!(p.order_id(), Some(Uuid::from_u128(2)));
    }

    #[test]
    fn create_refuses_a_zero_amount() {
        let err = given(vec![])
            .when(create_with(eur(0), "card", "tok"))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, PaymentError::InvalidAmount);
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn create_refuses_bad_method_or_token() {
        given(vec![])
            .when(create_with(eur(1), " ", "tok"))
            .then_expect_error(PaymentError::InvalidMethod);
        given(vec![])
            .when(create_with(eur(1), &"m".repeat(51), "tok"))
            .then_expect_error(PaymentError::InvalidMethod);
        given(vec![])
            .when(create_with(eur(1), "card", ""))
            .then_expect_error(PaymentError::InvalidToken);
        given(vec![])
            .when(create_with(eur(1), "card", &"t".repeat(601)))
            .then_expect_error(PaymentError::InvalidToken);
    }

    #[test]
    fn create_repeated_identically_is_a_no_op() {
        given(captured()).when(create()).then_expect_events(vec![]);
    }

    #[test]
    fn create_repeated_with_the_token_sealed_again_is_a_no_op() {
        // Sealing the same token twice gives two texts (a fresh nonce each time).
        given(created())
            .when(create_with(eur(1000), "card", "sealed:v1:another"))
            .then_expect_events(vec![]);
        given(created())
            .when(create_with(eur(999), "card", "tok_123"))
            .then_expect_error(PaymentError::AlreadyExists);
    }

    #[test]
    fn create_with_other_content_is_refused() {
        let err = given(created())
            .when(create_with(eur(999), "card", "tok_123"))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, PaymentError::AlreadyExists);
        assert_eq!(err.code(), "payment_exists");
    }

    #[test]
    fn commands_before_creation_are_not_found() {
        let err = given(vec![])
            .when(PaymentCommand::Authorize {
                provider_ref: "a".into(),
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, PaymentError::PaymentNotFound);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        given(vec![])
            .when(refund(1, eur(1)))
            .then_expect_error(PaymentError::PaymentNotFound);
    }

    #[test]
    fn authorize_moves_created_to_authorized() {
        given(created())
            .when(PaymentCommand::Authorize {
                provider_ref: "auth_1".into(),
            })
            .then_expect_events(vec![PaymentEvent::PaymentAuthorized {
                provider_ref: "auth_1".into(),
            }]);
    }

    #[test]
    fn authorize_repeated_or_late_is_a_no_op() {
        for events in [authorized(), captured()] {
            given(events)
                .when(PaymentCommand::Authorize {
                    provider_ref: "auth_1".into(),
                })
                .then_expect_events(vec![]);
        }
    }

    #[test]
    fn authorize_after_failure_is_refused() {
        given(with(created(), failed()))
            .when(PaymentCommand::Authorize {
                provider_ref: "a".into(),
            })
            .then_expect_error(invalid(PaymentStatus::Failed, "authorize"));
    }

    #[test]
    fn capture_takes_the_funds_from_created_or_authorized() {
        for events in [created(), authorized()] {
            given(events)
                .when(PaymentCommand::Capture {
                    provider_ref: "cap_1".into(),
                    amount: eur(1000),
                })
                .then_expect_events(vec![PaymentEvent::PaymentCaptured {
                    provider_ref: "cap_1".into(),
                    amount: eur(1000),
                }]);
        }
        let p = state(captured());
        assert_eq!(p.status(), Some(PaymentStatus::Captured));
        assert_eq!(p.captured(), Some(&eur(1000)));
        assert_eq!(p.provider_ref(), Some("cap_1"));
    }

    #[test]
    fn capture_of_another_amount_is_refused() {
        given(authorized())
            .when(PaymentCommand::Capture {
                provider_ref: "cap_1".into(),
                amount: eur(999),
            })
            .then_expect_error(PaymentError::AmountMismatch {
                expected: eur(1000),
                got: eur(999),
            });
        given(authorized())
            .when(PaymentCommand::Capture {
                provider_ref: "cap_1".into(),
                amount: usd(1000),
            })
            .then_expect_error(PaymentError::AmountMismatch {
                expected: eur(1000),
                got: usd(1000),
            });
    }

    #[test]
    fn capture_repeated_is_a_no_op() {
        given(captured())
            .when(PaymentCommand::Capture {
                provider_ref: "cap_1".into(),
                amount: eur(1000),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn capture_after_failure_or_void_is_refused() {
        given(with(created(), failed()))
            .when(PaymentCommand::Capture {
                provider_ref: "c".into(),
                amount: eur(1000),
            })
            .then_expect_error(invalid(PaymentStatus::Failed, "capture"));
        given(with(authorized(), voided()))
            .when(PaymentCommand::Capture {
                provider_ref: "c".into(),
                amount: eur(1000),
            })
            .then_expect_error(invalid(PaymentStatus::Voided, "capture"));
    }

    #[test]
    fn fail_ends_an_uncaptured_payment() {
        for events in [created(), authorized()] {
            given(events)
                .when(PaymentCommand::Fail {
                    reason: "declined".into(),
                })
                .then_expect_events(vec![failed()]);
        }
        let p = state(with(created(), failed()));
        assert_eq!(p.status(), Some(PaymentStatus::Failed));
        assert_eq!(p.reason(), Some("declined"));
    }

    #[test]
    fn fail_repeated_is_a_no_op() {
        given(with(created(), failed()))
            .when(PaymentCommand::Fail {
                reason: "declined".into(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn fail_after_capture_is_refused() {
        given(captured())
            .when(PaymentCommand::Fail { reason: "x".into() })
            .then_expect_error(invalid(PaymentStatus::Captured, "fail"));
    }

    #[test]
    fn void_abandons_an_uncaptured_payment() {
        for events in [created(), authorized()] {
            given(events)
                .when(PaymentCommand::Void {
                    reason: "order expired".into(),
                })
                .then_expect_events(vec![voided()]);
        }
    }

    #[test]
    fn void_repeated_or_after_failure_is_a_no_op() {
        given(with(created(), voided()))
            .when(PaymentCommand::Void {
                reason: "again".into(),
            })
            .then_expect_events(vec![]);
        given(with(created(), failed()))
            .when(PaymentCommand::Void {
                reason: "order expired".into(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn void_after_capture_is_refused() {
        let err = given(captured())
            .when(PaymentCommand::Void { reason: "x".into() })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, invalid(PaymentStatus::Captured, "void"));
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[test]
    fn partial_refund_leaves_the_payment_partially_refunded() {
        given(captured())
            .when(refund(10, eur(300)))
            .then_expect_events(vec![PaymentEvent::PaymentRefunded {
                refund_id: id(10),
                amount: eur(300),
                total_refunded: eur(300),
                reason: "return".into(),
            }]);
        let p = state(refunded(captured(), 10, 300, 300));
        assert_eq!(p.status(), Some(PaymentStatus::PartiallyRefunded));
        assert_eq!(p.total_refunded(), Some(&eur(300)));
    }

    #[test]
    fn refunds_adding_up_to_the_capture_refund_it_fully() {
        let events = refunded(captured(), 10, 300, 300);
        given(events.clone())
            .when(refund(11, eur(700)))
            .then_expect_events(vec![PaymentEvent::PaymentRefunded {
                refund_id: id(11),
                amount: eur(700),
                total_refunded: eur(1000),
                reason: "return".into(),
            }]);
        let p = state(refunded(events, 11, 700, 1000));
        assert_eq!(p.status(), Some(PaymentStatus::Refunded));
        assert_eq!(p.refunds().len(), 2);
    }

    #[test]
    fn refund_beyond_the_capture_is_refused() {
        let err = given(refunded(captured(), 10, 300, 300))
            .when(refund(11, eur(701)))
            .inspect_result()
            .unwrap_err();
        assert_eq!(
            err,
            PaymentError::RefundExceedsCaptured {
                requested: eur(701),
                refundable: eur(700),
            }
        );
        assert_eq!(err.code(), "refund_exceeds_captured");
        given(refunded(captured(), 10, 1000, 1000))
            .when(refund(11, eur(1)))
            .then_expect_error(PaymentError::RefundExceedsCaptured {
                requested: eur(1),
                refundable: eur(0),
            });
    }

    #[test]
    fn refund_repeated_is_a_no_op() {
        given(refunded(captured(), 10, 300, 300))
            .when(refund(10, eur(300)))
            .then_expect_events(vec![]);
        given(refunded(captured(), 10, 1000, 1000))
            .when(refund(10, eur(1000)))
            .then_expect_events(vec![]);
    }

    #[test]
    fn refund_repeated_with_another_amount_is_refused() {
        given(refunded(captured(), 10, 300, 300))
            .when(refund(10, eur(200)))
            .then_expect_error(PaymentError::RefundMismatch { refund_id: id(10) });
    }

    #[test]
    fn refund_refuses_zero_or_another_currency() {
        given(captured())
            .when(refund(10, eur(0)))
            .then_expect_error(PaymentError::InvalidAmount);
        given(captured())
            .when(refund(10, usd(100)))
            .then_expect_error(PaymentError::CurrencyMismatch);
    }

    #[test]
    fn refund_before_capture_is_refused() {
        given(authorized())
            .when(refund(10, eur(100)))
            .then_expect_error(invalid(PaymentStatus::Authorized, "refund"));
        given(with(created(), voided()))
            .when(refund(10, eur(100)))
            .then_expect_error(invalid(PaymentStatus::Voided, "refund"));
    }

    #[test]
    fn event_names_match_their_variants() {
        for e in captured() {
            let json = serde_json::to_value(&e).unwrap();
            assert!(json.get(e.event_type()).is_some(), "{json}");
            let expected = match e {
                PaymentEvent::PaymentCreated { .. } => "2",
                _ => "1",
            };
            assert_eq!(e.event_version(), expected);
        }
    }

    #[test]
    fn refunded_is_version_2_and_needs_its_total_and_reason() {
        let events = refunded(captured(), 10, 300, 300);
        let refund = events.last().unwrap();
        assert_eq!(refund.event_type(), "PaymentRefunded");
        assert_eq!(refund.event_version(), "2");
        let json = serde_json::to_value(refund).unwrap();
        assert_eq!(
            json["PaymentRefunded"]["total_refunded"]["amount_minor"],
            300
        );
        assert_eq!(json["PaymentRefunded"]["reason"], "return");
        let v1 = serde_json::json!({"PaymentRefunded": {
            "refund_id": id::<RefundId>(10),
            "amount": {"amount_minor": 300, "currency": "EUR"},
        }});
        assert!(serde_json::from_value::<PaymentEvent>(v1).is_err());
    }
}
