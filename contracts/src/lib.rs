//! Ordo's typed event contracts: the one place where a message read from JetStream becomes
//! a typed event. Every consumer (projections, sagas) decodes each message once, through
//! the function of its stream, into the aggregate's own versioned event enum
//! (`OrderEvent`, `PaymentEvent`...) and matches on that; event-name strings are read here
//! and nowhere else.
//!
//! # Layout
//! - [`order`], [`payment`], [`inventory`], [`product`], [`category`], [`cart`], [`show`],
//!   [`booking`], [`promotion`], [`coupon_batch`], [`customer`], [`provider`],
//!   [`service_order`], [`shipment`], [`aftersale`], [`review`]: one
//!   decoding function per stream, each answering a [`Decoded`]: the aggregate's typed id,
//!   the typed event and the [`EventFacts`] of its envelope (sequence, event id, version,
//!   commit time, correlation, causation, user).
//! - [`Contract`]: what each stream's decoder knows, the event types and the version of each
//!   this build reads ([`CONTRACTS`] lists them all).
//! - [`ContractError`]: why a message did not decode, and (through its conversion to
//!   [`HandlerError`]) what a consumer does about it.
//!
//! # Decoding
//! 1. The message must be of the stream's aggregate type.
//! 2. Its event type must be one this build knows.
//! 3. Its payload is upcast by version with the same upcasters the event store applies on
//!    load ([`ordo_schemas::upcasters`]), so a `PaymentRefunded` of version 1 read from
//!    JetStream decodes exactly as one loaded from Postgres: as version 2.
//! 4. The version reached must be the one this build reads.
//! 5. The payload is deserialized into the event enum, and the aggregate id parsed.
//!
//! # Events this build does not know
//! An event whose type, or whose version, this build does not know (a newer build wrote
//! it) is never skipped and never acknowledged as applied. The decoder answers
//! [`ContractError::UnknownEventType`] or [`ContractError::UnknownVersion`], which a consumer
//! turns into a retry: the message is nak'd with the consumer's back-off, so that during a
//! rolling upgrade an instance already running the newer build may take it. Once the
//! attempts run out it is dead-lettered with an error naming the aggregate type, the event
//! type and the version and saying "upgrade this consumer"; its aggregate is parked for that
//! consumer, so the aggregate's later events wait behind it, in order, while other
//! aggregates flow on. After the upgrade, `ordo dlq redrive` re-drives them. Hence the
//! deploy order: a build that adds an event type or version reaches every consumer of its
//! stream before any aggregate writes it.
//!
//! A payload that matches no version this build knows the shape of (a required field
//! missing, a value out of range, an id that does not parse) is
//! [`ContractError::Malformed`], and an event of another aggregate type on the stream is
//! [`ContractError::WrongStream`]: no upgrade fixes either, so both are dead-lettered at once.
//!
//! Consumers match the decoded enums without a wildcard arm where they can, so a new
//! variant does not compile until each of them has decided what to do with it.
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::Aggregate;
use ordo_aggregates::aftersale::{AfterSale, AfterSaleEvent};
use ordo_aggregates::booking::{Booking, BookingEvent};
use ordo_aggregates::cart::{Cart, CartEvent};
use ordo_aggregates::category::{CategoryEvent, CategoryNode};
use ordo_aggregates::common::{
    AfterSaleId, BookingId, CartId, CategoryId, CouponBatchId, OrderId, PaymentId, ProductId,
    PromotionId, ReviewId, ServiceOrderId, ShipmentId, ShowId, Sku, UserId,
};
use ordo_aggregates::coupon::{CouponBatch, CouponEvent};
use ordo_aggregates::customer::{Customer, CustomerEvent};
use ordo_aggregates::inventory::{InventoryEvent, InventoryItem};
use ordo_aggregates::order::{Order, OrderEvent};
use ordo_aggregates::payment::{Payment, PaymentEvent};
use ordo_aggregates::product::{Product, ProductEvent};
use ordo_aggregates::promotion::{Promotion, PromotionEvent};
use ordo_aggregates::provider::{Provider, ProviderEvent};
use ordo_aggregates::review::{Review, ReviewEvent};
use ordo_aggregates::service_order::{ServiceOrder, ServiceOrderEvent};
use ordo_aggregates::shipment::{Shipment, ShipmentEvent};
use ordo_aggregates::show::{Show, ShowEvent};
use ordo_nats::consumer::HandlerError;
use ordo_nats::envelope::{decode_payload, ReceivedEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

/// A message decoded by its stream's contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<Id, E> {
    /// The aggregate's id, typed (`OrderId`, the SKU of an inventory item...).
    pub id: Id,
    /// The event, in the aggregate's own enum, at the version this build reads.
    pub event: E,
    /// What the envelope says about it.
    pub facts: EventFacts,
}

