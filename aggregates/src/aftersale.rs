//! After-sales (售后): a customer's request to be refunded, to return goods for a refund, or
//! to exchange them, for some lines of one of their orders.
//!
//! ```text
//! requested -> withdrawn                                  (the customer, before approval)
//!           -> rejected                                   (an admin, with a reason)
//!           -> approved        -> refunded -> closed      (refund_only)
//!           -> awaiting_return -> received -> refunded -> closed        (return_refund)
//!                                          -> replacing -> closed       (exchange)
//!              (refunded may be refund_failed instead: the payment refused the refund)
//! ```
//!
//! The amounts are fixed when the request is made, line by line, from the order's unit
//! prices less each line's share of the order's discounts ([`refund_lines`]); the payment
//! aggregate refuses any refund beyond what it captured. The after-sales process
//! (`ordo_sagas::aftersale`) does the rest: it refunds the original payment, puts returned
//! units back to stock once, ships a replacement, and closes the request. Every transition
//! repeated is a no-op, so the process can retry any step.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    AfterSaleId, DomainError, ErrorKind, MediaUrl, Money, OrderId, ParseError, PaymentId, Quantity,
    Reason, RefundId, ShipmentId, Sku, UserId,
};
use crate::order::{OrderLine, OrderPricing};
use crate::shipment::{CarrierCode, TrackingNumber};

/// Most evidence links one request may carry.
pub const MAX_EVIDENCE: usize = 9;
/// Most lines one request may name.
pub const MAX_LINES: usize = 100;

/// What the customer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterSaleKind {
    /// Money back, the goods stay with the customer (or were never shipped).
    RefundOnly,
    /// The goods go back, then the money.
    ReturnRefund,
    /// The goods go back, and the same goods come again.
    Exchange,
}

impl AfterSaleKind {
    /// The snake_case name of the kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            AfterSaleKind::RefundOnly => "refund_only",
            AfterSaleKind::ReturnRefund => "return_refund",
            AfterSaleKind::Exchange => "exchange",
        }
    }

    /// Parses `refund_only`, `return_refund` or `exchange`.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "refund_only" => Ok(AfterSaleKind::RefundOnly),
            "return_refund" => Ok(AfterSaleKind::ReturnRefund),
            "exchange" => Ok(AfterSaleKind::Exchange),
            _ => Err(ParseError::new(
                "kind",
                "kind must be refund_only, return_refund or exchange",
            )),
        }
    }

    /// Whether the goods come back before anything else happens.
    pub fn needs_return(self) -> bool {
        !matches!(self, AfterSaleKind::RefundOnly)
    }

    /// Whether the customer is refunded at the end.
    pub fn refunds(self) -> bool {
        !matches!(self, AfterSaleKind::Exchange)
    }
}

/// Where an after-sales request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterSaleStatus {
    /// Waiting for an admin's decision.
    Requested,
    /// The customer withdrew it before the decision.
    Withdrawn,
    /// An admin refused it.
    Rejected,
    /// Approved; the refund follows (refund only).
    Approved,
    /// Approved; waiting for the goods to come back (return and refund, exchange).
    AwaitingReturn,
    /// The goods came back and were inspected; their units are back in stock.
    Received,
    /// The customer's money went back to the original payment.
    Refunded,
    /// The payment refused the refund (nothing left to refund): an admin must look.
    RefundFailed,
    /// The replacement's shipment was created; it ships through fulfilment.
    Replacing,
    /// Done.
    Closed,
}

impl AfterSaleStatus {
    /// The snake_case name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            AfterSaleStatus::Requested => "requested",
            AfterSaleStatus::Withdrawn => "withdrawn",
            AfterSaleStatus::Rejected => "rejected",
            AfterSaleStatus::Approved => "approved",
            AfterSaleStatus::AwaitingReturn => "awaiting_return",
            AfterSaleStatus::Received => "received",
            AfterSaleStatus::Refunded => "refunded",
            AfterSaleStatus::RefundFailed => "refund_failed",
            AfterSaleStatus::Replacing => "replacing",
            AfterSaleStatus::Closed => "closed",
        }
    }

    /// Whether the request still claims its lines (it was neither withdrawn nor rejected).
    pub fn claims_lines(self) -> bool {
        !matches!(self, AfterSaleStatus::Withdrawn | AfterSaleStatus::Rejected)
    }
}

impl std::fmt::Display for AfterSaleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// So many units of one line of the order, and what they refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterSaleLine {
    /// The item.
    pub sku: Sku,
    /// Units concerned.
    pub quantity: Quantity,
    /// What these units paid: their share of the line after its discounts.
    pub refund: Money,
}

