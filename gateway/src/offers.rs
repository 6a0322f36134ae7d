//! Promotions and coupons as the rest of the gateway uses them: the two command buses, and
//! what a checkout needs, all read on the write side:
//!
//! - [`Offers::active_promotions`]: the promotions that apply at an instant, loaded from
//!   their aggregates (the open ones are listed by the trigger-kept `promotion_windows`);
//! - [`Offers::chosen_coupons`]: each coupon a shopper names, as its batch holds it;
//! - [`Offers::quote`]: the pricing engine ([`ordo_aggregates::pricing`]) over both;
//! - [`Offers::lock_coupon`], [`Offers::redeem_coupon`], [`Offers::release_coupon`]: the
//!   coupon's life around an order, each idempotent for the same order, so a saga may
//!   repeat any of them. Locking a coupon another order holds is refused
//!   (`coupon_in_use`): of two orders racing for one coupon, exactly one gets it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ordo_aggregates::common::{CouponId, OrderId, UserId};
use ordo_aggregates::coupon::{CouponBatch, CouponCommand, CouponError};
use ordo_aggregates::pricing::{self, ChosenCoupon, PriceLine, PricingError, Quote, QuoteRequest};
use ordo_aggregates::promotion::{Promotion, PromotionTerms};
use ordo_store::{CommandBus, CommandError, CommandMetadata, Committed};
use sqlx::PgPool;

/// Why offers could not be read or priced.
#[derive(Debug, thiserror::Error)]
pub enum OffersError {
    /// The write side could not be read.
    #[error("reading promotions or coupons failed: {0}")]
    Store(String),
    /// The cart cannot be priced.
    #[error(transparent)]
    Pricing(#[from] PricingError),
}

/// The promotion and coupon side of the gateway.
pub struct Offers {
    /// Promotions.
    pub promotions: Arc<CommandBus<Promotion>>,
    /// Coupon batches and their coupons.
    pub coupons: Arc<CommandBus<CouponBatch>>,
    pool: PgPool,
}

impl Offers {
    /// Both buses over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            promotions: Arc::new(CommandBus::new(pool.clone(), ())),
            coupons: Arc::new(CommandBus::new(pool.clone(), ())),
            pool,
        }
    }

    /// Every promotion active at `now`, with its terms as its aggregate holds them.
    pub async fn active_promotions(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<PromotionTerms>, OffersError> {
        let ids = ordo_store::offers::promotions_open_at(&self.pool, now)
            .await
            .map_err(|e| OffersError::Store(e.to_string()))?;
        let mut active = Vec::with_capacity(ids.len());
        for id in ids {
            let (promotion, _) = self
                .promotions
                .load(&id.to_string())
                .await
                .map_err(|e| OffersError::Store(e.to_string()))?;
            if let Some(terms) = promotion.terms().filter(|t| t.is_active(now)) {
                active.push(terms.clone());
            }
        }
        Ok(active)
    }

    /// Each coupon named, as its batch holds it (`offer: None` for an unknown coupon).
    pub async fn chosen_coupons(
        &self,
        coupon_ids: &[CouponId],
    ) -> Result<Vec<ChosenCoupon>, OffersError> {
        let mut chosen = Vec::with_capacity(coupon_ids.len());
        for coupon_id in coupon_ids {
            let owner = ordo_store::offers::coupon_owner(&self.pool, *coupon_id.as_uuid())
                .await
                .map_err(|e| OffersError::Store(e.to_string()))?;
            let offer = match owner {
                Some((batch_id, _)) => {
                    let (batch, _) = self
                        .coupons
                        .load(&batch_id.to_string())
                        .await
                        .map_err(|e| OffersError::Store(e.to_string()))?;
                    batch.offer(*coupon_id)
                }
                None => None,
            };
            chosen.push(ChosenCoupon {
                coupon_id: *coupon_id,
                offer,
            });
        }
        Ok(chosen)
    }

    /// Prices `lines` for `customer` at `now` with the active promotions and the coupons
    /// named (see [`ordo_aggregates::pricing`] for the rules).
    pub async fn quote(
        &self,
        customer: UserId,
        order_id: Option<OrderId>,
        lines: &[PriceLine],
        coupon_ids: &[CouponId],
        now: DateTime<Utc>,
    ) -> Result<Quote, OffersError> {
        let promotions = self.active_promotions(now).await?;
        let coupons = self.chosen_coupons(coupon_ids).await?;
        Ok(pricing::quote(QuoteRequest {
            customer,
            order_id,
            lines,
            promotions: &promotions,
            coupons: &coupons,
            now,
        })?)
    }

    /// The batch id of a claimed coupon (its aggregate id), or `CouponNotFound`.
    async fn batch_of(&self, coupon_id: CouponId) -> Result<String, CommandError<CouponError>> {
        ordo_store::offers::coupon_owner(&self.pool, *coupon_id.as_uuid())
            .await
            .map_err(|e| CommandError::Store(e.to_string()))?
            .map(|(batch_id, _)| batch_id.to_string())
            .ok_or(CommandError::Rejected(CouponError::CouponNotFound))
    }

    /// Order `order_id` of `customer` takes the coupon (refused when another order holds it).
    pub async fn lock_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        customer: UserId,
        now: DateTime<Utc>,
        metadata: CommandMetadata,
    ) -> Result<Committed<ordo_aggregates::coupon::CouponEvent>, CommandError<CouponError>> {
        let batch = self.batch_of(coupon_id).await?;
        self.coupons
            .execute(
                &batch,
                CouponCommand::Lock {
                    coupon_id,
                    order_id,
                    user_id: customer,
                    at: now,
                },
                metadata,
            )
            .await
    }

    /// The order holding the coupon was paid: the coupon is used.
    pub async fn redeem_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<Committed<ordo_aggregates::coupon::CouponEvent>, CommandError<CouponError>> {
        let batch = self.batch_of(coupon_id).await?;
        self.coupons
            .execute(
                &batch,
                CouponCommand::Redeem {
                    coupon_id,
                    order_id,
                },
                metadata,
            )
            .await
    }

    /// The order holding the coupon was rejected, cancelled or expired: claimed again.
    pub async fn release_coupon(
        &self,
        coupon_id: CouponId,
        order_id: OrderId,
        metadata: CommandMetadata,
    ) -> Result<Committed<ordo_aggregates::coupon::CouponEvent>, CommandError<CouponError>> {
        let batch = self.batch_of(coupon_id).await?;
        self.coupons
            .execute(
                &batch,
                CouponCommand::Release {
                    coupon_id,
                    order_id,
                },
                metadata,
            )
            .await
    }
}