/// What every event's envelope carries besides the event itself.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFacts {
    /// The aggregate id as published.
    pub aggregate_id: String,
    /// The event's sequence within its aggregate (1, 2, ...).
    pub sequence: i64,
    /// The stable event id (the same on every re-publish).
    pub event_id: Uuid,
    /// The version the event was decoded at (after upcasting).
    pub event_version: String,
    /// The version it was published with.
    pub published_version: String,
    /// Commit time.
    pub recorded_at: DateTime<Utc>,
    /// The request that started the chain of work.
    pub correlation_id: String,
    /// The message that directly caused this event.
    pub causation_id: String,
    /// The user on whose behalf the command ran, when known.
    pub user_id: Option<String>,
}

/// A decoded order event.
pub type OrderMessage = Decoded<OrderId, OrderEvent>;
/// A decoded payment event.
pub type PaymentMessage = Decoded<PaymentId, PaymentEvent>;
/// A decoded inventory event (the item id is a SKU, or a session's seat area).
pub type InventoryMessage = Decoded<Sku, InventoryEvent>;
/// A decoded product event (the id is the product's, which for a single-SKU product is
/// its SKU).
pub type ProductMessage = Decoded<ProductId, ProductEvent>;
/// A decoded category event.
pub type CategoryMessage = Decoded<CategoryId, CategoryEvent>;
/// A decoded promotion event.
pub type PromotionMessage = Decoded<PromotionId, PromotionEvent>;
/// A decoded coupon batch event.
pub type CouponBatchMessage = Decoded<CouponBatchId, CouponEvent>;
/// A decoded cart event.
pub type CartMessage = Decoded<CartId, CartEvent>;
/// A decoded show event.
pub type ShowMessage = Decoded<ShowId, ShowEvent>;
/// A decoded booking event.
pub type BookingMessage = Decoded<BookingId, BookingEvent>;
/// A decoded customer event (the id is the user's). Its personal values arrive sealed:
/// a consumer opens them with the personal-data vault before writing them anywhere.
pub type CustomerMessage = Decoded<UserId, CustomerEvent>;
/// A decoded provider event (the id is the provider's user id); personal values sealed.
pub type ProviderMessage = Decoded<UserId, ProviderEvent>;
/// A decoded service order event; personal values sealed.
pub type ServiceOrderMessage = Decoded<ServiceOrderId, ServiceOrderEvent>;
/// A decoded after-sales event.
pub type AfterSaleMessage = Decoded<AfterSaleId, AfterSaleEvent>;
/// A decoded review event.
pub type ReviewMessage = Decoded<ReviewId, ReviewEvent>;
/// A decoded shipment event.
pub type ShipmentMessage = Decoded<ShipmentId, ShipmentEvent>;

/// Why a message did not decode.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The message is of another aggregate type than its stream's.
    #[error("a {found} event reached the decoder of the {expected} stream")]
    WrongStream {
        /// The stream's aggregate type.
        expected: &'static str,
        /// The message's.
        found: String,
    },
    /// An event type this build does not know.
    #[error(
        "{aggregate_type} event {event_type} (version {event_version}) is unknown to this \
         build: upgrade this consumer, then re-drive its dead letters"
    )]
    UnknownEventType {
        /// The aggregate type.
        aggregate_type: String,
        /// The event type.
        event_type: String,
        /// The version it was published with.
        event_version: String,
    },
    /// A known event type at a version this build cannot read.
    #[error(
        "{aggregate_type} event {event_type} version {event_version} is unknown to this \
         build, which reads version {reads}: upgrade this consumer, then re-drive its dead \
         letters"
    )]
    UnknownVersion {
        /// The aggregate type.
        aggregate_type: String,
        /// The event type.
        event_type: String,
        /// The version it was published with.
        event_version: String,
        /// The version this build reads.
        reads: &'static str,
    },
    /// A known type and version whose payload (or aggregate id) does not fit it.
    #[error("{aggregate_type} event {event_type} version {event_version} is malformed: {reason}")]
    Malformed {
        /// The aggregate type.
        aggregate_type: String,
        /// The event type.
        event_type: String,
        /// The version it was published with.
        event_version: String,
        /// What did not fit.
        reason: String,
    },
}

