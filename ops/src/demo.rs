//! `ordo demo-data`: a small demo catalog with stock, loaded through the same commands an
//! admin would send. Running it again changes nothing.

use ordo_aggregates::common::{
    Category, Currency, Description, Money, ProductId, ProductName, Quantity, Sku,
};
use ordo_aggregates::inventory::InventoryCommand;
use ordo_aggregates::product::{ProductCommand, SkuSpec};
use ordo_store::CommandMetadata;
use uuid::Uuid;

use ordo_aggregates::inventory::InventoryItem;
use ordo_aggregates::product::Product;
use ordo_store::CommandBus;

/// (sku, name, category, price in cents, stock)
const PRODUCTS: &[(&str, &str, &str, &str, i64, i64)] = &[
    (
        "TEE-BLACK-M",
        "Black T-shirt (M)",
        "apparel",
        "Organic cotton, medium.",
        1999,
        50,
    ),
    (
        "TEE-WHITE-M",
        "White T-shirt (M)",
        "apparel",
        "Organic cotton, medium.",
        1999,
        50,
    ),
    (
        "MUG-CLASSIC",
        "Classic mug",
        "kitchen",
        "Stoneware, 350 ml.",
        1250,
        100,
    ),
    (
        "BOOK-RUST",
        "The Rust Programming Language",
        "books",
        "The book, in print.",
        3999,
        20,
    ),
    (
        "HEADPHONES-PRO",
        "Studio headphones",
        "electronics",
        "Closed-back, wired.",
        14900,
        5,
    ),
];

/// Creates the demo products and gives each its stock, once.
pub async fn load(
    products: &CommandBus<Product>,
    inventory: &CommandBus<InventoryItem>,
) -> anyhow::Result<usize> {
    let usd = Currency::parse("USD").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut created = 0;
    for (sku, name, category, description, price, stock) in PRODUCTS {
        let sku = Sku::parse(sku).map_err(|e| anyhow::anyhow!("{e}"))?;
        // Deterministic command ids: a second run is recognisably the same request.
        let metadata = |step: &str| {
            let id = Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("ordo-demo:{sku}:{step}").as_bytes(),
            );
            CommandMetadata::from_request(&id.to_string(), None)
        };
        let (_, version) = products.load(sku.as_str()).await?;
        if version > 0 {
            continue;
        }
        products
            .execute(
                sku.as_str(),
                ProductCommand::Create {
                    product_id: ProductId::of_single_sku(&sku),
                    name: ProductName::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?,
                    description: Description::parse(description)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                    category: Category::parse(category).map_err(|e| anyhow::anyhow!("{e}"))?,
                    category_id: None,
                    media: vec![],
                    skus: vec![SkuSpec {
                        sku: sku.clone(),
                        spec: Default::default(),
                        price: Money::new(*price, usd.clone())
                            .map_err(|e| anyhow::anyhow!("{e}"))?,
                        weight_grams: None,
                        max_per_customer: None,
                    }],
                },
                metadata("create"),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (_, stock_version) = inventory.load(sku.as_str()).await?;
        if stock_version == 0 {
            inventory
                .execute(
                    sku.as_str(),
                    InventoryCommand::Restock {
                        sku: sku.clone(),
                        quantity: Quantity::parse(*stock).map_err(|e| anyhow::anyhow!("{e}"))?,
                    },
                    metadata("restock"),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        created += 1;
    }
    Ok(created)
}
