//! The life of a shipment: one parcel of a paid order's goods. The fulfilment process
//! creates it when the order is paid; an admin picks it (出库) and ships it with a carrier
//! and a tracking number; the carrier then reports it in transit and delivered (签收), or
//! an exception.
//!
//! ```text
//! created -> picked -> shipped -> in_transit -> delivered
//!                            \-> exception <-/      (an exception may resume in transit)
//! ```
//!
//! Carriers report out of order and repeat themselves, so tracking updates follow two
//! rules: an update already recorded is a no-op, and an update never moves a shipment
//! backwards (a late `in_transit` after `delivered` is kept in the history and leaves the
//! shipment delivered). The time of each update is the carrier's, given by the command.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    DomainError, ErrorKind, OrderId, ParseError, Quantity, ShipmentId, Sku, UserId,
};

/// Where a shipment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    /// Created for a paid order; waiting to be picked.
    Created,
    /// Picked from the warehouse (出库); waiting for the carrier.
    Picked,
    /// Handed to the carrier, with its tracking number.
    Shipped,
    /// The carrier reports it on its way.
    InTransit,
    /// The carrier reports it delivered (签收).
    Delivered,
    /// The carrier reports a problem (address not found, damaged...).
    Exception,
    /// Cancelled before it left: its order was refunded.
    Cancelled,
}

impl ShipmentStatus {
    /// The snake_case name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            ShipmentStatus::Created => "created",
            ShipmentStatus::Picked => "picked",
            ShipmentStatus::Shipped => "shipped",
            ShipmentStatus::InTransit => "in_transit",
            ShipmentStatus::Delivered => "delivered",
            ShipmentStatus::Exception => "exception",
            ShipmentStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a carrier reports of a shipment it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    /// On its way.
    InTransit,
    /// Delivered to the customer.
    Delivered,
    /// A problem on the way.
    Exception,
}

impl TrackingStatus {
    /// The snake_case name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            TrackingStatus::InTransit => "in_transit",
            TrackingStatus::Delivered => "delivered",
            TrackingStatus::Exception => "exception",
        }
    }

    /// Parses `in_transit`, `delivered` or `exception`.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "in_transit" => Ok(TrackingStatus::InTransit),
            "delivered" => Ok(TrackingStatus::Delivered),
            "exception" => Ok(TrackingStatus::Exception),
            _ => Err(ParseError::new(
                "status",
                "status must be in_transit, delivered or exception",
            )),
        }
    }

    /// The shipment status this update reports.
    pub fn shipment_status(self) -> ShipmentStatus {
        match self {
            TrackingStatus::InTransit => ShipmentStatus::InTransit,
            TrackingStatus::Delivered => ShipmentStatus::Delivered,
            TrackingStatus::Exception => ShipmentStatus::Exception,
        }
    }
}

/// How far along a status is: a tracking update of a lower rank never replaces a higher one.
fn rank(status: ShipmentStatus) -> u8 {
    match status {
        ShipmentStatus::Created | ShipmentStatus::Cancelled => 0,
        ShipmentStatus::Picked => 1,
        ShipmentStatus::Shipped => 2,
        ShipmentStatus::InTransit | ShipmentStatus::Exception => 3,
        ShipmentStatus::Delivered => 4,
    }
}

/// The code of a carrier: 1 to 32 lowercase ASCII letters, digits, `-` or `_` (`sandbox`,
/// `sf-express`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CarrierCode(String);

impl CarrierCode {
    /// The carrier Ordo itself plays for demos and tests.
    pub const SANDBOX: &'static str = "sandbox";

    /// Parses a carrier code (surrounding whitespace trimmed).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let valid = (1..=32).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(raw.to_string()))
        } else {
            Err(ParseError::new(
                "carrier",
                "carrier must be 1 to 32 lowercase ASCII letters, digits, '-' or '_'",
            ))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the sandbox carrier.
    pub fn is_sandbox(&self) -> bool {
        self.0 == Self::SANDBOX
    }
}

