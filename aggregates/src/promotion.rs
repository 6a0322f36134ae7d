//! A promotion: a price rule that applies by itself to every cart it fits, within its time
//! window. Three kinds: spend at least a threshold and get an amount off, spend at least a
//! threshold and get a percentage off, or a direct cut of the unit price of listed SKUs.
//! Each has a priority (higher applies first) and may be exclusive (applied alone); how
//! promotions stack on a cart is the pricing engine's business ([`crate::pricing`]).
//!
//! An admin may end a promotion before its window closes; ending twice is a no-op.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    CampaignName, Currency, DomainError, ErrorKind, Money, Percent, PromotionId, Sku,
};

/// Highest priority a promotion may have; 0 is the lowest.
pub const MAX_PRIORITY: u16 = 1000;
/// Most SKUs one direct price cut may list.
pub const MAX_SKUS: usize = 100;

/// What a promotion gives, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PromotionRule {
    /// Spend at least `threshold`, get `amount_off` off the order.
    ThresholdAmountOff {
        /// The least the cart must come to (after direct cuts).
        threshold: Money,
        /// Taken off the order.
        amount_off: Money,
    },
    /// Spend at least `threshold`, get `percent_off` off the order.
    ThresholdPercentOff {
        /// The least the cart must come to (after direct cuts).
        threshold: Money,
        /// Percentage taken off the order.
        percent_off: Percent,
    },
    /// Each unit of the listed SKUs costs `amount_off` less.
    DirectPriceCut {
        /// The SKUs cut.
        skus: Vec<Sku>,
        /// Taken off each unit's price.
        amount_off: Money,
    },
}

impl PromotionRule {
    /// The snake_case name of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PromotionRule::ThresholdAmountOff { .. } => "threshold_amount_off",
            PromotionRule::ThresholdPercentOff { .. } => "threshold_percent_off",
            PromotionRule::DirectPriceCut { .. } => "direct_price_cut",
        }
    }

    /// The amounts the rule names (all must be in the promotion's currency).
    fn amounts(&self) -> Vec<&Money> {
        match self {
            PromotionRule::ThresholdAmountOff {
                threshold,
                amount_off,
            } => vec![threshold, amount_off],
            PromotionRule::ThresholdPercentOff { threshold, .. } => vec![threshold],
            PromotionRule::DirectPriceCut { amount_off, .. } => vec![amount_off],
        }
    }
}

/// Everything a promotion is: what the pricing engine needs to apply it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionTerms {
    /// The promotion's id.
    pub promotion_id: PromotionId,
    /// Name shown to shoppers.
    pub name: CampaignName,
    /// The currency of every amount of the rule; carts in another currency are not touched.
    pub currency: Currency,
    /// What it gives.
    pub rule: PromotionRule,
    /// First instant it applies.
    pub starts_at: DateTime<Utc>,
    /// First instant it no longer applies.
    pub ends_at: DateTime<Utc>,
    /// 0 to 1000; a higher priority applies first.
    pub priority: u16,
    /// When it applies, no other promotion does.
    pub exclusive: bool,
    /// When an admin ended it before `ends_at`.
    pub ended_at: Option<DateTime<Utc>>,
}

impl PromotionTerms {
    /// True when the promotion applies at `now`: within its window and not ended.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at && self.ended_at.is_none_or(|at| now < at)
    }
}

/// Commands accepted by a [`Promotion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PromotionCommand {
    /// Creates the promotion.
    Create {
        /// The promotion's id (also the aggregate id).
        promotion_id: PromotionId,
        /// Name shown to shoppers.
        name: CampaignName,
        /// Currency of the rule's amounts.
        currency: Currency,
        /// What it gives.
        rule: PromotionRule,
        /// First instant it applies.
        starts_at: DateTime<Utc>,
        /// First instant it no longer applies.
        ends_at: DateTime<Utc>,
        /// 0 to 1000; higher applies first.
        priority: u16,
        /// Applied alone when it applies.
        exclusive: bool,
    },
    /// Ends the promotion now.
    End {
        /// The instant it ends (the caller's clock).
        at: DateTime<Utc>,
    },
}

/// Events of a [`Promotion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PromotionEvent {
    /// The promotion was created.
    PromotionCreated {
        /// The promotion's id.
        promotion_id: PromotionId,
        /// Name shown to shoppers.
        name: CampaignName,
        /// Currency of the rule's amounts.
        currency: Currency,
        /// What it gives.
        rule: PromotionRule,
        /// First instant it applies.
        starts_at: DateTime<Utc>,
        /// First instant it no longer applies.
        ends_at: DateTime<Utc>,
        /// 0 to 1000; higher applies first.
        priority: u16,
        /// Applied alone when it applies.
        exclusive: bool,
    },
    /// An admin ended the promotion.
    PromotionEnded {
        /// From this instant on it no longer applies.
        ended_at: DateTime<Utc>,
    },
}

