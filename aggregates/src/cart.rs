//! A shopping cart: the SKUs a shopper means to buy and how many of each. One cart per
//! customer, and guest carts for shoppers not logged in, which a customer merges into their
//! own after logging in.
//!
//! Rules: at most [`MAX_LINES`] lines, at most [`MAX_LINE_QUANTITY`] units on a line;
//! setting a quantity of 0 removes the line. A cart keeps no prices: it is priced when it is
//! shown ([`price_lines`]), with the catalog's prices of the moment. Whether a SKU may be put
//! in a cart (it exists, it is on sale, its currency is the cart's) is decided by the caller
//! from the catalog's write side and passed in the command as [`SkuAdmission`]; quantities
//! above the stock are accepted (the cart shows what is available).
//!
//! Merging: the customer's cart takes the guest cart's lines, each added to its own quantity
//! and capped by what the caller says may be held (stock and purchase limit), and records
//! the guest cart as merged; merging the same guest cart again changes nothing. Its
//! `GuestCartMerged` event is what retires the guest cart: the write side keeps a table of
//! merged guest carts from those events (`ordo_store::carts`), and a retired guest cart
//! answers as gone.
//!
//! Ordering: an order placed from the cart takes its lines out once it is placed
//! ([`CartCommand::RemoveOrdered`], sent by the checkout process on `OrderPlaced`). Each
//! order's units leave the cart once: the cart records the orders it gave lines to, so the
//! command repeated after a crash or a redelivery changes nothing, even when the customer
//! put the same SKUs back in the meantime.
//!
//! Discounts: [`price_lines`] takes a [`DiscountPolicy`]: [`NoDiscounts`], or the pricing
//! engine's promotions ([`crate::pricing::PromotionsPolicy`]), which the cart routes use.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{CartId, Currency, DomainError, ErrorKind, Money, OrderId, Sku, UserId};

/// Most lines one cart holds.
pub const MAX_LINES: usize = 50;
/// Most units of one SKU one cart holds.
pub const MAX_LINE_QUANTITY: u32 = 100;

/// Namespace of the ids of customers' carts (UUID v5 of the user id).
const CUSTOMER_CART_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f72646f_6361_7274_8000_637573746f6d);

/// The id of a customer's own cart: one per customer, derived from the user id.
pub fn customer_cart_id(customer: UserId) -> CartId {
    CartId::from(uuid::Uuid::new_v5(
        &CUSTOMER_CART_NAMESPACE,
        customer.as_uuid().as_bytes(),
    ))
}

/// Whose cart it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "user_id")]
pub enum CartOwner {
    /// A customer's own cart.
    Customer(UserId),
    /// A guest cart, reached with its token.
    Guest,
}

/// What the catalog's write side says of a SKU about to be put in the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SkuAdmission {
    /// The catalog has no such SKU.
    Unknown,
    /// The SKU is delisted.
    NotOnSale,
    /// The SKU is priced in another currency than the cart's other lines.
    OtherCurrency,
    /// It may be put in the cart.
    Admitted,
}

/// One line a merge brings in: the guest's quantity and the most the cart may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeLine {
    /// The SKU.
    pub sku: Sku,
    /// Units in the guest cart.
    pub quantity: u32,
    /// Most units the customer's cart may hold of it (stock, purchase limit).
    pub cap: u32,
}

/// Commands accepted by a [`Cart`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CartCommand {
    /// Opens the cart (a no-op for an open cart of the same owner).
    Open {
        /// Whose it is.
        owner: CartOwner,
    },
    /// Sets the quantity of a SKU, opening the cart if needed; 0 removes the line.
    SetQuantity {
        /// Whose cart it is (used when it is opened by this command).
        owner: CartOwner,
        /// The SKU.
        sku: Sku,
        /// The new quantity, 0 to [`MAX_LINE_QUANTITY`].
        quantity: u32,
        /// Whether the catalog admits it (only read when the quantity is above 0).
        admission: SkuAdmission,
    },
    /// Merges a guest cart into this customer's cart.
    MergeGuest {
        /// The customer.
        owner: CartOwner,
        /// The guest cart's id.
        guest_cart_id: CartId,
        /// Its lines, with their caps.
        lines: Vec<MergeLine>,
    },
    /// Takes the units of an order placed from this cart out of it (a no-op for an order
    /// it already gave its lines to).
    RemoveOrdered {
        /// The customer.
        owner: CartOwner,
        /// The order placed.
        order_id: OrderId,
        /// What it ordered: the SKUs and units that leave the cart.
        lines: Vec<MergedLine>,
    },
}