impl TryFrom<String> for CarrierCode {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CarrierCode> for String {
    fn from(value: CarrierCode) -> Self {
        value.0
    }
}

impl std::fmt::Display for CarrierCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A carrier's tracking number: 1 to 64 ASCII letters, digits or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrackingNumber(String);

impl TrackingNumber {
    /// Parses a tracking number (surrounding whitespace trimmed).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let valid = (1..=64).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if valid {
            Ok(Self(raw.to_string()))
        } else {
            Err(ParseError::new(
                "tracking_no",
                "tracking_no must be 1 to 64 ASCII letters, digits or '-'",
            ))
        }
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TrackingNumber {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TrackingNumber> for String {
    fn from(value: TrackingNumber) -> Self {
        value.0
    }
}

impl std::fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// So many units of one SKU in the parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentLine {
    /// The item.
    pub sku: Sku,
    /// Units shipped.
    pub quantity: Quantity,
}

/// One tracking update as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingEntry {
    /// What the carrier reported.
    pub status: TrackingStatus,
    /// When, by the carrier's clock.
    pub at: DateTime<Utc>,
}

/// Commands accepted by a [`Shipment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShipmentCommand {
    /// Creates the shipment of a paid order.
    Create {
        /// The shipment's id (also the aggregate id).
        shipment_id: ShipmentId,
        /// The order it delivers.
        order_id: OrderId,
        /// Who receives it.
        customer_id: UserId,
        /// What is in it.
        lines: Vec<ShipmentLine>,
    },
    /// The goods left the warehouse (出库).
    Pick,
    /// The parcel was handed to a carrier.
    Ship {
        /// The carrier.
        carrier: CarrierCode,
        /// Its tracking number.
        tracking_no: TrackingNumber,
    },
    /// The carrier reports on the parcel.
    RecordTracking {
        /// What it reports.
        status: TrackingStatus,
        /// When, by its clock.
        at: DateTime<Utc>,
    },
    /// The goods will not leave: the order was refunded before they did.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// Events of a [`Shipment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShipmentEvent {
    /// The shipment of a paid order was created.
    ShipmentCreated {
        /// The shipment's id.
        shipment_id: ShipmentId,
        /// The order it delivers.
        order_id: OrderId,
        /// Who receives it.
        customer_id: UserId,
        /// What is in it.
        lines: Vec<ShipmentLine>,
    },
    /// The goods left the warehouse.
    ShipmentPicked {},
    /// The parcel was handed to a carrier.
    ShipmentShipped {
        /// The carrier.
        carrier: CarrierCode,
        /// Its tracking number.
        tracking_no: TrackingNumber,
    },
    /// The carrier reported on the parcel.
    TrackingUpdated {
        /// What it reported.
        status: TrackingStatus,
        /// When, by its clock.
        at: DateTime<Utc>,
        /// The shipment's status after the update (unchanged for a late update).
        shipment_status: ShipmentStatus,
    },
    /// The shipment was cancelled before it left.
    ShipmentCancelled {
        /// Why.
        reason: String,
    },
}

