//! A batch of coupons and the life of every coupon claimed from it.
//!
//! The batch is one aggregate: it owns the terms (amount or percentage off, minimum spend,
//! validity), the quota and how many coupons each customer holds, so a claim is decided on
//! write-side state and a batch never hands out more than its quota, however many claims
//! race (they are serialised on the aggregate). Each claimed coupon then lives inside its
//! batch:
//!
//! ```text
//! claimed --lock(order)--> locked(order) --redeem(order)--> redeemed
//!    ^                          |
//!    +------release(order)------+
//! ```
//!
//! Every transition names the order it is for, so each is idempotent: locking again for the
//! same order, redeeming again, releasing again, or releasing for an order that does not hold
//! the coupon, changes nothing. Locking a coupon another order holds is refused: of two
//! orders racing for one coupon, exactly one gets it. A redeemed coupon stays redeemed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    CampaignName, CouponBatchId, CouponId, Currency, DomainError, ErrorKind, Money, OrderId,
    Percent, UserId,
};

/// Largest quota of one batch.
pub const MAX_QUOTA: u32 = 1_000_000;

/// What a coupon takes off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CouponDiscount {
    /// A fixed amount off the order.
    AmountOff {
        /// The amount.
        amount_off: Money,
    },
    /// A percentage off the order.
    PercentOff {
        /// The percentage.
        percent_off: Percent,
    },
}

impl CouponDiscount {
    /// The snake_case name of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            CouponDiscount::AmountOff { .. } => "amount_off",
            CouponDiscount::PercentOff { .. } => "percent_off",
        }
    }
}

/// The terms of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTerms {
    /// The batch's id.
    pub batch_id: CouponBatchId,
    /// Name shown to shoppers.
    pub name: CampaignName,
    /// What each coupon takes off.
    pub discount: CouponDiscount,
    /// The least the order must come to (after promotions) for a coupon to apply.
    pub min_spend: Money,
    /// How many coupons the batch hands out in all.
    pub quota: u32,
    /// How many coupons one customer may hold from it.
    pub per_user_limit: u32,
    /// First instant a coupon may be used.
    pub valid_from: DateTime<Utc>,
    /// First instant a coupon may no longer be claimed nor used.
    pub valid_until: DateTime<Utc>,
}

impl BatchTerms {
    /// The currency of the batch's amounts.
    pub fn currency(&self) -> &Currency {
        self.min_spend.currency()
    }
}

/// Where one coupon stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CouponStatus {
    /// Held by its owner, free to use.
    Claimed,
    /// Held by an order being placed or paid.
    Locked {
        /// The order holding it.
        order_id: OrderId,
    },
    /// Used by a paid order.
    Redeemed {
        /// The order that used it.
        order_id: OrderId,
    },
}

impl CouponStatus {
    /// `claimed`, `locked` or `redeemed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CouponStatus::Claimed => "claimed",
            CouponStatus::Locked { .. } => "locked",
            CouponStatus::Redeemed { .. } => "redeemed",
        }
    }
}

/// One coupon as the pricing engine judges it: its batch's terms, its owner and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponOffer {
    /// The coupon.
    pub coupon_id: CouponId,
    /// Who claimed it.
    pub owner: UserId,
    /// Where it stands.
    pub status: CouponStatus,
    /// Its batch's terms.
    pub terms: BatchTerms,
}

/// Commands accepted by a [`CouponBatch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CouponCommand {
    /// Creates the batch.
    CreateBatch {
        /// The terms.
        terms: BatchTerms,
    },
    /// A customer claims a coupon; `coupon_id` is chosen by the caller (derived from the
    /// request's idempotency key), so a repeated claim finds the coupon it made.
    Claim {
        /// The new coupon's id.
        coupon_id: CouponId,
        /// Who claims.
        user_id: UserId,
        /// When (the caller's clock).
        at: DateTime<Utc>,
    },
    /// An order being placed takes the coupon.
    Lock {
        /// The coupon.
        coupon_id: CouponId,
        /// The order.
        order_id: OrderId,
        /// The order's customer: must be the coupon's owner.
        user_id: UserId,
        /// When (the caller's clock): the coupon must be valid then.
        at: DateTime<Utc>,
    },
    /// The order holding the coupon was paid.
    Redeem {
        /// The coupon.
        coupon_id: CouponId,
        /// The paid order.
        order_id: OrderId,
    },
    /// The order holding the coupon was rejected, cancelled or expired.
    Release {
        /// The coupon.
        coupon_id: CouponId,
        /// The order.
        order_id: OrderId,
    },
}

