//! The event contracts hold: a realistic sample of every event variant of every aggregate,
//! published the way the relay publishes it (the inner object, without serde's outer tag),
//! validates against its schema file; removing a required field or breaking a value makes
//! it fail; every schema file belongs to an event version; and `asyncapi.yaml` names every
//! schema file, stream, subject and header the NATS side uses.
//!
//! Every variant is covered twice over. Each aggregate has a `*_required_field` function
//! that matches on its event enum without a wildcard arm, so a new variant does not compile
//! until it is listed here; and [`variant_names`] reads the enum's variants from its serde
//! implementation, so a variant with no sample fails `every_event_variant_has_a_sample`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, DomainEvent};
use ordo_aggregates::aftersale::{AfterSale, AfterSaleEvent, AfterSaleKind, AfterSaleLine};
use ordo_aggregates::booking::{Booking, BookingEvent};
use ordo_aggregates::cart::{Cart, CartEvent, CartOwner, MergedLine};
use ordo_aggregates::category::{CategoryEvent, CategoryNode};
use ordo_aggregates::common::{
    AfterSaleId, AreaId, AreaName, BookingId, CampaignName, Category, CategoryName, City, Currency,
    Description, MediaUrl, Money, OrderId, PaymentId, Percent, PersonalText, ProductId,
    ProductName, Quantity, Reason, RefundId, ReservationId, ReviewComment, ReviewId, SessionId,
    ShipmentId, ShowId, Sku, SpecName, SpecValue, TicketId, Title, UserId, Venue,
};
use ordo_aggregates::coupon::{BatchTerms, CouponBatch, CouponDiscount, CouponEvent};
use ordo_aggregates::customer::{AddressChanges, Customer, CustomerEvent, PostalAddress};
use ordo_aggregates::inventory::{InventoryEvent, InventoryItem, SeatHold};
use ordo_aggregates::order::{ClaimedUnits, CompletedBy, Order, OrderEvent, OrderLine};
use ordo_aggregates::payment::{Payment, PaymentEvent};
use ordo_aggregates::product::{Product, ProductEvent, SkuSpec};
use ordo_aggregates::promotion::{Promotion, PromotionEvent, PromotionRule};
use ordo_aggregates::provider::{
    Certification, Provider, ProviderEvent, ProviderProfile, ServiceArea, ServiceType,
};
use ordo_aggregates::review::{Review as LineReview, ReviewContent, ReviewEvent, ReviewStatus};
use ordo_aggregates::service_order::{
    CancelledBy, Payout, Review, ReviewDimensions, ServiceOrder, ServiceOrderEvent, ServiceRequest,
    Stars,
};
use ordo_aggregates::shipment::{
    CarrierCode, Shipment, ShipmentEvent, ShipmentLine, ShipmentStatus, TrackingNumber,
    TrackingStatus,
};
use ordo_aggregates::show::{SeatArea, Show, ShowEvent};
use ordo_nats::consumer::dlq_header;
use ordo_nats::envelope::{header, untag_payload};
use ordo_nats::{Namespace, AGGREGATE_TYPES};
use ordo_schemas::{asyncapi_path, event_schema_path, events_dir, upcasters};
use serde::de::{DeserializeOwned, Visitor};
use serde_json::{json, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------------------

/// One event as the relay sees it.
struct Sample {
    aggregate_type: &'static str,
    event_type: String,
    event_version: String,
    /// As serde writes it into `events.payload`: externally tagged.
    stored: Value,
    /// A field the schema must require, removed by the negative case; `None` for a variant
    /// without fields.
    required: Option<&'static str>,
}

impl Sample {
    /// The published payload: what the relay sends on JetStream.
    fn payload(&self) -> Value {
        untag_payload(&self.event_type, &self.stored)
    }

    fn schema_path(&self) -> PathBuf {
        event_schema_path(self.aggregate_type, &self.event_type, &self.event_version)
    }

    fn label(&self) -> String {
        format!(
            "{}/{} v{}",
            self.aggregate_type, self.event_type, self.event_version
        )
    }
}

fn samples_of<A: Aggregate>(
    events: Vec<A::Event>,
    required: fn(&A::Event) -> Option<&'static str>,
) -> Vec<Sample> {
    events
        .iter()
        .map(|event| Sample {
            aggregate_type: A::TYPE,
            event_type: event.event_type(),
            event_version: event.event_version(),
            stored: serde_json::to_value(event).expect("serialize the event"),
            required: required(event),
        })
        .collect()
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("a valid UUID")
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("eur").unwrap()).unwrap()
}

fn sku(raw: &str) -> Sku {
    Sku::parse(raw).unwrap()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().expect("an RFC 3339 instant")
}

fn order_id() -> OrderId {
    uuid("3f1c9d2e-8b7a-4c55-9e61-0d2a4b6c8e10").into()
}

fn customer_id() -> UserId {
    uuid("9b2e4f60-1c3d-4a5b-8e7f-a0b1c2d3e4f5").into()
}

fn payment_id() -> PaymentId {
    uuid("c0ffee00-7e57-4a11-9a1d-5e55a0b1c2d3").into()
}

fn show_id() -> ShowId {
    uuid("5a0e1c2d-3b4f-4d6e-8f90-1a2b3c4d5e6f").into()
}

fn session_id() -> SessionId {
    uuid("6b1f2d3e-4c50-4e7f-9001-2b3c4d5e6f70").into()
}

fn ticket(n: u8) -> TicketId {
    uuid(&format!("7c2a3e4f-5d61-4f80-a112-3c4d5e6f70{n:02x}")).into()
}

fn inventory_samples() -> Vec<Sample> {
    let reservation: ReservationId = order_id().as_uuid().to_owned().into();
    let two = Quantity::parse(2).unwrap().get();
    samples_of::<InventoryItem>(
        vec![
            InventoryEvent::Restocked {
                sku: sku("mug-blue"),
                quantity: Quantity::parse(24).unwrap().get(),
                on_hand: 124,
            },
            InventoryEvent::StockReserved {
                reservation_id: reservation,
                quantity: two,
                booking: None,
            },
            InventoryEvent::StockReserved {
                reservation_id: reservation,
                quantity: two,
                booking: Some(SeatHold {
                    customer_id: customer_id(),
                    show_id: show_id(),
                    session_id: session_id(),
                    area_id: AreaId::parse("VIP-A").unwrap(),
                    unit_price: eur(2900),
                    expires_at: at("2025-10-01T12:15:00Z"),
                }),
            },
            InventoryEvent::StockReleased {
                reservation_id: reservation,
                quantity: two,
            },
            InventoryEvent::StockCommitted {
                reservation_id: reservation,
                quantity: two,
            },
            InventoryEvent::StockReturned {
                reservation_id: reservation,
                quantity: two,
            },
            InventoryEvent::SafetyThresholdSet {
                sku: sku("mug-blue"),
                threshold: 10,
            },
            InventoryEvent::StockBelowThreshold {
                sku: sku("mug-blue"),
                available: 9,
                threshold: 10,
            },
        ],
        inventory_required_field,
    )
}

fn inventory_required_field(event: &InventoryEvent) -> Option<&'static str> {
    Some(match event {
        InventoryEvent::Restocked { .. } => "on_hand",
        InventoryEvent::StockReserved { .. } => "reservation_id",
        InventoryEvent::StockReleased { .. } => "quantity",
        InventoryEvent::StockCommitted { .. } => "reservation_id",
        InventoryEvent::StockReturned { .. } => "quantity",
        InventoryEvent::SafetyThresholdSet { .. } => "threshold",
        InventoryEvent::StockBelowThreshold { .. } => "available",
    })
}

