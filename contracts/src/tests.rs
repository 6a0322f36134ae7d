//! The decoders against messages built the way the relay publishes them, and the contracts
//! against the event enums and the schema files they must agree with.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use ordo_aggregates::common::{
    Currency, Money, OrderId, PaymentId, Quantity, RefundId, Sku, UserId,
};
use ordo_aggregates::order::OrderLine;
use ordo_nats::envelope::{EventRow, OutgoingEvent};
use ordo_nats::Namespace;
use serde::de::Visitor;
use serde_json::{json, Value};

use super::*;

const ORDER_ID: &str = "00000000-0000-4000-8000-0000000000a1";
const PAYMENT_ID: &str = "00000000-0000-4000-8000-0000000000b2";

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}

fn recorded_at() -> DateTime<Utc> {
    "2024-05-01T10:00:00.123456Z".parse().unwrap()
}

/// A message exactly as a consumer receives it: an `events` row through the relay's
/// encoding and back.
fn message(
    aggregate_type: &str,
    aggregate_id: &str,
    event_type: &str,
    event_version: &str,
    stored: Value,
) -> ReceivedEvent {
    let row = EventRow {
        position: 1,
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence: 3,
        event_type: event_type.into(),
        event_version: event_version.into(),
        payload: stored,
        metadata: json!({
            "correlation_id": "0b0f4d9e-8d7a-4c55-9f1e-3c2b1a000001",
            "causation_id": "cmd-1",
            "user_id": "u-1",
        }),
        recorded_at: recorded_at(),
    };
    let out = OutgoingEvent::from_row(&Namespace::default(), &row);
    ReceivedEvent::from_parts(
        "ORDO_TEST",
        9,
        1,
        &out.subject,
        Some(&out.headers),
        &out.payload,
    )
    .unwrap()
}

/// A message of an event this build writes, at its own version.
fn message_of<E: DomainEvent>(
    aggregate_type: &str,
    aggregate_id: &str,
    event: &E,
) -> ReceivedEvent {
    message(
        aggregate_type,
        aggregate_id,
        &event.event_type(),
        &event.event_version(),
        serde_json::to_value(event).unwrap(),
    )
}

fn placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        order_id: OrderId::from(Uuid::parse_str(ORDER_ID).unwrap()),
        customer_id: UserId::from(Uuid::from_u128(7)),
        lines: vec![OrderLine {
            sku: Sku::parse("WIDGET").unwrap(),
            quantity: Quantity::parse(2).unwrap(),
            unit_price: eur(500),
        }],
        total: eur(1000),
        pricing: None,
        delivery_address: None,
        from_cart: None,
    }
}

#[test]
fn an_event_decodes_into_its_enum_with_its_typed_id_and_envelope_facts() {
    let decoded = order(&message_of("order", ORDER_ID, &placed())).unwrap();
    assert_eq!(decoded.event, placed());
    assert_eq!(
        decoded.id,
        OrderId::from(Uuid::parse_str(ORDER_ID).unwrap())
    );
    let facts = &decoded.facts;
    assert_eq!(facts.aggregate_id, ORDER_ID);
    assert_eq!(facts.sequence, 3);
    assert_eq!(facts.event_version, "1");
    assert_eq!(facts.published_version, "1");
    assert_eq!(facts.recorded_at, recorded_at());
    assert_eq!(facts.correlation_id, "0b0f4d9e-8d7a-4c55-9f1e-3c2b1a000001");
    assert_eq!(facts.causation_id, "cmd-1");
    assert_eq!(facts.user_id.as_deref(), Some("u-1"));
    assert_eq!(
        facts.event_id,
        ordo_nats::envelope::event_id("order", ORDER_ID, 3)
    );
}

#[test]
fn a_variant_without_fields_decodes() {
    let decoded = order(&message_of("order", ORDER_ID, &OrderEvent::OrderExpired {})).unwrap();
    assert_eq!(decoded.event, OrderEvent::OrderExpired {});
}

#[test]
fn an_inventory_item_is_named_by_its_sku() {
    let event = InventoryEvent::StockReserved {
        reservation_id: Uuid::from_u128(5).into(),
        quantity: 4,
        booking: None,
    };
    let decoded = inventory(&message_of("inventory", "WIDGET", &event)).unwrap();
    assert_eq!(decoded.id, Sku::parse("WIDGET").unwrap());
    assert_eq!(decoded.event, event);
}

