//! The `products` read model: the catalog as shoppers browse it.

use async_trait::async_trait;
use ordo_aggregates::product::ProductEvent;
use ordo_contracts::ProductMessage;
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;

use crate::worker::Projection;

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
        let ProductMessage { id, event, facts } = ordo_contracts::product(event)?;
        match event {
            ProductEvent::ProductCreated {
                sku,
                name,
                description,
                category,
                price,
            } => {
                sqlx::query(
                    "INSERT INTO products (sku, name, description, category, price_minor, currency, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                     ON CONFLICT (sku) DO NOTHING",
                )
                .bind(sku.as_str())
                .bind(name.as_str())
                .bind(description.as_str())
                .bind(category.as_str())
                .bind(price.amount_minor())
                .bind(price.currency().as_str())
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            ProductEvent::ProductUpdated {
                name,
                description,
                category,
                price,
            } => {
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
                .bind(id.as_str())
                .bind(name.map(String::from))
                .bind(description.map(String::from))
                .bind(category.map(String::from))
                .bind(price.as_ref().map(|p| p.amount_minor()))
                .bind(price.as_ref().map(|p| p.currency().as_str().to_string()))
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}