fn product_samples() -> Vec<Sample> {
    let tee = |code: &str, limit: Option<i64>| SkuSpec {
        sku: sku(code),
        spec: std::collections::BTreeMap::from([(
            SpecName::parse("colour").unwrap(),
            SpecValue::parse("black").unwrap(),
        )]),
        price: eur(1990),
        weight_grams: Some(180),
        max_per_customer: limit.map(|n| Quantity::parse(n).unwrap()),
    };
    samples_of::<Product>(
        vec![
            ProductEvent::ProductCreated {
                product_id: ProductId::parse("tee-classic").unwrap(),
                name: ProductName::parse("Classic tee").unwrap(),
                description: Description::parse("Cotton.\nMachine washable.").unwrap(),
                category: Category::parse("Apparel").unwrap(),
                category_id: Some(uuid("0b7e3f2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b").into()),
                media: vec![MediaUrl::parse("https://img.example/tee.jpg").unwrap()],
                skus: vec![tee("tee-black-m", Some(2)), tee("tee-black-l", None)],
            },
            ProductEvent::ProductCreated {
                product_id: ProductId::parse("mug-blue").unwrap(),
                name: ProductName::parse("Blue mug").unwrap(),
                description: Description::parse("").unwrap(),
                category: Category::parse("Kitchen").unwrap(),
                category_id: None,
                media: vec![],
                skus: vec![SkuSpec {
                    sku: sku("mug-blue"),
                    spec: Default::default(),
                    price: eur(1250),
                    weight_grams: None,
                    max_per_customer: None,
                }],
            },
            ProductEvent::ProductUpdated {
                name: None,
                description: None,
                category: None,
                price: Some(eur(1490)),
            },
            ProductEvent::ProductUpdated {
                name: Some(ProductName::parse("Blue mug, large").unwrap()),
                description: Some(Description::parse("").unwrap()),
                category: Some(Category::parse("Tableware").unwrap()),
                price: None,
            },
            ProductEvent::SkuPriceChanged {
                sku: sku("tee-black-m"),
                price: eur(1790),
            },
            ProductEvent::ProductMediaChanged {
                media: vec![MediaUrl::parse("https://img.example/tee-side.jpg").unwrap()],
            },
            ProductEvent::SkuLimitChanged {
                sku: sku("tee-black-m"),
                max_per_customer: Some(Quantity::parse(4).unwrap()),
            },
            ProductEvent::SkuLimitChanged {
                sku: sku("tee-black-m"),
                max_per_customer: None,
            },
            ProductEvent::SkuDelisted {
                sku: sku("tee-black-m"),
            },
            ProductEvent::SkuListed {
                sku: sku("tee-black-m"),
            },
        ],
        product_required_field,
    )
}

fn product_required_field(event: &ProductEvent) -> Option<&'static str> {
    match event {
        ProductEvent::ProductCreated { .. } => Some("skus"),
        // Every field is optional: a product update names only what changed.
        ProductEvent::ProductUpdated { .. } => None,
        ProductEvent::SkuPriceChanged { .. } => Some("price"),
        ProductEvent::ProductMediaChanged { .. } => Some("media"),
        ProductEvent::SkuLimitChanged { .. } => Some("max_per_customer"),
        ProductEvent::SkuDelisted { .. } | ProductEvent::SkuListed { .. } => Some("sku"),
    }
}

fn cart_samples() -> Vec<Sample> {
    samples_of::<Cart>(
        vec![
            CartEvent::CartOpened {
                owner: CartOwner::Customer(customer_id()),
            },
            CartEvent::CartOpened {
                owner: CartOwner::Guest,
            },
            CartEvent::CartLineSet {
                sku: sku("mug-blue"),
                quantity: 3,
            },
            CartEvent::CartLineSet {
                sku: sku("mug-blue"),
                quantity: 0,
            },
            CartEvent::GuestCartMerged {
                guest_cart_id: uuid("2b7e3f2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b").into(),
                lines: vec![MergedLine {
                    sku: sku("tee-black-m"),
                    quantity: 2,
                }],
            },
            CartEvent::OrderedLinesRemoved {
                order_id: order_id(),
                lines: vec![
                    MergedLine {
                        sku: sku("tee-black-m"),
                        quantity: 0,
                    },
                    MergedLine {
                        sku: sku("mug-blue"),
                        quantity: 1,
                    },
                ],
            },
        ],
        |event| match event {
            CartEvent::CartOpened { .. } => Some("owner"),
            CartEvent::CartLineSet { .. } => Some("quantity"),
            CartEvent::GuestCartMerged { .. } => Some("guest_cart_id"),
            CartEvent::OrderedLinesRemoved { .. } => Some("order_id"),
        },
    )
}

fn category_samples() -> Vec<Sample> {
    samples_of::<CategoryNode>(
        vec![
            CategoryEvent::CategoryCreated {
                category_id: uuid("0b7e3f2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b").into(),
                name: CategoryName::parse("Apparel").unwrap(),
                parent_id: None,
            },
            CategoryEvent::CategoryCreated {
                category_id: uuid("1b7e3f2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b").into(),
                name: CategoryName::parse("Tees").unwrap(),
                parent_id: Some(uuid("0b7e3f2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b").into()),
            },
            CategoryEvent::CategoryRenamed {
                name: CategoryName::parse("T-shirts").unwrap(),
            },
            CategoryEvent::CategoryMoved { parent_id: None },
            CategoryEvent::CategoryDeleted {},
        ],
        |event| match event {
            CategoryEvent::CategoryCreated { .. } => Some("name"),
            CategoryEvent::CategoryRenamed { .. } => Some("name"),
            CategoryEvent::CategoryMoved { .. } => Some("parent_id"),
            CategoryEvent::CategoryDeleted {} => None,
        },
    )
}

fn promotion_samples() -> Vec<Sample> {
    let created = |rule, exclusive| PromotionEvent::PromotionCreated {
        promotion_id: uuid("2c8f4a3b-2d5e-4f60-9bac-1d2e3f4a5b6c").into(),
        name: CampaignName::parse("Spring sale").unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        rule,
        starts_at: at("2026-03-01T00:00:00Z"),
        ends_at: at("2026-04-01T00:00:00Z"),
        priority: 10,
        exclusive,
    };
    samples_of::<Promotion>(
        vec![
            created(
                PromotionRule::ThresholdAmountOff {
                    threshold: eur(10_000),
                    amount_off: eur(1_500),
                },
                false,
            ),
            created(
                PromotionRule::ThresholdPercentOff {
                    threshold: eur(5_000),
                    percent_off: Percent::parse(10).unwrap(),
                },
                true,
            ),
            created(
                PromotionRule::DirectPriceCut {
                    skus: vec![sku("mug-blue"), sku("TEA_EARL-GREY")],
                    amount_off: eur(200),
                },
                false,
            ),
            PromotionEvent::PromotionEnded {
                ended_at: at("2026-03-15T09:30:00Z"),
            },
        ],
        |event| match event {
            PromotionEvent::PromotionCreated { .. } => Some("rule"),
            PromotionEvent::PromotionEnded { .. } => Some("ended_at"),
        },
    )
}