/// The lines of `order_lines` the customer asks about (`requested`), priced: each line's
/// unit price times the units asked, less the same share of the line's discount (rounded
/// down, so the units of a line never refund more than the line paid). `claimed` holds the
/// units of each SKU earlier requests still claim; a line cannot be asked about beyond
/// what was ordered less those.
pub fn refund_lines(
    order_lines: &[OrderLine],
    pricing: Option<&OrderPricing>,
    requested: &[(Sku, Quantity)],
    claimed: &BTreeMap<Sku, u32>,
) -> Result<Vec<AfterSaleLine>, AfterSaleError> {
    if requested.is_empty() {
        return Err(AfterSaleError::NoLines);
    }
    if requested.len() > MAX_LINES {
        return Err(AfterSaleError::TooManyLines);
    }
    let mut lines = Vec::with_capacity(requested.len());
    for (index, (sku, quantity)) in requested.iter().enumerate() {
        if requested[..index].iter().any(|(other, _)| other == sku) {
            return Err(AfterSaleError::DuplicateLine { sku: sku.clone() });
        }
        let Some(line) = order_lines.iter().find(|line| &line.sku == sku) else {
            return Err(AfterSaleError::NotInOrder { sku: sku.clone() });
        };
        let ordered = line.quantity.get();
        let left = ordered.saturating_sub(claimed.get(sku).copied().unwrap_or(0));
        if quantity.get() > left {
            return Err(AfterSaleError::QuantityExceeded {
                sku: sku.clone(),
                left,
            });
        }
        let gross = line
            .unit_price
            .amount_minor()
            .saturating_mul(i64::from(ordered));
        let discount = pricing
            .and_then(|p| p.line_discounts.iter().find(|d| &d.sku == sku))
            .map(|d| d.discount.amount_minor())
            .unwrap_or(0);
        let paid = gross.saturating_sub(discount).max(0);
        // i128: the product of a line total and a quantity may not fit in i64.
        let share = (i128::from(paid) * i128::from(quantity.get()) / i128::from(ordered)) as i64;
        let refund = Money::new(share, line.unit_price.currency().clone())
            .map_err(|_| AfterSaleError::InvalidAmount)?;
        lines.push(AfterSaleLine {
            sku: sku.clone(),
            quantity: *quantity,
            refund,
        });
    }
    Ok(lines)
}

/// The sum of the lines' refunds, `None` for no line or mixed currencies.
pub fn total_refund(lines: &[AfterSaleLine]) -> Option<Money> {
    let first = lines.first()?;
    let mut total = Money::zero(first.refund.currency().clone());
    for line in lines {
        total = total.checked_add(&line.refund).ok()?;
    }
    Some(total)
}

/// The parcel a customer sends the goods back in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnParcel {
    /// The carrier.
    pub carrier: CarrierCode,
    /// Its tracking number.
    pub tracking_no: TrackingNumber,
}

/// Commands accepted by an [`AfterSale`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AfterSaleCommand {
    /// The customer asks for a refund, a return or an exchange.
    Request {
        /// The request's id (also the aggregate id).
        aftersale_id: AfterSaleId,
        /// The order concerned.
        order_id: OrderId,
        /// Its customer.
        customer_id: UserId,
        /// The payment a refund goes back to.
        payment_id: PaymentId,
        /// What is asked for.
        kind: AfterSaleKind,
        /// The lines concerned, priced by [`refund_lines`].
        lines: Vec<AfterSaleLine>,
        /// Why.
        reason: Reason,
        /// Photos or videos of the problem.
        evidence: Vec<MediaUrl>,
    },
    /// The customer withdraws the request before it is decided.
    Withdraw {
        /// Who withdraws: only the request's customer may.
        by: UserId,
    },
    /// An admin approves the request.
    Approve,
    /// An admin refuses the request.
    Reject {
        /// Why.
        reason: Reason,
    },
    /// The customer sent the goods back.
    ShipReturn {
        /// Who sends: only the request's customer may.
        by: UserId,
        /// The parcel.
        parcel: ReturnParcel,
    },
    /// An admin received and inspected the goods.
    Receive,
    /// The refund went back to the payment.
    MarkRefunded {
        /// The payment's refund.
        refund_id: RefundId,
        /// Its amount.
        amount: Money,
    },
    /// The payment refused the refund.
    MarkRefundFailed {
        /// The payment's refusal code.
        code: String,
        /// What it said.
        detail: String,
    },
    /// The replacement's shipment was created.
    MarkReplacing {
        /// The shipment.
        shipment_id: ShipmentId,
    },
    /// The request is done.
    Close,
}

