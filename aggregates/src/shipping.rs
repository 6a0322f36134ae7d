//! The shipping fee rules (运费规则): one rule set, replaced whole by an admin (a command
//! writing the write side's `shipping_rules` table, see `ordo_store::shipping`), that the
//! checkout prices every delivery with. A rule serves some provinces (or, with none named,
//! every province no other rule names); its fee is a base fee for a base weight plus a fee
//! per started kilogram beyond it, and it may ship free once the goods reach a threshold.
//!
//! [`ShippingRules::fee`] is the one calculation: the shipping quote, the checkout preview
//! and the order placed all take their fee from it, and the order records the fee it was
//! placed with.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::common::{Currency, DomainError, ErrorKind, Money};

/// Most rules in the set.
pub const MAX_RULES: usize = 50;
/// Most provinces one rule names.
pub const MAX_PROVINCES: usize = 100;
/// The largest fee or threshold, in minor units.
pub const MAX_AMOUNT: i64 = 100_000_000;
/// The largest base weight, in grams.
pub const MAX_WEIGHT_GRAMS: u32 = 1_000_000_000;

/// One rule of the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingRule {
    /// Its name, shown with the fee it gave (1 to 50 characters, unique in the set).
    pub name: String,
    /// The provinces it serves, compared without regard to case or surrounding spaces;
    /// none: every province no other rule names (the fallback, at most one).
    pub provinces: Vec<String>,
    /// The fee up to `base_weight_grams`, in minor units.
    pub base_fee: i64,
    /// The weight the base fee covers.
    pub base_weight_grams: u32,
    /// The fee for each started kilogram beyond the base weight, in minor units.
    pub fee_per_extra_kg: i64,
    /// Free shipping once the goods (after discounts) reach this amount, in minor units.
    pub free_over: Option<i64>,
}

impl ShippingRule {
    fn serves(&self, province: &str) -> bool {
        self.provinces
            .iter()
            .any(|p| p.trim().eq_ignore_ascii_case(province.trim()))
    }

    fn is_fallback(&self) -> bool {
        self.provinces.is_empty()
    }

    /// The fee of `weight_grams` of goods worth `goods` (minor units).
    fn fee_of(&self, weight_grams: u64, goods: i64) -> i64 {
        if self.free_over.is_some_and(|threshold| goods >= threshold) {
            return 0;
        }
        let extra = weight_grams.saturating_sub(u64::from(self.base_weight_grams));
        let started_kg = extra.div_ceil(1000);
        let extra_fee = i64::try_from(started_kg)
            .unwrap_or(i64::MAX)
            .saturating_mul(self.fee_per_extra_kg);
        self.base_fee.saturating_add(extra_fee)
    }
}

/// The fee a delivery costs and the rule that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingFee {
    /// What the delivery costs.
    pub fee: Money,
    /// The rule applied; `None` when no rule applies (no rules, another currency, or a
    /// province no rule serves and no fallback): the delivery is then free.
    pub rule: Option<String>,
}

/// Why a rule set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShippingError {
    /// Too many rules, or a rule naming too many provinces.
    #[error("at most 50 rules of at most 100 provinces each")]
    TooManyRules,
    /// A name or province is empty or too long.
    #[error("rule {rule}: names are 1 to 50 characters and provinces 1 to 100")]
    InvalidText {
        /// The rule, by position.
        rule: usize,
    },
    /// A fee, threshold or weight is out of bounds.
    #[error(
        "rule {rule}: fees and thresholds are 0 to 100000000, base weights 0 to 1000000000 grams"
    )]
    InvalidAmount {
        /// The rule, by position.
        rule: usize,
    },
    /// Two rules share a name.
    #[error("two rules are named {name}")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// Two rules serve a province.
    #[error("province {province} is served by two rules")]
    DuplicateProvince {
        /// The province.
        province: String,
    },
    /// More than one rule names no province.
    #[error("at most one rule may serve every other province")]
    TwoFallbacks,
}

impl ShippingError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ShippingError::TooManyRules => "too_many_rules",
            ShippingError::InvalidText { .. } => "invalid_rule_text",
            ShippingError::InvalidAmount { .. } => "invalid_rule_amount",
            ShippingError::DuplicateName { .. } => "duplicate_rule_name",
            ShippingError::DuplicateProvince { .. } => "duplicate_province",
            ShippingError::TwoFallbacks => "two_fallback_rules",
        }
    }
}