#[test]
fn a_version_1_refund_read_from_the_wire_is_upcast_to_version_2() {
    let v1 = message(
        "payment",
        PAYMENT_ID,
        "PaymentRefunded",
        "1",
        json!({"PaymentRefunded": {
            "refund_id": "00000000-0000-0000-0000-00000000000a",
            "amount": {"amount_minor": 300, "currency": "EUR"},
        }}),
    );
    let decoded = payment(&v1).unwrap();
    assert_eq!(
        decoded.id,
        PaymentId::from(Uuid::parse_str(PAYMENT_ID).unwrap())
    );
    assert_eq!(decoded.facts.published_version, "1");
    assert_eq!(decoded.facts.event_version, "2");
    assert_eq!(
        decoded.event,
        PaymentEvent::PaymentRefunded {
            refund_id: RefundId::from(Uuid::from_u128(10)),
            amount: eur(300),
            total_refunded: eur(300),
            reason: ordo_schemas::upcasters::REASON_NOT_RECORDED.into(),
        }
    );
}

#[test]
fn an_unknown_event_type_is_retried_and_names_the_upgrade() {
    let newer = message(
        "order",
        ORDER_ID,
        "OrderReturned",
        "1",
        json!({"OrderReturned": {"carrier": "post"}}),
    );
    let err = order(&newer).unwrap_err();
    assert!(
        matches!(&err, ContractError::UnknownEventType { event_type, .. } if event_type == "OrderReturned"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("order event OrderReturned (version 1)"),
        "{text}"
    );
    assert!(text.contains("upgrade this consumer"), "{text}");
    assert!(matches!(HandlerError::from(err), HandlerError::Retry(_)));
}

#[test]
fn a_newer_version_of_a_known_event_is_retried_even_when_it_would_deserialize() {
    // Version 2 of OrderPlaced, were it to add a field: the old shape still deserializes,
    // but what the new field means is unknown here, so it is not applied.
    let mut stored = serde_json::to_value(placed()).unwrap();
    stored["OrderPlaced"]["gift_wrap"] = json!(true);
    let newer = message("order", ORDER_ID, "OrderPlaced", "2", stored);
    let err = order(&newer).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, ContractError::UnknownVersion { reads: "1", .. }),
        "{err:?}"
    );
    assert!(text.contains("OrderPlaced version 2"), "{text}");
    assert!(text.contains("reads version 1"), "{text}");
    assert!(text.contains("upgrade this consumer"), "{text}");
    assert!(matches!(HandlerError::from(err), HandlerError::Retry(_)));
}

#[test]
fn a_version_no_upcaster_reaches_is_unknown_too() {
    // PaymentRefunded is read at version 2; nothing upcasts a version 0.
    let stray = message(
        "payment",
        PAYMENT_ID,
        "PaymentRefunded",
        "0",
        json!({"PaymentRefunded": {}}),
    );
    assert!(matches!(
        payment(&stray).unwrap_err(),
        ContractError::UnknownVersion { reads: "2", .. }
    ));
}