impl DomainEvent for ShipmentEvent {
    fn event_type(&self) -> String {
        match self {
            ShipmentEvent::ShipmentCreated { .. } => "ShipmentCreated",
            ShipmentEvent::ShipmentPicked {} => "ShipmentPicked",
            ShipmentEvent::ShipmentShipped { .. } => "ShipmentShipped",
            ShipmentEvent::TrackingUpdated { .. } => "TrackingUpdated",
            ShipmentEvent::ShipmentCancelled { .. } => "ShipmentCancelled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`ShipmentCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShipmentError {
    /// The shipment was never created.
    #[error("shipment not found")]
    NotFound,
    /// A shipment needs at least one line.
    #[error("a shipment needs at least one line")]
    Empty,
    /// The shipment exists with other content.
    #[error("shipment already created")]
    AlreadyCreated,
    /// The shipment's status does not allow the action.
    #[error("cannot {action} a shipment that is {from}")]
    InvalidTransition {
        /// Its status.
        from: ShipmentStatus,
        /// What was attempted.
        action: &'static str,
    },
    /// The shipment left with another carrier or tracking number.
    #[error("the shipment was shipped with {carrier} {tracking_no}")]
    AlreadyShipped {
        /// The carrier it left with.
        carrier: CarrierCode,
        /// Its tracking number.
        tracking_no: TrackingNumber,
    },
}

impl ShipmentError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ShipmentError::NotFound => "shipment_not_found",
            ShipmentError::Empty => "empty_shipment",
            ShipmentError::AlreadyCreated => "shipment_already_created",
            ShipmentError::InvalidTransition { .. } => "invalid_transition",
            ShipmentError::AlreadyShipped { .. } => "already_shipped",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ShipmentError::NotFound => ErrorKind::NotFound,
            ShipmentError::Empty => ErrorKind::Invalid,
            ShipmentError::AlreadyCreated
            | ShipmentError::InvalidTransition { .. }
            | ShipmentError::AlreadyShipped { .. } => ErrorKind::Refused,
        }
    }
}

impl DomainError for ShipmentError {
    fn code(&self) -> &'static str {
        ShipmentError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        ShipmentError::kind(self)
    }
}

/// A shipment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Shipment {
    shipment_id: Option<ShipmentId>,
    order_id: Option<OrderId>,
    customer_id: Option<UserId>,
    lines: Vec<ShipmentLine>,
    status: Option<ShipmentStatus>,
    carrier: Option<CarrierCode>,
    tracking_no: Option<TrackingNumber>,
    tracking: Vec<TrackingEntry>,
}

impl Shipment {
    /// The status, once created.
    pub fn status(&self) -> Option<ShipmentStatus> {
        self.status
    }

    /// The order it delivers, once created.
    pub fn order_id(&self) -> Option<OrderId> {
        self.order_id
    }

    /// Who receives it, once created.
    pub fn customer_id(&self) -> Option<UserId> {
        self.customer_id
    }

    /// What is in it.
    pub fn lines(&self) -> &[ShipmentLine] {
        &self.lines
    }

    /// The carrier, once shipped.
    pub fn carrier(&self) -> Option<&CarrierCode> {
        self.carrier.as_ref()
    }

    /// The tracking number, once shipped.
    pub fn tracking_no(&self) -> Option<&TrackingNumber> {
        self.tracking_no.as_ref()
    }

    /// The tracking updates recorded, in the order they arrived.
    pub fn tracking(&self) -> &[TrackingEntry] {
        &self.tracking
    }

    /// When the carrier reported it delivered, once it did.
    pub fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.tracking
            .iter()
            .find(|entry| entry.status == TrackingStatus::Delivered)
            .map(|entry| entry.at)
    }

    /// Whether `status` at `at` was recorded already: a delivery counts once, a transit
    /// scan or an exception once per time it was reported at.
    fn recorded(&self, status: TrackingStatus, at: DateTime<Utc>) -> bool {
        self.tracking.iter().any(|entry| {
            entry.status == status && (status == TrackingStatus::Delivered || entry.at == at)
        })
    }

    /// The status after an update of `status` at `at`: forward only; between the two
    /// statuses of one rank (in transit, exception) the later report wins.
    fn status_after(
        &self,
        current: ShipmentStatus,
        status: TrackingStatus,
        at: DateTime<Utc>,
    ) -> ShipmentStatus {
        let reported = status.shipment_status();
        let latest_same_rank = self
            .tracking
            .iter()
            .filter(|entry| rank(entry.status.shipment_status()) == rank(current))
            .map(|entry| entry.at)
            .max();
        let forward = rank(reported) > rank(current);
        let later_of_same_rank = rank(reported) == rank(current)
            && reported != current
            && latest_same_rank.is_none_or(|latest| at >= latest);
        if forward || later_of_same_rank {
            reported
        } else {
            current
        }
    }
}