impl DomainEvent for PromotionEvent {
    fn event_type(&self) -> String {
        match self {
            PromotionEvent::PromotionCreated { .. } => "PromotionCreated",
            PromotionEvent::PromotionEnded { .. } => "PromotionEnded",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`PromotionCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromotionError {
    /// A promotion with this id exists (with other terms).
    #[error("promotion {0} already exists")]
    AlreadyExists(PromotionId),
    /// No such promotion.
    #[error("promotion not found")]
    NotFound,
    /// `ends_at` is not after `starts_at`.
    #[error("ends_at must be after starts_at")]
    EmptyWindow,
    /// An amount of the rule is in another currency than the promotion's.
    #[error("every amount must be in {0}")]
    CurrencyMismatch(Currency),
    /// An amount off of zero, or a direct cut listing no SKU, too many or one twice.
    #[error("{0}")]
    InvalidRule(&'static str),
    /// Priority above [`MAX_PRIORITY`].
    #[error("priority must be 0 to 1000")]
    InvalidPriority,
}

impl PromotionError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            PromotionError::AlreadyExists(_) => "promotion_exists",
            PromotionError::NotFound => "promotion_not_found",
            PromotionError::EmptyWindow => "invalid_window",
            PromotionError::CurrencyMismatch(_) => "currency_mismatch",
            PromotionError::InvalidRule(_) => "invalid_rule",
            PromotionError::InvalidPriority => "invalid_input",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PromotionError::AlreadyExists(_) => ErrorKind::Refused,
            PromotionError::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Invalid,
        }
    }
}

impl DomainError for PromotionError {
    fn code(&self) -> &'static str {
        PromotionError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        PromotionError::kind(self)
    }
}

/// A promotion.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Promotion {
    terms: Option<PromotionTerms>,
}

impl Promotion {
    /// Its terms, once created.
    pub fn terms(&self) -> Option<&PromotionTerms> {
        self.terms.as_ref()
    }
}

/// Checks a rule against the promotion's currency and its own bounds.
pub fn check_rule(currency: &Currency, rule: &PromotionRule) -> Result<(), PromotionError> {
    if rule.amounts().iter().any(|m| m.currency() != currency) {
        return Err(PromotionError::CurrencyMismatch(currency.clone()));
    }
    match rule {
        PromotionRule::ThresholdAmountOff { amount_off, .. }
        | PromotionRule::DirectPriceCut { amount_off, .. }
            if amount_off.is_zero() =>
        {
            Err(PromotionError::InvalidRule(
                "amount_off must be more than 0",
            ))
        }
        PromotionRule::DirectPriceCut { skus, .. } if skus.is_empty() || skus.len() > MAX_SKUS => {
            Err(PromotionError::InvalidRule("skus must list 1 to 100 SKUs"))
        }
        PromotionRule::DirectPriceCut { skus, .. }
            if skus.iter().collect::<std::collections::BTreeSet<_>>().len() != skus.len() =>
        {
            Err(PromotionError::InvalidRule(
                "skus must not list a SKU twice",
            ))
        }
        _ => Ok(()),
    }
}

impl Aggregate for Promotion {
    const TYPE: &'static str = "promotion";
    type Command = PromotionCommand;
    type Event = PromotionEvent;
    type Error = PromotionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            PromotionCommand::Create {
                promotion_id,
                name,
                currency,
                rule,
                starts_at,
                ends_at,
                priority,
                exclusive,
            } => {
                if ends_at <= starts_at {
                    return Err(PromotionError::EmptyWindow);
                }
                if priority > MAX_PRIORITY {
                    return Err(PromotionError::InvalidPriority);
                }
                check_rule(&currency, &rule)?;
                let asked = PromotionTerms {
                    promotion_id,
                    name: name.clone(),
                    currency: currency.clone(),
                    rule: rule.clone(),
                    starts_at,
                    ends_at,
                    priority,
                    exclusive,
                    ended_at: None,
                };
                if let Some(terms) = &self.terms {
                    // The same creation repeated (same idempotency key) is a no-op.
                    let same = PromotionTerms {
                        ended_at: None,
                        ..terms.clone()
                    } == asked;
                    return if same {
                        Ok(())
                    } else {
                        Err(PromotionError::AlreadyExists(promotion_id))
                    };
                }
                PromotionEvent::PromotionCreated {
                    promotion_id,
                    name,
                    currency,
                    rule,
                    starts_at,
                    ends_at,
                    priority,
                    exclusive,
                }
            }
            PromotionCommand::End { at } => {
                let terms = self.terms.as_ref().ok_or(PromotionError::NotFound)?;
                if terms.ended_at.is_some() || at >= terms.ends_at {
                    return Ok(());
                }
                PromotionEvent::PromotionEnded { ended_at: at }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PromotionEvent::PromotionCreated {
                promotion_id,
                name,
                currency,
                rule,
                starts_at,
                ends_at,
                priority,
                exclusive,
            } => {
                self.terms = Some(PromotionTerms {
                    promotion_id,
                    name,
                    currency,
                    rule,
                    starts_at,
                    ends_at,
                    priority,
                    exclusive,
                    ended_at: None,
                });
            }
            PromotionEvent::PromotionEnded { ended_at } => {
                if let Some(terms) = self.terms.as_mut() {
                    terms.ended_at = Some(ended_at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<PromotionEvent>) -> AggregateTestExecutor<Promotion> {
        TestFramework::<Promotion>::with(()).given(events)
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn rule() -> PromotionRule {
        PromotionRule::ThresholdAmountOff {
            threshold: eur(10_000),
            amount_off: eur(1_000),
        }
    }

    fn create_with(rule: PromotionRule) -> PromotionCommand {
        PromotionCommand::Create {
            promotion_id: id(1),
            name: CampaignName::parse("Spring").unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            rule,
            starts_at: at("2026-03-01T00:00:00Z"),
            ends_at: at("2026-04-01T00:00:00Z"),
            priority: 10,
            exclusive: false,
        }
    }

    fn created() -> PromotionEvent {
        PromotionEvent::PromotionCreated {
            promotion_id: id(1),
            name: CampaignName::parse("Spring").unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            rule: rule(),
            starts_at: at("2026-03-01T00:00:00Z"),
            ends_at: at("2026-04-01T00:00:00Z"),
            priority: 10,
            exclusive: false,
        }
    }

    fn refusal(command: PromotionCommand) -> PromotionError {
        given(vec![]).when(command).inspect_result().unwrap_err()
    }

    #[test]
    fn create_records_the_promotion() {
        given(vec![])
            .when(create_with(rule()))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn repeating_the_same_creation_is_a_no_op_and_other_terms_are_refused() {
        given(vec![created()])
            .when(create_with(rule()))
            .then_expect_events(vec![]);
        let err = given(vec![created()])
            .when(create_with(PromotionRule::ThresholdAmountOff {
                threshold: eur(10_000),
                amount_off: eur(2_000),
            }))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.code(), "promotion_exists");
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[test]
    fn create_refuses_an_empty_window() {
        let mut command = create_with(rule());
        if let PromotionCommand::Create { ends_at, .. } = &mut command {
            *ends_at = at("2026-03-01T00:00:00Z");
        }
        assert_eq!(refusal(command), PromotionError::EmptyWindow);
    }

    #[test]
    fn create_refuses_amounts_in_another_currency() {
        let err = refusal(create_with(PromotionRule::ThresholdAmountOff {
            threshold: usd(10_000),
            amount_off: eur(100),
        }));
        assert_eq!(err.code(), "currency_mismatch");
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn create_refuses_a_zero_cut_and_bad_sku_lists_and_priority() {
        for bad in [
            PromotionRule::ThresholdAmountOff {
                threshold: eur(100),
                amount_off: eur(0),
            },
            PromotionRule::DirectPriceCut {
                skus: vec![],
                amount_off: eur(100),
            },
            PromotionRule::DirectPriceCut {
                skus: vec![sku("A"), sku("A")],
                amount_off: eur(100),
            },
            PromotionRule::DirectPriceCut {
                skus: vec![sku("A")],
                amount_off: eur(0),
            },
        ] {
            assert_eq!(refusal(create_with(bad)).code(), "invalid_rule");
        }
        let mut command = create_with(rule());
        if let PromotionCommand::Create { priority, .. } = &mut command {
            *priority = 1001;
        }
        assert_eq!(refusal(command), PromotionError::InvalidPriority);
    }

    #[test]
    fn end_records_once_and_not_after_the_window() {
        given(vec![created()])
            .when(PromotionCommand::End {
                at: at("2026-03-10T00:00:00Z"),
            })
            .then_expect_events(vec![PromotionEvent::PromotionEnded {
                ended_at: at("2026-03-10T00:00:00Z"),
            }]);
        given(vec![
            created(),
            PromotionEvent::PromotionEnded {
                ended_at: at("2026-03-10T00:00:00Z"),
            },
        ])
        .when(PromotionCommand::End {
            at: at("2026-03-11T00:00:00Z"),
        })
        .then_expect_events(vec![]);
        given(vec![created()])
            .when(PromotionCommand::End {
                at: at("2026-05-01T00:00:00Z"),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn end_of_unknown_promotion_is_not_found() {
        let err = given(vec![])
            .when(PromotionCommand::End {
                at: at("2026-03-10T00:00:00Z"),
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn a_promotion_is_active_within_its_window_until_ended() {
        let mut promotion = Promotion::default();
        promotion.apply(created());
        let terms = promotion.terms().unwrap().clone();
        assert!(!terms.is_active(at("2026-02-28T23:59:59Z")));
        assert!(terms.is_active(at("2026-03-01T00:00:00Z")));
        assert!(!terms.is_active(at("2026-04-01T00:00:00Z")));
        promotion.apply(PromotionEvent::PromotionEnded {
            ended_at: at("2026-03-10T00:00:00Z"),
        });
        let terms = promotion.terms().unwrap();
        assert!(terms.is_active(at("2026-03-09T23:59:59Z")));
        assert!(!terms.is_active(at("2026-03-10T00:00:00Z")));
        assert_eq!(terms.rule.kind(), "threshold_amount_off");
    }
}
