//! The shipping fee rules on the write side: one set (`shipping_rule_set`,
//! `shipping_rules`, migration 0111), replaced whole in one transaction by an admin's
//! command and read by every checkout to price its delivery.

use ordo_aggregates::common::Currency;
use ordo_aggregates::shipping::{ShippingRule, ShippingRules};
use sqlx::PgPool;
use uuid::Uuid;

/// The rules in force and their version (0 before the first replacement; no rules then).
pub async fn load(pool: &PgPool) -> anyhow::Result<(ShippingRules, i64)> {
    let set: Option<(String, i64)> =
        sqlx::query_as("SELECT currency, version FROM shipping_rule_set WHERE id = 1")
            .fetch_optional(pool)
            .await?;
    let Some((currency, version)) = set else {
        return Ok((ShippingRules::default(), 0));
    };
    type Row = (String, Vec<String>, i64, i64, i64, Option<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT name, provinces, base_fee, base_weight_grams, fee_per_extra_kg, free_over
         FROM shipping_rules ORDER BY position",
    )
    .fetch_all(pool)
    .await?;
    let rules = rows
        .into_iter()
        .map(
            |(name, provinces, base_fee, base_weight_grams, fee_per_extra_kg, free_over)| {
                ShippingRule {
                    name,
                    provinces,
                    base_fee,
                    base_weight_grams: u32::try_from(base_weight_grams).unwrap_or(u32::MAX),
                    fee_per_extra_kg,
                    free_over,
                }
            },
        )
        .collect();
    let currency = Currency::parse(&currency).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rules = ShippingRules::new(currency, rules).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((rules, version))
}

/// Replaces every rule with `rules` (already checked: [`ShippingRules::new`]), in one
/// transaction; answers the new version.
pub async fn replace(
    pool: &PgPool,
    rules: &ShippingRules,
    by: Option<Uuid>,
) -> anyhow::Result<i64> {
    let Some(currency) = rules.currency() else {
        anyhow::bail!("a rule set to store needs its currency");
    };
    let mut tx = pool.begin().await?;
    // One writer at a time: the set's row lock (before the first set, the insert's key).
    sqlx::query(
        "INSERT INTO shipping_rule_set (id, currency, version) VALUES (1, $1, 0)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(currency.as_str())
    .execute(&mut *tx)
    .await?;
    let version: i64 =
        sqlx::query_scalar("SELECT version FROM shipping_rule_set WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query("DELETE FROM shipping_rules")
        .execute(&mut *tx)
        .await?;
    for (position, rule) in rules.rules().iter().enumerate() {
        sqlx::query(
            "INSERT INTO shipping_rules
                (position, name, provinces, base_fee, base_weight_grams, fee_per_extra_kg, free_over)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(i32::try_from(position)?)
        .bind(&rule.name)
        .bind(&rule.provinces)
        .bind(rule.base_fee)
        .bind(i64::from(rule.base_weight_grams))
        .bind(rule.fee_per_extra_kg)
        .bind(rule.free_over)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE shipping_rule_set SET currency = $1, version = $2, replaced_at = now(),
                replaced_by = $3
         WHERE id = 1",
    )
    .bind(currency.as_str())
    .bind(version + 1)
    .bind(by)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(version + 1)
}