#[test]
fn a_malformed_payload_of_a_known_version_is_dead_lettered_at_once() {
    let mut stored = serde_json::to_value(placed()).unwrap();
    stored["OrderPlaced"]
        .as_object_mut()
        .unwrap()
        .remove("lines");
    let err = order(&message("order", ORDER_ID, "OrderPlaced", "1", stored)).unwrap_err();
    assert!(matches!(err, ContractError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("lines"), "{err}");
    assert!(matches!(
        HandlerError::from(err),
        HandlerError::Permanent(_)
    ));
}

#[test]
fn an_aggregate_id_that_does_not_parse_is_malformed() {
    let err = order(&message_of(
        "order",
        "not-a-uuid",
        &OrderEvent::OrderExpired {},
    ))
    .unwrap_err();
    assert!(matches!(err, ContractError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-uuid"), "{err}");
}

#[test]
fn an_event_of_another_stream_is_refused() {
    let err = payment(&message_of("order", ORDER_ID, &placed())).unwrap_err();
    assert!(
        matches!(
            err,
            ContractError::WrongStream {
                expected: "payment",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        HandlerError::from(err),
        HandlerError::Permanent(_)
    ));
}

// ---------------------------------------------------------------------------------------
// The contracts agree with the event enums and the schema files
// ---------------------------------------------------------------------------------------

/// The variant names of an enum, as its derived `Deserialize` hands them to
/// `deserialize_enum`.
fn variant_names<E: DeserializeOwned>() -> BTreeSet<&'static str> {
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("variant names read")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    struct Probe<'a>(&'a mut Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = Some(variants);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
            identifier ignored_any
        }
    }
    let mut variants = None;
    let _ = E::deserialize(Probe(&mut variants));
    variants
        .expect("the event type is an enum")
        .iter()
        .copied()
        .collect()
}

#[test]
fn every_contract_knows_exactly_the_variants_of_its_event_enum() {
    let enums: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::from([
        (ORDER.aggregate_type, variant_names::<OrderEvent>()),
        (PAYMENT.aggregate_type, variant_names::<PaymentEvent>()),
        (INVENTORY.aggregate_type, variant_names::<InventoryEvent>()),
        (PRODUCT.aggregate_type, variant_names::<ProductEvent>()),
        (CATEGORY.aggregate_type, variant_names::<CategoryEvent>()),
        (CART.aggregate_type, variant_names::<CartEvent>()),
        (SHOW.aggregate_type, variant_names::<ShowEvent>()),
        (BOOKING.aggregate_type, variant_names::<BookingEvent>()),
        (PROMOTION.aggregate_type, variant_names::<PromotionEvent>()),
        (COUPON_BATCH.aggregate_type, variant_names::<CouponEvent>()),
        (CUSTOMER.aggregate_type, variant_names::<CustomerEvent>()),
        (PROVIDER.aggregate_type, variant_names::<ProviderEvent>()),
        (
            SERVICE_ORDER.aggregate_type,
            variant_names::<ServiceOrderEvent>(),
        ),
        (SHIPMENT.aggregate_type, variant_names::<ShipmentEvent>()),
        (AFTERSALE.aggregate_type, variant_names::<AfterSaleEvent>()),
        (REVIEW.aggregate_type, variant_names::<ReviewEvent>()),
    ]);
    assert_eq!(enums.len(), CONTRACTS.len());
    for contract in CONTRACTS {
        let known: BTreeSet<&str> = contract.events.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            known.len(),
            contract.events.len(),
            "{contract:?} lists a type twice"
        );
        assert_eq!(
            Some(&known),
            enums.get(contract.aggregate_type),
            "{}",
            contract.aggregate_type
        );
    }
}

#[test]
fn every_contract_reads_the_newest_schema_version_and_every_older_one_upcasts_to_it() {
    // The schema files are the record of every version ever published (the schemas
    // crate's tests hold the newest equal to what the aggregate writes).
    for contract in CONTRACTS {
        let dir = ordo_schemas::events_dir().join(contract.aggregate_type);
        let mut newest: BTreeMap<String, u32> = BTreeMap::new();
        let mut all = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let (event_type, version) = name
                .strip_suffix(".json")
                .and_then(|n| n.rsplit_once(".v"))
                .unwrap_or_else(|| panic!("{name}: not <Type>.v<n>.json"));
            let version: u32 = version.parse().unwrap();
            let slot = newest.entry(event_type.to_owned()).or_default();
            *slot = (*slot).max(version);
            all.push((event_type.to_owned(), version));
        }
        let reads: BTreeMap<String, u32> = contract
            .events
            .iter()
            .map(|(t, v)| ((*t).to_owned(), v.parse().unwrap()))
            .collect();
        assert_eq!(newest, reads, "{}", contract.aggregate_type);
        for (event_type, version) in all {
            let reached = upcast(&message(
                contract.aggregate_type,
                "x",
                &event_type,
                &version.to_string(),
                json!({}),
            ))
            .0;
            assert_eq!(
                Some(reached.as_str()),
                contract.version_read(&event_type),
                "{}/{event_type} v{version} does not upcast to the version read",
                contract.aggregate_type
            );
        }
    }
}