impl DomainError for ShippingError {
    fn code(&self) -> &'static str {
        ShippingError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

fn bounded(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

fn check(rules: &[ShippingRule]) -> Result<(), ShippingError> {
    if rules.len() > MAX_RULES {
        return Err(ShippingError::TooManyRules);
    }
    let mut names = BTreeSet::new();
    let mut provinces = BTreeSet::new();
    let mut fallback = false;
    for (index, rule) in rules.iter().enumerate() {
        if rule.provinces.len() > MAX_PROVINCES {
            return Err(ShippingError::TooManyRules);
        }
        if !bounded(&rule.name, 50) || !rule.provinces.iter().all(|p| bounded(p, 100)) {
            return Err(ShippingError::InvalidText { rule: index });
        }
        let amounts = [
            rule.base_fee,
            rule.fee_per_extra_kg,
            rule.free_over.unwrap_or(0),
        ];
        if amounts.iter().any(|a| !(0..=MAX_AMOUNT).contains(a))
            || rule.base_weight_grams > MAX_WEIGHT_GRAMS
        {
            return Err(ShippingError::InvalidAmount { rule: index });
        }
        if !names.insert(rule.name.trim().to_lowercase()) {
            return Err(ShippingError::DuplicateName {
                name: rule.name.clone(),
            });
        }
        for province in &rule.provinces {
            if !provinces.insert(province.trim().to_lowercase()) {
                return Err(ShippingError::DuplicateProvince {
                    province: province.clone(),
                });
            }
        }
        if rule.is_fallback() {
            if fallback {
                return Err(ShippingError::TwoFallbacks);
            }
            fallback = true;
        }
    }
    Ok(())
}

/// The rule set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingRules {
    currency: Option<Currency>,
    rules: Vec<ShippingRule>,
}

impl ShippingRules {
    /// A rule set of `rules` in `currency`, refused when the rules contradict each other
    /// (a name or a province twice, two fallbacks) or are out of bounds.
    pub fn new(currency: Currency, rules: Vec<ShippingRule>) -> Result<Self, ShippingError> {
        check(&rules)?;
        Ok(Self {
            currency: Some(currency),
            rules,
        })
    }

    /// The currency of the fees, once rules were set.
    pub fn currency(&self) -> Option<&Currency> {
        self.currency.as_ref()
    }

    /// The rules in force, in order.
    pub fn rules(&self) -> &[ShippingRule] {
        &self.rules
    }