/// Events of a [`CouponBatch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CouponEvent {
    /// The batch was created.
    CouponBatchCreated {
        /// The terms.
        terms: BatchTerms,
    },
    /// A customer claimed a coupon.
    CouponClaimed {
        /// The coupon.
        coupon_id: CouponId,
        /// Its owner.
        user_id: UserId,
        /// When.
        claimed_at: DateTime<Utc>,
    },
    /// An order took the coupon.
    CouponLocked {
        /// The coupon.
        coupon_id: CouponId,
        /// The order.
        order_id: OrderId,
    },
    /// The order holding the coupon was paid: the coupon is used.
    CouponRedeemed {
        /// The coupon.
        coupon_id: CouponId,
        /// The order.
        order_id: OrderId,
    },
    /// The order holding the coupon gave it back: claimed again.
    CouponReleased {
        /// The coupon.
        coupon_id: CouponId,
        /// The order.
        order_id: OrderId,
    },
}

impl DomainEvent for CouponEvent {
    fn event_type(&self) -> String {
        match self {
            CouponEvent::CouponBatchCreated { .. } => "CouponBatchCreated",
            CouponEvent::CouponClaimed { .. } => "CouponClaimed",
            CouponEvent::CouponLocked { .. } => "CouponLocked",
            CouponEvent::CouponRedeemed { .. } => "CouponRedeemed",
            CouponEvent::CouponReleased { .. } => "CouponReleased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`CouponCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponError {
    /// A batch with this id exists (with other terms).
    #[error("coupon batch {0} already exists")]
    BatchExists(CouponBatchId),
    /// No such batch.
    #[error("coupon batch not found")]
    BatchNotFound,
    /// The batch's terms break a rule (window, quota, limit, currency, zero amount).
    #[error("{0}")]
    InvalidTerms(&'static str),
    /// Every coupon of the batch is claimed.
    #[error("every coupon of this batch has been claimed")]
    Exhausted,
    /// The customer holds as many coupons of this batch as they may.
    #[error("you hold as many coupons of this batch as one customer may ({0})")]
    LimitReached(u32),
    /// The batch's coupons can no longer be claimed or used.
    #[error("this coupon batch is no longer valid")]
    BatchExpired,
    /// The coupon id names another customer's coupon.
    #[error("coupon id already in use")]
    CouponIdTaken,
    /// No such coupon in this batch, or not the caller's.
    #[error("coupon not found")]
    CouponNotFound,
    /// The coupon is not valid yet.
    #[error("this coupon cannot be used before {0}")]
    NotYetValid(DateTime<Utc>),
    /// Another order holds the coupon.
    #[error("this coupon is held by another order")]
    InUse,
    /// The coupon was used.
    #[error("this coupon has been used")]
    AlreadyRedeemed,
    /// Redeeming for an order that does not hold the coupon.
    #[error("this coupon is not held by that order")]
    NotLocked,
}

impl CouponError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            CouponError::BatchExists(_) => "coupon_batch_exists",
            CouponError::BatchNotFound => "coupon_batch_not_found",
            CouponError::InvalidTerms(_) => "invalid_coupon_terms",
            CouponError::Exhausted => "coupons_exhausted",
            CouponError::LimitReached(_) => "coupon_limit_reached",
            CouponError::BatchExpired => "coupon_batch_expired",
            CouponError::CouponIdTaken => "coupon_id_taken",
            CouponError::CouponNotFound => "coupon_not_found",
            CouponError::NotYetValid(_) => "coupon_not_yet_valid",
            CouponError::InUse => "coupon_in_use",
            CouponError::AlreadyRedeemed => "coupon_redeemed",
            CouponError::NotLocked => "coupon_not_locked",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CouponError::BatchNotFound | CouponError::CouponNotFound => ErrorKind::NotFound,
            CouponError::InvalidTerms(_) => ErrorKind::Invalid,
            _ => ErrorKind::Refused,
        }
    }
}

impl DomainError for CouponError {
    fn code(&self) -> &'static str {
        CouponError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        CouponError::kind(self)
    }
}

