//! The `products` read model: the catalog as shoppers browse it, one row per SKU with the
//! fields of its product (SPU) copied in, its price, specification, weight, purchase limit
//! and whether it is on sale. Every row of a product carries the product's version.

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
                product_id,
                name,
                description,
                category,
                category_id,
                media,
                skus,
            } => {
                let media: Vec<String> = media.into_iter().map(String::from).collect();
                for sku in skus {
                    let spec: serde_json::Map<String, serde_json::Value> = sku
                        .spec
                        .into_iter()
                        .map(|(k, v)| (String::from(k), serde_json::Value::String(v.into())))
                        .collect();
                    sqlx::query(
                        "INSERT INTO products (sku, product_id, name, description, category,
                            category_id, media, spec, price_minor, currency, weight_grams,
                            max_per_customer, on_sale, version, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, true, $13, $14, $14)
                         ON CONFLICT (sku) DO NOTHING",
                    )
                    .bind(sku.sku.as_str())
                    .bind(product_id.as_str())
                    .bind(name.as_str())
                    .bind(description.as_str())
                    .bind(category.as_str())
                    .bind(category_id.map(uuid::Uuid::from))
                    .bind(&media)
                    .bind(serde_json::Value::Object(spec))
                    .bind(sku.price.amount_minor())
                    .bind(sku.price.currency().as_str())
                    .bind(sku.weight_grams.map(i64::from))
                    .bind(sku.max_per_customer.map(|q| i64::from(q.get())))
                    .bind(facts.sequence)
                    .bind(facts.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                }
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
                        currency = coalesce($6, currency)
                     WHERE product_id = $1",
                )
                .bind(id.as_str())
                .bind(name.map(String::from))
                .bind(description.map(String::from))
                .bind(category.map(String::from))
                .bind(price.as_ref().map(|p| p.amount_minor()))
                .bind(price.as_ref().map(|p| p.currency().as_str().to_string()))
                .execute(&mut *tx)
                .await?;
            }
            ProductEvent::SkuPriceChanged { sku, price } => {
                sqlx::query(
                    "UPDATE products SET price_minor = $3, currency = $4
                     WHERE product_id = $1 AND sku = $2",
                )
                .bind(id.as_str())
                .bind(sku.as_str())
                .bind(price.amount_minor())
                .bind(price.currency().as_str())
                .execute(&mut *tx)
                .await?;
            }
            ProductEvent::SkuDelisted { sku } => set_on_sale(tx, &id, &sku, false).await?,
            ProductEvent::SkuListed { sku } => set_on_sale(tx, &id, &sku, true).await?,
        }
        // Every row of the product reflects the product's version.
        sqlx::query("UPDATE products SET version = $2, updated_at = $3 WHERE product_id = $1")
            .bind(id.as_str())
            .bind(facts.sequence)
            .bind(facts.recorded_at)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

async fn set_on_sale(
    tx: &mut PgConnection,
    product: &ordo_aggregates::common::ProductId,
    sku: &ordo_aggregates::common::Sku,
    on_sale: bool,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE products SET on_sale = $3 WHERE product_id = $1 AND sku = $2")
        .bind(product.as_str())
        .bind(sku.as_str())
        .bind(on_sale)
        .execute(&mut *tx)
        .await
        .map(drop)
}