/// Events of a [`Cart`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CartEvent {
    /// The cart was opened.
    CartOpened {
        /// Whose it is.
        owner: CartOwner,
    },
    /// A line's quantity was set (0: the line was removed).
    CartLineSet {
        /// The SKU.
        sku: Sku,
        /// Its new quantity.
        quantity: u32,
    },
    /// A guest cart was merged in; it is retired.
    GuestCartMerged {
        /// The guest cart's id.
        guest_cart_id: CartId,
        /// The lines whose quantity changed, with their new quantity.
        lines: Vec<MergedLine>,
    },
    /// An order placed from the cart took its units out.
    OrderedLinesRemoved {
        /// The order.
        order_id: OrderId,
        /// The lines it changed, with their new quantity (0: the line is gone).
        lines: Vec<MergedLine>,
    },
}

/// A SKU and a quantity: a line's quantity after a merge or an order, or the units an order
/// takes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedLine {
    /// The SKU.
    pub sku: Sku,
    /// Its quantity in the cart now.
    pub quantity: u32,
}

impl DomainEvent for CartEvent {
    fn event_type(&self) -> String {
        match self {
            CartEvent::CartOpened { .. } => "CartOpened",
            CartEvent::CartLineSet { .. } => "CartLineSet",
            CartEvent::GuestCartMerged { .. } => "GuestCartMerged",
            CartEvent::OrderedLinesRemoved { .. } => "OrderedLinesRemoved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`CartCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    /// The catalog has no such SKU.
    #[error("no product {sku} in the catalog")]
    UnknownSku {
        /// The SKU.
        sku: Sku,
    },
    /// The SKU is delisted.
    #[error("{sku} is not on sale")]
    NotOnSale {
        /// The SKU.
        sku: Sku,
    },
    /// The SKU's currency is not the cart's.
    #[error("{sku} is priced in another currency than the cart")]
    MixedCurrencies {
        /// The SKU.
        sku: Sku,
    },
    /// More units than a line holds.
    #[error("a cart line holds at most {MAX_LINE_QUANTITY} units")]
    QuantityTooLarge,
    /// More lines than a cart holds.
    #[error("a cart holds at most {MAX_LINES} lines")]
    TooManyLines,
    /// The command names another owner than the cart's, or merges into a guest cart.
    #[error("this cart belongs to someone else")]
    WrongOwner,
}

impl CartError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            CartError::UnknownSku { .. } => "unknown_sku",
            CartError::NotOnSale { .. } => "not_on_sale",
            CartError::MixedCurrencies { .. } => "mixed_currencies",
            CartError::QuantityTooLarge => "cart_quantity_too_large",
            CartError::TooManyLines => "cart_full",
            CartError::WrongOwner => "cart_not_found",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CartError::QuantityTooLarge => ErrorKind::Invalid,
            CartError::NotOnSale { .. }
            | CartError::MixedCurrencies { .. }
            | CartError::TooManyLines => ErrorKind::Refused,
            CartError::UnknownSku { .. } => ErrorKind::UnknownReference,
            CartError::WrongOwner => ErrorKind::NotFound,
        }
    }
}

impl DomainError for CartError {
    fn code(&self) -> &'static str {
        CartError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        CartError::kind(self)
    }
}

/// A cart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cart {
    owner: Option<CartOwner>,
    lines: BTreeMap<Sku, u32>,
    merged: Vec<CartId>,
    #[serde(default)]
    ordered: Vec<OrderId>,
}

impl Cart {
    /// Whose it is, once opened.
    pub fn owner(&self) -> Option<CartOwner> {
        self.owner
    }