/// Events of an [`AfterSale`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AfterSaleEvent {
    /// The customer asked.
    AfterSaleRequested {
        /// The request's id.
        aftersale_id: AfterSaleId,
        /// The order concerned.
        order_id: OrderId,
        /// Its customer.
        customer_id: UserId,
        /// The payment a refund goes back to.
        payment_id: PaymentId,
        /// What is asked for.
        kind: AfterSaleKind,
        /// The lines concerned, with what each refunds.
        lines: Vec<AfterSaleLine>,
        /// The sum of the lines' refunds.
        refund_amount: Money,
        /// Why.
        reason: Reason,
        /// Photos or videos of the problem.
        evidence: Vec<MediaUrl>,
    },
    /// The customer withdrew the request.
    AfterSaleWithdrawn {},
    /// An admin approved the request.
    AfterSaleApproved {
        /// What was approved.
        kind: AfterSaleKind,
    },
    /// An admin refused the request.
    AfterSaleRejected {
        /// Why.
        reason: Reason,
    },
    /// The customer sent the goods back.
    ReturnShipped {
        /// The carrier.
        carrier: CarrierCode,
        /// Its tracking number.
        tracking_no: TrackingNumber,
    },
    /// The goods came back and were inspected.
    ReturnReceived {},
    /// The refund went back to the payment.
    AfterSaleRefunded {
        /// The payment's refund.
        refund_id: RefundId,
        /// Its amount.
        amount: Money,
    },
    /// The payment refused the refund.
    AfterSaleRefundFailed {
        /// The payment's refusal code.
        code: String,
        /// What it said.
        detail: String,
    },
    /// The replacement's shipment was created.
    ReplacementArranged {
        /// The shipment.
        shipment_id: ShipmentId,
    },
    /// The request is done.
    AfterSaleClosed {},
}

impl DomainEvent for AfterSaleEvent {
    fn event_type(&self) -> String {
        match self {
            AfterSaleEvent::AfterSaleRequested { .. } => "AfterSaleRequested",
            AfterSaleEvent::AfterSaleWithdrawn {} => "AfterSaleWithdrawn",
            AfterSaleEvent::AfterSaleApproved { .. } => "AfterSaleApproved",
            AfterSaleEvent::AfterSaleRejected { .. } => "AfterSaleRejected",
            AfterSaleEvent::ReturnShipped { .. } => "ReturnShipped",
            AfterSaleEvent::ReturnReceived {} => "ReturnReceived",
            AfterSaleEvent::AfterSaleRefunded { .. } => "AfterSaleRefunded",
            AfterSaleEvent::AfterSaleRefundFailed { .. } => "AfterSaleRefundFailed",
            AfterSaleEvent::ReplacementArranged { .. } => "ReplacementArranged",
            AfterSaleEvent::AfterSaleClosed {} => "AfterSaleClosed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why an [`AfterSaleCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AfterSaleError {
    /// The request was never made.
    #[error("after-sales request not found")]
    NotFound,
    /// The request exists with other content.
    #[error("after-sales request already made")]
    AlreadyRequested,
    /// A request names at least one line.
    #[error("an after-sales request names at least one line")]
    NoLines,
    /// Too many lines.
    #[error("an after-sales request names at most 100 lines")]
    TooManyLines,
    /// A SKU named twice.
    #[error("{sku} is named twice")]
    DuplicateLine {
        /// The SKU.
        sku: Sku,
    },
    /// A SKU the order does not hold.
    #[error("the order has no line {sku}")]
    NotInOrder {
        /// The SKU.
        sku: Sku,
    },
    /// More units than the order holds, less those earlier requests claim.
    #[error("only {left} units of {sku} can still be asked about")]
    QuantityExceeded {
        /// The SKU.
        sku: Sku,
        /// Units left.
        left: u32,
    },
    /// Too many evidence links.
    #[error("at most 9 evidence links")]
    TooMuchEvidence,
    /// An amount out of range or in mixed currencies.
    #[error("the lines' amounts are invalid")]
    InvalidAmount,
    /// Someone other than the request's customer.
    #[error("only the request's customer may do this")]
    NotTheCustomer,
    /// The request's status does not allow the action.
    #[error("cannot {action} an after-sales request that is {from}")]
    InvalidTransition {
        /// Its status.
        from: AfterSaleStatus,
        /// What was attempted.
        action: &'static str,
    },
    /// The goods were sent back in another parcel.
    #[error("the goods were sent back with {carrier} {tracking_no}")]
    ReturnAlreadyShipped {
        /// The carrier.
        carrier: CarrierCode,
        /// Its tracking number.
        tracking_no: TrackingNumber,
    },
}

impl AfterSaleError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            AfterSaleError::NotFound => "aftersale_not_found",
            AfterSaleError::AlreadyRequested => "aftersale_already_requested",
            AfterSaleError::NoLines => "no_lines",
            AfterSaleError::TooManyLines => "too_many_lines",
            AfterSaleError::DuplicateLine { .. } => "duplicate_line",
            AfterSaleError::NotInOrder { .. } => "not_in_order",
            AfterSaleError::QuantityExceeded { .. } => "quantity_exceeded",
            AfterSaleError::TooMuchEvidence => "too_much_evidence",
            AfterSaleError::InvalidAmount => "invalid_amount",
            AfterSaleError::NotTheCustomer => "not_the_customer",
            AfterSaleError::InvalidTransition { .. } => "invalid_transition",
            AfterSaleError::ReturnAlreadyShipped { .. } => "return_already_shipped",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AfterSaleError::NotFound => ErrorKind::NotFound,
            AfterSaleError::NoLines
            | AfterSaleError::TooManyLines
            | AfterSaleError::DuplicateLine { .. }
            | AfterSaleError::TooMuchEvidence
            | AfterSaleError::InvalidAmount => ErrorKind::Invalid,
            AfterSaleError::NotInOrder { .. } => ErrorKind::UnknownReference,
            AfterSaleError::AlreadyRequested
            | AfterSaleError::QuantityExceeded { .. }
            | AfterSaleError::NotTheCustomer
            | AfterSaleError::InvalidTransition { .. }
            | AfterSaleError::ReturnAlreadyShipped { .. } => ErrorKind::Refused,
        }
    }
}

