//! The `coupon_batches` and `coupons` read models: each batch's terms with how many of its
//! coupons were claimed, and each claimed coupon with its owner, its status (`claimed`,
//! `locked`, `redeemed`) and the order holding or having used it.

use async_trait::async_trait;
use ordo_aggregates::coupon::{CouponDiscount, CouponEvent};
use ordo_contracts::CouponBatchMessage;
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::worker::Projection;

/// Builds `coupon_batches` and `coupons` from the coupon batch stream.
pub struct CouponsProjection;

#[async_trait]
impl Projection for CouponsProjection {
    fn name(&self) -> &'static str {
        "projection-coupons"
    }

    fn aggregate_type(&self) -> &'static str {
        "coupon_batch"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["coupon_batches", "coupons"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let CouponBatchMessage { id, event, facts } = ordo_contracts::coupon_batch(event)?;
        let batch_id = Uuid::from(id);
        let (coupon_id, status, order_id) = match event {
            CouponEvent::CouponBatchCreated { terms } => {
                let value = match &terms.discount {
                    CouponDiscount::AmountOff { amount_off } => amount_off.amount_minor(),
                    CouponDiscount::PercentOff { percent_off } => i64::from(percent_off.get()),
                };
                sqlx::query(
                    "INSERT INTO coupon_batches (batch_id, name, kind, value, currency,
                        min_spend_minor, quota, per_user_limit, valid_from, valid_until, version,
                        created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (batch_id) DO NOTHING",
                )
                .bind(batch_id)
                .bind(terms.name.as_str())
                .bind(terms.discount.kind())
                .bind(value)
                .bind(terms.currency().as_str())
                .bind(terms.min_spend.amount_minor())
                .bind(i64::from(terms.quota))
                .bind(i64::from(terms.per_user_limit))
                .bind(terms.valid_from)
                .bind(terms.valid_until)
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
                return Ok(());
            }
            CouponEvent::CouponClaimed {
                coupon_id,
                user_id,
                claimed_at,
            } => {
                let inserted = sqlx::query(
                    "INSERT INTO coupons (coupon_id, batch_id, user_id, status, claimed_at, updated_at)
                     VALUES ($1, $2, $3, 'claimed', $4, $5) ON CONFLICT (coupon_id) DO NOTHING",
                )
                .bind(Uuid::from(coupon_id))
                .bind(batch_id)
                .bind(Uuid::from(user_id))
                .bind(claimed_at)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE coupon_batches SET claimed = claimed + $2, version = $3
                     WHERE batch_id = $1",
                )
                .bind(batch_id)
                .bind(inserted.rows_affected() as i64)
                .bind(facts.sequence)
                .execute(&mut *tx)
                .await?;
                return Ok(());
            }
            CouponEvent::CouponLocked {
                coupon_id,
                order_id,
            } => (coupon_id, "locked", Some(order_id)),
            CouponEvent::CouponRedeemed {
                coupon_id,
                order_id,
            } => (coupon_id, "redeemed", Some(order_id)),
            CouponEvent::CouponReleased { coupon_id, .. } => (coupon_id, "claimed", None),
        };
        sqlx::query(
            "UPDATE coupons SET status = $2, order_id = $3, updated_at = $4 WHERE coupon_id = $1",
        )
        .bind(Uuid::from(coupon_id))
        .bind(status)
        .bind(order_id.map(Uuid::from))
        .bind(facts.recorded_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE coupon_batches SET version = $2 WHERE batch_id = $1")
            .bind(batch_id)
            .bind(facts.sequence)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}
