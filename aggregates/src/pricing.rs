//! The pricing engine: what a cart costs once promotions and coupons are applied. Pure: the
//! caller brings the lines, the promotions, the chosen coupons (as their batches hold them)
//! and the clock; [`quote`] answers the quote, with every discount, every line's share of
//! them and why any coupon or promotion was not applied.
//!
//! # Stacking
//! 1. Only promotions active at `now` (window, not ended) in the cart's currency count.
//!    They are taken in priority order: the higher `priority` first, ties by id.
//! 2. Exclusivity: a promotion *applies on its own* when a direct cut names a SKU of the
//!    cart, or a threshold is met by the cart's subtotal. If an exclusive promotion applies
//!    on its own, the first such one in priority order is the only promotion applied, and
//!    every other one that would have applied is refused as `excluded`. Otherwise every
//!    non-exclusive promotion takes part.
//! 3. Direct cuts first: each unit of a listed SKU costs `amount_off` less, never below zero;
//!    cuts on one SKU stack in priority order.
//! 4. Then threshold promotions in priority order. Each is judged on the subtotal after
//!    direct cuts (not after other thresholds), and takes its amount off what remains
//!    after the promotions before it.
//! 5. Then coupons, in the order chosen. Each must be known, the customer's, claimed (or
//!    locked by the order being priced), valid at `now`, in the cart's currency, the only
//!    one of its batch, and its `min_spend` met by what remains after promotions. Each takes
//!    its amount off what remains after the discounts before it.
//! 6. No discount takes more than what remains: a total is never below zero.
//!
//! # Rounding
//! Everything is in minor units (integers). A percentage off is rounded *down* to the minor
//! unit: 10 % of 9.99 is 0.99, so the discount never exceeds the stated percentage (the
//! rounding cent stays with the merchant). Order-level discounts (thresholds, coupons) are
//! shown per line by proportional allocation to what remains of each line, each share
//! rounded down and the cents left over handed one each to the lines with the largest
//! remainders (the earlier line on a tie), so the lines' discounts add up exactly to the
//! discounts and no line goes below zero.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cart::{Discount as CartDiscount, DiscountPolicy, PricedLine};
use crate::common::{CouponBatchId, CouponId, Currency, Money, OrderId, Quantity, Sku, UserId};
use crate::coupon::{CouponDiscount, CouponOffer, CouponStatus};
use crate::promotion::{PromotionRule, PromotionTerms};

/// One line of a cart or an order, at its catalog price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceLine {
    /// The item.
    pub sku: Sku,
    /// Units.
    pub quantity: Quantity,
    /// Price of one unit.
    pub unit_price: Money,
}

/// A coupon the shopper chose, with what its batch holds about it (`None`: no such coupon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenCoupon {
    /// The coupon named.
    pub coupon_id: CouponId,
    /// Its batch's view of it, when it exists.
    pub offer: Option<CouponOffer>,
}

/// What to price.
#[derive(Debug, Clone, Copy)]
pub struct QuoteRequest<'a> {
    /// Who buys: coupons must be theirs.
    pub customer: UserId,
    /// The order being priced, if any: a coupon it already holds still counts as usable.
    pub order_id: Option<OrderId>,
    /// The lines (at least one, all in one currency).
    pub lines: &'a [PriceLine],
    /// The promotions to consider (inactive ones and other currencies are skipped).
    pub promotions: &'a [PromotionTerms],
    /// The coupons chosen, in the order to apply them.
    pub coupons: &'a [ChosenCoupon],
    /// The instant to price at.
    pub now: DateTime<Utc>,
}

/// Where a discount comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountSource {
    /// A promotion.
    Promotion,
    /// A coupon.
    Coupon,
}

/// One discount applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discount {
    /// Promotion or coupon.
    pub source: DiscountSource,
    /// The promotion's or the coupon's id.
    pub id: Uuid,
    /// What it took off.
    pub amount: Money,
}

/// Why a coupon or a promotion was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// No such coupon.
    UnknownCoupon,
    /// The coupon belongs to another customer.
    NotYours,
    /// The coupon is held by another order, or used.
    NotClaimed,
    /// The coupon cannot be used yet.
    NotYetValid,
    /// The coupon's validity is over.
    Expired,
    /// The coupon is in another currency than the cart.
    OtherCurrency,
    /// What remains after promotions is below the coupon's minimum spend.
    MinSpendNotMet,
    /// Another coupon of the same batch is already applied (or the same coupon twice).
    OnePerBatch,
    /// An exclusive promotion applied instead.
    Excluded,
}

/// A coupon or promotion not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Promotion or coupon.
    pub source: DiscountSource,
    /// The promotion's or the coupon's id.
    pub id: Uuid,
    /// Why.
    pub reason: RefusalReason,
}

