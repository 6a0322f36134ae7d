//! Upcasters: rewrite stored events of an older version into the current one as the event
//! store loads them, so aggregates only ever deserialize the current shape.
//!
//! Give [`all`] to `PersistedEventStore::with_upcasters`. The rows in `events` are never
//! rewritten: a stored event keeps its version, and the relay publishes it as stored, which
//! is why every older schema stays under `events/` beside the current one.

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::{Map, Value};

/// Every upcaster of Ordo's events, in the order they must run (oldest version first).
pub fn all() -> Vec<Box<dyn EventUpcaster>> {
    vec![
        Box::new(PaymentRefundedV1ToV2),
        Box::new(PaymentCreatedV1ToV2),
        Box::new(ProductCreatedV1ToV2),
        Box::new(StockReservedV1ToV2),
    ]
}

/// The `reason` given to a version 1 refund, which did not record one.
pub const REASON_NOT_RECORDED: &str = "not recorded";

/// Turns a `payment` `PaymentRefunded` of version "1" into version "2".
///
/// Version 1 carried `refund_id` and `amount` only; version 2 adds `reason` and
/// `total_refunded`. An upcaster sees one event at a time, so it cannot add up the earlier
/// refunds of the payment. It fills in:
///
/// - `reason`: [`REASON_NOT_RECORDED`], because version 1 never recorded why.
/// - `total_refunded`: the refund's own `amount`. This is exact for the stores version 1
///   was written to, which allowed one refund per payment; were a version 1 store to hold
///   several refunds of one payment, the total would be understated and such a payment
///   would load as partially refunded.
///
/// A field already present is kept as it is: builds that wrote both fields while still
/// calling the event version "1" load unchanged but for the version.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentRefundedV1ToV2;

impl PaymentRefundedV1ToV2 {
    const AGGREGATE_TYPE: &'static str = "payment";
    const EVENT_TYPE: &'static str = "PaymentRefunded";
    const FROM: &'static str = "1";
    const TO: &'static str = "2";

    /// Fills in the version 2 fields of the event's own object (the value under the tag).
    fn upcast_fields(fields: &mut Map<String, Value>) {
        if !fields.contains_key("total_refunded") {
            if let Some(amount) = fields.get("amount").cloned() {
                fields.insert("total_refunded".to_owned(), amount);
            }
        }
        fields
            .entry("reason")
            .or_insert_with(|| Value::String(REASON_NOT_RECORDED.to_owned()));
    }
}

impl EventUpcaster for PaymentRefundedV1ToV2 {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == Self::EVENT_TYPE && event_version == Self::FROM
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        // The trait's `can_upcast` does not see the aggregate type: another aggregate's
        // event of the same name is left alone.
        if event.aggregate_type != Self::AGGREGATE_TYPE {
            return event;
        }
        // The store holds the externally tagged form `{"PaymentRefunded": {...}}`; the
        // untagged object is accepted too, for payloads taken from JetStream.
        let fields = match &mut event.payload {
            Value::Object(outer) if outer.len() == 1 && outer.contains_key(Self::EVENT_TYPE) => {
                outer
                    .get_mut(Self::EVENT_TYPE)
                    .and_then(Value::as_object_mut)
            }
            Value::Object(inner) => Some(inner),
            _ => None,
        };
        if let Some(fields) = fields {
            Self::upcast_fields(fields);
            event.event_version = Self::TO.to_owned();
        }
        event
    }
}

/// Turns a `payment` `PaymentCreated` of version "1" into version "2".
///
/// Version 1 carried the customer's payment token in the clear as `token`; version 2
/// carries only `sealed_token`, the token sealed with a key held outside the event store.
/// An upcaster holds no key, so a version 1 token is moved to `sealed_token` as it was
/// recorded, and the provider adapter opens a value without the sealed prefix as such a
/// legacy token: payments created before the upgrade can still be charged.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentCreatedV1ToV2;

