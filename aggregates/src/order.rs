//! The life of an order of goods: placed with its lines, confirmed once all its stock is
//! reserved (or rejected when some is short), then paid, cancelled, expired or refunded;
//! a paid order is then shipped, delivered and completed (the customer confirms receipt,
//! or the fulfilment process completes it some time after delivery).
//! Repeating a transition that already happened is a no-op, so a checkout saga may retry
//! any step safely.
//!
//! The order also keeps the units its after-sales requests claim, per request: a request
//! may claim only the units of its lines not claimed by another one still open, so two
//! requests racing for the same units never both get them; a withdrawn or rejected request
//! releases its claim.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::common::{
    AfterSaleId, CartId, CouponId, DomainError, ErrorKind, Money, MoneyError, OrderId, PaymentId,
    Quantity, ShipmentId, Sku, UserId,
};
use crate::customer::PostalAddress;
use crate::pricing::DiscountSource;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed; stock is being reserved.
    Pending,
    /// All stock reserved; waiting for the customer's payment.
    AwaitingPayment,
    /// Paid.
    Paid,
    /// Refused, typically because some stock was short.
    Rejected,
    /// Cancelled before payment.
    Cancelled,
    /// Not paid in time.
    Expired,
    /// Paid, then refunded.
    Refunded,
    /// Paid, and its shipment is with the carrier.
    Shipped,
    /// The carrier delivered it.
    Delivered,
    /// The customer confirmed receipt, or it completed by itself after delivery.
    Completed,
}

impl OrderStatus {
    /// The snake_case name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Completed => "completed",
        }
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an order: so many units of one SKU at a unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The item ordered.
    pub sku: Sku,
    /// Units ordered.
    pub quantity: Quantity,
    /// Price of one unit when the order was placed.
    pub unit_price: Money,
}

/// One line's share of the order's discounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDiscount {
    /// The SKU of the line.
    pub sku: Sku,
    /// What the discounts took off the line.
    pub discount: Money,
}

/// One discount applied to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDiscount {
    /// Promotion or coupon.
    pub source: DiscountSource,
    /// The promotion's or the coupon's id.
    pub id: uuid::Uuid,
    /// What it took off.
    pub amount: Money,
}

/// The price breakdown of an order as its checkout quoted it: the payable total is
/// `subtotal` less every discount plus `shipping_fee`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPricing {
    /// The quote the order was placed from, if any.
    #[serde(default)]
    pub quote_id: Option<uuid::Uuid>,
    /// Sum of quantity times unit price over all lines.
    pub subtotal: Money,
    /// Each line's share of the discounts (lines without a discount may be absent).
    pub line_discounts: Vec<LineDiscount>,
    /// Every discount applied, in the order applied.
    pub discounts: Vec<OrderDiscount>,
    /// The delivery fee.
    pub shipping_fee: Money,
}

impl OrderPricing {
    /// The coupons the order uses, in order.
    pub fn coupons(&self) -> Vec<CouponId> {
        self.discounts
            .iter()
            .filter(|d| d.source == DiscountSource::Coupon)
            .map(|d| CouponId::from(d.id))
            .collect()
    }

    /// Checks the breakdown against the lines' subtotal and returns the payable total.
    pub fn payable(&self, subtotal: &Money) -> Result<Money, OrderError> {
        if &self.subtotal != subtotal {
            return Err(OrderError::PricingMismatch);
        }
        let mut discounted = 0i64;
        for discount in &self.discounts {
            if discount.amount.currency() != subtotal.currency() {
                return Err(OrderError::MixedCurrencies);
            }
            discounted = discounted
                .checked_add(discount.amount.amount_minor())
                .ok_or(OrderError::AmountOverflow)?;
        }
        if discounted > subtotal.amount_minor()
            || self.shipping_fee.currency() != subtotal.currency()
        {
            return Err(OrderError::PricingMismatch);
        }
        let payable = (subtotal.amount_minor() - discounted)
            .checked_add(self.shipping_fee.amount_minor())
            .ok_or(OrderError::AmountOverflow)?;
        Money::new(payable, subtotal.currency().clone()).map_err(|_| OrderError::AmountOverflow)
    }
}

/// What the catalog's write side says of one ordered SKU when the order is placed: read by
/// the caller from the product aggregate (on sale, limit) and from the purchase ledger kept
/// in the same transaction as the order events (units the customer already has on orders
/// that were not cancelled, rejected or expired; see `ordo_store::catalog`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleFacts {
    /// The SKU.
    pub sku: Sku,
    /// False when the SKU is delisted.
    pub on_sale: bool,
    /// Most units one customer may have on orders, when limited.
    pub max_per_customer: Option<Quantity>,
    /// Units of it on the customer's other orders that count towards the limit.
    pub already_ordered: u64,
}

/// Who completed an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedBy {
    /// The customer confirmed receipt.
    Customer,
    /// Nobody objected within the auto-confirm period after delivery.
    AutoConfirm,
}

impl CompletedBy {
    /// The snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            CompletedBy::Customer => "customer",
            CompletedBy::AutoConfirm => "auto_confirm",
        }
    }
}

/// Commands accepted by an [`Order`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderCommand {
    /// Places the order.
    Place {
        /// The order's id (also the aggregate id).
        order_id: OrderId,
        /// Who orders.
        customer_id: UserId,
        /// What is ordered.
        lines: Vec<OrderLine>,
        /// The catalog's facts of the SKUs ordered; a line without facts is taken as on
        /// sale without limit.
        sale_facts: Vec<SaleFacts>,
        /// The price breakdown (discounts, shipping); without it the lines' sum is paid.
        pricing: Option<OrderPricing>,
        /// Where to deliver: a snapshot of one of the customer's addresses.
        delivery_address: Option<Box<PostalAddress>>,
        /// The customer's cart the lines were ordered from, which then gives them up.
        from_cart: Option<CartId>,
    },
    /// All stock is reserved: the order now waits for payment.
    Confirm,
    /// The order cannot be served.
    Reject {
        /// Why, e.g. "insufficient_stock".
        reason: String,
        /// SKUs whose stock was short.
        short_skus: Vec<Sku>,
    },
    /// The customer starts paying with this payment.
    AttachPayment {
        /// The payment started.
        payment_id: PaymentId,
    },
    /// The attached payment was captured.
    MarkPaid {
        /// The captured payment.
        payment_id: PaymentId,
    },
    /// The order is cancelled before payment.
    Cancel {
        /// Why.
        reason: String,
    },
    /// The order was not paid in time.
    Expire,
    /// The payment of a paid order was refunded.
    MarkRefunded {
        /// The refunded payment.
        payment_id: PaymentId,
        /// Why.
        reason: String,
    },
    /// The paid order's shipment left with the carrier.
    MarkShipped {
        /// The shipment.
        shipment_id: ShipmentId,
    },
    /// The carrier delivered the order's shipment.
    MarkDelivered {
        /// The shipment.
        shipment_id: ShipmentId,
        /// When, by the carrier's clock.
        delivered_at: DateTime<Utc>,
    },
    /// The customer confirms receiving the order.
    ConfirmReceipt {
        /// Who confirms: only the order's customer may.
        customer_id: UserId,
    },
    /// The auto-confirm period after delivery passed: the order completes.
    AutoComplete,
    /// An after-sales request claims units of the order's lines (once per request).
    ClaimAfterSaleUnits {
        /// The request.
        aftersale_id: AfterSaleId,
        /// The units it asks about, per SKU.
        lines: Vec<ClaimedUnits>,
    },
    /// A withdrawn or rejected request gives its units back (a no-op without a claim).
    ReleaseAfterSaleUnits {
        /// The request.
        aftersale_id: AfterSaleId,
    },
}