impl ContractError {
    /// True for an event a newer build wrote: worth retrying, then worth an upgrade.
    pub fn is_unknown(&self) -> bool {
        matches!(
            self,
            Self::UnknownEventType { .. } | Self::UnknownVersion { .. }
        )
    }
}

impl From<ContractError> for HandlerError {
    /// The rule of the crate documentation: an unknown event is retried with back-off and
    /// dead-lettered once the attempts run out; anything else that does not decode is
    /// dead-lettered at once.
    fn from(err: ContractError) -> Self {
        if err.is_unknown() {
            HandlerError::Retry(err.into())
        } else {
            HandlerError::Permanent(err.into())
        }
    }
}

/// What one stream's decoder knows: its aggregate type, and each event type with the
/// version this build reads (the version its aggregate writes; older versions reach it
/// through the upcasters).
#[derive(Debug)]
pub struct Contract {
    /// The aggregate type, `Aggregate::TYPE`.
    pub aggregate_type: &'static str,
    /// `(event type, version read)`, one per variant of the aggregate's event enum.
    pub events: &'static [(&'static str, &'static str)],
}

impl Contract {
    /// The version this build reads of `event_type`, `None` when it does not know the type.
    pub fn version_read(&self, event_type: &str) -> Option<&'static str> {
        self.events
            .iter()
            .find(|(known, _)| *known == event_type)
            .map(|(_, version)| *version)
    }

    fn decode<Id, E: DeserializeOwned>(
        &self,
        message: &ReceivedEvent,
        parse_id: impl FnOnce(&str) -> Result<Id, String>,
    ) -> Result<Decoded<Id, E>, ContractError> {
        if message.aggregate_type != self.aggregate_type {
            return Err(ContractError::WrongStream {
                expected: self.aggregate_type,
                found: message.aggregate_type.clone(),
            });
        }
        let Some(reads) = self.version_read(&message.event_type) else {
            return Err(ContractError::UnknownEventType {
                aggregate_type: message.aggregate_type.clone(),
                event_type: message.event_type.clone(),
                event_version: message.event_version.clone(),
            });
        };
        let (version, payload) = upcast(message);
        if version != reads {
            return Err(ContractError::UnknownVersion {
                aggregate_type: message.aggregate_type.clone(),
                event_type: message.event_type.clone(),
                event_version: message.event_version.clone(),
                reads,
            });
        }
        let malformed = |reason: String| ContractError::Malformed {
            aggregate_type: message.aggregate_type.clone(),
            event_type: message.event_type.clone(),
            event_version: message.event_version.clone(),
            reason,
        };
        let event = decode_payload::<E>(&message.event_type, &payload)
            .map_err(|err| malformed(err.to_string()))?;
        let id = parse_id(&message.aggregate_id)
            .map_err(|err| malformed(format!("aggregate id {:?}: {err}", message.aggregate_id)))?;
        Ok(Decoded {
            id,
            event,
            facts: EventFacts {
                aggregate_id: message.aggregate_id.clone(),
                sequence: message.sequence,
                event_id: message.event_id,
                event_version: version,
                published_version: message.event_version.clone(),
                recorded_at: message.recorded_at,
                correlation_id: message.correlation_id.clone(),
                causation_id: message.causation_id.clone(),
                user_id: message.user_id.clone(),
            },
        })
    }
}

/// The upcasters of the event store, built once.
fn upcasters() -> &'static [Box<dyn EventUpcaster>] {
    static UPCASTERS: OnceLock<Vec<Box<dyn EventUpcaster>>> = OnceLock::new();
    UPCASTERS.get_or_init(ordo_schemas::upcasters::all)
}