impl EventUpcaster for PaymentCreatedV1ToV2 {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == "PaymentCreated" && event_version == "1"
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        if event.aggregate_type != "payment" {
            return event;
        }
        let fields = match &mut event.payload {
            Value::Object(outer) if outer.len() == 1 && outer.contains_key("PaymentCreated") => {
                outer
                    .get_mut("PaymentCreated")
                    .and_then(Value::as_object_mut)
            }
            Value::Object(inner) => Some(inner),
            _ => None,
        };
        if let Some(fields) = fields {
            if let Some(token) = fields.remove("token") {
                fields.entry("sealed_token").or_insert(token);
            }
            event.event_version = "2".to_owned();
        }
        event
    }
}

/// Turns a `product` `ProductCreated` of version "1" into version "2".
///
/// Version 1 was a product with exactly one SKU, identified by it: `{sku, name,
/// description, category, price}`. Version 2 is a product with its own id and a list of
/// SKUs: the id is the SKU (the aggregate id such a product has always had), the one SKU
/// keeps its price and has no specification, weight or purchase limit, and the product has
/// no tree category and no media.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProductCreatedV1ToV2;

impl EventUpcaster for ProductCreatedV1ToV2 {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == "ProductCreated" && event_version == "1"
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        if event.aggregate_type != "product" {
            return event;
        }
        let fields = match &mut event.payload {
            Value::Object(outer) if outer.len() == 1 && outer.contains_key("ProductCreated") => {
                outer
                    .get_mut("ProductCreated")
                    .and_then(Value::as_object_mut)
            }
            Value::Object(inner) => Some(inner),
            _ => None,
        };
        if let Some(fields) = fields {
            let sku = fields.remove("sku").unwrap_or(Value::Null);
            let price = fields.remove("price").unwrap_or(Value::Null);
            fields.insert("product_id".to_owned(), sku.clone());
            fields.insert("category_id".to_owned(), Value::Null);
            fields.insert("media".to_owned(), Value::Array(vec![]));
            let mut only = Map::new();
            only.insert("sku".to_owned(), sku);
            only.insert("spec".to_owned(), Value::Object(Map::new()));
            only.insert("price".to_owned(), price);
            only.insert("weight_grams".to_owned(), Value::Null);
            only.insert("max_per_customer".to_owned(), Value::Null);
            fields.insert("skus".to_owned(), Value::Array(vec![Value::Object(only)]));
            event.event_version = "2".to_owned();
        }
        event
    }
}

/// Turns an `inventory` `StockReserved` of version "1" into version "2".
///
/// Version 2 adds `booking`, the booking a reservation of seats decides, which is absent
/// when there is none: a version 1 reservation (goods, or seats of a booking recorded
/// before its reservation) reads as a version 2 one without it. The payload is unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct StockReservedV1ToV2;

impl EventUpcaster for StockReservedV1ToV2 {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == "StockReserved" && event_version == "1"
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        if event.aggregate_type == "inventory" {
            event.event_version = "2".to_owned();
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::DomainEvent;
    use ordo_aggregates::payment::PaymentEvent;
    use serde_json::json;

    use super::*;

    fn stored(aggregate_type: &str, event_version: &str, payload: Value) -> SerializedEvent {
        SerializedEvent::new(
            "p-1".to_owned(),
            3,
            aggregate_type.to_owned(),
            "PaymentRefunded".to_owned(),
            event_version.to_owned(),
            payload,
            json!({}),
        )
    }

    fn run(event: SerializedEvent) -> SerializedEvent {
        all().iter().fold(event, |event, upcaster| {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                upcaster.upcast(event)
            } else {
                event
            }
        })
    }

    fn money(minor: i64) -> Value {
        json!({"amount_minor": minor, "currency": "EUR"})
    }