/// One line of a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotedLine {
    /// The item.
    pub sku: Sku,
    /// Units.
    pub quantity: Quantity,
    /// Price of one unit before discounts.
    pub unit_price: Money,
    /// `unit_price` times `quantity`.
    pub subtotal: Money,
    /// The line's share of every discount.
    pub discount: Money,
    /// `subtotal` less `discount`.
    pub line_total: Money,
}

/// What the cart costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// The cart's currency.
    pub currency: Currency,
    /// The lines with their discounts.
    pub lines: Vec<QuotedLine>,
    /// The lines' subtotals added up.
    pub subtotal: Money,
    /// Every discount applied, in the order applied.
    pub discounts: Vec<Discount>,
    /// What the shopper pays: `subtotal` less the discounts, never below zero.
    pub total: Money,
    /// What was not applied, and why.
    pub refusals: Vec<Refusal>,
}

impl Quote {
    /// The coupons applied, in order.
    pub fn applied_coupons(&self) -> Vec<CouponId> {
        self.discounts
            .iter()
            .filter(|d| d.source == DiscountSource::Coupon)
            .map(|d| CouponId::from(d.id))
            .collect()
    }
}

/// Why a cart could not be priced at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// No line.
    #[error("nothing to price")]
    NoLines,
    /// Lines in more than one currency.
    #[error("every line must be in one currency")]
    MixedCurrencies,
    /// An amount too large to compute.
    #[error("amount overflow")]
    Overflow,
}

/// Prices a cart: see the module documentation for the rules.
pub fn quote(request: QuoteRequest<'_>) -> Result<Quote, PricingError> {
    let first = request.lines.first().ok_or(PricingError::NoLines)?;
    let currency = first.unit_price.currency().clone();
    if request
        .lines
        .iter()
        .any(|l| l.unit_price.currency() != &currency)
    {
        return Err(PricingError::MixedCurrencies);
    }
    let quantities: Vec<i64> = request
        .lines
        .iter()
        .map(|l| i64::from(l.quantity.get()))
        .collect();
    let subtotals: Vec<i64> = request
        .lines
        .iter()
        .zip(&quantities)
        .map(|(l, q)| l.unit_price.amount_minor().checked_mul(*q))
        .collect::<Option<_>>()
        .ok_or(PricingError::Overflow)?;
    let subtotal = checked_sum(&subtotals)?;

    let mut refusals = Vec::new();
    let mut discounts = Vec::new();
    let selected = select_promotions(&request, &currency, subtotal, &mut refusals);

    // Direct cuts, on unit prices.
    let mut units: Vec<i64> = request
        .lines
        .iter()
        .map(|l| l.unit_price.amount_minor())
        .collect();
    for promotion in &selected {
        let PromotionRule::DirectPriceCut { skus, amount_off } = &promotion.rule else {
            continue;
        };
        let mut taken = 0i64;
        for (i, line) in request.lines.iter().enumerate() {
            if skus.contains(&line.sku) {
                let cut = amount_off.amount_minor().min(units[i]);
                units[i] -= cut;
                taken += cut * quantities[i];
            }
        }
        discounts.push(discount(
            DiscountSource::Promotion,
            *promotion.promotion_id.as_uuid(),
            taken,
            &currency,
        ));
    }
    let mut remaining: Vec<i64> = units.iter().zip(&quantities).map(|(u, q)| u * q).collect();
    let after_cuts = checked_sum(&remaining)?;

    // Thresholds, judged on the subtotal after direct cuts.
    for promotion in &selected {
        let (threshold, off) = match &promotion.rule {
            PromotionRule::ThresholdAmountOff {
                threshold,
                amount_off,
            } => (threshold, Off::Amount(amount_off.amount_minor())),
            PromotionRule::ThresholdPercentOff {
                threshold,
                percent_off,
            } => (threshold, Off::Percent(percent_off.get())),
            PromotionRule::DirectPriceCut { .. } => continue,
        };
        if after_cuts < threshold.amount_minor() {
            continue;
        }
        let taken = take(&mut remaining, off);
        discounts.push(discount(
            DiscountSource::Promotion,
            *promotion.promotion_id.as_uuid(),
            taken,
            &currency,
        ));
    }

    // Coupons, their minimum spend judged on what remains after promotions.
    let after_promotions: i64 = remaining.iter().sum();
    let mut batches_used: BTreeSet<CouponBatchId> = BTreeSet::new();
    let mut coupons_seen: BTreeSet<CouponId> = BTreeSet::new();
    for chosen in request.coupons {
        let refuse = |reason| Refusal {
            source: DiscountSource::Coupon,
            id: *chosen.coupon_id.as_uuid(),
            reason,
        };
        if !coupons_seen.insert(chosen.coupon_id) {
            refusals.push(refuse(RefusalReason::OnePerBatch));
            continue;
        }
        let Some(offer) = &chosen.offer else {
            refusals.push(refuse(RefusalReason::UnknownCoupon));
            continue;
        };
        if let Some(reason) = coupon_refusal(&request, &currency, after_promotions, offer) {
            refusals.push(refuse(reason));
            continue;
        }
        if !batches_used.insert(offer.terms.batch_id) {
            refusals.push(refuse(RefusalReason::OnePerBatch));
            continue;
        }
        let off = match &offer.terms.discount {
            CouponDiscount::AmountOff { amount_off } => Off::Amount(amount_off.amount_minor()),
            CouponDiscount::PercentOff { percent_off } => Off::Percent(percent_off.get()),
        };
        let taken = take(&mut remaining, off);
        discounts.push(discount(
            DiscountSource::Coupon,
            *chosen.coupon_id.as_uuid(),
            taken,
            &currency,
        ));
    }

    let money = |minor: i64| Money::new(minor, currency.clone()).expect("never negative");
    let lines = request
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| QuotedLine {
            sku: line.sku.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price.clone(),
            subtotal: money(subtotals[i]),
            discount: money(subtotals[i] - remaining[i]),
            line_total: money(remaining[i]),
        })
        .collect();
    Ok(Quote {
        lines,
        subtotal: money(subtotal),
        discounts,
        total: money(remaining.iter().sum()),
        refusals,
        currency,
    })
}