impl DomainError for AfterSaleError {
    fn code(&self) -> &'static str {
        AfterSaleError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        AfterSaleError::kind(self)
    }
}

/// What an after-sales request is about, fixed when it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AfterSaleDetails {
    /// The request's id.
    pub aftersale_id: AfterSaleId,
    /// The order concerned.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: UserId,
    /// The payment a refund goes back to.
    pub payment_id: PaymentId,
    /// What is asked for.
    pub kind: AfterSaleKind,
    /// The lines concerned.
    pub lines: Vec<AfterSaleLine>,
    /// The sum of the lines' refunds.
    pub refund_amount: Money,
    /// Why.
    pub reason: Reason,
    /// Photos or videos.
    pub evidence: Vec<MediaUrl>,
}

/// An after-sales request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AfterSale {
    details: Option<AfterSaleDetails>,
    status: Option<AfterSaleStatus>,
    return_parcel: Option<ReturnParcel>,
    refund: Option<(RefundId, Money)>,
    replacement: Option<ShipmentId>,
}

impl AfterSale {
    /// What the request is about, once made.
    pub fn details(&self) -> Option<&AfterSaleDetails> {
        self.details.as_ref()
    }

    /// Its status, once made.
    pub fn status(&self) -> Option<AfterSaleStatus> {
        self.status
    }

    /// The parcel the goods came back in, once sent.
    pub fn return_parcel(&self) -> Option<&ReturnParcel> {
        self.return_parcel.as_ref()
    }

    /// The refund, once made.
    pub fn refund(&self) -> Option<&(RefundId, Money)> {
        self.refund.as_ref()
    }

    /// The replacement's shipment, once created.
    pub fn replacement(&self) -> Option<ShipmentId> {
        self.replacement
    }

    fn made(&self) -> Result<(&AfterSaleDetails, AfterSaleStatus), AfterSaleError> {
        match (&self.details, self.status) {
            (Some(details), Some(status)) => Ok((details, status)),
            _ => Err(AfterSaleError::NotFound),
        }
    }
}

fn refuse(from: AfterSaleStatus, action: &'static str) -> Result<(), AfterSaleError> {
    Err(AfterSaleError::InvalidTransition { from, action })
}