    /// The lines, by SKU.
    pub fn lines(&self) -> &BTreeMap<Sku, u32> {
        &self.lines
    }

    /// Whether the guest cart `id` was merged into this one.
    pub fn has_merged(&self, id: &CartId) -> bool {
        self.merged.contains(id)
    }

    /// Whether the order `id` took its lines out of this cart.
    pub fn has_given_lines_to(&self, id: &OrderId) -> bool {
        self.ordered.contains(id)
    }

    /// The `CartOpened` to write first, or a refusal when another owner holds the cart.
    fn open(&self, owner: CartOwner) -> Result<Option<CartEvent>, CartError> {
        match self.owner {
            None => Ok(Some(CartEvent::CartOpened { owner })),
            Some(current) if current == owner => Ok(None),
            Some(_) => Err(CartError::WrongOwner),
        }
    }
}

impl Aggregate for Cart {
    const TYPE: &'static str = "cart";
    type Command = CartCommand;
    type Event = CartEvent;
    type Error = CartError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let mut events = Vec::new();
        match command {
            CartCommand::Open { owner } => events.extend(self.open(owner)?),
            CartCommand::SetQuantity {
                owner,
                sku,
                quantity,
                admission,
            } => {
                let opened = self.open(owner)?;
                if quantity > MAX_LINE_QUANTITY {
                    return Err(CartError::QuantityTooLarge);
                }
                let current = self.lines.get(&sku).copied().unwrap_or(0);
                if quantity > 0 {
                    match admission {
                        SkuAdmission::Unknown => return Err(CartError::UnknownSku { sku }),
                        SkuAdmission::NotOnSale => return Err(CartError::NotOnSale { sku }),
                        SkuAdmission::OtherCurrency => {
                            return Err(CartError::MixedCurrencies { sku })
                        }
                        SkuAdmission::Admitted => {}
                    }
                    if current == 0 && self.lines.len() >= MAX_LINES {
                        return Err(CartError::TooManyLines);
                    }
                }
                events.extend(opened);
                if quantity != current {
                    events.push(CartEvent::CartLineSet { sku, quantity });
                }
            }
            CartCommand::MergeGuest {
                owner,
                guest_cart_id,
                lines,
            } => {
                if owner == CartOwner::Guest {
                    return Err(CartError::WrongOwner);
                }
                let opened = self.open(owner)?;
                if self.has_merged(&guest_cart_id) {
                    return Ok(());
                }
                events.extend(opened);
                let mut merged = Vec::new();
                let mut count = self.lines.len();
                for line in lines {
                    let current = self.lines.get(&line.sku).copied().unwrap_or(0);
                    let cap = line.cap.min(MAX_LINE_QUANTITY);
                    let wanted = current.saturating_add(line.quantity).min(cap);
                    if wanted <= current {
                        continue;
                    }
                    if current == 0 {
                        if count >= MAX_LINES {
                            continue;
                        }
                        count += 1;
                    }
                    merged.push(MergedLine {
                        sku: line.sku,
                        quantity: wanted,
                    });
                }
                events.push(CartEvent::GuestCartMerged {
                    guest_cart_id,
                    lines: merged,
                });
            }
            CartCommand::RemoveOrdered {
                owner,
                order_id,
                lines,
            } => {
                if owner == CartOwner::Guest {
                    return Err(CartError::WrongOwner);
                }
                let opened = self.open(owner)?;
                if self.has_given_lines_to(&order_id) {
                    return Ok(());
                }
                events.extend(opened);
                // The ordered units leave; units put in beyond them stay.
                let changed = lines
                    .into_iter()
                    .filter_map(|line| {
                        let current = self.lines.get(&line.sku).copied()?;
                        Some(MergedLine {
                            sku: line.sku,
                            quantity: current.saturating_sub(line.quantity),
                        })
                    })
                    .collect();
                events.push(CartEvent::OrderedLinesRemoved {
                    order_id,
                    lines: changed,
                });
            }
        }
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CartEvent::CartOpened { owner } => self.owner = Some(owner),
            CartEvent::CartLineSet { sku, quantity } => {
                if quantity == 0 {
                    self.lines.remove(&sku);
                } else {
                    self.lines.insert(sku, quantity);
                }
            }
            CartEvent::GuestCartMerged {
                guest_cart_id,
                lines,
            } => {
                for line in lines {
                    self.lines.insert(line.sku, line.quantity);
                }
                self.merged.push(guest_cart_id);
            }
            CartEvent::OrderedLinesRemoved { order_id, lines } => {
                for line in lines {
                    if line.quantity == 0 {
                        self.lines.remove(&line.sku);
                    } else {
                        self.lines.insert(line.sku, line.quantity);
                    }
                }
                self.ordered.push(order_id);
            }
        }
    }
}