impl Aggregate for Shipment {
    const TYPE: &'static str = "shipment";
    type Command = ShipmentCommand;
    type Event = ShipmentEvent;
    type Error = ShipmentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use ShipmentStatus as S;
        let event = match command {
            ShipmentCommand::Create {
                shipment_id,
                order_id,
                customer_id,
                lines,
            } => {
                if lines.is_empty() {
                    return Err(ShipmentError::Empty);
                }
                if self.status.is_some() {
                    let same = self.shipment_id == Some(shipment_id)
                        && self.order_id == Some(order_id)
                        && self.customer_id == Some(customer_id)
                        && self.lines == lines;
                    return if same {
                        Ok(())
                    } else {
                        Err(ShipmentError::AlreadyCreated)
                    };
                }
                ShipmentEvent::ShipmentCreated {
                    shipment_id,
                    order_id,
                    customer_id,
                    lines,
                }
            }
            ShipmentCommand::Pick => match self.status.ok_or(ShipmentError::NotFound)? {
                S::Created => ShipmentEvent::ShipmentPicked {},
                S::Picked => return Ok(()),
                from => {
                    return Err(ShipmentError::InvalidTransition {
                        from,
                        action: "pick",
                    })
                }
            },
            ShipmentCommand::Ship {
                carrier,
                tracking_no,
            } => match self.status.ok_or(ShipmentError::NotFound)? {
                S::Picked => ShipmentEvent::ShipmentShipped {
                    carrier,
                    tracking_no,
                },
                from @ (S::Created | S::Cancelled) => {
                    return Err(ShipmentError::InvalidTransition {
                        from,
                        action: "ship",
                    })
                }
                _ => {
                    let (Some(shipped_with), Some(number)) = (&self.carrier, &self.tracking_no)
                    else {
                        return Err(ShipmentError::NotFound);
                    };
                    if shipped_with == &carrier && number == &tracking_no {
                        return Ok(());
                    }
                    return Err(ShipmentError::AlreadyShipped {
                        carrier: shipped_with.clone(),
                        tracking_no: number.clone(),
                    });
                }
            },
            ShipmentCommand::RecordTracking { status, at } => {
                let current = self.status.ok_or(ShipmentError::NotFound)?;
                if rank(current) < rank(S::Shipped) {
                    return Err(ShipmentError::InvalidTransition {
                        from: current,
                        action: "track",
                    });
                }
                if self.recorded(status, at) {
                    return Ok(());
                }
                ShipmentEvent::TrackingUpdated {
                    status,
                    at,
                    shipment_status: self.status_after(current, status, at),
                }
            }
            ShipmentCommand::Cancel { reason } => {
                match self.status.ok_or(ShipmentError::NotFound)? {
                    S::Created | S::Picked => ShipmentEvent::ShipmentCancelled { reason },
                    S::Cancelled => return Ok(()),
                    from => {
                        return Err(ShipmentError::InvalidTransition {
                            from,
                            action: "cancel",
                        })
                    }
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ShipmentEvent::ShipmentCreated {
                shipment_id,
                order_id,
                customer_id,
                lines,
            } => {
                self.shipment_id = Some(shipment_id);
                self.order_id = Some(order_id);
                self.customer_id = Some(customer_id);
                self.lines = lines;
                self.status = Some(ShipmentStatus::Created);
            }
            ShipmentEvent::ShipmentPicked {} => self.status = Some(ShipmentStatus::Picked),
            ShipmentEvent::ShipmentShipped {
                carrier,
                tracking_no,
            } => {
                self.carrier = Some(carrier);
                self.tracking_no = Some(tracking_no);
                self.status = Some(ShipmentStatus::Shipped);
            }
            ShipmentEvent::TrackingUpdated {
                status,
                at,
                shipment_status,
            } => {
                self.tracking.push(TrackingEntry { status, at });
                self.status = Some(shipment_status);
            }
            ShipmentEvent::ShipmentCancelled { .. } => {
                self.status = Some(ShipmentStatus::Cancelled);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<ShipmentEvent>) -> AggregateTestExecutor<Shipment> {
        TestFramework::<Shipment>::with(()).given(events)
    }

    fn lines() -> Vec<ShipmentLine> {
        vec![ShipmentLine {
            sku: sku("MUG"),
            quantity: qty(2),
        }]
    }

    fn create() -> ShipmentCommand {
        ShipmentCommand::Create {
            shipment_id: id(1),
            order_id: id(2),
            customer_id: id(3),
            lines: lines(),
        }
    }

    fn created() -> ShipmentEvent {
        ShipmentEvent::ShipmentCreated {
            shipment_id: id(1),
            order_id: id(2),
            customer_id: id(3),
            lines: lines(),
        }
    }

    fn carrier() -> CarrierCode {
        CarrierCode::parse("sandbox").unwrap()
    }

    fn number(raw: &str) -> TrackingNumber {
        TrackingNumber::parse(raw).unwrap()
    }

    fn shipped_event() -> ShipmentEvent {
        ShipmentEvent::ShipmentShipped {
            carrier: carrier(),
            tracking_no: number("SBX-1"),
        }
    }

    fn shipped() -> Vec<ShipmentEvent> {
        vec![created(), ShipmentEvent::ShipmentPicked {}, shipped_event()]
    }

    fn at(minute: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-05-01T10:{minute:02}:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn track(status: TrackingStatus, minute: u32) -> ShipmentCommand {
        ShipmentCommand::RecordTracking {
            status,
            at: at(minute),
        }
    }

    fn tracked(status: TrackingStatus, minute: u32, after: ShipmentStatus) -> ShipmentEvent {
        ShipmentEvent::TrackingUpdated {
            status,
            at: at(minute),
            shipment_status: after,
        }
    }

    fn with(mut events: Vec<ShipmentEvent>, more: ShipmentEvent) -> Vec<ShipmentEvent> {
        events.push(more);
        events
    }

    fn state(events: Vec<ShipmentEvent>) -> Shipment {
        let mut shipment = Shipment::default();
        for event in events {
            shipment.apply(event);
        }
        shipment
    }

    #[test]
    fn create_records_the_parcel_and_a_repeat_is_a_no_op() {
        given(vec![])
            .when(create())
            .then_expect_events(vec![created()]);
        given(vec![created()])
            .when(create())
            .then_expect_events(vec![]);
        let shipment = state(vec![created()]);
        assert_eq!(shipment.status(), Some(ShipmentStatus::Created));
        assert_eq!(shipment.order_id(), Some(id(2)));
    }

    #[test]
    fn create_with_other_content_or_no_line_is_refused() {
        given(vec![created()])
            .when(ShipmentCommand::Create {
                shipment_id: id(1),
                order_id: id(9),
                customer_id: id(3),
                lines: lines(),
            })
            .then_expect_error(ShipmentError::AlreadyCreated);
        let err = given(vec![])
            .when(ShipmentCommand::Create {
                shipment_id: id(1),
                order_id: id(2),
                customer_id: id(3),
                lines: vec![],
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, ShipmentError::Empty);
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn commands_on_a_shipment_never_created_are_not_found() {
        for command in [
            ShipmentCommand::Pick,
            ShipmentCommand::Ship {
                carrier: carrier(),
                tracking_no: number("X"),
            },
            track(TrackingStatus::InTransit, 1),
        ] {
            let err = given(vec![]).when(command).inspect_result().unwrap_err();
            assert_eq!(err, ShipmentError::NotFound);
            assert_eq!(err.kind(), ErrorKind::NotFound);
        }
    }

    #[test]
    fn pick_then_ship_hands_the_parcel_to_the_carrier() {
        given(vec![created()])
            .when(ShipmentCommand::Pick)
            .then_expect_events(vec![ShipmentEvent::ShipmentPicked {}]);
        given(vec![created(), ShipmentEvent::ShipmentPicked {}])
            .when(ShipmentCommand::Ship {
                carrier: carrier(),
                tracking_no: number("SBX-1"),
            })
            .then_expect_events(vec![shipped_event()]);
        let shipment = state(shipped());
        assert_eq!(shipment.status(), Some(ShipmentStatus::Shipped));
        assert_eq!(shipment.tracking_no(), Some(&number("SBX-1")));
    }

    #[test]
    fn pick_and_ship_repeated_are_no_ops() {
        given(vec![created(), ShipmentEvent::ShipmentPicked {}])
            .when(ShipmentCommand::Pick)
            .then_expect_events(vec![]);
        given(shipped())
            .when(ShipmentCommand::Ship {
                carrier: carrier(),
                tracking_no: number("SBX-1"),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn shipping_before_picking_or_again_with_another_number_is_refused() {
        given(vec![created()])
            .when(ShipmentCommand::Ship {
                carrier: carrier(),
                tracking_no: number("SBX-1"),
            })
            .then_expect_error(ShipmentError::InvalidTransition {
                from: ShipmentStatus::Created,
                action: "ship",
            });
        let err = given(shipped())
            .when(ShipmentCommand::Ship {
                carrier: carrier(),
                tracking_no: number("SBX-2"),
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.code(), "already_shipped");
        assert_eq!(err.kind(), ErrorKind::Refused);
        given(shipped())
            .when(ShipmentCommand::Pick)
            .then_expect_error(ShipmentError::InvalidTransition {
                from: ShipmentStatus::Shipped,
                action: "pick",
            });
    }

    #[test]
    fn tracking_before_shipping_is_refused() {
        given(vec![created(), ShipmentEvent::ShipmentPicked {}])
            .when(track(TrackingStatus::InTransit, 1))
            .then_expect_error(ShipmentError::InvalidTransition {
                from: ShipmentStatus::Picked,
                action: "track",
            });
    }

    #[test]
    fn tracking_moves_a_shipped_parcel_in_transit_then_delivered() {
        given(shipped())
            .when(track(TrackingStatus::InTransit, 1))
            .then_expect_events(vec![tracked(
                TrackingStatus::InTransit,
                1,
                ShipmentStatus::InTransit,
            )]);
        let in_transit = with(
            shipped(),
            tracked(TrackingStatus::InTransit, 1, ShipmentStatus::InTransit),
        );
        given(in_transit.clone())
            .when(track(TrackingStatus::Delivered, 2))
            .then_expect_events(vec![tracked(
                TrackingStatus::Delivered,
                2,
                ShipmentStatus::Delivered,
            )]);
        let delivered = state(with(
            in_transit,
            tracked(TrackingStatus::Delivered, 2, ShipmentStatus::Delivered),
        ));
        assert_eq!(delivered.status(), Some(ShipmentStatus::Delivered));
        assert_eq!(delivered.delivered_at(), Some(at(2)));
        assert_eq!(delivered.tracking().len(), 2);
    }

    #[test]
    fn a_repeated_tracking_update_is_a_no_op() {
        let in_transit = with(
            shipped(),
            tracked(TrackingStatus::InTransit, 1, ShipmentStatus::InTransit),
        );
        given(in_transit.clone())
            .when(track(TrackingStatus::InTransit, 1))
            .then_expect_events(vec![]);
        let delivered = with(
            in_transit,
            tracked(TrackingStatus::Delivered, 2, ShipmentStatus::Delivered),
        );
        given(delivered)
            .when(track(TrackingStatus::Delivered, 3))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_late_update_is_recorded_but_never_moves_the_parcel_backwards() {
        // Delivered arrives first, its in-transit scan after it.
        let delivered = with(
            shipped(),
            tracked(TrackingStatus::Delivered, 5, ShipmentStatus::Delivered),
        );
        given(delivered.clone())
            .when(track(TrackingStatus::InTransit, 1))
            .then_expect_events(vec![tracked(
                TrackingStatus::InTransit,
                1,
                ShipmentStatus::Delivered,
            )]);
        given(delivered)
            .when(track(TrackingStatus::Exception, 6))
            .then_expect_events(vec![tracked(
                TrackingStatus::Exception,
                6,
                ShipmentStatus::Delivered,
            )]);
    }

    #[test]
    fn an_exception_may_resume_in_transit_by_the_later_report() {
        let exception = with(
            with(
                shipped(),
                tracked(TrackingStatus::InTransit, 1, ShipmentStatus::InTransit),
            ),
            tracked(TrackingStatus::Exception, 3, ShipmentStatus::Exception),
        );
        assert_eq!(
            state(exception.clone()).status(),
            Some(ShipmentStatus::Exception)
        );
        // An in-transit scan older than the exception does not clear it, a later one does...
        given(exception.clone())
            .when(track(TrackingStatus::InTransit, 2))
            .then_expect_events(vec![tracked(
                TrackingStatus::InTransit,
                2,
                ShipmentStatus::Exception,
            )]);
        given(exception.clone())
            .when(track(TrackingStatus::InTransit, 4))
            .then_expect_events(vec![tracked(
                TrackingStatus::InTransit,
                4,
                ShipmentStatus::InTransit,
            )]);
        // ...and delivery ends it.
        given(exception)
            .when(track(TrackingStatus::Delivered, 4))
            .then_expect_events(vec![tracked(
                TrackingStatus::Delivered,
                4,
                ShipmentStatus::Delivered,
            )]);
    }

    #[test]
    fn carrier_codes_and_tracking_numbers_are_parsed() {
        assert!(CarrierCode::parse("sandbox").unwrap().is_sandbox());
        assert!(CarrierCode::parse("SF Express").is_err());
        assert!(CarrierCode::parse("").is_err());
        assert_eq!(number(" SBX-1 ").as_str(), "SBX-1");
        assert!(TrackingNumber::parse("a b").is_err());
        assert!(TrackingNumber::parse(&"9".repeat(65)).is_err());
        assert_eq!(
            TrackingStatus::parse("delivered"),
            Ok(TrackingStatus::Delivered)
        );
        assert!(TrackingStatus::parse("lost").is_err());
    }

    #[test]
    fn a_shipment_is_cancelled_only_before_it_leaves() {
        let created = vec![ShipmentEvent::ShipmentCreated {
            shipment_id: id(1),
            order_id: id(2),
            customer_id: id(3),
            lines: lines(),
        }];
        let cancel = || ShipmentCommand::Cancel {
            reason: "order_refunded".into(),
        };
        given(created.clone())
            .when(cancel())
            .then_expect_events(vec![ShipmentEvent::ShipmentCancelled {
                reason: "order_refunded".into(),
            }]);
        let mut cancelled = created.clone();
        cancelled.push(ShipmentEvent::ShipmentCancelled {
            reason: "order_refunded".into(),
        });
        given(cancelled.clone())
            .when(cancel())
            .then_expect_events(vec![]);
        given(cancelled)
            .when(ShipmentCommand::Pick)
            .then_expect_error(ShipmentError::InvalidTransition {
                from: ShipmentStatus::Cancelled,
                action: "pick",
            });
        let mut shipped = created;
        shipped.push(ShipmentEvent::ShipmentPicked {});
        shipped.push(ShipmentEvent::ShipmentShipped {
            carrier: CarrierCode::parse("sandbox").unwrap(),
            tracking_no: TrackingNumber::parse("SB1").unwrap(),
        });
        given(shipped)
            .when(cancel())
            .then_expect_error(ShipmentError::InvalidTransition {
                from: ShipmentStatus::Shipped,
                action: "cancel",
            });
    }
}