fn coupon_batch_samples() -> Vec<Sample> {
    let coupon_id = || uuid("3d9a5b4c-3e6f-4071-8cbd-2e3f4a5b6c7d").into();
    let terms = |discount| BatchTerms {
        batch_id: uuid("4eab6c5d-4f70-4182-9dce-3f4a5b6c7d8e").into(),
        name: CampaignName::parse("Welcome coupons").unwrap(),
        discount,
        min_spend: eur(3_000),
        quota: 100,
        per_user_limit: 2,
        valid_from: at("2026-06-01T00:00:00Z"),
        valid_until: at("2026-07-01T00:00:00Z"),
    };
    samples_of::<CouponBatch>(
        vec![
            CouponEvent::CouponBatchCreated {
                terms: terms(CouponDiscount::AmountOff {
                    amount_off: eur(500),
                }),
            },
            CouponEvent::CouponBatchCreated {
                terms: terms(CouponDiscount::PercentOff {
                    percent_off: Percent::parse(15).unwrap(),
                }),
            },
            CouponEvent::CouponClaimed {
                coupon_id: coupon_id(),
                user_id: customer_id(),
                claimed_at: at("2026-06-02T08:00:00Z"),
            },
            CouponEvent::CouponLocked {
                coupon_id: coupon_id(),
                order_id: order_id(),
            },
            CouponEvent::CouponRedeemed {
                coupon_id: coupon_id(),
                order_id: order_id(),
            },
            CouponEvent::CouponReleased {
                coupon_id: coupon_id(),
                order_id: order_id(),
            },
        ],
        |event| match event {
            CouponEvent::CouponBatchCreated { .. } => Some("terms"),
            CouponEvent::CouponClaimed { .. } => Some("user_id"),
            CouponEvent::CouponLocked { .. } => Some("order_id"),
            CouponEvent::CouponRedeemed { .. } => Some("coupon_id"),
            CouponEvent::CouponReleased { .. } => Some("order_id"),
        },
    )
}

/// An address as the event store holds it: every value sealed with the customer's key.
fn sealed_address() -> ordo_aggregates::customer::PostalAddress {
    let sealed = |text: &str| ordo_aggregates::common::PersonalText::Sealed {
        subject: customer_id(),
        // Nonce and ciphertext in hex: 12 + 16 bytes of nonce and tag, then the text.
        sealed: format!("{}{}", "ab".repeat(28), "cd".repeat(text.len())),
    };
    ordo_aggregates::customer::PostalAddress {
        recipient: sealed("recipient"),
        phone: sealed("phone"),
        province: sealed("province"),
        city: sealed("city"),
        district: None,
        detail: sealed("detail"),
        postal_code: Some(sealed("postal code")),
    }
}

fn order_samples() -> Vec<Sample> {
    let lines = vec![
        OrderLine {
            sku: sku("mug-blue"),
            quantity: Quantity::parse(2).unwrap(),
            unit_price: eur(1250),
        },
        OrderLine {
            sku: sku("TEA_EARL-GREY"),
            quantity: Quantity::parse(1).unwrap(),
            unit_price: eur(799),
        },
    ];
    samples_of::<Order>(
        vec![
            OrderEvent::OrderPlaced {
                order_id: order_id(),
                customer_id: customer_id(),
                lines,
                total: eur(3299),
                pricing: None,
                delivery_address: None,
                from_cart: None,
            },
            OrderEvent::OrderPlaced {
                order_id: order_id(),
                customer_id: customer_id(),
                lines: vec![OrderLine {
                    sku: sku("mug-blue"),
                    quantity: Quantity::parse(2).unwrap(),
                    unit_price: eur(1250),
                }],
                total: eur(2300),
                pricing: Some(Box::new(ordo_aggregates::order::OrderPricing {
                    quote_id: Some(uuid::Uuid::from_u128(41)),
                    subtotal: eur(2500),
                    line_discounts: vec![ordo_aggregates::order::LineDiscount {
                        sku: sku("mug-blue"),
                        discount: eur(500),
                    }],
                    discounts: vec![ordo_aggregates::order::OrderDiscount {
                        source: ordo_aggregates::pricing::DiscountSource::Coupon,
                        id: uuid::Uuid::from_u128(42),
                        amount: eur(500),
                    }],
                    shipping_fee: eur(300),
                })),
                delivery_address: Some(Box::new(sealed_address())),
                from_cart: Some(uuid("3b7e3f2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b").into()),
            },
            OrderEvent::OrderConfirmed {},
            OrderEvent::OrderRejected {
                reason: "insufficient_stock".into(),
                short_skus: vec![sku("tea_earl-grey")],
            },
            OrderEvent::PaymentAttached {
                payment_id: payment_id(),
            },
            OrderEvent::OrderPaid {
                payment_id: payment_id(),
            },
            OrderEvent::OrderCancelled {
                reason: "customer changed their mind".into(),
            },
            OrderEvent::OrderExpired {},
            OrderEvent::OrderRefunded {
                payment_id: payment_id(),
                reason: "damaged on delivery".into(),
            },
            OrderEvent::OrderShipped {
                shipment_id: shipment_id(),
            },
            OrderEvent::OrderDelivered {
                shipment_id: shipment_id(),
                delivered_at: at("2026-05-03T09:30:00Z"),
            },
            OrderEvent::OrderCompleted {
                by: CompletedBy::AutoConfirm,
            },
            OrderEvent::AfterSaleUnitsClaimed {
                aftersale_id: uuid("7c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5").into(),
                lines: vec![ClaimedUnits {
                    sku: Sku::parse("MUG-RED").unwrap(),
                    quantity: Quantity::parse(1).unwrap(),
                }],
            },
            OrderEvent::AfterSaleUnitsReleased {
                aftersale_id: uuid("7c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5").into(),
            },
        ],
        order_required_field,
    )
}

fn order_required_field(event: &OrderEvent) -> Option<&'static str> {
    match event {
        OrderEvent::OrderPlaced { .. } => Some("lines"),
        OrderEvent::OrderConfirmed {} => None,
        OrderEvent::OrderRejected { .. } => Some("short_skus"),
        OrderEvent::PaymentAttached { .. } => Some("payment_id"),
        OrderEvent::OrderPaid { .. } => Some("payment_id"),
        OrderEvent::OrderCancelled { .. } => Some("reason"),
        OrderEvent::OrderExpired {} => None,
        OrderEvent::OrderRefunded { .. } => Some("payment_id"),
        OrderEvent::OrderShipped { .. } => Some("shipment_id"),
        OrderEvent::OrderDelivered { .. } => Some("delivered_at"),
        OrderEvent::OrderCompleted { .. } => Some("by"),
        OrderEvent::AfterSaleUnitsClaimed { .. } => Some("lines"),
        OrderEvent::AfterSaleUnitsReleased { .. } => Some("aftersale_id"),
    }
}

fn shipment_id() -> ShipmentId {
    uuid("5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d").into()
}

fn shipment_samples() -> Vec<Sample> {
    samples_of::<Shipment>(
        vec![
            ShipmentEvent::ShipmentCreated {
                shipment_id: shipment_id(),
                order_id: order_id(),
                customer_id: customer_id(),
                lines: vec![ShipmentLine {
                    sku: sku("mug-blue"),
                    quantity: Quantity::parse(2).unwrap(),
                }],
            },
            ShipmentEvent::ShipmentPicked {},
            ShipmentEvent::ShipmentShipped {
                carrier: CarrierCode::parse("sandbox").unwrap(),
                tracking_no: TrackingNumber::parse("SBX-5A6B7C8D").unwrap(),
            },
            ShipmentEvent::TrackingUpdated {
                status: TrackingStatus::InTransit,
                at: at("2026-05-02T18:05:00Z"),
                shipment_status: ShipmentStatus::InTransit,
            },
            ShipmentEvent::ShipmentCancelled {
                reason: "order_refunded".into(),
            },
        ],
        shipment_required_field,
    )
}

fn shipment_required_field(event: &ShipmentEvent) -> Option<&'static str> {
    match event {
        ShipmentEvent::ShipmentCreated { .. } => Some("lines"),
        ShipmentEvent::ShipmentPicked {} => None,
        ShipmentEvent::ShipmentShipped { .. } => Some("tracking_no"),
        ShipmentEvent::TrackingUpdated { .. } => Some("status"),
        ShipmentEvent::ShipmentCancelled { .. } => Some("reason"),
    }
}