/// One claimed coupon inside its batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldCoupon {
    /// Who claimed it.
    pub owner: UserId,
    /// Where it stands.
    pub status: CouponStatus,
}

/// A batch of coupons with every coupon claimed from it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CouponBatch {
    terms: Option<BatchTerms>,
    coupons: HashMap<CouponId, HeldCoupon>,
    held_by: HashMap<UserId, u32>,
}

impl CouponBatch {
    /// Its terms, once created.
    pub fn terms(&self) -> Option<&BatchTerms> {
        self.terms.as_ref()
    }

    /// How many coupons have been claimed.
    pub fn claimed(&self) -> u32 {
        self.coupons.len() as u32
    }

    /// How many coupons `user` holds from this batch (used ones included).
    pub fn held_by(&self, user: UserId) -> u32 {
        self.held_by.get(&user).copied().unwrap_or(0)
    }

    /// One coupon with its terms, as the pricing engine judges it.
    pub fn offer(&self, coupon_id: CouponId) -> Option<CouponOffer> {
        let terms = self.terms.as_ref()?;
        let coupon = self.coupons.get(&coupon_id)?;
        Some(CouponOffer {
            coupon_id,
            owner: coupon.owner,
            status: coupon.status,
            terms: terms.clone(),
        })
    }

    fn coupon(&self, coupon_id: CouponId) -> Result<&HeldCoupon, CouponError> {
        self.terms.as_ref().ok_or(CouponError::BatchNotFound)?;
        self.coupons
            .get(&coupon_id)
            .ok_or(CouponError::CouponNotFound)
    }
}

/// Checks a batch's terms.
pub fn check_terms(terms: &BatchTerms) -> Result<(), CouponError> {
    if terms.valid_until <= terms.valid_from {
        return Err(CouponError::InvalidTerms(
            "valid_until must be after valid_from",
        ));
    }
    if !(1..=MAX_QUOTA).contains(&terms.quota) {
        return Err(CouponError::InvalidTerms("quota must be 1 to 1000000"));
    }
    if !(1..=terms.quota).contains(&terms.per_user_limit) {
        return Err(CouponError::InvalidTerms(
            "per_user_limit must be 1 to the quota",
        ));
    }
    if let CouponDiscount::AmountOff { amount_off } = &terms.discount {
        if amount_off.currency() != terms.min_spend.currency() {
            return Err(CouponError::InvalidTerms(
                "amount_off and min_spend must be in the same currency",
            ));
        }
        if amount_off.is_zero() {
            return Err(CouponError::InvalidTerms("value must be more than 0"));
        }
    }
    Ok(())
}