/// Units of one SKU an after-sales request claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedUnits {
    /// The SKU, one of the order's lines.
    pub sku: Sku,
    /// How many of its units.
    pub quantity: Quantity,
}

/// Events of an [`Order`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// The order was placed.
    OrderPlaced {
        /// The order's id.
        order_id: OrderId,
        /// Who ordered.
        customer_id: UserId,
        /// What was ordered.
        lines: Vec<OrderLine>,
        /// What the customer pays: the lines' sum, less the discounts of `pricing` plus its
        /// shipping fee when the order has one.
        total: Money,
        /// The price breakdown the order was placed with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pricing: Option<Box<OrderPricing>>,
        /// Where to deliver (personal data, sealed with the customer's key).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery_address: Option<Box<PostalAddress>>,
        /// The cart the lines were ordered from: its ordered units leave it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_cart: Option<CartId>,
    },
    /// All stock was reserved; the order waits for payment.
    OrderConfirmed {},
    /// The order was refused.
    OrderRejected {
        /// Why.
        reason: String,
        /// SKUs whose stock was short.
        short_skus: Vec<Sku>,
    },
    /// A payment was started for the order.
    PaymentAttached {
        /// The payment started.
        payment_id: PaymentId,
    },
    /// The order was paid.
    OrderPaid {
        /// The captured payment.
        payment_id: PaymentId,
    },
    /// The order was cancelled.
    OrderCancelled {
        /// Why.
        reason: String,
    },
    /// The order was not paid in time.
    OrderExpired {},
    /// The order's payment was refunded.
    OrderRefunded {
        /// The refunded payment.
        payment_id: PaymentId,
        /// Why.
        reason: String,
    },
    /// The order's shipment left with the carrier.
    OrderShipped {
        /// The shipment.
        shipment_id: ShipmentId,
    },
    /// The carrier delivered the order.
    OrderDelivered {
        /// The shipment.
        shipment_id: ShipmentId,
        /// When, by the carrier's clock.
        delivered_at: DateTime<Utc>,
    },
    /// The order is complete.
    OrderCompleted {
        /// Who completed it.
        by: CompletedBy,
    },
    /// An after-sales request claimed units of the order's lines.
    AfterSaleUnitsClaimed {
        /// The request.
        aftersale_id: AfterSaleId,
        /// The units, per SKU.
        lines: Vec<ClaimedUnits>,
    },
    /// A withdrawn or rejected request gave its units back.
    AfterSaleUnitsReleased {
        /// The request.
        aftersale_id: AfterSaleId,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::OrderConfirmed {} => "OrderConfirmed",
            OrderEvent::OrderRejected { .. } => "OrderRejected",
            OrderEvent::PaymentAttached { .. } => "PaymentAttached",
            OrderEvent::OrderPaid { .. } => "OrderPaid",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::OrderExpired {} => "OrderExpired",
            OrderEvent::OrderRefunded { .. } => "OrderRefunded",
            OrderEvent::OrderShipped { .. } => "OrderShipped",
            OrderEvent::OrderDelivered { .. } => "OrderDelivered",
            OrderEvent::OrderCompleted { .. } => "OrderCompleted",
            OrderEvent::AfterSaleUnitsClaimed { .. } => "AfterSaleUnitsClaimed",
            OrderEvent::AfterSaleUnitsReleased { .. } => "AfterSaleUnitsReleased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why an [`OrderCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order has no line.
    #[error("an order needs at least one line")]
    EmptyOrder,
    /// The same SKU appears on two lines.
    #[error("sku {sku} appears on more than one line")]
    DuplicateSku {
        /// The repeated SKU.
        sku: Sku,
    },
    /// The lines are priced in different currencies.
    #[error("all lines of an order must use one currency")]
    MixedCurrencies,
    /// The total is too large to be represented.
    #[error("order total is too large")]
    AmountOverflow,
    /// The order was already placed with other content.
    #[error("order already placed")]
    AlreadyPlaced,
    /// The order's status does not allow the action.
    #[error("cannot {action} an order that is {from}")]
    InvalidTransition {
        /// Status of the order.
        from: OrderStatus,
        /// What was attempted.
        action: &'static str,
    },
    /// The payment named is not the one attached to the order.
    #[error("payment {got} is not the payment of this order")]
    PaymentMismatch {
        /// The payment attached to the order, if any.
        expected: Option<PaymentId>,
        /// The payment named by the command.
        got: PaymentId,
    },
    /// The order was never placed.
    #[error("order not found")]
    OrderNotFound,
    /// The price breakdown does not add up with the lines.
    #[error("the price breakdown does not match the lines")]
    PricingMismatch,
    /// A SKU ordered is delisted.
    #[error("{sku} is not on sale")]
    NotOnSale {
        /// The SKU.
        sku: Sku,
    },
    /// A line would take the customer beyond the SKU's purchase limit.
    #[error(
        "{sku} is limited to {limit} per customer, and {already} are already on earlier orders"
    )]
    PurchaseLimit {
        /// The SKU.
        sku: Sku,
        /// Its limit per customer.
        limit: u32,
        /// Units already on the customer's orders that count.
        already: u64,
    },
    /// An after-sales request names a SKU the order does not have.
    #[error("{sku} is not on this order")]
    NotInOrder {
        /// The SKU.
        sku: Sku,
    },
    /// An after-sales request asks about more units than other requests left.
    #[error("only {left} units of {sku} can still be asked about")]
    QuantityExceeded {
        /// The SKU.
        sku: Sku,
        /// Units not claimed by another open request.
        left: u32,
    },
}

impl OrderError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::EmptyOrder => "empty_order",
            OrderError::DuplicateSku { .. } => "duplicate_sku",
            OrderError::MixedCurrencies => "mixed_currencies",
            OrderError::AmountOverflow => "amount_overflow",
            OrderError::AlreadyPlaced => "order_already_placed",
            OrderError::InvalidTransition { .. } => "invalid_transition",
            OrderError::PaymentMismatch { .. } => "payment_mismatch",
            OrderError::OrderNotFound => "order_not_found",
            OrderError::PricingMismatch => "pricing_mismatch",
            OrderError::NotOnSale { .. } => "not_on_sale",
            OrderError::PurchaseLimit { .. } => "purchase_limit",
            OrderError::NotInOrder { .. } => "not_in_order",
            OrderError::QuantityExceeded { .. } => "quantity_exceeded",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OrderError::EmptyOrder
            | OrderError::DuplicateSku { .. }
            | OrderError::MixedCurrencies
            | OrderError::PricingMismatch
            | OrderError::AmountOverflow => ErrorKind::Invalid,
            OrderError::AlreadyPlaced
            | OrderError::InvalidTransition { .. }
            | OrderError::PaymentMismatch { .. }
            | OrderError::NotOnSale { .. }
            | OrderError::PurchaseLimit { .. }
            | OrderError::QuantityExceeded { .. } => ErrorKind::Refused,
            OrderError::NotInOrder { .. } => ErrorKind::UnknownReference,
            OrderError::OrderNotFound => ErrorKind::NotFound,
        }
    }
}