fn payment_samples() -> Vec<Sample> {
    let refund_id: RefundId = uuid("8d3b4f50-6e72-4091-b223-4d5e6f708192").into();
    samples_of::<Payment>(
        vec![
            PaymentEvent::PaymentCreated {
                payment_id: payment_id(),
                order_id: *order_id().as_uuid(),
                customer_id: customer_id(),
                amount: eur(3299),
                method: "card".into(),
                sealed_token: "sealed:v1:00112233445566778899aabb0f1e2d3c4b5a69788796a5b4c3d2e1f0"
                    .into(),
            },
            PaymentEvent::PaymentAuthorized {
                provider_ref: "auth_8f2k1".into(),
            },
            PaymentEvent::PaymentCaptured {
                provider_ref: "cap_8f2k1".into(),
                amount: eur(3299),
            },
            PaymentEvent::PaymentFailed {
                reason: "card_declined".into(),
            },
            PaymentEvent::PaymentVoided {
                reason: "order expired".into(),
            },
            PaymentEvent::PaymentRefunded {
                refund_id,
                amount: eur(799),
                total_refunded: eur(799),
                reason: "damaged on delivery".into(),
            },
        ],
        payment_required_field,
    )
}

fn payment_required_field(event: &PaymentEvent) -> Option<&'static str> {
    Some(match event {
        PaymentEvent::PaymentCreated { .. } => "amount",
        PaymentEvent::PaymentAuthorized { .. } => "provider_ref",
        PaymentEvent::PaymentCaptured { .. } => "amount",
        PaymentEvent::PaymentFailed { .. } => "reason",
        PaymentEvent::PaymentVoided { .. } => "reason",
        PaymentEvent::PaymentRefunded { .. } => "total_refunded",
    })
}

fn show_samples() -> Vec<Sample> {
    samples_of::<Show>(
        vec![
            ShowEvent::ShowCreated {
                show_id: show_id(),
                title: Title::parse("Hamlet").unwrap(),
                category: Category::parse("theatre").unwrap(),
                city: City::parse("Lyon").unwrap(),
                venue: Venue::parse("Théâtre des Célestins").unwrap(),
                description: Description::parse("Shakespeare's tragedy, in French.").unwrap(),
            },
            ShowEvent::ShowUpdated {
                title: None,
                category: None,
                city: None,
                venue: Some(Venue::parse("Opéra de Lyon").unwrap()),
                description: None,
            },
            ShowEvent::SessionAdded {
                session_id: session_id(),
                starts_at: at("2025-11-14T19:30:00Z"),
                seat_areas: vec![
                    SeatArea {
                        area_id: AreaId::parse("Stalls").unwrap(),
                        name: AreaName::parse("Stalls").unwrap(),
                        price: eur(4500),
                        capacity: 400,
                    },
                    SeatArea {
                        area_id: AreaId::parse("balcony_a").unwrap(),
                        name: AreaName::parse("Balcony A").unwrap(),
                        price: eur(2900),
                        capacity: 120,
                    },
                ],
            },
            ShowEvent::SeatAreaChanged {
                session_id: session_id(),
                area_id: AreaId::parse("Stalls").unwrap(),
                name: None,
                price: Some(eur(4900)),
                capacity: Some(420),
            },
        ],
        show_required_field,
    )
}

fn show_required_field(event: &ShowEvent) -> Option<&'static str> {
    match event {
        ShowEvent::ShowCreated { .. } => Some("title"),
        // Every field is optional: a show update names only what changed.
        ShowEvent::ShowUpdated { .. } => None,
        ShowEvent::SessionAdded { .. } => Some("seat_areas"),
        ShowEvent::SeatAreaChanged { .. } => Some("area_id"),
    }
}

fn booking_samples() -> Vec<Sample> {
    let booking_id: BookingId = uuid("4e9d0a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b").into();
    samples_of::<Booking>(
        vec![
            BookingEvent::BookingRequested {
                booking_id,
                customer_id: customer_id(),
                show_id: show_id(),
                session_id: session_id(),
                area_id: AreaId::parse("balcony_a").unwrap(),
                quantity: 2,
                unit_price: eur(2900),
                total: eur(5800),
            },
            BookingEvent::SeatsHeld {
                expires_at: at("2025-10-01T12:15:00Z"),
            },
            BookingEvent::BookingRejected {
                reason: "sold_out".into(),
            },
            BookingEvent::PaymentAttached {
                payment_id: payment_id(),
            },
            BookingEvent::BookingPaid {
                payment_id: payment_id(),
                tickets: vec![ticket(1), ticket(2)],
            },
            BookingEvent::BookingCancelled {
                reason: "customer changed their mind".into(),
            },
            BookingEvent::BookingExpired {},
            BookingEvent::BookingRefunded {
                reason: "session cancelled".into(),
            },
            BookingEvent::BookingCompleted {},
            BookingEvent::BookingRefundRequested {
                reason: "cannot come".into(),
            },
            BookingEvent::BookingRefundRequestWithdrawn {},
            BookingEvent::BookingRefundRequestRejected {
                reason: "too late".into(),
            },
            BookingEvent::TicketCheckedIn {
                ticket_id: ticket(1),
            },
        ],
        booking_required_field,
    )
}

fn booking_required_field(event: &BookingEvent) -> Option<&'static str> {
    match event {
        BookingEvent::BookingRequested { .. } => Some("total"),
        BookingEvent::SeatsHeld { .. } => Some("expires_at"),
        BookingEvent::BookingRejected { .. } => Some("reason"),
        BookingEvent::PaymentAttached { .. } => Some("payment_id"),
        BookingEvent::BookingPaid { .. } => Some("tickets"),
        BookingEvent::BookingCancelled { .. } => Some("reason"),
        BookingEvent::BookingExpired {} => None,
        BookingEvent::BookingRefunded { .. } => Some("reason"),
        BookingEvent::BookingCompleted {} => None,
        BookingEvent::BookingRefundRequested { .. } => Some("reason"),
        BookingEvent::BookingRefundRequestWithdrawn {} => None,
        BookingEvent::BookingRefundRequestRejected { .. } => Some("reason"),
        BookingEvent::TicketCheckedIn { .. } => Some("ticket_id"),
    }
}

/// A personal value as stored: sealed (its hex is of no real key here).
fn sealed(n: u8) -> PersonalText {
    PersonalText::Sealed {
        subject: customer_id(),
        sealed: format!("{n:02x}").repeat(40),
    }
}

fn customer_samples() -> Vec<Sample> {
    let address_id = || uuid("3c4d5e6f-7081-4923-a4b5-c6d7e8f90a1b").into();
    samples_of::<Customer>(
        vec![
            CustomerEvent::ProfileChanged {
                full_name: Some(sealed(1)),
                phone: None,
            },
            CustomerEvent::AddressAdded {
                address_id: address_id(),
                address: PostalAddress {
                    recipient: sealed(2),
                    phone: sealed(3),
                    province: sealed(4),
                    city: sealed(5),
                    district: None,
                    detail: sealed(6),
                    postal_code: Some(PersonalText::Erased {
                        subject: customer_id(),
                    }),
                },
            },
            CustomerEvent::AddressChanged {
                address_id: address_id(),
                changes: AddressChanges {
                    city: Some(sealed(7)),
                    ..AddressChanges::default()
                },
            },
            CustomerEvent::AddressRemoved {
                address_id: address_id(),
            },
            CustomerEvent::DefaultAddressChosen {
                address_id: address_id(),
            },
        ],
        customer_required_field,
    )
}

fn customer_required_field(event: &CustomerEvent) -> Option<&'static str> {
    match event {
        // Every field is optional: a profile change names only what changed.
        CustomerEvent::ProfileChanged { .. } => None,
        CustomerEvent::AddressAdded { .. } => Some("address"),
        CustomerEvent::AddressChanged { .. } => Some("changes"),
        CustomerEvent::AddressRemoved { .. } | CustomerEvent::DefaultAddressChosen { .. } => {
            Some("address_id")
        }
    }
}