impl Aggregate for CouponBatch {
    const TYPE: &'static str = "coupon_batch";
    type Command = CouponCommand;
    type Event = CouponEvent;
    type Error = CouponError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            CouponCommand::CreateBatch { terms } => {
                check_terms(&terms)?;
                if let Some(existing) = &self.terms {
                    return if *existing == terms {
                        Ok(())
                    } else {
                        Err(CouponError::BatchExists(terms.batch_id))
                    };
                }
                CouponEvent::CouponBatchCreated { terms }
            }
            CouponCommand::Claim {
                coupon_id,
                user_id,
                at,
            } => {
                let terms = self.terms.as_ref().ok_or(CouponError::BatchNotFound)?;
                if let Some(coupon) = self.coupons.get(&coupon_id) {
                    return if coupon.owner == user_id {
                        Ok(())
                    } else {
                        Err(CouponError::CouponIdTaken)
                    };
                }
                if at >= terms.valid_until {
                    return Err(CouponError::BatchExpired);
                }
                if self.claimed() >= terms.quota {
                    return Err(CouponError::Exhausted);
                }
                if self.held_by(user_id) >= terms.per_user_limit {
                    return Err(CouponError::LimitReached(terms.per_user_limit));
                }
                CouponEvent::CouponClaimed {
                    coupon_id,
                    user_id,
                    claimed_at: at,
                }
            }
            CouponCommand::Lock {
                coupon_id,
                order_id,
                user_id,
                at,
            } => {
                let coupon = self.coupon(coupon_id)?;
                if coupon.owner != user_id {
                    return Err(CouponError::CouponNotFound);
                }
                match coupon.status {
                    CouponStatus::Locked { order_id: holder } if holder == order_id => {
                        return Ok(())
                    }
                    CouponStatus::Locked { .. } => return Err(CouponError::InUse),
                    CouponStatus::Redeemed { .. } => return Err(CouponError::AlreadyRedeemed),
                    CouponStatus::Claimed => {}
                }
                let terms = self.terms.as_ref().ok_or(CouponError::BatchNotFound)?;
                if at >= terms.valid_until {
                    return Err(CouponError::BatchExpired);
                }
                if at < terms.valid_from {
                    return Err(CouponError::NotYetValid(terms.valid_from));
                }
                CouponEvent::CouponLocked {
                    coupon_id,
                    order_id,
                }
            }
            CouponCommand::Redeem {
                coupon_id,
                order_id,
            } => match self.coupon(coupon_id)?.status {
                CouponStatus::Locked { order_id: holder } if holder == order_id => {
                    CouponEvent::CouponRedeemed {
                        coupon_id,
                        order_id,
                    }
                }
                CouponStatus::Redeemed { order_id: holder } if holder == order_id => return Ok(()),
                CouponStatus::Redeemed { .. } => return Err(CouponError::AlreadyRedeemed),
                _ => return Err(CouponError::NotLocked),
            },
            CouponCommand::Release {
                coupon_id,
                order_id,
            } => match self.coupon(coupon_id)?.status {
                CouponStatus::Locked { order_id: holder } if holder == order_id => {
                    CouponEvent::CouponReleased {
                        coupon_id,
                        order_id,
                    }
                }
                // Not held by this order (never was, released already, held by another
                // order since, or redeemed): nothing to give back.
                _ => return Ok(()),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CouponEvent::CouponBatchCreated { terms } => self.terms = Some(terms),
            CouponEvent::CouponClaimed {
                coupon_id, user_id, ..
            } => {
                self.coupons.insert(
                    coupon_id,
                    HeldCoupon {
                        owner: user_id,
                        status: CouponStatus::Claimed,
                    },
                );
                *self.held_by.entry(user_id).or_default() += 1;
            }
            CouponEvent::CouponLocked {
                coupon_id,
                order_id,
            } => {
                if let Some(c) = self.coupons.get_mut(&coupon_id) {
                    c.status = CouponStatus::Locked { order_id };
                }
            }
            CouponEvent::CouponRedeemed {
                coupon_id,
                order_id,
            } => {
                if let Some(c) = self.coupons.get_mut(&coupon_id) {
                    c.status = CouponStatus::Redeemed { order_id };
                }
            }
            CouponEvent::CouponReleased { coupon_id, .. } => {
                if let Some(c) = self.coupons.get_mut(&coupon_id) {
                    c.status = CouponStatus::Claimed;
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

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn now() -> DateTime<Utc> {
        at("2026-06-10T12:00:00Z")
    }

    fn terms() -> BatchTerms {
        BatchTerms {
            batch_id: id(1),
            name: CampaignName::parse("Welcome").unwrap(),
            discount: CouponDiscount::AmountOff {
                amount_off: eur(500),
            },
            min_spend: eur(3000),
            quota: 2,
            per_user_limit: 1,
            valid_from: at("2026-06-01T00:00:00Z"),
            valid_until: at("2026-07-01T00:00:00Z"),
        }
    }

    fn created() -> CouponEvent {
        CouponEvent::CouponBatchCreated { terms: terms() }
    }

    fn claimed(coupon: u128, user: u128) -> CouponEvent {
        CouponEvent::CouponClaimed {
            coupon_id: id(coupon),
            user_id: id(user),
            claimed_at: now(),
        }
    }

    fn claim(coupon: u128, user: u128) -> CouponCommand {
        CouponCommand::Claim {
            coupon_id: id(coupon),
            user_id: id(user),
            at: now(),
        }
    }

    fn lock(order: u128) -> CouponCommand {
        CouponCommand::Lock {
            coupon_id: id(10),
            order_id: id(order),
            user_id: id(100),
            at: now(),
        }
    }

    fn locked(order: u128) -> CouponEvent {
        CouponEvent::CouponLocked {
            coupon_id: id(10),
            order_id: id(order),
        }
    }

    fn given(events: Vec<CouponEvent>) -> AggregateTestExecutor<CouponBatch> {
        TestFramework::<CouponBatch>::with(()).given(events)
    }

    fn refused(events: Vec<CouponEvent>, command: CouponCommand) -> CouponError {
        given(events).when(command).inspect_result().unwrap_err()
    }

    #[test]
    fn create_batch_records_its_terms_once() {
        given(vec![])
            .when(CouponCommand::CreateBatch { terms: terms() })
            .then_expect_events(vec![created()]);
        given(vec![created()])
            .when(CouponCommand::CreateBatch { terms: terms() })
            .then_expect_events(vec![]);
        let mut other = terms();
        other.quota = 5;
        assert_eq!(
            refused(vec![created()], CouponCommand::CreateBatch { terms: other }).code(),
            "coupon_batch_exists"
        );
    }

    #[test]
    fn create_batch_refuses_bad_terms() {
        let mut cases = Vec::new();
        let mut t = terms();
        t.valid_until = t.valid_from;
        cases.push(t);
        let mut t = terms();
        t.quota = 0;
        cases.push(t);
        let mut t = terms();
        t.per_user_limit = 3;
        cases.push(t);
        let mut t = terms();
        t.per_user_limit = 0;
        cases.push(t);
        let mut t = terms();
        t.discount = CouponDiscount::AmountOff {
            amount_off: usd(500),
        };
        cases.push(t);
        let mut t = terms();
        t.discount = CouponDiscount::AmountOff { amount_off: eur(0) };
        cases.push(t);
        for bad in cases {
            let err = refused(vec![], CouponCommand::CreateBatch { terms: bad });
            assert_eq!(err.code(), "invalid_coupon_terms");
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
    }

    #[test]
    fn claim_hands_out_a_coupon_and_repeating_it_is_a_no_op() {
        given(vec![created()])
            .when(claim(10, 100))
            .then_expect_events(vec![claimed(10, 100)]);
        given(vec![created(), claimed(10, 100)])
            .when(claim(10, 100))
            .then_expect_events(vec![]);
        assert_eq!(
            refused(vec![created(), claimed(10, 100)], claim(10, 101)),
            CouponError::CouponIdTaken
        );
    }

    #[test]
    fn claim_refuses_over_the_quota() {
        let err = refused(
            vec![created(), claimed(10, 100), claimed(11, 101)],
            claim(12, 102),
        );
        assert_eq!(err, CouponError::Exhausted);
        assert_eq!(err.code(), "coupons_exhausted");
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[test]
    fn claim_refuses_over_the_users_limit() {
        let err = refused(vec![created(), claimed(10, 100)], claim(11, 100));
        assert_eq!(err, CouponError::LimitReached(1));
        assert_eq!(err.code(), "coupon_limit_reached");
    }

    #[test]
    fn claim_refuses_an_expired_or_unknown_batch() {
        let late = CouponCommand::Claim {
            coupon_id: id(10),
            user_id: id(100),
            at: at("2026-07-01T00:00:00Z"),
        };
        assert_eq!(refused(vec![created()], late), CouponError::BatchExpired);
        assert_eq!(refused(vec![], claim(10, 100)).kind(), ErrorKind::NotFound);
    }

    #[test]
    fn a_thousand_claims_on_a_quota_of_100_hand_out_exactly_100() {
        let mut t = terms();
        t.quota = 100;
        t.per_user_limit = 100;
        let mut history = vec![CouponEvent::CouponBatchCreated { terms: t }];
        let (mut accepted, mut exhausted) = (0, 0);
        for n in 0..1000u128 {
            // One command at a time on the state so far, as the command bus runs them.
            match given(history.clone())
                .when(claim(1000 + n, n % 7))
                .inspect_result()
            {
                Ok(events) => {
                    accepted += 1;
                    history.extend(events);
                }
                Err(CouponError::Exhausted) => exhausted += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((accepted, exhausted), (100, 900));
    }

    #[test]
    fn lock_takes_a_claimed_coupon_once() {
        given(vec![created(), claimed(10, 100)])
            .when(lock(7))
            .then_expect_events(vec![locked(7)]);
        given(vec![created(), claimed(10, 100), locked(7)])
            .when(lock(7))
            .then_expect_events(vec![]);
    }

    #[test]
    fn lock_by_another_order_is_refused() {
        let err = refused(vec![created(), claimed(10, 100), locked(7)], lock(8));
        assert_eq!(err, CouponError::InUse);
        assert_eq!(err.code(), "coupon_in_use");
    }

    #[test]
    fn lock_refuses_someone_elses_a_used_an_expired_or_a_future_coupon() {
        let mut foreign = lock(7);
        if let CouponCommand::Lock { user_id, .. } = &mut foreign {
            *user_id = id(101);
        }
        assert_eq!(
            refused(vec![created(), claimed(10, 100)], foreign),
            CouponError::CouponNotFound
        );
        let redeemed = CouponEvent::CouponRedeemed {
            coupon_id: id(10),
            order_id: id(7),
        };
        assert_eq!(
            refused(
                vec![created(), claimed(10, 100), locked(7), redeemed],
                lock(8)
            ),
            CouponError::AlreadyRedeemed
        );
        let mut late = lock(7);
        if let CouponCommand::Lock { at: when, .. } = &mut late {
            *when = at("2026-07-01T00:00:00Z");
        }
        assert_eq!(
            refused(vec![created(), claimed(10, 100)], late),
            CouponError::BatchExpired
        );
        let mut early = lock(7);
        if let CouponCommand::Lock { at: when, .. } = &mut early {
            *when = at("2026-05-31T00:00:00Z");
        }
        assert_eq!(
            refused(vec![created(), claimed(10, 100)], early).code(),
            "coupon_not_yet_valid"
        );
        assert_eq!(
            refused(vec![created()], lock(7)),
            CouponError::CouponNotFound
        );
    }

    #[test]
    fn redeem_uses_the_coupon_of_the_order_holding_it() {
        let redeemed = CouponEvent::CouponRedeemed {
            coupon_id: id(10),
            order_id: id(7),
        };
        let redeem = |order| CouponCommand::Redeem {
            coupon_id: id(10),
            order_id: id(order),
        };
        given(vec![created(), claimed(10, 100), locked(7)])
            .when(redeem(7))
            .then_expect_events(vec![redeemed.clone()]);
        given(vec![
            created(),
            claimed(10, 100),
            locked(7),
            redeemed.clone(),
        ])
        .when(redeem(7))
        .then_expect_events(vec![]);
        assert_eq!(
            refused(vec![created(), claimed(10, 100), locked(7)], redeem(8)),
            CouponError::NotLocked
        );
        assert_eq!(
            refused(vec![created(), claimed(10, 100)], redeem(7)),
            CouponError::NotLocked
        );
        assert_eq!(
            refused(
                vec![created(), claimed(10, 100), locked(7), redeemed],
                redeem(8)
            ),
            CouponError::AlreadyRedeemed
        );
    }

    #[test]
    fn release_gives_the_coupon_back_only_from_the_order_holding_it() {
        let release = |order| CouponCommand::Release {
            coupon_id: id(10),
            order_id: id(order),
        };
        let released = CouponEvent::CouponReleased {
            coupon_id: id(10),
            order_id: id(7),
        };
        given(vec![created(), claimed(10, 100), locked(7)])
            .when(release(7))
            .then_expect_events(vec![released.clone()]);
        given(vec![
            created(),
            claimed(10, 100),
            locked(7),
            released.clone(),
        ])
        .when(release(7))
        .then_expect_events(vec![]);
        given(vec![created(), claimed(10, 100), locked(8)])
            .when(release(7))
            .then_expect_events(vec![]);
        // Released, it can be locked by another order.
        given(vec![created(), claimed(10, 100), locked(7), released])
            .when(lock(8))
            .then_expect_events(vec![locked(8)]);
    }

    #[test]
    fn the_state_tracks_each_coupon_and_each_owner() {
        let mut batch = CouponBatch::default();
        for event in [created(), claimed(10, 100), locked(7)] {
            batch.apply(event);
        }
        assert_eq!(batch.claimed(), 1);
        assert_eq!(batch.held_by(id(100)), 1);
        assert_eq!(batch.held_by(id(101)), 0);
        let offer = batch.offer(id(10)).unwrap();
        assert_eq!(offer.owner, id(100));
        assert_eq!(offer.status, CouponStatus::Locked { order_id: id(7) });
        assert_eq!(offer.status.as_str(), "locked");
        assert_eq!(offer.terms.currency().as_str(), "EUR");
        assert!(batch.offer(id(11)).is_none());
    }
}