/// The pricing engine behind the cart's discount seam ([`crate::cart::DiscountPolicy`]):
/// the promotions active at `now`, stacked by the rules above; a cart holds no coupon, so
/// none is applied. Each discount is labelled with its promotion's name.
#[derive(Debug, Clone, Copy)]
pub struct PromotionsPolicy<'a> {
    /// The promotions to consider.
    pub promotions: &'a [PromotionTerms],
    /// The instant to price at.
    pub now: DateTime<Utc>,
}

impl DiscountPolicy for PromotionsPolicy<'_> {
    fn discounts(&self, lines: &[PricedLine]) -> Vec<CartDiscount> {
        let lines: Option<Vec<PriceLine>> = lines
            .iter()
            .map(|line| {
                Quantity::parse(i64::from(line.quantity))
                    .ok()
                    .map(|quantity| PriceLine {
                        sku: line.sku.clone(),
                        quantity,
                        unit_price: line.unit_price.clone(),
                    })
            })
            .collect();
        let Some(lines) = lines else {
            return Vec::new();
        };
        let Ok(quote) = quote(QuoteRequest {
            customer: UserId::from(Uuid::nil()),
            order_id: None,
            lines: &lines,
            promotions: self.promotions,
            coupons: &[],
            now: self.now,
        }) else {
            return Vec::new();
        };
        quote
            .discounts
            .into_iter()
            .filter(|d| !d.amount.is_zero())
            .filter_map(|d| {
                let name = self
                    .promotions
                    .iter()
                    .find(|p| p.promotion_id.as_uuid() == &d.id)?
                    .name
                    .to_string();
                Some(CartDiscount {
                    label: name,
                    amount: d.amount,
                })
            })
            .collect()
    }
}

/// The promotions that take part, in priority order, after exclusivity.
fn select_promotions<'a>(
    request: &QuoteRequest<'a>,
    currency: &Currency,
    subtotal: i64,
    refusals: &mut Vec<Refusal>,
) -> Vec<&'a PromotionTerms> {
    let mut active: Vec<&PromotionTerms> = request
        .promotions
        .iter()
        .filter(|p| p.is_active(request.now) && &p.currency == currency)
        .collect();
    active.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.promotion_id.cmp(&b.promotion_id))
    });
    let applies_alone = |p: &PromotionTerms| match &p.rule {
        PromotionRule::DirectPriceCut { skus, .. } => {
            request.lines.iter().any(|l| skus.contains(&l.sku))
        }
        PromotionRule::ThresholdAmountOff { threshold, .. }
        | PromotionRule::ThresholdPercentOff { threshold, .. } => {
            subtotal >= threshold.amount_minor()
        }
    };
    let winner = active
        .iter()
        .copied()
        .find(|p| p.exclusive && applies_alone(p));
    match winner {
        Some(winner) => {
            for other in active
                .iter()
                .filter(|p| p.promotion_id != winner.promotion_id)
            {
                if applies_alone(other) {
                    refusals.push(Refusal {
                        source: DiscountSource::Promotion,
                        id: *other.promotion_id.as_uuid(),
                        reason: RefusalReason::Excluded,
                    });
                }
            }
            vec![winner]
        }
        None => active.into_iter().filter(|p| !p.exclusive).collect(),
    }
}