impl Aggregate for AfterSale {
    const TYPE: &'static str = "aftersale";
    type Command = AfterSaleCommand;
    type Event = AfterSaleEvent;
    type Error = AfterSaleError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use AfterSaleStatus as S;
        let event = match command {
            AfterSaleCommand::Request {
                aftersale_id,
                order_id,
                customer_id,
                payment_id,
                kind,
                lines,
                reason,
                evidence,
            } => {
                if let Some(details) = &self.details {
                    let same = details.aftersale_id == aftersale_id
                        && details.order_id == order_id
                        && details.customer_id == customer_id
                        && details.kind == kind
                        && details.lines == lines;
                    return if same {
                        Ok(())
                    } else {
                        Err(AfterSaleError::AlreadyRequested)
                    };
                }
                if lines.is_empty() {
                    return Err(AfterSaleError::NoLines);
                }
                if lines.len() > MAX_LINES {
                    return Err(AfterSaleError::TooManyLines);
                }
                if evidence.len() > MAX_EVIDENCE {
                    return Err(AfterSaleError::TooMuchEvidence);
                }
                let refund_amount = total_refund(&lines).ok_or(AfterSaleError::InvalidAmount)?;
                AfterSaleEvent::AfterSaleRequested {
                    aftersale_id,
                    order_id,
                    customer_id,
                    payment_id,
                    kind,
                    lines,
                    refund_amount,
                    reason,
                    evidence,
                }
            }
            AfterSaleCommand::Withdraw { by } => {
                let (details, status) = self.made()?;
                if details.customer_id != by {
                    return Err(AfterSaleError::NotTheCustomer);
                }
                match status {
                    S::Requested => AfterSaleEvent::AfterSaleWithdrawn {},
                    S::Withdrawn => return Ok(()),
                    from => return refuse(from, "withdraw"),
                }
            }
            AfterSaleCommand::Approve => {
                let (details, status) = self.made()?;
                match status {
                    S::Requested => AfterSaleEvent::AfterSaleApproved { kind: details.kind },
                    S::Withdrawn | S::Rejected => return refuse(status, "approve"),
                    // Approved already, and maybe further along.
                    _ => return Ok(()),
                }
            }
            AfterSaleCommand::Reject { reason } => match self.made()?.1 {
                S::Requested => AfterSaleEvent::AfterSaleRejected { reason },
                S::Rejected => return Ok(()),
                from => return refuse(from, "reject"),
            },
            AfterSaleCommand::ShipReturn { by, parcel } => {
                let (details, status) = self.made()?;
                if details.customer_id != by {
                    return Err(AfterSaleError::NotTheCustomer);
                }
                if let Some(sent) = &self.return_parcel {
                    return if sent == &parcel {
                        Ok(())
                    } else {
                        Err(AfterSaleError::ReturnAlreadyShipped {
                            carrier: sent.carrier.clone(),
                            tracking_no: sent.tracking_no.clone(),
                        })
                    };
                }
                match status {
                    S::AwaitingReturn => AfterSaleEvent::ReturnShipped {
                        carrier: parcel.carrier,
                        tracking_no: parcel.tracking_no,
                    },
                    from => return refuse(from, "send back the goods of"),
                }
            }
            AfterSaleCommand::Receive => match self.made()?.1 {
                S::AwaitingReturn => AfterSaleEvent::ReturnReceived {},
                S::Received | S::Refunded | S::RefundFailed | S::Replacing | S::Closed
                    if self.details.as_ref().is_some_and(|d| d.kind.needs_return()) =>
                {
                    return Ok(())
                }
                from => return refuse(from, "receive the goods of"),
            },
            AfterSaleCommand::MarkRefunded { refund_id, amount } => {
                let (details, status) = self.made()?;
                if let Some((done, _)) = &self.refund {
                    return if *done == refund_id {
                        Ok(())
                    } else {
                        refuse(status, "refund")
                    };
                }
                let ready = match details.kind {
                    AfterSaleKind::RefundOnly => matches!(status, S::Approved | S::RefundFailed),
                    AfterSaleKind::ReturnRefund => {
                        matches!(status, S::Received | S::RefundFailed)
                    }
                    AfterSaleKind::Exchange => false,
                };
                if !ready {
                    return refuse(status, "refund");
                }
                AfterSaleEvent::AfterSaleRefunded { refund_id, amount }
            }
            AfterSaleCommand::MarkRefundFailed { code, detail } => {
                let (details, status) = self.made()?;
                match status {
                    S::RefundFailed => return Ok(()),
                    S::Approved | S::Received if details.kind.refunds() => {
                        AfterSaleEvent::AfterSaleRefundFailed { code, detail }
                    }
                    from => return refuse(from, "fail the refund of"),
                }
            }
            AfterSaleCommand::MarkReplacing { shipment_id } => {
                let (details, status) = self.made()?;
                if let Some(existing) = self.replacement {
                    return if existing == shipment_id {
                        Ok(())
                    } else {
                        refuse(status, "replace")
                    };
                }
                match status {
                    S::Received if details.kind == AfterSaleKind::Exchange => {
                        AfterSaleEvent::ReplacementArranged { shipment_id }
                    }
                    from => return refuse(from, "replace"),
                }
            }
            AfterSaleCommand::Close => match self.made()?.1 {
                S::Refunded | S::Replacing => AfterSaleEvent::AfterSaleClosed {},
                S::Closed => return Ok(()),
                from => return refuse(from, "close"),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use AfterSaleStatus as S;
        match event {
            AfterSaleEvent::AfterSaleRequested {
                aftersale_id,
                order_id,
                customer_id,
                payment_id,
                kind,
                lines,
                refund_amount,
                reason,
                evidence,
            } => {
                self.details = Some(AfterSaleDetails {
                    aftersale_id,
                    order_id,
                    customer_id,
                    payment_id,
                    kind,
                    lines,
                    refund_amount,
                    reason,
                    evidence,
                });
                self.status = Some(S::Requested);
            }
            AfterSaleEvent::AfterSaleWithdrawn {} => self.status = Some(S::Withdrawn),
            AfterSaleEvent::AfterSaleApproved { kind } => {
                self.status = Some(if kind.needs_return() {
                    S::AwaitingReturn
                } else {
                    S::Approved
                })
            }
            AfterSaleEvent::AfterSaleRejected { .. } => self.status = Some(S::Rejected),
            AfterSaleEvent::ReturnShipped {
                carrier,
                tracking_no,
            } => {
                self.return_parcel = Some(ReturnParcel {
                    carrier,
                    tracking_no,
                })
            }
            AfterSaleEvent::ReturnReceived {} => self.status = Some(S::Received),
            AfterSaleEvent::AfterSaleRefunded { refund_id, amount } => {
                self.refund = Some((refund_id, amount));
                self.status = Some(S::Refunded);
            }
            AfterSaleEvent::AfterSaleRefundFailed { .. } => self.status = Some(S::RefundFailed),
            AfterSaleEvent::ReplacementArranged { shipment_id } => {
                self.replacement = Some(shipment_id);
                self.status = Some(S::Replacing);
            }
            AfterSaleEvent::AfterSaleClosed {} => self.status = Some(S::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;
    use crate::order::LineDiscount;

    fn given(events: Vec<AfterSaleEvent>) -> AggregateTestExecutor<AfterSale> {
        TestFramework::<AfterSale>::with(()).given(events)
    }

    fn lines() -> Vec<AfterSaleLine> {
        vec![AfterSaleLine {
            sku: sku("MUG"),
            quantity: qty(1),
            refund: eur(900),
        }]
    }

    fn reason() -> Reason {
        Reason::parse("cracked").unwrap()
    }

    fn request(kind: AfterSaleKind) -> AfterSaleCommand {
        AfterSaleCommand::Request {
            aftersale_id: id(1),
            order_id: id(2),
            customer_id: id(3),
            payment_id: id(4),
            kind,
            lines: lines(),
            reason: reason(),
            evidence: vec![],
        }
    }

    fn requested(kind: AfterSaleKind) -> AfterSaleEvent {
        AfterSaleEvent::AfterSaleRequested {
            aftersale_id: id(1),
            order_id: id(2),
            customer_id: id(3),
            payment_id: id(4),
            kind,
            lines: lines(),
            refund_amount: eur(900),
            reason: reason(),
            evidence: vec![],
        }
    }

    fn parcel() -> ReturnParcel {
        ReturnParcel {
            carrier: CarrierCode::parse("sf-express").unwrap(),
            tracking_no: TrackingNumber::parse("SF-1").unwrap(),
        }
    }

    fn refunded() -> AfterSaleEvent {
        AfterSaleEvent::AfterSaleRefunded {
            refund_id: id(9),
            amount: eur(900),
        }
    }

    fn state(events: Vec<AfterSaleEvent>) -> AfterSale {
        let mut aftersale = AfterSale::default();
        for event in events {
            aftersale.apply(event);
        }
        aftersale
    }

    fn received(kind: AfterSaleKind) -> Vec<AfterSaleEvent> {
        vec![
            requested(kind),
            AfterSaleEvent::AfterSaleApproved { kind },
            AfterSaleEvent::ReturnReceived {},
        ]
    }

    #[test]
    fn a_request_is_recorded_once_with_its_total() {
        given(vec![])
            .when(request(AfterSaleKind::RefundOnly))
            .then_expect_events(vec![requested(AfterSaleKind::RefundOnly)]);
        given(vec![requested(AfterSaleKind::RefundOnly)])
            .when(request(AfterSaleKind::RefundOnly))
            .then_expect_events(vec![]);
        given(vec![requested(AfterSaleKind::RefundOnly)])
            .when(request(AfterSaleKind::Exchange))
            .then_expect_error(AfterSaleError::AlreadyRequested);
    }

    #[test]
    fn a_request_without_lines_or_with_too_much_evidence_is_invalid() {
        let mut command = request(AfterSaleKind::RefundOnly);
        if let AfterSaleCommand::Request { lines, .. } = &mut command {
            lines.clear();
        }
        given(vec![])
            .when(command)
            .then_expect_error(AfterSaleError::NoLines);
        let mut command = request(AfterSaleKind::RefundOnly);
        if let AfterSaleCommand::Request { evidence, .. } = &mut command {
            *evidence = vec![MediaUrl::parse("https://example.com/a.jpg").unwrap(); 10];
        }
        let err = given(vec![]).when(command).inspect_result().unwrap_err();
        assert_eq!(err, AfterSaleError::TooMuchEvidence);
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn the_customer_may_withdraw_before_approval_only() {
        given(vec![requested(AfterSaleKind::RefundOnly)])
            .when(AfterSaleCommand::Withdraw { by: id(3) })
            .then_expect_events(vec![AfterSaleEvent::AfterSaleWithdrawn {}]);
        given(vec![requested(AfterSaleKind::RefundOnly)])
            .when(AfterSaleCommand::Withdraw { by: id(8) })
            .then_expect_error(AfterSaleError::NotTheCustomer);
        given(vec![
            requested(AfterSaleKind::RefundOnly),
            AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::RefundOnly,
            },
        ])
        .when(AfterSaleCommand::Withdraw { by: id(3) })
        .then_expect_error(AfterSaleError::InvalidTransition {
            from: AfterSaleStatus::Approved,
            action: "withdraw",
        });
        given(vec![
            requested(AfterSaleKind::RefundOnly),
            AfterSaleEvent::AfterSaleWithdrawn {},
        ])
        .when(AfterSaleCommand::Approve)
        .then_expect_error(AfterSaleError::InvalidTransition {
            from: AfterSaleStatus::Withdrawn,
            action: "approve",
        });
    }

    #[test]
    fn approval_of_a_return_waits_for_the_goods_and_a_refund_only_for_the_refund() {
        given(vec![requested(AfterSaleKind::ReturnRefund)])
            .when(AfterSaleCommand::Approve)
            .then_expect_events(vec![AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::ReturnRefund,
            }]);
        let awaiting = state(vec![
            requested(AfterSaleKind::ReturnRefund),
            AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::ReturnRefund,
            },
        ]);
        assert_eq!(awaiting.status(), Some(AfterSaleStatus::AwaitingReturn));
        let approved = state(vec![
            requested(AfterSaleKind::RefundOnly),
            AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::RefundOnly,
            },
        ]);
        assert_eq!(approved.status(), Some(AfterSaleStatus::Approved));
        given(vec![
            requested(AfterSaleKind::RefundOnly),
            AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::RefundOnly,
            },
        ])
        .when(AfterSaleCommand::Approve)
        .then_expect_events(vec![]);
    }