impl DomainError for OrderError {
    fn code(&self) -> &'static str {
        OrderError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        OrderError::kind(self)
    }
}

/// Checks the lines of an order and returns their total.
pub fn order_total(lines: &[OrderLine]) -> Result<Money, OrderError> {
    let first = lines.first().ok_or(OrderError::EmptyOrder)?;
    let mut seen = BTreeSet::new();
    let mut total = Money::zero(first.unit_price.currency().clone());
    for line in lines {
        if !seen.insert(&line.sku) {
            return Err(OrderError::DuplicateSku {
                sku: line.sku.clone(),
            });
        }
        let amount = line
            .unit_price
            .checked_mul(line.quantity.get())
            .ok_or(OrderError::AmountOverflow)?;
        total = total.checked_add(&amount).map_err(|e| match e {
            MoneyError::CurrencyMismatch { .. } => OrderError::MixedCurrencies,
            MoneyError::Overflow | MoneyError::Negative => OrderError::AmountOverflow,
        })?;
    }
    Ok(total)
}

/// Checks every line against the catalog's facts of its SKU.
pub fn check_sale(lines: &[OrderLine], facts: &[SaleFacts]) -> Result<(), OrderError> {
    for line in lines {
        let Some(fact) = facts.iter().find(|f| f.sku == line.sku) else {
            continue;
        };
        if !fact.on_sale {
            return Err(OrderError::NotOnSale {
                sku: line.sku.clone(),
            });
        }
        if let Some(limit) = fact.max_per_customer {
            if fact.already_ordered + u64::from(line.quantity.get()) > u64::from(limit.get()) {
                return Err(OrderError::PurchaseLimit {
                    sku: line.sku.clone(),
                    limit: limit.get(),
                    already: fact.already_ordered,
                });
            }
        }
    }
    Ok(())
}

/// An order of goods.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Order {
    order_id: Option<OrderId>,
    customer_id: Option<UserId>,
    lines: Vec<OrderLine>,
    total: Option<Money>,
    status: Option<OrderStatus>,
    attached_payment: Option<PaymentId>,
    reason: Option<String>,
    short_skus: Vec<Sku>,
    #[serde(default)]
    pricing: Option<OrderPricing>,
    #[serde(default)]
    shipment: Option<ShipmentId>,
    #[serde(default)]
    delivered_at: Option<DateTime<Utc>>,
    /// The units each open (or closed, not withdrawn or rejected) after-sales request claims.
    #[serde(default)]
    aftersale_claims: BTreeMap<AfterSaleId, Vec<ClaimedUnits>>,
}

impl Order {
    /// The shipment delivering it, once shipped.
    pub fn shipment(&self) -> Option<ShipmentId> {
        self.shipment
    }

    /// When it was delivered, once it was.
    pub fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.delivered_at
    }

    /// The price breakdown, when the order was placed with one.
    pub fn pricing(&self) -> Option<&OrderPricing> {
        self.pricing.as_ref()
    }

    /// The coupons the order uses.
    pub fn coupons(&self) -> Vec<CouponId> {
        self.pricing
            .as_ref()
            .map(OrderPricing::coupons)
            .unwrap_or_default()
    }

    /// The order's id, once placed.
    pub fn order_id(&self) -> Option<OrderId> {
        self.order_id
    }

    /// The status, once placed.
    pub fn status(&self) -> Option<OrderStatus> {
        self.status
    }

    /// Who ordered, once placed.
    pub fn customer_id(&self) -> Option<UserId> {
        self.customer_id
    }

    /// The lines ordered (empty before the order is placed).
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }

    /// The total, once placed.
    pub fn total(&self) -> Option<&Money> {
        self.total.as_ref()
    }

    /// The payment most recently attached (the one that paid, once paid).
    pub fn attached_payment(&self) -> Option<PaymentId> {
        self.attached_payment
    }

    /// Why the order was rejected, cancelled or refunded.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// SKUs that were short when the order was rejected.
    pub fn short_skus(&self) -> &[Sku] {
        &self.short_skus
    }

    /// The units of each SKU after-sales requests claim.
    pub fn claimed_units(&self) -> BTreeMap<Sku, u32> {
        let mut claimed = BTreeMap::new();
        for line in self.aftersale_claims.values().flatten() {
            *claimed.entry(line.sku.clone()).or_insert(0u32) += line.quantity.get();
        }
        claimed
    }

    /// Whether the request `aftersale_id` holds a claim.
    pub fn has_aftersale_claim(&self, aftersale_id: AfterSaleId) -> bool {
        self.aftersale_claims.contains_key(&aftersale_id)
    }

    fn check_claim(&self, lines: &[ClaimedUnits]) -> Result<(), OrderError> {
        let claimed = self.claimed_units();
        for (index, line) in lines.iter().enumerate() {
            let Some(ordered) = self.lines.iter().find(|l| l.sku == line.sku) else {
                return Err(OrderError::NotInOrder {
                    sku: line.sku.clone(),
                });
            };
            let asked: u32 = lines[..=index]
                .iter()
                .filter(|l| l.sku == line.sku)
                .map(|l| l.quantity.get())
                .sum();
            let left = ordered
                .quantity
                .get()
                .saturating_sub(claimed.get(&line.sku).copied().unwrap_or(0));
            if asked > left {
                return Err(OrderError::QuantityExceeded {
                    sku: line.sku.clone(),
                    left,
                });
            }
        }
        Ok(())
    }

    fn placed_status(&self) -> Result<OrderStatus, OrderError> {
        self.status.ok_or(OrderError::OrderNotFound)
    }
}

/// Outcome of checking a transition: emit the event, or do nothing because it already happened.
enum Step {
    Emit(Box<OrderEvent>),
    AlreadyDone,
}

impl Step {
    fn emit(event: OrderEvent) -> Step {
        Step::Emit(Box::new(event))
    }
}