/// Why a known coupon cannot be applied, if it cannot.
fn coupon_refusal(
    request: &QuoteRequest<'_>,
    currency: &Currency,
    after_promotions: i64,
    offer: &CouponOffer,
) -> Option<RefusalReason> {
    let terms = &offer.terms;
    if offer.owner != request.customer {
        return Some(RefusalReason::NotYours);
    }
    let usable = match offer.status {
        CouponStatus::Claimed => true,
        CouponStatus::Locked { order_id } => Some(order_id) == request.order_id,
        CouponStatus::Redeemed { .. } => false,
    };
    if !usable {
        return Some(RefusalReason::NotClaimed);
    }
    if request.now < terms.valid_from {
        return Some(RefusalReason::NotYetValid);
    }
    if request.now >= terms.valid_until {
        return Some(RefusalReason::Expired);
    }
    if terms.currency() != currency {
        return Some(RefusalReason::OtherCurrency);
    }
    if after_promotions < terms.min_spend.amount_minor() {
        return Some(RefusalReason::MinSpendNotMet);
    }
    None
}

/// An order-level amount to take off.
#[derive(Debug, Clone, Copy)]
enum Off {
    Amount(i64),
    Percent(u8),
}

/// Takes `off` from what remains of the lines, shared among them (see Rounding); answers
/// the amount taken.
fn take(remaining: &mut [i64], off: Off) -> i64 {
    let total: i64 = remaining.iter().sum();
    let amount = match off {
        Off::Amount(amount) => amount.min(total),
        // Rounded down: the discount never exceeds the percentage.
        Off::Percent(percent) => (i128::from(total) * i128::from(percent) / 100) as i64,
    };
    for (i, share) in allocate(amount, remaining).into_iter().enumerate() {
        remaining[i] -= share;
    }
    amount
}

/// Shares `amount` (at most the weights' sum) in proportion to `weights`: shares rounded
/// down, then one unit each to the largest remainders, the earlier first on a tie.
pub fn allocate(amount: i64, weights: &[i64]) -> Vec<i64> {
    let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if total == 0 || amount == 0 {
        return vec![0; weights.len()];
    }
    let amount = i128::from(amount);
    let mut shares: Vec<i64> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = amount * i128::from(*w);
        shares.push((exact / total) as i64);
        remainders.push((exact % total, i));
    }
    let mut left = amount - shares.iter().map(|s| i128::from(*s)).sum::<i128>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

fn checked_sum(amounts: &[i64]) -> Result<i64, PricingError> {
    amounts
        .iter()
        .try_fold(0i64, |sum, a| sum.checked_add(*a))
        .ok_or(PricingError::Overflow)
}