    #[test]
    fn version_1_refund_gains_reason_and_total() {
        let v1 = stored(
            "payment",
            "1",
            json!({"PaymentRefunded": {
                "refund_id": "00000000-0000-0000-0000-00000000000a",
                "amount": money(300),
            }}),
        );
        let v2 = run(v1);
        assert_eq!(v2.event_version, "2");
        assert_eq!(
            v2.payload,
            json!({"PaymentRefunded": {
                "refund_id": "00000000-0000-0000-0000-00000000000a",
                "amount": money(300),
                "total_refunded": money(300),
                "reason": REASON_NOT_RECORDED,
            }})
        );
        assert_eq!(v2.sequence, 3);
        assert_eq!(v2.aggregate_id, "p-1");
        let event: PaymentEvent = serde_json::from_value(v2.payload).unwrap();
        let PaymentEvent::PaymentRefunded {
            total_refunded,
            reason,
            ..
        } = &event
        else {
            panic!("not a refund: {event:?}");
        };
        assert_eq!(total_refunded.amount_minor(), 300);
        assert_eq!(reason, REASON_NOT_RECORDED);
        assert_eq!(event.event_version(), v2.event_version);
    }

    #[test]
    fn fields_already_present_are_kept() {
        let v1 = stored(
            "payment",
            "1",
            json!({"PaymentRefunded": {
                "refund_id": "00000000-0000-0000-0000-00000000000b",
                "amount": money(200),
                "total_refunded": money(500),
                "reason": "damaged",
            }}),
        );
        let v2 = run(v1);
        assert_eq!(v2.event_version, "2");
        assert_eq!(v2.payload["PaymentRefunded"]["total_refunded"], money(500));
        assert_eq!(v2.payload["PaymentRefunded"]["reason"], "damaged");
    }

    #[test]
    fn untagged_payload_is_upcast_too() {
        let v2 = run(stored(
            "payment",
            "1",
            json!({"refund_id": "00000000-0000-0000-0000-00000000000c", "amount": money(1)}),
        ));
        assert_eq!(v2.event_version, "2");
        assert_eq!(v2.payload["total_refunded"], money(1));
    }

    #[test]
    fn version_1_product_becomes_a_product_with_its_one_sku() {
        let v1 = SerializedEvent::new(
            "MUG".to_owned(),
            1,
            "product".to_owned(),
            "ProductCreated".to_owned(),
            "1".to_owned(),
            json!({"ProductCreated": {
                "sku": "MUG", "name": "Mug", "description": "", "category": "Kitchen",
                "price": money(1200),
            }}),
            json!({}),
        );
        let v2 = run(v1);
        assert_eq!(v2.event_version, "2");
        let event: ordo_aggregates::product::ProductEvent =
            serde_json::from_value(v2.payload).unwrap();
        let ordo_aggregates::product::ProductEvent::ProductCreated {
            product_id,
            skus,
            media,
            category_id,
            ..
        } = &event
        else {
            panic!("not a creation: {event:?}");
        };
        assert_eq!(product_id.as_str(), "MUG");
        assert_eq!(skus.len(), 1);
        assert_eq!(skus[0].sku.as_str(), "MUG");
        assert_eq!(skus[0].price.amount_minor(), 1200);
        assert!(skus[0].max_per_customer.is_none() && skus[0].spec.is_empty());
        assert!(media.is_empty() && category_id.is_none());
        assert_eq!(event.event_version(), "2");
    }

    #[test]
    fn current_versions_and_other_events_are_left_alone() {
        let v2 = stored(
            "payment",
            "2",
            json!({"PaymentRefunded": {"refund_id": "x", "amount": money(1)}}),
        );
        assert_eq!(run(v2.clone()), v2);
        let other_aggregate = stored(
            "booking",
            "1",
            json!({"PaymentRefunded": {"amount": money(1)}}),
        );
        assert_eq!(run(other_aggregate.clone()), other_aggregate);
        assert!(!PaymentRefundedV1ToV2.can_upcast("PaymentCaptured", "1"));
    }
}