/// A cart line with its price of the moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    /// The SKU.
    pub sku: Sku,
    /// Units.
    pub quantity: u32,
    /// The catalog's unit price now.
    pub unit_price: Money,
    /// Quantity times unit price.
    pub line_total: Money,
}

/// A reduction of a cart's price, as a pricing engine would give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discount {
    /// What it is, for the shopper.
    pub label: String,
    /// How much it takes off.
    pub amount: Money,
}

/// Where discounts come from: given the priced lines, the discounts that apply.
pub trait DiscountPolicy {
    /// The discounts of these lines, in the lines' currency.
    fn discounts(&self, lines: &[PricedLine]) -> Vec<Discount>;
}

/// No discount at all (until a pricing engine is plugged in).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDiscounts;

impl DiscountPolicy for NoDiscounts {
    fn discounts(&self, _lines: &[PricedLine]) -> Vec<Discount> {
        Vec::new()
    }
}

/// A priced cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedCart {
    /// The lines.
    pub lines: Vec<PricedLine>,
    /// Sum of the line totals.
    pub subtotal: Money,
    /// What the discount policy takes off.
    pub discounts: Vec<Discount>,
    /// Subtotal less discounts, never below zero.
    pub total: Money,
}

/// Prices lines given as (SKU, quantity, unit price), in `currency` (the currency of an
/// empty cart). Lines in another currency are left out: the cart admits one currency.
pub fn price_lines(
    lines: Vec<(Sku, u32, Money)>,
    currency: Currency,
    policy: &dyn DiscountPolicy,
) -> PricedCart {
    let currency = lines
        .first()
        .map(|(_, _, price)| price.currency().clone())
        .unwrap_or(currency);
    let mut subtotal = Money::zero(currency.clone());
    let mut priced = Vec::new();
    for (sku, quantity, unit_price) in lines {
        if unit_price.currency() != &currency {
            continue;
        }
        let Some(line_total) = unit_price.checked_mul(quantity) else {
            continue;
        };
        if let Ok(sum) = subtotal.checked_add(&line_total) {
            subtotal = sum;
        }
        priced.push(PricedLine {
            sku,
            quantity,
            unit_price,
            line_total,
        });
    }
    let discounts = policy.discounts(&priced);
    let off = discounts
        .iter()
        .filter(|d| d.amount.currency() == &currency)
        .map(|d| d.amount.amount_minor())
        .fold(0i64, i64::saturating_add);
    let total = Money::new((subtotal.amount_minor() - off).max(0), currency)
        .unwrap_or_else(|_| subtotal.clone());
    PricedCart {
        lines: priced,
        subtotal,
        discounts,
        total,
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<CartEvent>) -> AggregateTestExecutor<Cart> {
        TestFramework::<Cart>::with(()).given(events)
    }

    fn alice() -> CartOwner {
        CartOwner::Customer(id(1))
    }

    fn opened() -> CartEvent {
        CartEvent::CartOpened { owner: alice() }
    }

    fn set(code: &str, quantity: u32, admission: SkuAdmission) -> CartCommand {
        CartCommand::SetQuantity {
            owner: alice(),
            sku: sku(code),
            quantity,
            admission,
        }
    }

    fn line_set(code: &str, quantity: u32) -> CartEvent {
        CartEvent::CartLineSet {
            sku: sku(code),
            quantity,
        }
    }

    #[test]
    fn the_first_line_opens_the_cart() {
        given(vec![])
            .when(set("MUG", 2, SkuAdmission::Admitted))
            .then_expect_events(vec![opened(), line_set("MUG", 2)]);
    }

    #[test]
    fn a_quantity_of_zero_removes_the_line_and_the_same_quantity_is_a_no_op() {
        given(vec![opened(), line_set("MUG", 2)])
            .when(set("MUG", 0, SkuAdmission::NotOnSale))
            .then_expect_events(vec![line_set("MUG", 0)]);
        given(vec![opened(), line_set("MUG", 2)])
            .when(set("MUG", 2, SkuAdmission::Admitted))
            .then_expect_events(vec![]);
        let mut cart = Cart::default();
        cart.apply(opened());
        cart.apply(line_set("MUG", 2));
        cart.apply(line_set("MUG", 0));
        assert!(cart.lines().is_empty());
    }

    #[test]
    fn unknown_delisted_or_foreign_currency_skus_are_refused() {
        let err = given(vec![])
            .when(set("NOPE", 1, SkuAdmission::Unknown))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.code(), "unknown_sku");
        let err = given(vec![])
            .when(set("OLD", 1, SkuAdmission::NotOnSale))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.code(), "not_on_sale");
        assert_eq!(err.kind(), ErrorKind::Refused);
        given(vec![])
            .when(set("USD-MUG", 1, SkuAdmission::OtherCurrency))
            .then_expect_error(CartError::MixedCurrencies {
                sku: sku("USD-MUG"),
            });
    }

    #[test]
    fn lines_and_quantities_are_bounded() {
        given(vec![])
            .when(set("MUG", MAX_LINE_QUANTITY + 1, SkuAdmission::Admitted))
            .then_expect_error(CartError::QuantityTooLarge);
        let mut full = vec![opened()];
        full.extend((0..MAX_LINES).map(|n| line_set(&format!("SKU-{n}"), 1)));
        given(full.clone())
            .when(set("ONE-MORE", 1, SkuAdmission::Admitted))
            .then_expect_error(CartError::TooManyLines);
        // A line already there may still change.
        given(full)
            .when(set("SKU-3", 5, SkuAdmission::Admitted))
            .then_expect_events(vec![line_set("SKU-3", 5)]);
    }

    #[test]
    fn another_owner_is_told_the_cart_does_not_exist() {
        let err = given(vec![opened()])
            .when(CartCommand::SetQuantity {
                owner: CartOwner::Customer(id(2)),
                sku: sku("MUG"),
                quantity: 1,
                admission: SkuAdmission::Admitted,
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn a_merge_adds_the_guest_quantities_capped_then_a_second_changes_nothing() {
        let merge = CartCommand::MergeGuest {
            owner: alice(),
            guest_cart_id: id(9),
            lines: vec![
                MergeLine {
                    sku: sku("MUG"),
                    quantity: 3,
                    cap: 4,
                },
                MergeLine {
                    sku: sku("TEE"),
                    quantity: 2,
                    cap: 10,
                },
                MergeLine {
                    sku: sku("GONE"),
                    quantity: 2,
                    cap: 0,
                },
            ],
        };
        given(vec![opened(), line_set("MUG", 2)])
            .when(merge.clone())
            .then_expect_events(vec![CartEvent::GuestCartMerged {
                guest_cart_id: id(9),
                lines: vec![
                    MergedLine {
                        sku: sku("MUG"),
                        quantity: 4,
                    },
                    MergedLine {
                        sku: sku("TEE"),
                        quantity: 2,
                    },
                ],
            }]);
        given(vec![
            opened(),
            CartEvent::GuestCartMerged {
                guest_cart_id: id(9),
                lines: vec![],
            },
        ])
        .when(merge)
        .then_expect_events(vec![]);
    }

    fn remove_ordered(order: u128, lines: &[(&str, u32)]) -> CartCommand {
        CartCommand::RemoveOrdered {
            owner: alice(),
            order_id: id(order),
            lines: lines
                .iter()
                .map(|(code, quantity)| MergedLine {
                    sku: sku(code),
                    quantity: *quantity,
                })
                .collect(),
        }
    }

    #[test]
    fn an_order_takes_its_units_out_and_leaves_units_put_in_beyond_them() {
        given(vec![opened(), line_set("MUG", 2), line_set("TEE", 3)])
            .when(remove_ordered(7, &[("MUG", 2), ("TEE", 1), ("CAP", 1)]))
            .then_expect_events(vec![CartEvent::OrderedLinesRemoved {
                order_id: id(7),
                lines: vec![
                    MergedLine {
                        sku: sku("MUG"),
                        quantity: 0,
                    },
                    MergedLine {
                        sku: sku("TEE"),
                        quantity: 2,
                    },
                ],
            }]);
    }

    #[test]
    fn an_order_repeated_after_its_lines_were_put_back_changes_nothing() {
        given(vec![
            opened(),
            line_set("MUG", 2),
            CartEvent::OrderedLinesRemoved {
                order_id: id(7),
                lines: vec![MergedLine {
                    sku: sku("MUG"),
                    quantity: 0,
                }],
            },
            line_set("MUG", 2),
        ])
        .when(remove_ordered(7, &[("MUG", 2)]))
        .then_expect_events(vec![]);
    }

    #[test]
    fn an_order_removed_lines_are_gone_from_the_state() {
        let mut cart = Cart::default();
        for event in [
            opened(),
            line_set("MUG", 2),
            line_set("TEE", 1),
            CartEvent::OrderedLinesRemoved {
                order_id: id(7),
                lines: vec![
                    MergedLine {
                        sku: sku("MUG"),
                        quantity: 0,
                    },
                    MergedLine {
                        sku: sku("TEE"),
                        quantity: 1,
                    },
                ],
            },
        ] {
            cart.apply(event);
        }
        assert!(!cart.lines().contains_key(&sku("MUG")));
        assert_eq!(cart.lines().get(&sku("TEE")), Some(&1));
        assert!(cart.has_given_lines_to(&id(7)));
    }

    #[test]
    fn a_guest_cart_takes_no_order() {
        let err = TestFramework::<Cart>::with(())
            .given(vec![CartEvent::CartOpened {
                owner: CartOwner::Guest,
            }])
            .when(CartCommand::RemoveOrdered {
                owner: CartOwner::Guest,
                order_id: id(7),
                lines: vec![],
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, CartError::WrongOwner);
    }

    #[test]
    fn a_customer_cart_id_is_the_same_for_the_same_customer() {
        assert_eq!(customer_cart_id(id(1)), customer_cart_id(id(1)));
        assert_ne!(customer_cart_id(id(1)), customer_cart_id(id(2)));
    }

    #[test]
    fn a_guest_cart_cannot_take_a_merge() {
        given(vec![])
            .when(CartCommand::MergeGuest {
                owner: CartOwner::Guest,
                guest_cart_id: id(9),
                lines: vec![],
            })
            .then_expect_error(CartError::WrongOwner);
    }

    #[test]
    fn pricing_sums_lines_and_leaves_the_discount_seam_empty() {
        let eur = Currency::parse("EUR").unwrap();
        let priced = price_lines(
            vec![
                (sku("MUG"), 2, eur_money(1200)),
                (sku("TEE"), 1, eur_money(2000)),
            ],
            eur.clone(),
            &NoDiscounts,
        );
        assert_eq!(priced.subtotal, eur_money(4400));
        assert_eq!(priced.total, eur_money(4400));
        assert_eq!(priced.lines[0].line_total, eur_money(2400));
        assert!(priced.discounts.is_empty());

        struct TenOff;
        impl DiscountPolicy for TenOff {
            fn discounts(&self, lines: &[PricedLine]) -> Vec<Discount> {
                vec![Discount {
                    label: "ten off".into(),
                    amount: Money::new(1000, lines[0].unit_price.currency().clone()).unwrap(),
                }]
            }
        }
        let priced = price_lines(vec![(sku("MUG"), 1, eur_money(600))], eur, &TenOff);
        assert_eq!(priced.total, eur_money(0), "never below zero");
    }

    fn eur_money(minor: i64) -> Money {
        eur(minor)
    }
}