    #[test]
    fn a_rejected_request_goes_no_further() {
        given(vec![requested(AfterSaleKind::Exchange)])
            .when(AfterSaleCommand::Reject { reason: reason() })
            .then_expect_events(vec![AfterSaleEvent::AfterSaleRejected { reason: reason() }]);
        let rejected = vec![
            requested(AfterSaleKind::Exchange),
            AfterSaleEvent::AfterSaleRejected { reason: reason() },
        ];
        given(rejected.clone())
            .when(AfterSaleCommand::Reject { reason: reason() })
            .then_expect_events(vec![]);
        given(rejected)
            .when(AfterSaleCommand::Receive)
            .then_expect_error(AfterSaleError::InvalidTransition {
                from: AfterSaleStatus::Rejected,
                action: "receive the goods of",
            });
    }

    #[test]
    fn the_goods_come_back_in_one_parcel_then_are_received_once() {
        let awaiting = vec![
            requested(AfterSaleKind::ReturnRefund),
            AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::ReturnRefund,
            },
        ];
        given(awaiting.clone())
            .when(AfterSaleCommand::ShipReturn {
                by: id(3),
                parcel: parcel(),
            })
            .then_expect_events(vec![AfterSaleEvent::ReturnShipped {
                carrier: parcel().carrier,
                tracking_no: parcel().tracking_no,
            }]);
        let mut shipped = awaiting.clone();
        shipped.push(AfterSaleEvent::ReturnShipped {
            carrier: parcel().carrier,
            tracking_no: parcel().tracking_no,
        });
        given(shipped.clone())
            .when(AfterSaleCommand::ShipReturn {
                by: id(3),
                parcel: parcel(),
            })
            .then_expect_events(vec![]);
        let err = given(shipped.clone())
            .when(AfterSaleCommand::ShipReturn {
                by: id(3),
                parcel: ReturnParcel {
                    carrier: parcel().carrier,
                    tracking_no: TrackingNumber::parse("SF-2").unwrap(),
                },
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.code(), "return_already_shipped");
        given(shipped)
            .when(AfterSaleCommand::Receive)
            .then_expect_events(vec![AfterSaleEvent::ReturnReceived {}]);
        given(received(AfterSaleKind::ReturnRefund))
            .when(AfterSaleCommand::Receive)
            .then_expect_events(vec![]);
        given(vec![requested(AfterSaleKind::ReturnRefund)])
            .when(AfterSaleCommand::Receive)
            .then_expect_error(AfterSaleError::InvalidTransition {
                from: AfterSaleStatus::Requested,
                action: "receive the goods of",
            });
    }

