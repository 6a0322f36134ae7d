//! The `products` read model: the catalog as shoppers browse it.

use async_trait::async_trait;
use ordo_nats::envelope::ReceivedEvent;
use serde::Deserialize;
use sqlx::PgConnection;

use crate::worker::Projection;

/// Money as it appears in event payloads.
#[derive(Debug, Deserialize)]
pub struct MoneyPayload {
    /// Amount in minor units (cents).
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

#[derive(Deserialize)]
struct ProductCreated {
    sku: String,
    name: String,
    description: String,
    category: String,
    price: MoneyPayload,
}

#[derive(Deserialize)]
struct ProductUpdated {
    name: Option<String>,
    description: Option<String>,
    category: Option<String>,
    price: Option<MoneyPayload>,
}

/// Builds `products` from the product stream.
pub struct ProductsProjection;

#[async_trait]
impl Projection for ProductsProjection {
    fn name(&self) -> &'static str {
        "projection-products"
    }

    fn aggregate_type(&self) -> &'static str {
        "product"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["products"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        match event.event_type.as_str() {
            "ProductCreated" => {
                let created: ProductCreated = serde_json::from_value(event.payload.clone())?;
                sqlx::query(
                    "INSERT INTO products (sku, name, description, category, price_minor, currency, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                     ON CONFLICT (sku) DO NOTHING",
                )
                .bind(&created.sku)
                .bind(&created.name)
                .bind(&created.description)
                .bind(&created.category)
                .bind(created.price.amount_minor)
                .bind(&created.price.currency)
                .bind(event.sequence)
                .bind(event.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            "ProductUpdated" => {
                let updated: ProductUpdated = serde_json::from_value(event.payload.clone())?;
                sqlx::query(
                    "UPDATE products SET
                        name = coalesce($2, name),
                        description = coalesce($3, description),
                        category = coalesce($4, category),
                        price_minor = coalesce($5, price_minor),
                        currency = coalesce($6, currency),
                        version = $7,
                        updated_at = $8
                     WHERE sku = $1",
                )
                .bind(&event.aggregate_id)
                .bind(updated.name)
                .bind(updated.description)
                .bind(updated.category)
                .bind(updated.price.as_ref().map(|p| p.amount_minor))
                .bind(updated.price.as_ref().map(|p| p.currency.clone()))
                .bind(event.sequence)
                .bind(event.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