fn discount(source: DiscountSource, id: Uuid, minor: i64, currency: &Currency) -> Discount {
    Discount {
        source,
        id,
        amount: Money::new(minor, currency.clone()).expect("never negative"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::fixtures::*;
    use crate::common::{CampaignName, Percent};
    use crate::coupon::BatchTerms;

    fn now() -> DateTime<Utc> {
        "2026-06-10T12:00:00Z".parse().unwrap()
    }

    fn line(s: &str, quantity: i64, unit: i64) -> PriceLine {
        PriceLine {
            sku: sku(s),
            quantity: qty(quantity),
            unit_price: eur(unit),
        }
    }

    fn promotion(n: u128, priority: u16, exclusive: bool, rule: PromotionRule) -> PromotionTerms {
        PromotionTerms {
            promotion_id: id(n),
            name: CampaignName::parse("Promo").unwrap(),
            currency: eur(0).currency().clone(),
            rule,
            starts_at: "2026-06-01T00:00:00Z".parse().unwrap(),
            ends_at: "2026-07-01T00:00:00Z".parse().unwrap(),
            priority,
            exclusive,
            ended_at: None,
        }
    }

    fn cut(skus: &[&str], off: i64) -> PromotionRule {
        PromotionRule::DirectPriceCut {
            skus: skus.iter().map(|s| sku(s)).collect(),
            amount_off: eur(off),
        }
    }

    fn amount_off(threshold: i64, off: i64) -> PromotionRule {
        PromotionRule::ThresholdAmountOff {
            threshold: eur(threshold),
            amount_off: eur(off),
        }
    }

    fn percent_off(threshold: i64, percent: i64) -> PromotionRule {
        PromotionRule::ThresholdPercentOff {
            threshold: eur(threshold),
            percent_off: Percent::parse(percent).unwrap(),
        }
    }

    const CUSTOMER: u128 = 500;

    fn coupon(n: u128, batch: u128, discount: CouponDiscount, min_spend: i64) -> ChosenCoupon {
        ChosenCoupon {
            coupon_id: id(n),
            offer: Some(CouponOffer {
                coupon_id: id(n),
                owner: id(CUSTOMER),
                status: CouponStatus::Claimed,
                terms: BatchTerms {
                    batch_id: id(batch),
                    name: CampaignName::parse("Batch").unwrap(),
                    discount,
                    min_spend: eur(min_spend),
                    quota: 10,
                    per_user_limit: 1,
                    valid_from: "2026-06-01T00:00:00Z".parse().unwrap(),
                    valid_until: "2026-07-01T00:00:00Z".parse().unwrap(),
                },
            }),
        }
    }

    fn coupon_off(n: u128, off: i64, min_spend: i64) -> ChosenCoupon {
        coupon(
            n,
            1000 + n,
            CouponDiscount::AmountOff {
                amount_off: eur(off),
            },
            min_spend,
        )
    }

    fn price(
        lines: &[PriceLine],
        promotions: &[PromotionTerms],
        coupons: &[ChosenCoupon],
    ) -> Quote {
        quote(QuoteRequest {
            customer: id(CUSTOMER),
            order_id: Some(id(77)),
            lines,
            promotions,
            coupons,
            now: now(),
        })
        .unwrap()
    }

    fn amounts(quote: &Quote) -> Vec<(DiscountSource, u128, i64)> {
        quote
            .discounts
            .iter()
            .map(|d| (d.source, d.id.as_u128(), d.amount.amount_minor()))
            .collect()
    }

    fn reasons(quote: &Quote) -> Vec<(u128, RefusalReason)> {
        quote
            .refusals
            .iter()
            .map(|r| (r.id.as_u128(), r.reason))
            .collect()
    }

    /// The invariants of every quote: lines add up, discounts add up, nothing negative.
    fn check(quote: &Quote) {
        let line_totals: i64 = quote
            .lines
            .iter()
            .map(|l| l.line_total.amount_minor())
            .sum();
        let line_discounts: i64 = quote.lines.iter().map(|l| l.discount.amount_minor()).sum();
        let discounts: i64 = quote
            .discounts
            .iter()
            .map(|d| d.amount.amount_minor())
            .sum();
        assert_eq!(line_totals, quote.total.amount_minor());
        assert_eq!(line_discounts, discounts);
        assert_eq!(
            quote.subtotal.amount_minor() - discounts,
            quote.total.amount_minor()
        );
        for l in &quote.lines {
            assert_eq!(
                l.subtotal.amount_minor() - l.discount.amount_minor(),
                l.line_total.amount_minor()
            );
        }
    }

    #[test]
    fn without_promotions_or_coupons_the_total_is_the_subtotal() {
        let q = price(&[line("A", 2, 1250), line("B", 1, 799)], &[], &[]);
        check(&q);
        assert_eq!(q.subtotal, eur(3299));
        assert_eq!(q.total, eur(3299));
        assert_eq!(q.lines[0].subtotal, eur(2500));
        assert!(q.discounts.is_empty() && q.refusals.is_empty());
        assert_eq!(q.currency.as_str(), "EUR");
    }

    #[test]
    fn a_direct_cut_takes_its_amount_off_each_unit_of_the_listed_skus() {
        let q = price(
            &[line("A", 3, 1000), line("B", 1, 500)],
            &[promotion(1, 0, false, cut(&["A"], 150))],
            &[],
        );
        check(&q);
        assert_eq!(amounts(&q), vec![(DiscountSource::Promotion, 1, 450)]);
        assert_eq!(q.lines[0].discount, eur(450));
        assert_eq!(q.lines[0].line_total, eur(2550));
        assert_eq!(q.lines[1].discount, eur(0));
        assert_eq!(q.total, eur(3050));
    }

    #[test]
    fn direct_cuts_stack_in_priority_order_and_never_go_below_zero() {
        let q = price(
            &[line("A", 2, 1000)],
            &[
                promotion(1, 1, false, cut(&["A"], 700)),
                promotion(2, 5, false, cut(&["A"], 600)),
            ],
            &[],
        );
        check(&q);
        // Priority 5 first: 600 per unit, then 400 (what is left) per unit.
        assert_eq!(
            amounts(&q),
            vec![
                (DiscountSource::Promotion, 2, 1200),
                (DiscountSource::Promotion, 1, 800)
            ]
        );
        assert_eq!(q.total, eur(0));
    }

    #[test]
    fn thresholds_are_judged_on_the_subtotal_after_direct_cuts() {
        let promotions = [
            promotion(1, 0, false, cut(&["A"], 100)),
            promotion(2, 0, false, amount_off(10_000, 1_000)),
        ];
        // 10,000 before the cut, 9,900 after: the threshold is not met.
        let q = price(&[line("A", 1, 10_000)], &promotions, &[]);
        check(&q);
        assert_eq!(amounts(&q), vec![(DiscountSource::Promotion, 1, 100)]);
        assert_eq!(q.total, eur(9_900));
        // 10,100 before, 10,000 after: met.
        let q = price(&[line("A", 1, 10_100)], &promotions, &[]);
        check(&q);
        assert_eq!(q.total, eur(9_000));
    }

    #[test]
    fn thresholds_apply_in_priority_order_each_on_what_remains() {
        let lines = [line("A", 1, 10_000)];
        let high_percent = [
            promotion(1, 1, false, amount_off(5_000, 1_000)),
            promotion(2, 9, false, percent_off(5_000, 10)),
        ];
        // 10 % of 10,000 first, then 1,000 off: 8,000.
        let q = price(&lines, &high_percent, &[]);
        check(&q);
        assert_eq!(
            amounts(&q),
            vec![
                (DiscountSource::Promotion, 2, 1_000),
                (DiscountSource::Promotion, 1, 1_000)
            ]
        );
        assert_eq!(q.total, eur(8_000));
        let high_amount = [
            promotion(1, 9, false, amount_off(5_000, 1_000)),
            promotion(2, 1, false, percent_off(5_000, 10)),
        ];
        // 1,000 off first, then 10 % of 9,000: 8,100.
        let q = price(&lines, &high_amount, &[]);
        check(&q);
        assert_eq!(q.total, eur(8_100));
    }

    #[test]
    fn a_second_threshold_is_judged_on_the_subtotal_after_cuts_not_after_the_first() {
        let q = price(
            &[line("A", 1, 10_000)],
            &[
                promotion(1, 9, false, amount_off(10_000, 5_000)),
                promotion(2, 1, false, amount_off(10_000, 1_000)),
            ],
            &[],
        );
        check(&q);
        assert_eq!(q.total, eur(4_000));
    }

    #[test]
    fn equal_priorities_are_ordered_by_id() {
        let q = price(
            &[line("A", 1, 10_000)],
            &[
                promotion(2, 3, false, amount_off(0, 1_000)),
                promotion(1, 3, false, percent_off(0, 50)),
            ],
            &[],
        );
        // Id 1 first: 50 % of 10,000, then 1,000: 4,000.
        assert_eq!(q.total, eur(4_000));
    }

    #[test]
    fn a_percentage_rounds_down_to_the_minor_unit() {
        let q = price(
            &[line("A", 1, 999)],
            &[promotion(1, 0, false, percent_off(0, 10))],
            &[],
        );
        check(&q);
        assert_eq!(amounts(&q), vec![(DiscountSource::Promotion, 1, 99)]);
        assert_eq!(q.total, eur(900));
        let q = price(
            &[line("A", 1, 1)],
            &[promotion(1, 0, false, percent_off(0, 99))],
            &[],
        );
        assert_eq!(q.total, eur(1), "99 % of one cent rounds down to nothing");
    }

    #[test]
    fn an_exclusive_promotion_that_applies_excludes_every_other() {
        let q = price(
            &[line("A", 1, 10_000)],
            &[
                promotion(1, 9, false, amount_off(5_000, 2_000)),
                promotion(2, 1, true, percent_off(5_000, 10)),
                promotion(3, 5, false, cut(&["A"], 500)),
                promotion(4, 5, false, cut(&["ZZZ"], 500)),
            ],
            &[],
        );
        check(&q);
        assert_eq!(amounts(&q), vec![(DiscountSource::Promotion, 2, 1_000)]);
        // Those that would have applied are told; one that fits nothing is not.
        assert_eq!(
            reasons(&q),
            vec![(1, RefusalReason::Excluded), (3, RefusalReason::Excluded)]
        );
        assert_eq!(q.total, eur(9_000));
    }

    #[test]
    fn an_exclusive_promotion_that_does_not_apply_leaves_the_others_stacking() {
        let q = price(
            &[line("A", 1, 4_000)],
            &[
                promotion(1, 0, false, amount_off(1_000, 100)),
                promotion(2, 9, true, amount_off(5_000, 2_000)),
                promotion(3, 0, false, cut(&["A"], 500)),
            ],
            &[],
        );
        check(&q);
        assert_eq!(
            amounts(&q),
            vec![
                (DiscountSource::Promotion, 3, 500),
                (DiscountSource::Promotion, 1, 100)
            ]
        );
        assert!(q.refusals.is_empty());
        assert_eq!(q.total, eur(3_400));
    }

    #[test]
    fn of_two_exclusive_promotions_the_higher_priority_wins() {
        let q = price(
            &[line("A", 1, 10_000)],
            &[
                promotion(1, 1, true, amount_off(0, 5_000)),
                promotion(2, 2, true, amount_off(0, 100)),
            ],
            &[],
        );
        assert_eq!(amounts(&q), vec![(DiscountSource::Promotion, 2, 100)]);
        assert_eq!(reasons(&q), vec![(1, RefusalReason::Excluded)]);
    }

    #[test]
    fn inactive_and_other_currency_promotions_are_skipped() {
        let mut ended = promotion(1, 0, false, amount_off(0, 100));
        ended.ended_at = Some("2026-06-05T00:00:00Z".parse().unwrap());
        let mut future = promotion(2, 0, false, amount_off(0, 100));
        future.starts_at = "2026-06-20T00:00:00Z".parse().unwrap();
        let mut dollars = promotion(3, 0, true, amount_off(0, 100));
        dollars.currency = usd(0).currency().clone();
        let q = price(&[line("A", 1, 1_000)], &[ended, future, dollars], &[]);
        assert!(q.discounts.is_empty() && q.refusals.is_empty());
        assert_eq!(q.total, eur(1_000));
    }

    #[test]
    fn coupons_apply_after_promotions_with_min_spend_judged_on_what_remains() {
        let promotions = [promotion(1, 0, false, amount_off(0, 1_000))];
        // 5,000 - 1,000 = 4,000 >= 4,000: the coupon applies.
        let q = price(
            &[line("A", 1, 5_000)],
            &promotions,
            &[coupon_off(10, 500, 4_000)],
        );
        check(&q);
        assert_eq!(
            amounts(&q),
            vec![
                (DiscountSource::Promotion, 1, 1_000),
                (DiscountSource::Coupon, 10, 500)
            ]
        );
        assert_eq!(q.total, eur(3_500));
        assert_eq!(q.applied_coupons(), vec![id::<CouponId>(10)]);
        // 4,999 - 1,000 = 3,999 < 4,000: refused.
        let q = price(
            &[line("A", 1, 4_999)],
            &promotions,
            &[coupon_off(10, 500, 4_000)],
        );
        assert_eq!(reasons(&q), vec![(10, RefusalReason::MinSpendNotMet)]);
        assert_eq!(q.total, eur(3_999));
        assert!(q.applied_coupons().is_empty());
    }

    #[test]
    fn a_percent_coupon_takes_its_share_of_what_remains_rounded_down() {
        let q = price(
            &[line("A", 3, 333)],
            &[promotion(1, 0, false, amount_off(0, 100))],
            &[coupon(
                10,
                1,
                CouponDiscount::PercentOff {
                    percent_off: Percent::parse(15).unwrap(),
                },
                0,
            )],
        );
        check(&q);
        // 999 - 100 = 899; 15 % = 134.85 -> 134.
        assert_eq!(q.discounts[1].amount, eur(134));
        assert_eq!(q.total, eur(765));
    }

    #[test]
    fn a_total_is_never_below_zero() {
        let q = price(
            &[line("A", 1, 300)],
            &[promotion(1, 0, false, amount_off(0, 200))],
            &[coupon_off(10, 500, 0), coupon_off(11, 500, 0)],
        );
        check(&q);
        assert_eq!(
            amounts(&q),
            vec![
                (DiscountSource::Promotion, 1, 200),
                (DiscountSource::Coupon, 10, 100),
                (DiscountSource::Coupon, 11, 0)
            ]
        );
        assert_eq!(q.total, eur(0));
    }

    #[test]
    fn every_coupon_refusal_has_its_reason() {
        let mut foreign = coupon_off(1, 100, 0);
        foreign.offer.as_mut().unwrap().owner = id(999);
        let mut elsewhere = coupon_off(2, 100, 0);
        elsewhere.offer.as_mut().unwrap().status = CouponStatus::Locked { order_id: id(78) };
        let mut here = coupon_off(3, 100, 0);
        here.offer.as_mut().unwrap().status = CouponStatus::Locked { order_id: id(77) };
        let mut used = coupon_off(4, 100, 0);
        used.offer.as_mut().unwrap().status = CouponStatus::Redeemed { order_id: id(70) };
        let mut expired = coupon_off(5, 100, 0);
        expired.offer.as_mut().unwrap().terms.valid_until = now();
        let mut early = coupon_off(6, 100, 0);
        early.offer.as_mut().unwrap().terms.valid_from = "2026-06-11T00:00:00Z".parse().unwrap();
        let mut dollars = coupon(
            7,
            1007,
            CouponDiscount::PercentOff {
                percent_off: Percent::parse(10).unwrap(),
            },
            0,
        );
        dollars.offer.as_mut().unwrap().terms.min_spend = usd(0);
        let unknown = ChosenCoupon {
            coupon_id: id(8),
            offer: None,
        };
        let same_batch = coupon(9, 1003, CouponDiscount::AmountOff { amount_off: eur(1) }, 0);
        let q = price(
            &[line("A", 1, 10_000)],
            &[],
            &[
                foreign,
                elsewhere,
                here.clone(),
                used,
                expired,
                early,
                dollars,
                unknown,
                same_batch,
                here,
            ],
        );
        check(&q);
        assert_eq!(
            reasons(&q),
            vec![
                (1, RefusalReason::NotYours),
                (2, RefusalReason::NotClaimed),
                (4, RefusalReason::NotClaimed),
                (5, RefusalReason::Expired),
                (6, RefusalReason::NotYetValid),
                (7, RefusalReason::OtherCurrency),
                (8, RefusalReason::UnknownCoupon),
                (9, RefusalReason::OnePerBatch),
                (3, RefusalReason::OnePerBatch),
            ]
        );
        // The coupon locked by the order being priced is applied.
        assert_eq!(amounts(&q), vec![(DiscountSource::Coupon, 3, 100)]);
    }

    #[test]
    fn order_discounts_are_shared_among_lines_in_proportion_exactly() {
        let q = price(
            &[line("A", 1, 100), line("B", 1, 200)],
            &[promotion(1, 0, false, amount_off(0, 100))],
            &[],
        );
        check(&q);
        // 33.33 and 66.67: rounded down to 33 and 66, the cent left to the larger remainder.
        assert_eq!(q.lines[0].discount, eur(33));
        assert_eq!(q.lines[1].discount, eur(67));
        assert_eq!(allocate(2, &[1, 1, 1]), vec![1, 1, 0]);
        assert_eq!(allocate(10, &[0, 5]), vec![0, 10]);
        assert_eq!(allocate(0, &[3, 4]), vec![0, 0]);
        assert_eq!(allocate(7, &[1, 1, 5]), vec![1, 1, 5]);
    }

    #[test]
    fn shares_follow_what_remains_of_each_line_after_direct_cuts() {
        let q = price(
            &[line("A", 1, 1_000), line("B", 1, 1_000)],
            &[
                promotion(1, 0, false, cut(&["A"], 1_000)),
                promotion(2, 0, false, amount_off(0, 500)),
            ],
            &[],
        );
        check(&q);
        // A is free after its cut, so all of the 500 falls on B.
        assert_eq!(q.lines[0].discount, eur(1_000));
        assert_eq!(q.lines[1].discount, eur(500));
        assert_eq!(q.lines[0].line_total, eur(0));
        assert_eq!(q.total, eur(500));
    }

    #[test]
    fn the_cart_seam_gets_the_promotions_discounts_labelled_by_name() {
        let promotions = [
            promotion(1, 0, false, cut(&["A"], 100)),
            promotion(2, 0, false, amount_off(1_000, 50)),
        ];
        let policy = PromotionsPolicy {
            promotions: &promotions,
            now: now(),
        };
        let priced = crate::cart::price_lines(
            vec![(sku("A"), 2, eur(600)), (sku("B"), 1, eur(100))],
            eur(0).currency().clone(),
            &policy,
        );
        let amounts: Vec<(String, i64)> = priced
            .discounts
            .iter()
            .map(|d| (d.label.clone(), d.amount.amount_minor()))
            .collect();
        assert_eq!(
            amounts,
            vec![("Promo".to_owned(), 200), ("Promo".to_owned(), 50)]
        );
        assert_eq!(priced.total, eur(1_050));
        let empty = crate::cart::price_lines(vec![], eur(0).currency().clone(), &policy);
        assert!(empty.discounts.is_empty());
    }

    #[test]
    fn carts_that_cannot_be_priced_are_errors() {
        let request = |lines| QuoteRequest {
            customer: id(CUSTOMER),
            order_id: None,
            lines,
            promotions: &[],
            coupons: &[],
            now: now(),
        };
        assert_eq!(quote(request(&[])), Err(PricingError::NoLines));
        let mixed = [
            line("A", 1, 100),
            PriceLine {
                sku: sku("B"),
                quantity: qty(1),
                unit_price: usd(100),
            },
        ];
        assert_eq!(quote(request(&mixed)), Err(PricingError::MixedCurrencies));
        let huge = [line("A", 1_000_000, i64::MAX / 2)];
        assert_eq!(quote(request(&huge)), Err(PricingError::Overflow));
    }
}