    #[test]
    fn a_refund_is_recorded_once_then_closes() {
        given(received(AfterSaleKind::ReturnRefund))
            .when(AfterSaleCommand::MarkRefunded {
                refund_id: id(9),
                amount: eur(900),
            })
            .then_expect_events(vec![refunded()]);
        let mut done = received(AfterSaleKind::ReturnRefund);
        done.push(refunded());
        given(done.clone())
            .when(AfterSaleCommand::MarkRefunded {
                refund_id: id(9),
                amount: eur(900),
            })
            .then_expect_events(vec![]);
        given(done.clone())
            .when(AfterSaleCommand::Close)
            .then_expect_events(vec![AfterSaleEvent::AfterSaleClosed {}]);
        done.push(AfterSaleEvent::AfterSaleClosed {});
        given(done)
            .when(AfterSaleCommand::Close)
            .then_expect_events(vec![]);
        // Before the goods came back, no refund.
        given(vec![
            requested(AfterSaleKind::ReturnRefund),
            AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::ReturnRefund,
            },
        ])
        .when(AfterSaleCommand::MarkRefunded {
            refund_id: id(9),
            amount: eur(900),
        })
        .then_expect_error(AfterSaleError::InvalidTransition {
            from: AfterSaleStatus::AwaitingReturn,
            action: "refund",
        });
    }

    #[test]
    fn an_exchange_is_replaced_not_refunded() {
        given(received(AfterSaleKind::Exchange))
            .when(AfterSaleCommand::MarkRefunded {
                refund_id: id(9),
                amount: eur(900),
            })
            .then_expect_error(AfterSaleError::InvalidTransition {
                from: AfterSaleStatus::Received,
                action: "refund",
            });
        given(received(AfterSaleKind::Exchange))
            .when(AfterSaleCommand::MarkReplacing { shipment_id: id(7) })
            .then_expect_events(vec![AfterSaleEvent::ReplacementArranged {
                shipment_id: id(7),
            }]);
        let mut replacing = received(AfterSaleKind::Exchange);
        replacing.push(AfterSaleEvent::ReplacementArranged { shipment_id: id(7) });
        given(replacing.clone())
            .when(AfterSaleCommand::MarkReplacing { shipment_id: id(7) })
            .then_expect_events(vec![]);
        given(replacing)
            .when(AfterSaleCommand::Close)
            .then_expect_events(vec![AfterSaleEvent::AfterSaleClosed {}]);
    }

    #[test]
    fn a_refused_refund_is_recorded_and_may_be_retried() {
        let approved = vec![
            requested(AfterSaleKind::RefundOnly),
            AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::RefundOnly,
            },
        ];
        let failed = AfterSaleEvent::AfterSaleRefundFailed {
            code: "refund_exceeds_captured".into(),
            detail: "nothing left".into(),
        };
        given(approved.clone())
            .when(AfterSaleCommand::MarkRefundFailed {
                code: "refund_exceeds_captured".into(),
                detail: "nothing left".into(),
            })
            .then_expect_events(vec![failed.clone()]);
        let mut failed_state = approved;
        failed_state.push(failed);
        assert_eq!(
            state(failed_state.clone()).status(),
            Some(AfterSaleStatus::RefundFailed)
        );
        given(failed_state)
            .when(AfterSaleCommand::MarkRefunded {
                refund_id: id(9),
                amount: eur(900),
            })
            .then_expect_events(vec![refunded()]);
    }

    fn order_lines() -> Vec<OrderLine> {
        vec![
            OrderLine {
                sku: sku("MUG"),
                quantity: qty(3),
                unit_price: eur(1000),
            },
            OrderLine {
                sku: sku("TEA"),
                quantity: qty(1),
                unit_price: eur(500),
            },
        ]
    }

    #[test]
    fn lines_refund_their_share_of_what_the_line_paid() {
        let pricing = OrderPricing {
            quote_id: None,
            subtotal: eur(3500),
            line_discounts: vec![LineDiscount {
                sku: sku("MUG"),
                discount: eur(301),
            }],
            discounts: vec![],
            shipping_fee: eur(0),
        };
        let lines = refund_lines(
            &order_lines(),
            Some(&pricing),
            &[(sku("MUG"), qty(2)), (sku("TEA"), qty(1))],
            &BTreeMap::new(),
        )
        .unwrap();
        // 3 mugs paid 30.00 - 3.01 = 26.99; two of them refund 17.99 (rounded down).
        assert_eq!(lines[0].refund, eur(1799));
        assert_eq!(lines[1].refund, eur(500));
        assert_eq!(total_refund(&lines), Some(eur(2299)));
        let all = refund_lines(
            &order_lines(),
            Some(&pricing),
            &[(sku("MUG"), qty(3))],
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(all[0].refund, eur(2699));
    }

    #[test]
    fn lines_beyond_the_order_or_claimed_already_are_refused() {
        let claimed = BTreeMap::from([(sku("MUG"), 2)]);
        assert_eq!(
            refund_lines(&order_lines(), None, &[(sku("MUG"), qty(2))], &claimed),
            Err(AfterSaleError::QuantityExceeded {
                sku: sku("MUG"),
                left: 1
            })
        );
        assert_eq!(
            refund_lines(&order_lines(), None, &[(sku("CUP"), qty(1))], &claimed),
            Err(AfterSaleError::NotInOrder { sku: sku("CUP") })
        );
        assert_eq!(
            refund_lines(
                &order_lines(),
                None,
                &[(sku("TEA"), qty(1)), (sku("TEA"), qty(1))],
                &claimed
            ),
            Err(AfterSaleError::DuplicateLine { sku: sku("TEA") })
        );
        assert_eq!(
            refund_lines(&order_lines(), None, &[], &claimed),
            Err(AfterSaleError::NoLines)
        );
    }

    #[test]
    fn kinds_parse_and_say_what_they_need() {
        assert_eq!(
            AfterSaleKind::parse("exchange"),
            Ok(AfterSaleKind::Exchange)
        );
        assert!(AfterSaleKind::parse("swap").is_err());
        assert!(!AfterSaleKind::RefundOnly.needs_return());
        assert!(
            AfterSaleKind::ReturnRefund.needs_return() && AfterSaleKind::ReturnRefund.refunds()
        );
        assert!(!AfterSaleKind::Exchange.refunds());
    }
}