fn refuse(from: OrderStatus, action: &'static str) -> Result<Step, OrderError> {
    Err(OrderError::InvalidTransition { from, action })
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use OrderStatus as S;
        let step = match command {
            OrderCommand::Place {
                order_id,
                customer_id,
                lines,
                sale_facts,
                pricing,
                delivery_address,
                from_cart,
            } => {
                let subtotal = order_total(&lines)?;
                let total = match &pricing {
                    Some(pricing) => pricing.payable(&subtotal)?,
                    None => subtotal,
                };
                if self.status.is_some() {
                    let same = self.order_id == Some(order_id)
                        && self.customer_id == Some(customer_id)
                        && self.lines == lines
                        && self.pricing == pricing;
                    if same {
                        Step::AlreadyDone
                    } else {
                        return Err(OrderError::AlreadyPlaced);
                    }
                } else {
                    check_sale(&lines, &sale_facts)?;
                    Step::emit(OrderEvent::OrderPlaced {
                        order_id,
                        customer_id,
                        lines,
                        total,
                        pricing: pricing.map(Box::new),
                        delivery_address,
                        from_cart,
                    })
                }
            }
            OrderCommand::Confirm => match self.placed_status()? {
                S::Pending => Step::emit(OrderEvent::OrderConfirmed {}),
                S::AwaitingPayment => Step::AlreadyDone,
                from => refuse(from, "confirm")?,
            },
            OrderCommand::Reject { reason, short_skus } => match self.placed_status()? {
                S::Pending => Step::emit(OrderEvent::OrderRejected { reason, short_skus }),
                S::Rejected => Step::AlreadyDone,
                from => refuse(from, "reject")?,
            },
            OrderCommand::AttachPayment { payment_id } => match self.placed_status()? {
                S::AwaitingPayment | S::Paid if self.attached_payment == Some(payment_id) => {
                    Step::AlreadyDone
                }
                S::AwaitingPayment => Step::emit(OrderEvent::PaymentAttached { payment_id }),
                from => refuse(from, "attach a payment to")?,
            },
            OrderCommand::MarkPaid { payment_id } => match self.placed_status()? {
                S::AwaitingPayment if self.attached_payment == Some(payment_id) => {
                    Step::emit(OrderEvent::OrderPaid { payment_id })
                }
                S::AwaitingPayment => {
                    return Err(OrderError::PaymentMismatch {
                        expected: self.attached_payment,
                        got: payment_id,
                    })
                }
                S::Paid if self.attached_payment == Some(payment_id) => Step::AlreadyDone,
                from => refuse(from, "mark paid")?,
            },
            OrderCommand::Cancel { reason } => match self.placed_status()? {
                S::Pending | S::AwaitingPayment => {
                    Step::emit(OrderEvent::OrderCancelled { reason })
                }
                S::Cancelled => Step::AlreadyDone,
                from => refuse(from, "cancel")?,
            },
            OrderCommand::Expire => match self.placed_status()? {
                S::AwaitingPayment => Step::emit(OrderEvent::OrderExpired {}),
                S::Expired => Step::AlreadyDone,
                from => refuse(from, "expire")?,
            },
            OrderCommand::MarkRefunded { payment_id, reason } => {
                let status = self.placed_status()?;
                if matches!(status, S::Paid | S::Refunded)
                    && self.attached_payment != Some(payment_id)
                {
                    return Err(OrderError::PaymentMismatch {
                        expected: self.attached_payment,
                        got: payment_id,
                    });
                }
                match status {
                    S::Paid => Step::emit(OrderEvent::OrderRefunded { payment_id, reason }),
                    S::Refunded => Step::AlreadyDone,
                    from => refuse(from, "refund")?,
                }
            }
            OrderCommand::MarkShipped { shipment_id } => match self.placed_status()? {
                S::Paid => Step::emit(OrderEvent::OrderShipped { shipment_id }),
                S::Shipped | S::Delivered | S::Completed if self.shipment == Some(shipment_id) => {
                    Step::AlreadyDone
                }
                from => refuse(from, "ship")?,
            },
            OrderCommand::MarkDelivered {
                shipment_id,
                delivered_at,
            } => match self.placed_status()? {
                S::Shipped if self.shipment == Some(shipment_id) => {
                    Step::emit(OrderEvent::OrderDelivered {
                        shipment_id,
                        delivered_at,
                    })
                }
                S::Delivered | S::Completed if self.shipment == Some(shipment_id) => {
                    Step::AlreadyDone
                }
                from => refuse(from, "deliver")?,
            },
            OrderCommand::ConfirmReceipt { customer_id } => {
                let status = self.placed_status()?;
                if self.customer_id != Some(customer_id) {
                    return Err(OrderError::OrderNotFound);
                }
                match status {
                    S::Shipped | S::Delivered => Step::emit(OrderEvent::OrderCompleted {
                        by: CompletedBy::Customer,
                    }),
                    S::Completed => Step::AlreadyDone,
                    from => refuse(from, "confirm receipt of")?,
                }
            }
            OrderCommand::AutoComplete => match self.placed_status()? {
                S::Delivered => Step::emit(OrderEvent::OrderCompleted {
                    by: CompletedBy::AutoConfirm,
                }),
                S::Completed => Step::AlreadyDone,
                from => refuse(from, "complete")?,
            },
            OrderCommand::ClaimAfterSaleUnits {
                aftersale_id,
                lines,
            } => {
                let status = self.placed_status()?;
                if self.aftersale_claims.contains_key(&aftersale_id) {
                    Step::AlreadyDone
                } else if matches!(status, S::Paid | S::Shipped | S::Delivered | S::Completed) {
                    self.check_claim(&lines)?;
                    Step::emit(OrderEvent::AfterSaleUnitsClaimed {
                        aftersale_id,
                        lines,
                    })
                } else {
                    refuse(status, "claim after-sales units of")?
                }
            }
            OrderCommand::ReleaseAfterSaleUnits { aftersale_id } => {
                self.placed_status()?;
                if self.aftersale_claims.contains_key(&aftersale_id) {
                    Step::emit(OrderEvent::AfterSaleUnitsReleased { aftersale_id })
                } else {
                    Step::AlreadyDone
                }
            }
        };
        if let Step::Emit(event) = step {
            sink.write(*event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            OrderEvent::OrderPlaced {
                order_id,
                customer_id,
                lines,
                total,
                pricing,
                ..
            } => {
                self.pricing = pricing.map(|p| *p);
                self.order_id = Some(order_id);
                self.customer_id = Some(customer_id);
                self.lines = lines;
                self.total = Some(total);
                self.status = Some(OrderStatus::Pending);
            }
            OrderEvent::OrderConfirmed {} => self.status = Some(OrderStatus::AwaitingPayment),
            OrderEvent::OrderRejected { reason, short_skus } => {
                self.status = Some(OrderStatus::Rejected);
                self.reason = Some(reason);
                self.short_skus = short_skus;
            }
            OrderEvent::PaymentAttached { payment_id } => {
                self.attached_payment = Some(payment_id);
            }
            OrderEvent::OrderPaid { payment_id } => {
                self.attached_payment = Some(payment_id);
                self.status = Some(OrderStatus::Paid);
            }
            OrderEvent::OrderCancelled { reason } => {
                self.status = Some(OrderStatus::Cancelled);
                self.reason = Some(reason);
            }
            OrderEvent::OrderExpired {} => self.status = Some(OrderStatus::Expired),
            OrderEvent::OrderRefunded { reason, .. } => {
                self.status = Some(OrderStatus::Refunded);
                self.reason = Some(reason);
            }
            OrderEvent::OrderShipped { shipment_id } => {
                self.shipment = Some(shipment_id);
                self.status = Some(OrderStatus::Shipped);
            }
            OrderEvent::OrderDelivered { delivered_at, .. } => {
                self.delivered_at = Some(delivered_at);
                self.status = Some(OrderStatus::Delivered);
            }
            OrderEvent::OrderCompleted { .. } => self.status = Some(OrderStatus::Completed),
            OrderEvent::AfterSaleUnitsClaimed {
                aftersale_id,
                lines,
            } => {
                self.aftersale_claims.insert(aftersale_id, lines);
            }
            OrderEvent::AfterSaleUnitsReleased { aftersale_id } => {
                self.aftersale_claims.remove(&aftersale_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<OrderEvent>) -> AggregateTestExecutor<Order> {
        TestFramework::<Order>::with(()).given(events)
    }

    fn line(s: &str, q: i64, price: Money) -> OrderLine {
        OrderLine {
            sku: sku(s),
            quantity: qty(q),
            unit_price: price,
        }
    }

    fn lines() -> Vec<OrderLine> {
        vec![line("MUG", 2, eur(1200)), line("PLATE", 1, eur(500))]
    }

    fn place(lines: Vec<OrderLine>) -> OrderCommand {
        OrderCommand::Place {
            order_id: id(1),
            customer_id: id(2),
            lines,
            sale_facts: vec![],
            pricing: None,
            delivery_address: None,
            from_cart: None,
        }
    }

    fn placed() -> OrderEvent {
        OrderEvent::OrderPlaced {
            order_id: id(1),
            customer_id: id(2),
            lines: lines(),
            total: eur(2900),
            pricing: None,
            delivery_address: None,
            from_cart: None,
        }
    }

    fn p(n: u128) -> PaymentId {
        id(n)
    }

    fn confirmed() -> Vec<OrderEvent> {
        vec![placed(), OrderEvent::OrderConfirmed {}]
    }

    fn attached(n: u128) -> Vec<OrderEvent> {
        let mut e = confirmed();
        e.push(OrderEvent::PaymentAttached { payment_id: p(n) });
        e
    }

    fn paid(n: u128) -> Vec<OrderEvent> {
        let mut e = attached(n);
        e.push(OrderEvent::OrderPaid { payment_id: p(n) });
        e
    }

    fn with(mut events: Vec<OrderEvent>, more: OrderEvent) -> Vec<OrderEvent> {
        events.push(more);
        events
    }

    fn invalid(from: OrderStatus, action: &'static str) -> OrderError {
        OrderError::InvalidTransition { from, action }
    }

    fn cancelled() -> OrderEvent {
        OrderEvent::OrderCancelled {
            reason: "changed mind".into(),
        }
    }

    fn rejected() -> OrderEvent {
        OrderEvent::OrderRejected {
            reason: "insufficient_stock".into(),
            short_skus: vec![sku("MUG")],
        }
    }

    fn state(events: Vec<OrderEvent>) -> Order {
        let mut o = Order::default();
        for e in events {
            o.apply(e);
        }
        o
    }

    #[test]
    fn place_records_lines_and_total() {
        given(vec![])
            .when(place(lines()))
            .then_expect_events(vec![placed()]);
        let o = state(vec![placed()]);
        assert_eq!(o.status(), Some(OrderStatus::Pending));
        assert_eq!(o.total(), Some(&eur(2900)));
        assert_eq!(o.customer_id(), Some(id(2)));
        assert_eq!(o.lines().len(), 2);
    }

    #[test]
    fn place_refuses_an_empty_order() {
        let err = given(vec![])
            .when(place(vec![]))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, OrderError::EmptyOrder);
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn place_refuses_a_sku_twice() {
        given(vec![])
            .when(place(vec![
                line("MUG", 1, eur(1)),
                line("PLATE", 1, eur(1)),
                line("mug", 2, eur(1)),
            ]))
            .then_expect_error(OrderError::DuplicateSku { sku: sku("MUG") });
    }

    #[test]
    fn place_refuses_mixed_currencies() {
        given(vec![])
            .when(place(vec![
                line("MUG", 1, eur(1)),
                line("PLATE", 1, usd(1)),
            ]))
            .then_expect_error(OrderError::MixedCurrencies);
    }

    #[test]
    fn place_refuses_a_total_that_overflows() {
        given(vec![])
            .when(place(vec![line("MUG", 2, eur(i64::MAX / 2 + 1))]))
            .then_expect_error(OrderError::AmountOverflow);
        given(vec![])
            .when(place(vec![
                line("MUG", 1, eur(i64::MAX)),
                line("PLATE", 1, eur(1)),
            ]))
            .then_expect_error(OrderError::AmountOverflow);
    }

    #[test]
    fn place_repeated_identically_is_a_no_op() {
        given(vec![placed()])
            .when(place(lines()))
            .then_expect_events(vec![]);
        given(paid(7))
            .when(place(lines()))
            .then_expect_events(vec![]);
    }

    fn facts(sku_code: &str, on_sale: bool, limit: Option<i64>, already: u64) -> SaleFacts {
        SaleFacts {
            sku: sku(sku_code),
            on_sale,
            max_per_customer: limit.map(qty),
            already_ordered: already,
        }
    }

    fn place_with(sale_facts: Vec<SaleFacts>) -> OrderCommand {
        OrderCommand::Place {
            order_id: id(1),
            customer_id: id(2),
            lines: lines(),
            sale_facts,
            pricing: None,
            delivery_address: None,
            from_cart: None,
        }
    }

    #[test]
    fn place_refuses_a_delisted_sku() {
        let err = given(vec![])
            .when(place_with(vec![facts("PLATE", false, None, 0)]))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, OrderError::NotOnSale { sku: sku("PLATE") });
        assert_eq!(err.code(), "not_on_sale");
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[test]
    fn place_refuses_more_than_the_purchase_limit_counting_earlier_orders() {
        // MUG is ordered twice: a limit of 3 with 2 already ordered is exceeded.
        let err = given(vec![])
            .when(place_with(vec![facts("MUG", true, Some(3), 2)]))
            .inspect_result()
            .unwrap_err();
        assert_eq!(
            err,
            OrderError::PurchaseLimit {
                sku: sku("MUG"),
                limit: 3,
                already: 2
            }
        );
        assert_eq!(err.code(), "purchase_limit");
    }

    #[test]
    fn place_up_to_the_purchase_limit_is_accepted() {
        given(vec![])
            .when(place_with(vec![
                facts("MUG", true, Some(3), 1),
                facts("PLATE", true, None, 50),
            ]))
            .then_expect_events(vec![placed()]);
    }

    #[test]
    fn a_repeated_placement_is_not_checked_again() {
        // The order itself now counts as an earlier order of the customer.
        given(vec![placed()])
            .when(place_with(vec![facts("MUG", true, Some(2), 2)]))
            .then_expect_events(vec![]);
    }

    #[test]
    fn place_with_other_content_is_refused() {
        let err = given(vec![placed()])
            .when(place(vec![line("MUG", 3, eur(1200))]))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, OrderError::AlreadyPlaced);
        assert_eq!(err.kind(), ErrorKind::Refused);
        given(vec![placed()])
            .when(OrderCommand::Place {
                order_id: id(1),
                customer_id: id(3),
                lines: lines(),
                sale_facts: vec![],
                pricing: None,
                delivery_address: None,
                from_cart: None,
            })
            .then_expect_error(OrderError::AlreadyPlaced);
    }

    #[test]
    fn commands_on_an_order_never_placed_are_not_found() {
        let commands = vec![
            OrderCommand::Confirm,
            OrderCommand::Reject {
                reason: "x".into(),
                short_skus: vec![],
            },
            OrderCommand::AttachPayment { payment_id: p(1) },
            OrderCommand::MarkPaid { payment_id: p(1) },
            OrderCommand::Cancel { reason: "x".into() },
            OrderCommand::Expire,
            OrderCommand::MarkRefunded {
                payment_id: p(1),
                reason: "x".into(),
            },
        ];
        for c in commands {
            let err = given(vec![]).when(c).inspect_result().unwrap_err();
            assert_eq!(err, OrderError::OrderNotFound);
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert_eq!(err.code(), "order_not_found");
        }
    }

    #[test]
    fn confirm_moves_pending_to_awaiting_payment() {
        given(vec![placed()])
            .when(OrderCommand::Confirm)
            .then_expect_events(vec![OrderEvent::OrderConfirmed {}]);
        assert_eq!(
            state(confirmed()).status(),
            Some(OrderStatus::AwaitingPayment)
        );
    }

    #[test]
    fn confirm_repeated_is_a_no_op() {
        given(confirmed())
            .when(OrderCommand::Confirm)
            .then_expect_events(vec![]);
    }

    #[test]
    fn confirm_is_refused_after_rejection_or_payment() {
        given(vec![placed(), rejected()])
            .when(OrderCommand::Confirm)
            .then_expect_error(invalid(OrderStatus::Rejected, "confirm"));
        let err = given(paid(7))
            .when(OrderCommand::Confirm)
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, invalid(OrderStatus::Paid, "confirm"));
        assert_eq!(err.code(), "invalid_transition");
        assert_eq!(err.to_string(), "cannot confirm an order that is paid");
    }

    #[test]
    fn reject_records_reason_and_short_skus() {
        given(vec![placed()])
            .when(OrderCommand::Reject {
                reason: "insufficient_stock".into(),
                short_skus: vec![sku("MUG")],
            })
            .then_expect_events(vec![rejected()]);
        let o = state(vec![placed(), rejected()]);
        assert_eq!(o.status(), Some(OrderStatus::Rejected));
        assert_eq!(o.reason(), Some("insufficient_stock"));
        assert_eq!(o.short_skus(), &[sku("MUG")]);
    }

    #[test]
    fn reject_repeated_is_a_no_op() {
        given(vec![placed(), rejected()])
            .when(OrderCommand::Reject {
                reason: "insufficient_stock".into(),
                short_skus: vec![sku("MUG")],
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn reject_is_refused_once_confirmed() {
        given(confirmed())
            .when(OrderCommand::Reject {
                reason: "x".into(),
                short_skus: vec![],
            })
            .then_expect_error(invalid(OrderStatus::AwaitingPayment, "reject"));
    }

    #[test]
    fn attach_payment_records_the_payment() {
        given(confirmed())
            .when(OrderCommand::AttachPayment { payment_id: p(7) })
            .then_expect_events(vec![OrderEvent::PaymentAttached { payment_id: p(7) }]);
    }

    #[test]
    fn attach_payment_repeated_is_a_no_op() {
        given(attached(7))
            .when(OrderCommand::AttachPayment { payment_id: p(7) })
            .then_expect_events(vec![]);
        given(paid(7))
            .when(OrderCommand::AttachPayment { payment_id: p(7) })
            .then_expect_events(vec![]);
    }

    #[test]
    fn attach_payment_after_a_failed_attempt_replaces_it() {
        given(attached(7))
            .when(OrderCommand::AttachPayment { payment_id: p(8) })
            .then_expect_events(vec![OrderEvent::PaymentAttached { payment_id: p(8) }]);
        let o = state(with(
            attached(7),
            OrderEvent::PaymentAttached { payment_id: p(8) },
        ));
        assert_eq!(o.attached_payment(), Some(p(8)));
    }

    #[test]
    fn attach_payment_is_refused_before_confirmation_or_after_payment() {
        given(vec![placed()])
            .when(OrderCommand::AttachPayment { payment_id: p(7) })
            .then_expect_error(invalid(OrderStatus::Pending, "attach a payment to"));
        given(paid(7))
            .when(OrderCommand::AttachPayment { payment_id: p(8) })
            .then_expect_error(invalid(OrderStatus::Paid, "attach a payment to"));
    }

    #[test]
    fn mark_paid_with_the_attached_payment_pays_the_order() {
        given(attached(7))
            .when(OrderCommand::MarkPaid { payment_id: p(7) })
            .then_expect_events(vec![OrderEvent::OrderPaid { payment_id: p(7) }]);
        assert_eq!(state(paid(7)).status(), Some(OrderStatus::Paid));
    }

    #[test]
    fn mark_paid_with_another_payment_is_refused() {
        given(attached(7))
            .when(OrderCommand::MarkPaid { payment_id: p(8) })
            .then_expect_error(OrderError::PaymentMismatch {
                expected: Some(p(7)),
                got: p(8),
            });
        given(confirmed())
            .when(OrderCommand::MarkPaid { payment_id: p(8) })
            .then_expect_error(OrderError::PaymentMismatch {
                expected: None,
                got: p(8),
            });
    }

    #[test]
    fn mark_paid_repeated_is_a_no_op() {
        given(paid(7))
            .when(OrderCommand::MarkPaid { payment_id: p(7) })
            .then_expect_events(vec![]);
    }

    #[test]
    fn mark_paid_is_refused_when_expired_or_cancelled() {
        given(with(attached(7), OrderEvent::OrderExpired {}))
            .when(OrderCommand::MarkPaid { payment_id: p(7) })
            .then_expect_error(invalid(OrderStatus::Expired, "mark paid"));
        given(with(attached(7), cancelled()))
            .when(OrderCommand::MarkPaid { payment_id: p(7) })
            .then_expect_error(invalid(OrderStatus::Cancelled, "mark paid"));
        given(paid(7))
            .when(OrderCommand::MarkPaid { payment_id: p(8) })
            .then_expect_error(invalid(OrderStatus::Paid, "mark paid"));
    }

    #[test]
    fn cancel_works_before_payment() {
        for events in [vec![placed()], confirmed(), attached(7)] {
            given(events)
                .when(OrderCommand::Cancel {
                    reason: "changed mind".into(),
                })
                .then_expect_events(vec![cancelled()]);
        }
        let o = state(with(confirmed(), cancelled()));
        assert_eq!(o.status(), Some(OrderStatus::Cancelled));
        assert_eq!(o.reason(), Some("changed mind"));
    }

    #[test]
    fn cancel_repeated_is_a_no_op() {
        given(with(confirmed(), cancelled()))
            .when(OrderCommand::Cancel {
                reason: "again".into(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn cancel_of_a_paid_order_is_refused() {
        given(paid(7))
            .when(OrderCommand::Cancel { reason: "x".into() })
            .then_expect_error(invalid(OrderStatus::Paid, "cancel"));
        given(vec![placed(), rejected()])
            .when(OrderCommand::Cancel { reason: "x".into() })
            .then_expect_error(invalid(OrderStatus::Rejected, "cancel"));
    }

    #[test]
    fn expire_ends_an_unpaid_order() {
        given(attached(7))
            .when(OrderCommand::Expire)
            .then_expect_events(vec![OrderEvent::OrderExpired {}]);
        assert_eq!(
            state(with(confirmed(), OrderEvent::OrderExpired {})).status(),
            Some(OrderStatus::Expired)
        );
    }

    #[test]
    fn expire_repeated_is_a_no_op() {
        given(with(confirmed(), OrderEvent::OrderExpired {}))
            .when(OrderCommand::Expire)
            .then_expect_events(vec![]);
    }

    #[test]
    fn expire_is_refused_when_pending_or_paid() {
        given(vec![placed()])
            .when(OrderCommand::Expire)
            .then_expect_error(invalid(OrderStatus::Pending, "expire"));
        given(paid(7))
            .when(OrderCommand::Expire)
            .then_expect_error(invalid(OrderStatus::Paid, "expire"));
    }

    #[test]
    fn mark_refunded_ends_a_paid_order() {
        let refunded = OrderEvent::OrderRefunded {
            payment_id: p(7),
            reason: "damaged".into(),
        };
        given(paid(7))
            .when(OrderCommand::MarkRefunded {
                payment_id: p(7),
                reason: "damaged".into(),
            })
            .then_expect_events(vec![refunded.clone()]);
        let o = state(with(paid(7), refunded.clone()));
        assert_eq!(o.status(), Some(OrderStatus::Refunded));
        assert_eq!(o.reason(), Some("damaged"));
        given(with(paid(7), refunded))
            .when(OrderCommand::MarkRefunded {
                payment_id: p(7),
                reason: "damaged".into(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn mark_refunded_is_refused_for_unpaid_orders_or_other_payments() {
        given(attached(7))
            .when(OrderCommand::MarkRefunded {
                payment_id: p(7),
                reason: "x".into(),
            })
            .then_expect_error(invalid(OrderStatus::AwaitingPayment, "refund"));
        given(paid(7))
            .when(OrderCommand::MarkRefunded {
                payment_id: p(8),
                reason: "x".into(),
            })
            .then_expect_error(OrderError::PaymentMismatch {
                expected: Some(p(7)),
                got: p(8),
            });
    }

    fn s(n: u128) -> ShipmentId {
        id(n)
    }

    fn delivered_at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn shipped(n: u128) -> Vec<OrderEvent> {
        with(paid(7), OrderEvent::OrderShipped { shipment_id: s(n) })
    }

    fn delivered(n: u128) -> Vec<OrderEvent> {
        with(
            shipped(n),
            OrderEvent::OrderDelivered {
                shipment_id: s(n),
                delivered_at: delivered_at(),
            },
        )
    }

    fn completed_by(by: CompletedBy) -> OrderEvent {
        OrderEvent::OrderCompleted { by }
    }

    #[test]
    fn mark_shipped_moves_a_paid_order_to_shipped() {
        given(paid(7))
            .when(OrderCommand::MarkShipped { shipment_id: s(5) })
            .then_expect_events(vec![OrderEvent::OrderShipped { shipment_id: s(5) }]);
        let o = state(shipped(5));
        assert_eq!(o.status(), Some(OrderStatus::Shipped));
        assert_eq!(o.shipment(), Some(s(5)));
        given(shipped(5))
            .when(OrderCommand::MarkShipped { shipment_id: s(5) })
            .then_expect_events(vec![]);
        given(delivered(5))
            .when(OrderCommand::MarkShipped { shipment_id: s(5) })
            .then_expect_events(vec![]);
    }

    #[test]
    fn mark_shipped_is_refused_unless_paid() {
        given(attached(7))
            .when(OrderCommand::MarkShipped { shipment_id: s(5) })
            .then_expect_error(invalid(OrderStatus::AwaitingPayment, "ship"));
        given(with(
            paid(7),
            OrderEvent::OrderRefunded {
                payment_id: p(7),
                reason: "x".into(),
            },
        ))
        .when(OrderCommand::MarkShipped { shipment_id: s(5) })
        .then_expect_error(invalid(OrderStatus::Refunded, "ship"));
        given(shipped(5))
            .when(OrderCommand::MarkShipped { shipment_id: s(6) })
            .then_expect_error(invalid(OrderStatus::Shipped, "ship"));
    }

    #[test]
    fn mark_delivered_records_when_and_a_repeat_is_a_no_op() {
        given(shipped(5))
            .when(OrderCommand::MarkDelivered {
                shipment_id: s(5),
                delivered_at: delivered_at(),
            })
            .then_expect_events(vec![OrderEvent::OrderDelivered {
                shipment_id: s(5),
                delivered_at: delivered_at(),
            }]);
        let o = state(delivered(5));
        assert_eq!(o.status(), Some(OrderStatus::Delivered));
        assert_eq!(o.delivered_at(), Some(delivered_at()));
        given(delivered(5))
            .when(OrderCommand::MarkDelivered {
                shipment_id: s(5),
                delivered_at: delivered_at(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn mark_delivered_is_refused_before_shipping_or_for_another_shipment() {
        given(paid(7))
            .when(OrderCommand::MarkDelivered {
                shipment_id: s(5),
                delivered_at: delivered_at(),
            })
            .then_expect_error(invalid(OrderStatus::Paid, "deliver"));
        given(shipped(5))
            .when(OrderCommand::MarkDelivered {
                shipment_id: s(6),
                delivered_at: delivered_at(),
            })
            .then_expect_error(invalid(OrderStatus::Shipped, "deliver"));
    }

    #[test]
    fn the_customer_confirms_receipt_once_shipped_or_delivered() {
        for events in [shipped(5), delivered(5)] {
            given(events)
                .when(OrderCommand::ConfirmReceipt { customer_id: id(2) })
                .then_expect_events(vec![completed_by(CompletedBy::Customer)]);
        }
        let done = with(delivered(5), completed_by(CompletedBy::Customer));
        assert_eq!(state(done.clone()).status(), Some(OrderStatus::Completed));
        given(done)
            .when(OrderCommand::ConfirmReceipt { customer_id: id(2) })
            .then_expect_events(vec![]);
    }

    #[test]
    fn confirming_receipt_is_refused_to_others_and_before_shipping() {
        given(delivered(5))
            .when(OrderCommand::ConfirmReceipt { customer_id: id(3) })
            .then_expect_error(OrderError::OrderNotFound);
        given(paid(7))
            .when(OrderCommand::ConfirmReceipt { customer_id: id(2) })
            .then_expect_error(invalid(OrderStatus::Paid, "confirm receipt of"));
    }

    #[test]
    fn auto_complete_ends_a_delivered_order_only() {
        given(delivered(5))
            .when(OrderCommand::AutoComplete)
            .then_expect_events(vec![completed_by(CompletedBy::AutoConfirm)]);
        given(with(delivered(5), completed_by(CompletedBy::Customer)))
            .when(OrderCommand::AutoComplete)
            .then_expect_events(vec![]);
        given(shipped(5))
            .when(OrderCommand::AutoComplete)
            .then_expect_error(invalid(OrderStatus::Shipped, "complete"));
    }

    #[test]
    fn a_shipped_order_can_no_longer_be_cancelled_or_refunded_whole() {
        given(shipped(5))
            .when(OrderCommand::Cancel { reason: "x".into() })
            .then_expect_error(invalid(OrderStatus::Shipped, "cancel"));
        given(shipped(5))
            .when(OrderCommand::MarkRefunded {
                payment_id: p(7),
                reason: "x".into(),
            })
            .then_expect_error(invalid(OrderStatus::Shipped, "refund"));
    }

    #[test]
    fn statuses_serialize_in_snake_case() {
        assert_eq!(
            serde_json::to_value(OrderStatus::AwaitingPayment).unwrap(),
            "awaiting_payment"
        );
        assert_eq!(OrderStatus::AwaitingPayment.as_str(), "awaiting_payment");
        assert_eq!(OrderEvent::OrderConfirmed {}.event_type(), "OrderConfirmed");
        let json = serde_json::to_value(OrderEvent::OrderConfirmed {}).unwrap();
        assert_eq!(json, serde_json::json!({"OrderConfirmed": {}}));
    }

    fn breakdown(discount: i64, shipping: i64) -> OrderPricing {
        OrderPricing {
            quote_id: None,
            subtotal: eur(2900),
            line_discounts: vec![LineDiscount {
                sku: sku("MUG"),
                discount: eur(discount),
            }],
            discounts: vec![OrderDiscount {
                source: DiscountSource::Coupon,
                id: uuid::Uuid::from_u128(9),
                amount: eur(discount),
            }],
            shipping_fee: eur(shipping),
        }
    }

    fn place_priced(pricing: OrderPricing) -> OrderCommand {
        OrderCommand::Place {
            order_id: id(1),
            customer_id: id(2),
            lines: lines(),
            sale_facts: vec![],
            pricing: Some(pricing),
            delivery_address: None,
            from_cart: None,
        }
    }

    #[test]
    fn a_priced_order_totals_the_subtotal_less_its_discounts_plus_shipping() {
        given(vec![])
            .when(place_priced(breakdown(500, 300)))
            .then_expect_events(vec![OrderEvent::OrderPlaced {
                order_id: id(1),
                customer_id: id(2),
                lines: lines(),
                total: eur(2700),
                pricing: Some(Box::new(breakdown(500, 300))),
                delivery_address: None,
                from_cart: None,
            }]);
        assert_eq!(
            breakdown(500, 0).coupons(),
            vec![CouponId::from(uuid::Uuid::from_u128(9))]
        );
    }

    #[test]
    fn a_breakdown_that_does_not_add_up_with_the_lines_is_refused() {
        let mut wrong_subtotal = breakdown(500, 0);
        wrong_subtotal.subtotal = eur(2800);
        given(vec![])
            .when(place_priced(wrong_subtotal))
            .then_expect_error(OrderError::PricingMismatch);
        given(vec![])
            .when(place_priced(breakdown(3000, 0)))
            .then_expect_error(OrderError::PricingMismatch);
    }

    #[test]
    fn placing_again_with_another_breakdown_is_refused() {
        let placed = OrderEvent::OrderPlaced {
            order_id: id(1),
            customer_id: id(2),
            lines: lines(),
            total: eur(2400),
            pricing: Some(Box::new(breakdown(500, 0))),
            delivery_address: None,
            from_cart: None,
        };
        given(vec![placed.clone()])
            .when(place_priced(breakdown(500, 0)))
            .then_expect_events(vec![]);
        given(vec![placed])
            .when(place_priced(breakdown(400, 0)))
            .then_expect_error(OrderError::AlreadyPlaced);
    }

    fn units(s: &str, q: i64) -> ClaimedUnits {
        ClaimedUnits {
            sku: sku(s),
            quantity: qty(q),
        }
    }

    fn claim(n: u128, lines: Vec<ClaimedUnits>) -> OrderCommand {
        OrderCommand::ClaimAfterSaleUnits {
            aftersale_id: id(n),
            lines,
        }
    }

    fn claimed(n: u128, lines: Vec<ClaimedUnits>) -> OrderEvent {
        OrderEvent::AfterSaleUnitsClaimed {
            aftersale_id: id(n),
            lines,
        }
    }

    #[test]
    fn after_sales_requests_claim_only_the_units_others_left() {
        given(paid(7))
            .when(claim(40, vec![units("MUG", 1)]))
            .then_expect_events(vec![claimed(40, vec![units("MUG", 1)])]);
        let one_claimed = with(paid(7), claimed(40, vec![units("MUG", 1)]));
        // MUG was ordered twice: one unit is left.
        given(one_claimed.clone())
            .when(claim(41, vec![units("MUG", 2)]))
            .then_expect_error(OrderError::QuantityExceeded {
                sku: sku("MUG"),
                left: 1,
            });
        given(one_claimed.clone())
            .when(claim(41, vec![units("MUG", 1), units("PLATE", 1)]))
            .then_expect_events(vec![claimed(41, vec![units("MUG", 1), units("PLATE", 1)])]);
        // The same request claiming again changes nothing, whatever it names.
        given(one_claimed.clone())
            .when(claim(40, vec![units("MUG", 2)]))
            .then_expect_events(vec![]);
        given(one_claimed)
            .when(claim(42, vec![units("BOWL", 1)]))
            .then_expect_error(OrderError::NotInOrder { sku: sku("BOWL") });
    }

    #[test]
    fn a_released_claim_gives_its_units_back_once() {
        let released = vec![
            claimed(40, vec![units("MUG", 2)]),
            OrderEvent::AfterSaleUnitsReleased {
                aftersale_id: id(40),
            },
        ];
        let mut history = paid(7);
        history.extend(released);
        given(history.clone())
            .when(claim(41, vec![units("MUG", 2)]))
            .then_expect_events(vec![claimed(41, vec![units("MUG", 2)])]);
        given(history)
            .when(OrderCommand::ReleaseAfterSaleUnits {
                aftersale_id: id(40),
            })
            .then_expect_events(vec![]);
        given(with(paid(7), claimed(40, vec![units("MUG", 2)])))
            .when(OrderCommand::ReleaseAfterSaleUnits {
                aftersale_id: id(40),
            })
            .then_expect_events(vec![OrderEvent::AfterSaleUnitsReleased {
                aftersale_id: id(40),
            }]);
    }

    #[test]
    fn an_unpaid_order_has_no_units_to_claim() {
        given(confirmed())
            .when(claim(40, vec![units("MUG", 1)]))
            .then_expect_error(invalid(
                OrderStatus::AwaitingPayment,
                "claim after-sales units of",
            ));
    }
}