fn provider_samples() -> Vec<Sample> {
    let profile = ProviderProfile {
        full_name: sealed(11),
        phone: sealed(12),
        skills: vec![ServiceType::parse("plumbing").unwrap()],
        service_areas: vec![ServiceArea::North, ServiceArea::Mid],
        bio: sealed(13),
    };
    samples_of::<Provider>(
        vec![
            ProviderEvent::ProviderProfileSet { profile },
            ProviderEvent::CertificationSubmitted {
                certification: Certification {
                    certification_id: uuid("4d5e6f70-8192-4a3b-b5c6-d7e8f90a1b2c").into(),
                    name: "Master plumber".into(),
                    file_url: MediaUrl::parse("https://files.example.com/cert.pdf").unwrap(),
                },
            },
            ProviderEvent::VerificationRequested {},
            ProviderEvent::ProviderVerified {},
            ProviderEvent::ProviderRejected {
                reason: Reason::parse("the document is unreadable").unwrap(),
            },
        ],
        provider_required_field,
    )
}

fn provider_required_field(event: &ProviderEvent) -> Option<&'static str> {
    match event {
        ProviderEvent::ProviderProfileSet { .. } => Some("profile"),
        ProviderEvent::CertificationSubmitted { .. } => Some("certification"),
        ProviderEvent::VerificationRequested {} | ProviderEvent::ProviderVerified {} => None,
        ProviderEvent::ProviderRejected { .. } => Some("reason"),
    }
}

fn service_order_samples() -> Vec<Sample> {
    let provider_id: UserId = uuid("5e6f7081-92a3-4b4c-86d7-e8f90a1b2c3d").into();
    let five = Stars::parse(5, "rating").unwrap();
    samples_of::<ServiceOrder>(
        vec![
            ServiceOrderEvent::ServiceOrderPublished {
                request: ServiceRequest {
                    customer_id: customer_id(),
                    title: Title::parse("Fix the kitchen sink").unwrap(),
                    description: sealed(21),
                    service_type: ServiceType::parse("plumbing").unwrap(),
                    price: eur(8000),
                    location: ServiceArea::North,
                    address: sealed(22),
                },
            },
            ServiceOrderEvent::ServiceOrderApproved {},
            ServiceOrderEvent::ServiceOrderRejected {
                reason: Reason::parse("not a home service").unwrap(),
            },
            ServiceOrderEvent::ServiceOrderAccepted { provider_id },
            ServiceOrderEvent::ServicePaymentAttached {
                payment_id: payment_id(),
            },
            ServiceOrderEvent::ServiceOrderPaid {
                payment_id: payment_id(),
                amount: eur(8000),
            },
            ServiceOrderEvent::WorkStarted {},
            ServiceOrderEvent::WorkDone {},
            ServiceOrderEvent::ServiceOrderConfirmed { automatic: true },
            ServiceOrderEvent::PayoutReleased {
                payout: Payout {
                    payout_id: uuid("6f708192-a3b4-4c5d-97e8-f90a1b2c3d4e").into(),
                    provider_id,
                    amount: eur(8000),
                },
            },
            ServiceOrderEvent::ServiceOrderCancelled {
                by: CancelledBy::Admin,
                reason: Some(Reason::parse("the customer moved").unwrap()),
                refund_due: true,
            },
            ServiceOrderEvent::ServiceOrderRefunded {
                refund_id: uuid("708192a3-b4c5-4d6e-a8f9-0a1b2c3d4e5f").into(),
                amount: eur(8000),
            },
            ServiceOrderEvent::ServiceOrderReviewed {
                provider_id,
                review: Review {
                    rating: five,
                    comment: sealed(23),
                    dimensions: ReviewDimensions {
                        professionalism: five,
                        attitude: Stars::parse(4, "attitude").unwrap(),
                        punctuality: Stars::parse(3, "punctuality").unwrap(),
                    },
                },
            },
            ServiceOrderEvent::ServiceOrderReviewHeld {
                provider_id,
                review: Review {
                    rating: Stars::parse(1, "rating").unwrap(),
                    comment: sealed(24),
                    dimensions: ReviewDimensions {
                        professionalism: five,
                        attitude: Stars::parse(1, "attitude").unwrap(),
                        punctuality: Stars::parse(2, "punctuality").unwrap(),
                    },
                },
            },
            ServiceOrderEvent::ServiceOrderReviewPublished {},
            ServiceOrderEvent::ServiceOrderReviewRejected {
                reason: Reason::parse("insults the provider").unwrap(),
            },
        ],
        service_order_required_field,
    )
}

fn service_order_required_field(event: &ServiceOrderEvent) -> Option<&'static str> {
    match event {
        ServiceOrderEvent::ServiceOrderPublished { .. } => Some("request"),
        ServiceOrderEvent::ServiceOrderApproved {}
        | ServiceOrderEvent::WorkStarted {}
        | ServiceOrderEvent::WorkDone {} => None,
        ServiceOrderEvent::ServiceOrderRejected { .. } => Some("reason"),
        ServiceOrderEvent::ServiceOrderAccepted { .. } => Some("provider_id"),
        ServiceOrderEvent::ServicePaymentAttached { .. } => Some("payment_id"),
        ServiceOrderEvent::ServiceOrderPaid { .. } => Some("amount"),
        ServiceOrderEvent::ServiceOrderConfirmed { .. } => Some("automatic"),
        ServiceOrderEvent::PayoutReleased { .. } => Some("payout"),
        ServiceOrderEvent::ServiceOrderCancelled { .. } => Some("refund_due"),
        ServiceOrderEvent::ServiceOrderRefunded { .. } => Some("refund_id"),
        ServiceOrderEvent::ServiceOrderReviewed { .. } => Some("review"),
        ServiceOrderEvent::ServiceOrderReviewHeld { .. } => Some("review"),
        ServiceOrderEvent::ServiceOrderReviewPublished {} => None,
        ServiceOrderEvent::ServiceOrderReviewRejected { .. } => Some("reason"),
    }
}

fn aftersale_samples() -> Vec<Sample> {
    let aftersale_id: AfterSaleId = uuid("6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e").into();
    samples_of::<AfterSale>(
        vec![
            AfterSaleEvent::AfterSaleRequested {
                aftersale_id,
                order_id: order_id(),
                customer_id: customer_id(),
                payment_id: payment_id(),
                kind: AfterSaleKind::ReturnRefund,
                lines: vec![AfterSaleLine {
                    sku: sku("mug-blue"),
                    quantity: Quantity::parse(1).unwrap(),
                    refund: eur(1250),
                }],
                refund_amount: eur(1250),
                reason: Reason::parse("The handle came off.").unwrap(),
                evidence: vec![MediaUrl::parse("https://img.example.com/mug.jpg").unwrap()],
            },
            AfterSaleEvent::AfterSaleWithdrawn {},
            AfterSaleEvent::AfterSaleApproved {
                kind: AfterSaleKind::ReturnRefund,
            },
            AfterSaleEvent::AfterSaleRejected {
                reason: Reason::parse("Outside the return policy.").unwrap(),
            },
            AfterSaleEvent::ReturnShipped {
                carrier: CarrierCode::parse("sf-express").unwrap(),
                tracking_no: TrackingNumber::parse("SF1234567").unwrap(),
            },
            AfterSaleEvent::ReturnReceived {},
            AfterSaleEvent::AfterSaleRefunded {
                refund_id: uuid("7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f").into(),
                amount: eur(1250),
            },
            AfterSaleEvent::AfterSaleRefundFailed {
                code: "refund_exceeds_captured".into(),
                detail: "nothing left to refund".into(),
            },
            AfterSaleEvent::ReplacementArranged {
                shipment_id: shipment_id(),
            },
            AfterSaleEvent::AfterSaleClosed {},
        ],
        aftersale_required_field,
    )
}