/// Runs the upcasters over the published payload, in order, as the event store does on
/// load; answers the version reached and the payload at that version.
fn upcast(message: &ReceivedEvent) -> (String, Value) {
    let mut event = SerializedEvent::new(
        message.aggregate_id.clone(),
        usize::try_from(message.sequence).unwrap_or_default(),
        message.aggregate_type.clone(),
        message.event_type.clone(),
        message.event_version.clone(),
        message.payload.clone(),
        Value::Null,
    );
    for upcaster in upcasters() {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    (event.event_version, event.payload)
}

fn uuid_id<Id: From<Uuid>>(raw: &str) -> Result<Id, String> {
    Uuid::parse_str(raw)
        .map(Id::from)
        .map_err(|err| err.to_string())
}

fn sku_id(raw: &str) -> Result<Sku, String> {
    Sku::parse(raw).map_err(|err| err.to_string())
}

/// The order stream's contract.
pub const ORDER: Contract = Contract {
    aggregate_type: <Order as Aggregate>::TYPE,
    events: &[
        ("OrderPlaced", "1"),
        ("OrderConfirmed", "1"),
        ("OrderRejected", "1"),
        ("PaymentAttached", "1"),
        ("OrderPaid", "1"),
        ("OrderCancelled", "1"),
        ("OrderExpired", "1"),
        ("OrderRefunded", "1"),
        ("OrderShipped", "1"),
        ("OrderDelivered", "1"),
        ("OrderCompleted", "1"),
        ("AfterSaleUnitsClaimed", "1"),
        ("AfterSaleUnitsReleased", "1"),
    ],
};

/// The payment stream's contract.
pub const PAYMENT: Contract = Contract {
    aggregate_type: <Payment as Aggregate>::TYPE,
    events: &[
        ("PaymentCreated", "2"),
        ("PaymentAuthorized", "1"),
        ("PaymentCaptured", "1"),
        ("PaymentFailed", "1"),
        ("PaymentVoided", "1"),
        ("PaymentRefunded", "2"),
    ],
};

/// The inventory stream's contract.
pub const INVENTORY: Contract = Contract {
    aggregate_type: <InventoryItem as Aggregate>::TYPE,
    events: &[
        ("Restocked", "1"),
        ("StockReserved", "2"),
        ("StockReleased", "1"),
        ("StockCommitted", "1"),
        ("StockReturned", "1"),
        ("SafetyThresholdSet", "1"),
        ("StockBelowThreshold", "1"),
    ],
};

/// The product stream's contract.
pub const PRODUCT: Contract = Contract {
    aggregate_type: <Product as Aggregate>::TYPE,
    events: &[
        ("ProductCreated", "2"),
        ("ProductUpdated", "1"),
        ("SkuPriceChanged", "1"),
        ("ProductMediaChanged", "1"),
        ("SkuLimitChanged", "1"),
        ("SkuDelisted", "1"),
        ("SkuListed", "1"),
    ],
};

/// The category stream's contract.
pub const CATEGORY: Contract = Contract {
    aggregate_type: <CategoryNode as Aggregate>::TYPE,
    events: &[
        ("CategoryCreated", "1"),
        ("CategoryRenamed", "1"),
        ("CategoryMoved", "1"),
        ("CategoryDeleted", "1"),
    ],
};

/// The cart stream's contract.
pub const CART: Contract = Contract {
    aggregate_type: <Cart as Aggregate>::TYPE,
    events: &[
        ("CartOpened", "1"),
        ("CartLineSet", "1"),
        ("GuestCartMerged", "1"),
        ("OrderedLinesRemoved", "1"),
    ],
};

/// The show stream's contract.
pub const SHOW: Contract = Contract {
    aggregate_type: <Show as Aggregate>::TYPE,
    events: &[
        ("ShowCreated", "1"),
        ("ShowUpdated", "1"),
        ("SessionAdded", "1"),
        ("SeatAreaChanged", "1"),
    ],
};

/// The booking stream's contract.
pub const BOOKING: Contract = Contract {
    aggregate_type: <Booking as Aggregate>::TYPE,
    events: &[
        ("BookingRequested", "1"),
        ("SeatsHeld", "1"),
        ("BookingRejected", "1"),
        ("PaymentAttached", "1"),
        ("BookingPaid", "1"),
        ("BookingCancelled", "1"),
        ("BookingExpired", "1"),
        ("BookingRefunded", "1"),
        ("BookingRefundRequested", "1"),
        ("BookingRefundRequestWithdrawn", "1"),
        ("BookingRefundRequestRejected", "1"),
        ("BookingCompleted", "1"),
        ("TicketCheckedIn", "1"),
    ],
};

/// The promotion stream's contract.
pub const PROMOTION: Contract = Contract {
    aggregate_type: <Promotion as Aggregate>::TYPE,
    events: &[("PromotionCreated", "1"), ("PromotionEnded", "1")],
};

/// The coupon batch stream's contract.
pub const COUPON_BATCH: Contract = Contract {
    aggregate_type: <CouponBatch as Aggregate>::TYPE,
    events: &[
        ("CouponBatchCreated", "1"),
        ("CouponClaimed", "1"),
        ("CouponLocked", "1"),
        ("CouponRedeemed", "1"),
        ("CouponReleased", "1"),
    ],
};

/// The customer stream's contract.
pub const CUSTOMER: Contract = Contract {
    aggregate_type: <Customer as Aggregate>::TYPE,
    events: &[
        ("ProfileChanged", "1"),
        ("AddressAdded", "1"),
        ("AddressChanged", "1"),
        ("AddressRemoved", "1"),
        ("DefaultAddressChosen", "1"),
    ],
};

/// The provider stream's contract.
pub const PROVIDER: Contract = Contract {
    aggregate_type: <Provider as Aggregate>::TYPE,
    events: &[
        ("ProviderProfileSet", "1"),
        ("CertificationSubmitted", "1"),
        ("VerificationRequested", "1"),
        ("ProviderVerified", "1"),
        ("ProviderRejected", "1"),
    ],
};

/// The service order stream's contract.
pub const SERVICE_ORDER: Contract = Contract {
    aggregate_type: <ServiceOrder as Aggregate>::TYPE,
    events: &[
        ("ServiceOrderPublished", "1"),
        ("ServiceOrderApproved", "1"),
        ("ServiceOrderRejected", "1"),
        ("ServiceOrderAccepted", "1"),
        ("ServicePaymentAttached", "1"),
        ("ServiceOrderPaid", "1"),
        ("WorkStarted", "1"),
        ("WorkDone", "1"),
        ("ServiceOrderConfirmed", "1"),
        ("PayoutReleased", "1"),
        ("ServiceOrderCancelled", "1"),
        ("ServiceOrderRefunded", "1"),
        ("ServiceOrderReviewed", "1"),
        ("ServiceOrderReviewHeld", "1"),
        ("ServiceOrderReviewPublished", "1"),
        ("ServiceOrderReviewRejected", "1"),
    ],
};

/// The shipment stream's contract.
pub const SHIPMENT: Contract = Contract {
    aggregate_type: <Shipment as Aggregate>::TYPE,
    events: &[
        ("ShipmentCreated", "1"),
        ("ShipmentPicked", "1"),
        ("ShipmentCancelled", "1"),
        ("ShipmentShipped", "1"),
        ("TrackingUpdated", "1"),
    ],
};

/// The after-sales stream's contract.
pub const AFTERSALE: Contract = Contract {
    aggregate_type: <AfterSale as Aggregate>::TYPE,
    events: &[
        ("AfterSaleRequested", "1"),
        ("AfterSaleWithdrawn", "1"),
        ("AfterSaleApproved", "1"),
        ("AfterSaleRejected", "1"),
        ("ReturnShipped", "1"),
        ("ReturnReceived", "1"),
        ("AfterSaleRefunded", "1"),
        ("AfterSaleRefundFailed", "1"),
        ("ReplacementArranged", "1"),
        ("AfterSaleClosed", "1"),
    ],
};

/// The review stream's contract.
pub const REVIEW: Contract = Contract {
    aggregate_type: <Review as Aggregate>::TYPE,
    events: &[
        ("ReviewSubmitted", "1"),
        ("ReviewFollowedUp", "1"),
        ("ReviewPublished", "1"),
        ("ReviewRejected", "1"),
        ("ReviewReported", "1"),
        ("ReviewHidden", "1"),
    ],
};

/// Every stream's contract.
pub const CONTRACTS: [&Contract; 16] = [
    &ORDER,
    &PAYMENT,
    &INVENTORY,
    &PRODUCT,
    &CATEGORY,
    &CART,
    &SHOW,
    &BOOKING,
    &PROMOTION,
    &COUPON_BATCH,
    &CUSTOMER,
    &PROVIDER,
    &SERVICE_ORDER,
    &SHIPMENT,
    &AFTERSALE,
    &REVIEW,
];

/// Decodes a message of the order stream.
pub fn order(message: &ReceivedEvent) -> Result<OrderMessage, ContractError> {
    ORDER.decode(message, uuid_id::<OrderId>)
}

/// Decodes a message of the payment stream.
pub fn payment(message: &ReceivedEvent) -> Result<PaymentMessage, ContractError> {
    PAYMENT.decode(message, uuid_id::<PaymentId>)
}

/// Decodes a message of the inventory stream.
pub fn inventory(message: &ReceivedEvent) -> Result<InventoryMessage, ContractError> {
    INVENTORY.decode(message, sku_id)
}

/// Decodes a message of the product stream.
pub fn product(message: &ReceivedEvent) -> Result<ProductMessage, ContractError> {
    PRODUCT.decode(message, |raw| {
        ProductId::parse(raw).map_err(|err| err.to_string())
    })
}

/// Decodes a message of the cart stream.
pub fn cart(message: &ReceivedEvent) -> Result<CartMessage, ContractError> {
    CART.decode(message, uuid_id::<CartId>)
}

/// Decodes a message of the category stream.
pub fn category(message: &ReceivedEvent) -> Result<CategoryMessage, ContractError> {
    CATEGORY.decode(message, uuid_id::<CategoryId>)
}

/// Decodes a message of the show stream.
pub fn show(message: &ReceivedEvent) -> Result<ShowMessage, ContractError> {
    SHOW.decode(message, uuid_id::<ShowId>)
}

/// Decodes a message of the booking stream.
pub fn booking(message: &ReceivedEvent) -> Result<BookingMessage, ContractError> {
    BOOKING.decode(message, uuid_id::<BookingId>)
}

/// Decodes a message of the promotion stream.
pub fn promotion(message: &ReceivedEvent) -> Result<PromotionMessage, ContractError> {
    PROMOTION.decode(message, uuid_id::<PromotionId>)
}

/// Decodes a message of the coupon batch stream.
pub fn coupon_batch(message: &ReceivedEvent) -> Result<CouponBatchMessage, ContractError> {
    COUPON_BATCH.decode(message, uuid_id::<CouponBatchId>)
}

/// Decodes a message of the shipment stream.
pub fn shipment(message: &ReceivedEvent) -> Result<ShipmentMessage, ContractError> {
    SHIPMENT.decode(message, uuid_id::<ShipmentId>)
}

/// Decodes a message of the customer stream.
pub fn customer(message: &ReceivedEvent) -> Result<CustomerMessage, ContractError> {
    CUSTOMER.decode(message, uuid_id::<UserId>)
}

/// Decodes a message of the provider stream.
pub fn provider(message: &ReceivedEvent) -> Result<ProviderMessage, ContractError> {
    PROVIDER.decode(message, uuid_id::<UserId>)
}

/// Decodes a message of the service order stream.
pub fn service_order(message: &ReceivedEvent) -> Result<ServiceOrderMessage, ContractError> {
    SERVICE_ORDER.decode(message, uuid_id::<ServiceOrderId>)
}

/// Decodes a message of the after-sales stream.
pub fn aftersale(message: &ReceivedEvent) -> Result<AfterSaleMessage, ContractError> {
    AFTERSALE.decode(message, uuid_id::<AfterSaleId>)
}

/// Decodes a message of the review stream.
pub fn review(message: &ReceivedEvent) -> Result<ReviewMessage, ContractError> {
    REVIEW.decode(message, uuid_id::<ReviewId>)
}

#[cfg(test)]
mod tests;