    /// The fee of delivering `weight_grams` of goods worth `goods` (after discounts) to
    /// `province` (`None`: no address chosen yet, priced by the fallback rule): the rule
    /// serving the province, else the fallback; free when none applies.
    pub fn fee(&self, province: Option<&str>, weight_grams: u64, goods: &Money) -> ShippingFee {
        let free = ShippingFee {
            fee: Money::zero(goods.currency().clone()),
            rule: None,
        };
        if self.currency.as_ref() != Some(goods.currency()) {
            return free;
        }
        let rule = province
            .and_then(|p| self.rules.iter().find(|r| r.serves(p)))
            .or_else(|| self.rules.iter().find(|r| r.is_fallback()));
        let Some(rule) = rule else {
            return free;
        };
        let fee = rule.fee_of(weight_grams, goods.amount_minor());
        ShippingFee {
            fee: Money::new(fee, goods.currency().clone()).unwrap_or(free.fee),
            rule: Some(rule.name.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::fixtures::*;

    fn rule(name: &str, provinces: &[&str], base_fee: i64, free_over: Option<i64>) -> ShippingRule {
        ShippingRule {
            name: name.into(),
            provinces: provinces.iter().map(|p| p.to_string()).collect(),
            base_fee,
            base_weight_grams: 1000,
            fee_per_extra_kg: 200,
            free_over,
        }
    }

    fn eur_code() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn standard() -> Vec<ShippingRule> {
        vec![
            rule("Paris", &["IDF"], 500, Some(5000)),
            rule("Elsewhere", &[], 900, None),
        ]
    }

    fn state(rules: Vec<ShippingRule>) -> ShippingRules {
        ShippingRules::new(eur_code(), rules).unwrap()
    }

    fn refused(rules: Vec<ShippingRule>) -> ShippingError {
        ShippingRules::new(eur_code(), rules).unwrap_err()
    }

    #[test]
    fn a_rule_set_keeps_its_rules_in_order() {
        let rules = state(standard());
        assert_eq!(rules.rules(), standard().as_slice());
        assert_eq!(rules.currency(), Some(&eur_code()));
    }

    #[test]
    fn rules_that_contradict_each_other_are_refused() {
        assert_eq!(
            refused(vec![
                rule("A", &["IDF"], 1, None),
                rule("a", &["X"], 1, None)
            ]),
            ShippingError::DuplicateName { name: "a".into() }
        );
        assert_eq!(
            refused(vec![
                rule("A", &["IDF"], 1, None),
                rule("B", &[" idf "], 1, None)
            ]),
            ShippingError::DuplicateProvince {
                province: " idf ".into()
            }
        );
        let err = refused(vec![rule("A", &[], 1, None), rule("B", &[], 1, None)]);
        assert_eq!(err, ShippingError::TwoFallbacks);
        assert_eq!(err.code(), "two_fallback_rules");
        assert_eq!(DomainError::kind(&err), ErrorKind::Invalid);
    }

    #[test]
    fn bad_text_and_amounts_are_refused() {
        assert_eq!(
            refused(vec![rule(" ", &[], 1, None)]),
            ShippingError::InvalidText { rule: 0 }
        );
        assert_eq!(
            refused(vec![rule("A", &[], -1, None)]),
            ShippingError::InvalidAmount { rule: 0 }
        );
        assert_eq!(
            refused(vec![rule("A", &[], 1, Some(MAX_AMOUNT + 1))]),
            ShippingError::InvalidAmount { rule: 0 }
        );
        let mut heavy = rule("A", &[], 1, None);
        heavy.base_weight_grams = MAX_WEIGHT_GRAMS + 1;
        assert_eq!(
            refused(vec![heavy]),
            ShippingError::InvalidAmount { rule: 0 }
        );
        let many: Vec<ShippingRule> = (0..=MAX_RULES)
            .map(|i| rule(&format!("R{i}"), &[&format!("P{i}")], 1, None))
            .collect();
        assert_eq!(refused(many), ShippingError::TooManyRules);
    }

    #[test]
    fn the_rule_of_the_province_prices_by_weight() {
        let rules = state(standard());
        // Up to the base weight: the base fee.
        let fee = rules.fee(Some("idf"), 1000, &eur(1000));
        assert_eq!(fee.fee, eur(500));
        assert_eq!(fee.rule.as_deref(), Some("Paris"));
        // Each started kilogram beyond it costs more.
        assert_eq!(rules.fee(Some("IDF"), 1001, &eur(1000)).fee, eur(700));
        assert_eq!(rules.fee(Some("IDF"), 3000, &eur(1000)).fee, eur(900));
    }

    #[test]
    fn goods_reaching_the_threshold_ship_free() {
        let rules = state(standard());
        assert_eq!(rules.fee(Some("IDF"), 5000, &eur(4999)).fee, eur(1300));
        let free = rules.fee(Some("IDF"), 5000, &eur(5000));
        assert_eq!(free.fee, eur(0));
        assert_eq!(free.rule.as_deref(), Some("Paris"));
    }

    #[test]
    fn other_provinces_and_no_address_take_the_fallback() {
        let rules = state(standard());
        let fee = rules.fee(Some("Bretagne"), 500, &eur(100_000));
        assert_eq!(fee.fee, eur(900));
        assert_eq!(fee.rule.as_deref(), Some("Elsewhere"));
        assert_eq!(rules.fee(None, 500, &eur(100)).fee, eur(900));
    }

    #[test]
    fn no_rule_that_applies_means_free_delivery() {
        assert_eq!(
            ShippingRules::default().fee(Some("IDF"), 500, &eur(100)),
            ShippingFee {
                fee: eur(0),
                rule: None
            }
        );
        let only_paris = state(vec![rule("Paris", &["IDF"], 500, None)]);
        assert_eq!(only_paris.fee(Some("Bretagne"), 500, &eur(100)).rule, None);
        // Goods in another currency than the rules.
        assert_eq!(
            state(standard()).fee(Some("IDF"), 500, &usd(100)).fee,
            usd(0)
        );
    }
}