fn aftersale_required_field(event: &AfterSaleEvent) -> Option<&'static str> {
    match event {
        AfterSaleEvent::AfterSaleRequested { .. } => Some("lines"),
        AfterSaleEvent::AfterSaleWithdrawn {} => None,
        AfterSaleEvent::AfterSaleApproved { .. } => Some("kind"),
        AfterSaleEvent::AfterSaleRejected { .. } => Some("reason"),
        AfterSaleEvent::ReturnShipped { .. } => Some("tracking_no"),
        AfterSaleEvent::ReturnReceived {} => None,
        AfterSaleEvent::AfterSaleRefunded { .. } => Some("refund_id"),
        AfterSaleEvent::AfterSaleRefundFailed { .. } => Some("code"),
        AfterSaleEvent::ReplacementArranged { .. } => Some("shipment_id"),
        AfterSaleEvent::AfterSaleClosed {} => None,
    }
}

fn review_samples() -> Vec<Sample> {
    let review_id: ReviewId = uuid("8e9f0a1b-2c3d-4e5f-8a6b-7c8d9e0f1a2b").into();
    samples_of::<LineReview>(
        vec![
            ReviewEvent::ReviewSubmitted {
                review_id,
                order_id: order_id(),
                sku: sku("mug-blue"),
                author_id: customer_id(),
                content: ReviewContent {
                    rating: Stars::parse(4, "rating").unwrap(),
                    comment: ReviewComment::parse("Sturdy and well packed.").unwrap(),
                    dimensions: BTreeMap::from([(
                        SpecName::parse("quality").unwrap(),
                        Stars::parse(5, "quality").unwrap(),
                    )]),
                    images: vec![MediaUrl::parse("https://img.example.com/mug.jpg").unwrap()],
                },
                status: ReviewStatus::Published,
            },
            ReviewEvent::ReviewFollowedUp {
                comment: ReviewComment::parse("Still fine after a month.").unwrap(),
                status: ReviewStatus::Published,
            },
            ReviewEvent::ReviewPublished {},
            ReviewEvent::ReviewRejected {
                reason: Reason::parse("Insulting.").unwrap(),
            },
            ReviewEvent::ReviewReported {
                by: customer_id(),
                reports: 1,
            },
            ReviewEvent::ReviewHidden {},
        ],
        review_required_field,
    )
}

fn review_required_field(event: &ReviewEvent) -> Option<&'static str> {
    match event {
        ReviewEvent::ReviewSubmitted { .. } => Some("content"),
        ReviewEvent::ReviewFollowedUp { .. } => Some("comment"),
        ReviewEvent::ReviewPublished {} => None,
        ReviewEvent::ReviewRejected { .. } => Some("reason"),
        ReviewEvent::ReviewReported { .. } => Some("reports"),
        ReviewEvent::ReviewHidden {} => None,
    }
}

fn all_samples() -> Vec<Sample> {
    [
        inventory_samples(),
        product_samples(),
        category_samples(),
        promotion_samples(),
        coupon_batch_samples(),
        cart_samples(),
        order_samples(),
        payment_samples(),
        show_samples(),
        booking_samples(),
        customer_samples(),
        provider_samples(),
        service_order_samples(),
        shipment_samples(),
        aftersale_samples(),
        review_samples(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The event types of every aggregate, read from the event enums themselves.
fn variants_by_aggregate() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    fn of<A: Aggregate>() -> (&'static str, BTreeSet<&'static str>) {
        (A::TYPE, variant_names::<A::Event>().into_iter().collect())
    }
    BTreeMap::from([
        of::<InventoryItem>(),
        of::<Product>(),
        of::<CategoryNode>(),
        of::<Promotion>(),
        of::<CouponBatch>(),
        of::<Cart>(),
        of::<Order>(),
        of::<Payment>(),
        of::<Show>(),
        of::<Booking>(),
        of::<Customer>(),
        of::<Provider>(),
        of::<ServiceOrder>(),
        of::<Shipment>(),
        of::<AfterSale>(),
        of::<LineReview>(),
    ])
}

/// The variant names of an enum, as its derived `Deserialize` hands them to
/// `deserialize_enum`: the exact list, with no hand-kept copy that could drift.
fn variant_names<E: DeserializeOwned>() -> Vec<&'static str> {
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
    variants.expect("the event type is an enum").to_vec()
}

// ---------------------------------------------------------------------------------------
// Schema files
// ---------------------------------------------------------------------------------------

fn read_json(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("parse {}: {err}", path.display()))
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|err| panic!("schema {} does not compile: {err}", schema["$id"]))
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// A schema file under `events/<aggregate_type>/`, named `<EventType>.v<version>.json`.
struct SchemaFile {
    path: PathBuf,
    aggregate_type: String,
    event_type: String,
    version: String,
}

fn schema_files() -> Vec<SchemaFile> {
    let mut files = Vec::new();
    for dir in fs::read_dir(events_dir()).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            assert_eq!(
                dir.file_name().unwrap(),
                "common.json",
                "unexpected file {}",
                dir.display()
            );
            continue;
        }
        let aggregate_type = dir.file_name().unwrap().to_str().unwrap().to_owned();
        for file in fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let (event_type, version) = name
                .strip_suffix(".json")
                .and_then(|stem| stem.rsplit_once(".v"))
                .unwrap_or_else(|| panic!("{} is not <EventType>.v<version>.json", path.display()));
            files.push(SchemaFile {
                event_type: event_type.to_owned(),
                version: version.to_owned(),
                aggregate_type: aggregate_type.clone(),
                path,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// Stored payloads of the older event versions still described under `events/`.
fn older_version_samples() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    vec![
        (
            "inventory",
            "StockReserved",
            "1",
            json!({"StockReserved": {
                "reservation_id": "20c84e9c-a0f3-41f6-ac77-a18cc140ba3a",
                "quantity": 2,
            }}),
        ),
        (
            "payment",
            "PaymentRefunded",
            "1",
            json!({"PaymentRefunded": {
                "refund_id": "8d3b4f50-6e72-4091-b223-4d5e6f708192",
                "amount": {"amount_minor": 3299, "currency": "EUR"},
            }}),
        ),
        (
            "payment",
            "PaymentCreated",
            "1",
            json!({"PaymentCreated": {
                "payment_id": "5d68f490-60ed-400b-8de6-399db7cfd3a8",
                "order_id": "20c84e9c-a0f3-41f6-ac77-a18cc140ba3a",
                "customer_id": "4f1c2b3a-5d6e-4f70-8192-a3b4c5d6e7f8",
                "amount": {"amount_minor": 3299, "currency": "EUR"},
                "method": "card",
                "token": "tok_visa_4242",
            }}),
        ),
        (
            "product",
            "ProductCreated",
            "1",
            json!({"ProductCreated": {
                "sku": "MUG-BLUE",
                "name": "Blue mug",
                "description": "Stoneware",
                "category": "Kitchen",
                "price": {"amount_minor": 1250, "currency": "EUR"},
            }}),
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn every_event_variant_has_a_sample() {
    let variants = variants_by_aggregate();
    assert_eq!(
        variants.keys().copied().collect::<BTreeSet<_>>(),
        AGGREGATE_TYPES.iter().copied().collect::<BTreeSet<_>>(),
        "the aggregates here and the streams of ordo-nats differ"
    );
    let samples = all_samples();
    for (aggregate_type, names) in &variants {
        let sampled: BTreeSet<&str> = samples
            .iter()
            .filter(|s| s.aggregate_type == *aggregate_type)
            .map(|s| s.event_type.as_str())
            .collect();
        assert_eq!(
            &sampled, names,
            "{aggregate_type}: the samples and the event variants differ"
        );
    }
    // The event type of each sample is its variant name: the tag serde writes.
    for sample in &samples {
        let tag = sample.stored.as_object().and_then(|o| o.keys().next());
        assert_eq!(tag, Some(&sample.event_type), "{}", sample.label());
    }
}

#[test]
fn every_sample_matches_its_published_schema() {
    for sample in all_samples() {
        let schema = read_json(&sample.schema_path());
        let payload = sample.payload();
        assert!(payload.is_object(), "{}: {payload}", sample.label());
        let found = errors(&validator(&schema), &payload);
        assert!(
            found.is_empty(),
            "{}: {payload} is refused: {found:?}",
            sample.label()
        );
    }
}

#[test]
fn published_payloads_decode_back_into_their_events() {
    fn check<A: Aggregate>(samples: Vec<Sample>)
    where
        A::Event: PartialEq + std::fmt::Debug,
    {
        for sample in samples {
            let original: A::Event = serde_json::from_value(sample.stored.clone()).unwrap();
            let payload = sample.payload();
            let retagged = if payload.as_object().is_some_and(|o| o.is_empty()) {
                json!({ &sample.event_type: {} })
            } else {
                json!({ &sample.event_type: payload })
            };
            let decoded: A::Event = serde_json::from_value(retagged)
                .unwrap_or_else(|err| panic!("{}: {err}", sample.label()));
            assert_eq!(decoded, original, "{}", sample.label());
        }
    }
    check::<InventoryItem>(inventory_samples());
    check::<Product>(product_samples());
    check::<Order>(order_samples());
    check::<Payment>(payment_samples());
    check::<Show>(show_samples());
    check::<Booking>(booking_samples());
    check::<Customer>(customer_samples());
    check::<Provider>(provider_samples());
    check::<ServiceOrder>(service_order_samples());
    check::<Shipment>(shipment_samples());
    check::<AfterSale>(aftersale_samples());
    check::<LineReview>(review_samples());
}

#[test]
fn removing_a_required_field_fails_validation() {
    let mut negatives_by_aggregate: BTreeMap<&str, usize> = BTreeMap::new();
    for sample in all_samples() {
        let schema = read_json(&sample.schema_path());
        let validator = validator(&schema);
        let mut payload = sample.payload();
        match sample.required {
            Some(field) => {
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert!(required.contains(&field), "{}: {field}", sample.label());
                assert!(
                    payload.as_object_mut().unwrap().remove(field).is_some(),
                    "{}: no field {field} in {payload}",
                    sample.label()
                );
                assert!(
                    !validator.is_valid(&payload),
                    "{}: accepted without {field}: {payload}",
                    sample.label()
                );
                *negatives_by_aggregate
                    .entry(sample.aggregate_type)
                    .or_default() += 1;
            }
            None => {
                // A variant with no required field still refuses a field it does not know.
                payload
                    .as_object_mut()
                    .unwrap()
                    .insert("unexpected".into(), json!(1));
                assert!(
                    !validator.is_valid(&payload),
                    "{}: accepted an unknown field",
                    sample.label()
                );
            }
        }
    }
    for aggregate_type in AGGREGATE_TYPES {
        assert!(
            negatives_by_aggregate.get(aggregate_type).copied() > Some(0),
            "{aggregate_type} has no negative case"
        );
    }
}

#[test]
fn malformed_values_fail_validation() {
    let placed = &order_samples()[0];
    let schema = validator(&read_json(&placed.schema_path()));
    let good = placed.payload();
    assert!(schema.is_valid(&good));
    let broken: [(&str, &str, Value); 7] = [
        ("negative amount", "/total/amount_minor", json!(-1)),
        ("lowercase currency", "/total/currency", json!("eur")),
        ("fractional amount", "/total/amount_minor", json!(12.5)),
        ("id that is not a UUID", "/order_id", json!("order-1")),
        ("SKU with a dot", "/lines/0/sku", json!("MUG.BLUE")),
        ("zero quantity", "/lines/0/quantity", json!(0)),
        ("no line", "/lines", json!([])),
    ];
    for (what, pointer, value) in broken {
        let mut payload = good.clone();
        *payload.pointer_mut(pointer).unwrap() = value;
        assert!(!schema.is_valid(&payload), "accepted a {what}: {payload}");
    }

    let held = booking_samples()
        .into_iter()
        .find(|s| s.event_type == "SeatsHeld")
        .unwrap();
    let schema = validator(&read_json(&held.schema_path()));
    assert!(!schema.is_valid(&json!({"expires_at": "tomorrow"})));

    let created = &product_samples()[0];
    let schema = validator(&read_json(&created.schema_path()));
    let mut payload = created.payload();
    payload["name"] = json!("two\nlines");
    assert!(!schema.is_valid(&payload), "accepted a name on two lines");
}

#[test]
fn every_schema_file_belongs_to_an_event_version() {
    let variants = variants_by_aggregate();
    let current: BTreeMap<(String, String), String> = all_samples()
        .into_iter()
        .map(|s| ((s.aggregate_type.to_owned(), s.event_type), s.event_version))
        .collect();
    let older: BTreeSet<(String, String, String)> = older_version_samples()
        .into_iter()
        .map(|(a, e, v, _)| (a.to_owned(), e.to_owned(), v.to_owned()))
        .collect();
    let upcasters = upcasters::all();
    let files = schema_files();
    for file in &files {
        let label = file.path.display();
        let names = variants
            .get(file.aggregate_type.as_str())
            .unwrap_or_else(|| panic!("{label}: no aggregate {}", file.aggregate_type));
        assert!(
            names.contains(file.event_type.as_str()),
            "{label}: {} has no event {}",
            file.aggregate_type,
            file.event_type
        );
        let now = current
            .get(&(file.aggregate_type.clone(), file.event_type.clone()))
            .unwrap_or_else(|| panic!("{label}: {} has no sample", file.event_type));
        let (version, now_number): (u32, u32) =
            (file.version.parse().unwrap(), now.parse().unwrap());
        assert!(
            version <= now_number,
            "{label}: newer than the code ({now})"
        );
        if version < now_number {
            assert!(
                upcasters
                    .iter()
                    .any(|u| u.can_upcast(&file.event_type, &file.version)),
                "{label}: an older version with no upcaster"
            );
            assert!(
                older.contains(&(
                    file.aggregate_type.clone(),
                    file.event_type.clone(),
                    file.version.clone()
                )),
                "{label}: an older version with no sample"
            );
        }

        let schema = read_json(&file.path);
        if let Err(err) = jsonschema::meta::validate(&schema) {
            panic!("{label} is not a valid JSON Schema: {err}");
        }
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{label}"
        );
        assert_eq!(
            schema["$id"],
            format!(
                "urn:ordo:event:{}:{}:{}",
                file.aggregate_type, file.event_type, file.version
            ),
            "{label}"
        );
        assert_eq!(schema["type"], "object", "{label}");
        assert_eq!(schema["additionalProperties"], false, "{label}");
        assert!(
            schema["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{label}"
        );
        assert!(
            schema["description"].as_str().is_some_and(|d| d.len() > 20),
            "{label}: describe what happened"
        );
        for (name, property) in schema["properties"].as_object().unwrap() {
            assert!(
                property["description"].is_string(),
                "{label}: property {name} has no description"
            );
        }
        for required in schema["required"].as_array().unwrap() {
            let name = required.as_str().unwrap();
            assert!(
                schema["properties"].get(name).is_some(),
                "{label}: requires the unknown {name}"
            );
        }
    }
    // And the other way round: every current event version has its file.
    for ((aggregate_type, event_type), version) in &current {
        let path = event_schema_path(aggregate_type, event_type, version);
        assert!(
            files.iter().any(|f| f.path == path),
            "{} is missing",
            path.display()
        );
    }
}

#[test]
fn shared_definitions_match_common_json() {
    let common = read_json(&events_dir().join("common.json"));
    jsonschema::meta::validate(&common).expect("common.json is a valid JSON Schema");
    let definitions = common["$defs"].as_object().unwrap();
    for file in schema_files() {
        let schema = read_json(&file.path);
        let Some(copies) = schema.get("$defs").and_then(Value::as_object) else {
            continue;
        };
        for (name, copy) in copies {
            assert_eq!(
                Some(copy),
                definitions.get(name),
                "{}: $defs/{name} differs from common.json",
                file.path.display()
            );
        }
    }
}

#[test]
fn older_versions_validate_and_upcast_to_the_current_schema() {
    for (aggregate_type, event_type, version, stored) in older_version_samples() {
        let old = validator(&read_json(&event_schema_path(
            aggregate_type,
            event_type,
            version,
        )));
        let payload = untag_payload(event_type, &stored);
        assert_eq!(errors(&old, &payload), Vec::<String>::new());
        let mut without_amount = payload.clone();
        let required = ["amount", "price", "quantity"]
            .into_iter()
            .find(|field| payload.get(*field).is_some())
            .expect("the sample has a required field to leave out");
        without_amount.as_object_mut().unwrap().remove(required);
        assert!(!old.is_valid(&without_amount));

        let event = SerializedEvent::new(
            "c0ffee00-7e57-4a11-9a1d-5e55a0b1c2d3".into(),
            4,
            aggregate_type.into(),
            event_type.into(),
            version.into(),
            stored,
            json!({}),
        );
        let upcast = upcasters::all().iter().fold(event, |event, upcaster| {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                upcaster.upcast(event)
            } else {
                event
            }
        });
        let current = validator(&read_json(&event_schema_path(
            aggregate_type,
            event_type,
            &upcast.event_version,
        )));
        let payload = untag_payload(event_type, &upcast.payload);
        assert_eq!(errors(&current, &payload), Vec::<String>::new());
        let decoded_version = match aggregate_type {
            "product" => serde_json::from_value::<ProductEvent>(upcast.payload)
                .unwrap()
                .event_version(),
            "inventory" => serde_json::from_value::<InventoryEvent>(upcast.payload)
                .unwrap()
                .event_version(),
            _ => serde_json::from_value::<PaymentEvent>(upcast.payload)
                .unwrap()
                .event_version(),
        };
        assert_eq!(decoded_version, upcast.event_version);
    }
}

fn asyncapi() -> Value {
    let text = fs::read_to_string(asyncapi_path()).expect("read asyncapi.yaml");
    serde_yaml::from_str(&text).expect("asyncapi.yaml is YAML")
}

/// Every string value under a `$ref` key, anywhere in the document.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(s) if key == "$ref" => found.push(s.clone()),
                    other => refs(other, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[test]
fn asyncapi_references_every_schema_file() {
    let doc = asyncapi();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    let root = events_dir().parent().unwrap().to_owned();
    let referenced: BTreeSet<PathBuf> = found
        .iter()
        .filter(|r| !r.starts_with('#'))
        .map(|r| {
            let path = root.join(r.trim_start_matches("./"));
            assert!(path.is_file(), "asyncapi.yaml names a missing file {r}");
            path
        })
        .collect();
    let on_disk: BTreeSet<PathBuf> = schema_files().into_iter().map(|f| f.path).collect();
    assert_eq!(referenced, on_disk);

    // Each message names the event it carries and its version like its schema file does.
    for (key, message) in doc["components"]["messages"].as_object().unwrap() {
        let Some(schema_ref) = message["payload"]["schema"]["$ref"].as_str() else {
            continue;
        };
        let aggregate_type = message["x-ordo-aggregate-type"].as_str().unwrap();
        let event_type = message["x-ordo-event-type"].as_str().unwrap();
        let version = message["x-ordo-event-version"].as_str().unwrap();
        assert_eq!(
            root.join(schema_ref.trim_start_matches("./")),
            event_schema_path(aggregate_type, event_type, version),
            "message {key}"
        );
        assert_eq!(message["name"], event_type, "message {key}");
    }
}

#[test]
fn asyncapi_describes_every_stream_channel_and_header() {
    let doc = asyncapi();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let servers = doc["servers"].as_object().unwrap();
    assert!(servers
        .values()
        .any(|s| s["host"] == "127.0.0.1:4222" && s["protocol"] == "nats"));

    // Every internal reference resolves.
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for r in found.iter().filter(|r| r.starts_with('#')) {
        assert!(doc.pointer(&r[1..]).is_some(), "dangling {r}");
    }

    let ns = Namespace::default();
    let channels = doc["channels"].as_object().unwrap();
    let variants = variants_by_aggregate();
    for aggregate_type in AGGREGATE_TYPES {
        let address = ns.event_subject(aggregate_type, "{aggregateId}", "{eventType}");
        let (id, channel) = channels
            .iter()
            .find(|(_, c)| c["address"] == address.as_str())
            .unwrap_or_else(|| panic!("no channel {address}"));
        let stream = ns.stream_name(aggregate_type);
        assert_eq!(channel["x-jetstream-stream"], stream.as_str(), "{id}");
        assert!(
            channel["description"].as_str().unwrap().contains(&stream),
            "{id}"
        );
        let listed: BTreeSet<&str> = channel["parameters"]["eventType"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(&listed, &variants[aggregate_type], "{id}");
        // Both operations carry every message of the channel.
        for action in ["send", "receive"] {
            let operation = doc["operations"]
                .as_object()
                .unwrap()
                .values()
                .find(|o| {
                    o["action"] == action && o["channel"]["$ref"] == format!("#/channels/{id}")
                })
                .unwrap_or_else(|| panic!("{id}: no {action} operation"));
            let carried = operation["messages"].as_array().unwrap().len();
            assert_eq!(
                carried,
                channel["messages"].as_object().unwrap().len(),
                "{id}"
            );
        }
    }
    let dlq = channels
        .values()
        .find(|c| c["address"] == ns.dlq_subject("{consumer}").as_str())
        .expect("a dead-letter channel");
    assert_eq!(dlq["x-jetstream-stream"], ns.dlq_stream().as_str());

    let event_headers = [
        header::MSG_ID,
        header::SEQUENCE,
        header::EVENT_TYPE,
        header::EVENT_VERSION,
        header::AGGREGATE_TYPE,
        header::AGGREGATE_ID,
        header::EVENT_ID,
        header::CORRELATION_ID,
        header::CAUSATION_ID,
        header::USER_ID,
        header::COMMAND_ID,
        header::RECORDED_AT,
        header::TRACEPARENT,
        header::REDRIVE_FOR,
    ];
    let dead_letter_headers = [
        dlq_header::ORIGINAL_SUBJECT,
        dlq_header::ORIGINAL_STREAM,
        dlq_header::STREAM_SEQUENCE,
        dlq_header::CONSUMER,
        dlq_header::ERROR,
        dlq_header::ATTEMPTS,
        dlq_header::FAILED_AT,
        dlq_header::ORIGINAL_MSG_ID,
        dlq_header::PARKED,
    ];
    let schemas = &doc["components"]["schemas"];
    let listed = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let expected: BTreeSet<String> = event_headers.iter().map(|h| h.to_string()).collect();
    assert_eq!(listed("EventHeaders"), expected);
    let expected_dlq: BTreeSet<String> = event_headers
        .iter()
        .chain(dead_letter_headers.iter())
        .map(|h| h.to_string())
        .collect();
    assert_eq!(listed("DeadLetterHeaders"), expected_dlq);
}
