//! A product of the catalog (an SPU): what shoppers see, with its name, description,
//! category, ordered media, and one or more SKUs, the variants actually sold. Each SKU has
//! its specification values (colour, size...), its price in minor units, its weight in
//! grams, an optional purchase limit per customer, and whether it is on sale (listed) or
//! delisted. Stock is not kept here but in the inventory item of each SKU.
//!
//! A product created by the single-SKU form (`sku` and `price`, no product id) is
//! identified by its SKU ([`ProductId::of_single_sku`]); every product stored before
//! products had several SKUs is such a product, and its `ProductCreated` of version 1 is
//! upcast to version 2 with that one SKU (see `ordo_schemas::upcasters`).
//!
//! Rules: a product has 1 to [`MAX_SKUS`] SKUs, each SKU at most once; every price is
//! above zero; at most [`MAX_MEDIA`] media and [`MAX_SPECS`] specification values per SKU.
//! That a SKU belongs to no other product is checked against the write side's SKU index
//! by the caller, and enforced by that index's key (see `ordo_store::catalog`).
//! Listing a listed SKU or delisting a delisted one is a no-op.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    Category, CategoryId, Description, DomainError, ErrorKind, MediaUrl, Money, ProductId,
    ProductName, Quantity, Sku, SpecName, SpecValue,
};

/// Most SKUs one product has.
pub const MAX_SKUS: usize = 100;
/// Most media URLs one product has.
pub const MAX_MEDIA: usize = 20;
/// Most specification values one SKU has.
pub const MAX_SPECS: usize = 10;
/// Heaviest SKU, in grams (1,000 kg).
pub const MAX_WEIGHT_GRAMS: u32 = 1_000_000_000;

/// One SKU of a product as it is created: its code, specification values, price, weight and
/// purchase limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuSpec {
    /// The SKU's code.
    pub sku: Sku,
    /// Specification values, such as colour = black, size = M.
    #[serde(default)]
    pub spec: BTreeMap<SpecName, SpecValue>,
    /// Unit price.
    pub price: Money,
    /// Shipping weight in grams, when known.
    #[serde(default)]
    pub weight_grams: Option<u32>,
    /// Most units one customer may order over all their orders that were not cancelled,
    /// rejected or expired; no limit when absent.
    #[serde(default)]
    pub max_per_customer: Option<Quantity>,
}

/// A price given to one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuPrice {
    /// The SKU.
    pub sku: Sku,
    /// Its new unit price.
    pub price: Money,
}

/// Commands accepted by a [`Product`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProductCommand {
    /// Adds the product to the catalog with its SKUs, all on sale.
    Create {
        /// The product's id (also the aggregate id).
        product_id: ProductId,
        /// Name shown to shoppers.
        name: ProductName,
        /// Longer description.
        description: Description,
        /// Category label the product is browsed under.
        category: Category,
        /// The category of the catalog's tree it belongs to, if any (checked to exist by
        /// the caller against the write side's category tree).
        category_id: Option<CategoryId>,
        /// Pictures and videos, in the order they are shown.
        media: Vec<MediaUrl>,
        /// The SKUs sold.
        skus: Vec<SkuSpec>,
    },
    /// Changes some of the product's fields, and the price of one SKU; absent fields stay
    /// as they are.
    Update {
        /// New name.
        name: Option<ProductName>,
        /// New description.
        description: Option<Description>,
        /// New category label.
        category: Option<Category>,
        /// New price of one SKU.
        price: Option<SkuPrice>,
    },
    /// Takes a SKU off sale: it can no longer be ordered or put in a cart.
    Delist {
        /// The SKU.
        sku: Sku,
    },
    /// Puts a delisted SKU on sale again.
    List {
        /// The SKU.
        sku: Sku,
    },
}

/// Events of a [`Product`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProductEvent {
    /// The product was added to the catalog with its SKUs, all on sale (version 2; version
    /// 1 had one SKU and is upcast).
    ProductCreated {
        /// The product's id.
        product_id: ProductId,
        /// Name shown to shoppers.
        name: ProductName,
        /// Longer description.
        description: Description,
        /// Category label.
        category: Category,
        /// Category of the catalog's tree, if any.
        #[serde(default)]
        category_id: Option<CategoryId>,
        /// Media, in order.
        #[serde(default)]
        media: Vec<MediaUrl>,
        /// The SKUs.
        skus: Vec<SkuSpec>,
    },
    /// Some fields of the product changed; only changed fields are present.
    ProductUpdated {
        /// New name, if it changed.
        #[serde(default)]
        name: Option<ProductName>,
        /// New description, if it changed.
        #[serde(default)]
        description: Option<Description>,
        /// New category, if it changed.
        #[serde(default)]
        category: Option<Category>,
        /// Written only before prices had an event of their own: the new price of the
        /// product's only SKU, which is the SKU the product is identified by. Never
        /// written now; a price change is [`ProductEvent::SkuPriceChanged`].
        #[serde(default)]
        price: Option<Money>,
    },
    /// The price of one SKU changed.
    SkuPriceChanged {
        /// The SKU.
        sku: Sku,
        /// Its new unit price.
        price: Money,
    },
    /// A SKU was taken off sale.
    SkuDelisted {
        /// The SKU.
        sku: Sku,
    },
    /// A delisted SKU was put on sale again.
    SkuListed {
        /// The SKU.
        sku: Sku,
    },
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> String {
        match self {
            ProductEvent::ProductCreated { .. } => "ProductCreated",
            ProductEvent::ProductUpdated { .. } => "ProductUpdated",
            ProductEvent::SkuPriceChanged { .. } => "SkuPriceChanged",
            ProductEvent::SkuDelisted { .. } => "SkuDelisted",
            ProductEvent::SkuListed { .. } => "SkuListed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            ProductEvent::ProductCreated { .. } => "2",
            _ => "1",
        }
        .to_string()
    }
}

/// Why a [`ProductCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// A product with this id already exists.
    #[error("product {product_id} already exists")]
    AlreadyExists {
        /// The id taken.
        product_id: ProductId,
    },
    /// No product with this id exists.
    #[error("product not found")]
    NotFound,
    /// The product names no SKU, or more than [`MAX_SKUS`].
    #[error("a product has 1 to {MAX_SKUS} SKUs")]
    SkuCount,
    /// The same SKU is named twice.
    #[error("sku {sku} appears more than once")]
    DuplicateSku {
        /// The repeated SKU.
        sku: Sku,
    },
    /// A price of zero.
    #[error("the price of {sku} must be above zero")]
    PriceNotPositive {
        /// The SKU.
        sku: Sku,
    },
    /// Too many media or specification values, or an impossible weight.
    #[error("{0}")]
    OutOfBounds(&'static str),
    /// The product has no such SKU.
    #[error("the product has no SKU {sku}")]
    SkuNotFound {
        /// The SKU named.
        sku: Sku,
    },
}

impl ProductError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ProductError::AlreadyExists { .. } => "product_exists",
            ProductError::NotFound => "product_not_found",
            ProductError::SkuCount => "sku_count",
            ProductError::DuplicateSku { .. } => "duplicate_sku",
            ProductError::PriceNotPositive { .. } => "price_not_positive",
            ProductError::OutOfBounds(_) => "out_of_bounds",
            ProductError::SkuNotFound { .. } => "sku_not_found",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProductError::AlreadyExists { .. } => ErrorKind::Refused,
            ProductError::NotFound | ProductError::SkuNotFound { .. } => ErrorKind::NotFound,
            ProductError::SkuCount
            | ProductError::DuplicateSku { .. }
            | ProductError::PriceNotPositive { .. }
            | ProductError::OutOfBounds(_) => ErrorKind::Invalid,
        }
    }
}

impl DomainError for ProductError {
    fn code(&self) -> &'static str {
        ProductError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        ProductError::kind(self)
    }
}

/// One SKU of a product as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuState {
    /// Code, specification, price, weight and limit.
    pub spec: SkuSpec,
    /// False once delisted: it cannot be ordered.
    pub on_sale: bool,
}

/// The fields of a product in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductDetails {
    /// The product's id.
    pub product_id: ProductId,
    /// Name shown to shoppers.
    pub name: ProductName,
    /// Longer description.
    pub description: Description,
    /// Category label.
    pub category: Category,
    /// Category of the catalog's tree, if any.
    pub category_id: Option<CategoryId>,
    /// Media, in order.
    pub media: Vec<MediaUrl>,
    /// The SKUs, in the order they were given.
    pub skus: Vec<SkuState>,
}

/// A catalog product.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Product {
    details: Option<ProductDetails>,
}

impl Product {
    /// The product's fields, once created.
    pub fn details(&self) -> Option<&ProductDetails> {
        self.details.as_ref()
    }

    /// True once the product has been created.
    pub fn exists(&self) -> bool {
        self.details.is_some()
    }

    /// The SKU `sku` of this product, if it has it.
    pub fn sku(&self, sku: &Sku) -> Option<&SkuState> {
        self.details
            .as_ref()?
            .skus
            .iter()
            .find(|s| &s.spec.sku == sku)
    }

    fn sku_mut(&mut self, sku: &Sku) -> Option<&mut SkuState> {
        self.details
            .as_mut()?
            .skus
            .iter_mut()
            .find(|s| &s.spec.sku == sku)
    }

    fn listed(&self, sku: &Sku) -> Result<bool, ProductError> {
        if !self.exists() {
            return Err(ProductError::NotFound);
        }
        self.sku(sku)
            .map(|s| s.on_sale)
            .ok_or_else(|| ProductError::SkuNotFound { sku: sku.clone() })
    }
}

/// Checks the SKUs and media of a new product.
fn check_new(media: &[MediaUrl], skus: &[SkuSpec]) -> Result<(), ProductError> {
    if skus.is_empty() || skus.len() > MAX_SKUS {
        return Err(ProductError::SkuCount);
    }
    if media.len() > MAX_MEDIA {
        return Err(ProductError::OutOfBounds("a product has at most 20 media"));
    }
    let mut seen = BTreeSet::new();
    for sku in skus {
        if !seen.insert(&sku.sku) {
            return Err(ProductError::DuplicateSku {
                sku: sku.sku.clone(),
            });
        }
        if sku.price.amount_minor() <= 0 {
            return Err(ProductError::PriceNotPositive {
                sku: sku.sku.clone(),
            });
        }
        if sku.spec.len() > MAX_SPECS {
            return Err(ProductError::OutOfBounds(
                "a SKU has at most 10 specification values",
            ));
        }
        if sku.weight_grams.is_some_and(|w| w > MAX_WEIGHT_GRAMS) {
            return Err(ProductError::OutOfBounds(
                "weight_grams must be at most 1000000000",
            ));
        }
    }
    Ok(())
}

/// `Some(new)` when `new` is given and differs from `current`.
fn changed<T: PartialEq>(current: &T, new: Option<T>) -> Option<T> {
    new.filter(|n| n != current)
}

impl Aggregate for Product {
    const TYPE: &'static str = "product";
    type Command = ProductCommand;
    type Event = ProductEvent;
    type Error = ProductError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let mut events = Vec::new();
        match command {
            ProductCommand::Create {
                product_id,
                name,
                description,
                category,
                category_id,
                media,
                skus,
            } => {
                if self.details.is_some() {
                    return Err(ProductError::AlreadyExists { product_id });
                }
                check_new(&media, &skus)?;
                events.push(ProductEvent::ProductCreated {
                    product_id,
                    name,
                    description,
                    category,
                    category_id,
                    media,
                    skus,
                });
            }
            ProductCommand::Update {
                name,
                description,
                category,
                price,
            } => {
                let current = self.details.as_ref().ok_or(ProductError::NotFound)?;
                let name = changed(&current.name, name);
                let description = changed(&current.description, description);
                let category = changed(&current.category, category);
                if name.is_some() || description.is_some() || category.is_some() {
                    events.push(ProductEvent::ProductUpdated {
                        name,
                        description,
                        category,
                        price: None,
                    });
                }
                if let Some(SkuPrice { sku, price }) = price {
                    let state = self
                        .sku(&sku)
                        .ok_or_else(|| ProductError::SkuNotFound { sku: sku.clone() })?;
                    if price.amount_minor() <= 0 {
                        return Err(ProductError::PriceNotPositive { sku });
                    }
                    if state.spec.price != price {
                        events.push(ProductEvent::SkuPriceChanged { sku, price });
                    }
                }
            }
            ProductCommand::Delist { sku } => {
                if self.listed(&sku)? {
                    events.push(ProductEvent::SkuDelisted { sku });
                }
            }
            ProductCommand::List { sku } => {
                if !self.listed(&sku)? {
                    events.push(ProductEvent::SkuListed { sku });
                }
            }
        }
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
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
                self.details = Some(ProductDetails {
                    product_id,
                    name,
                    description,
                    category,
                    category_id,
                    media,
                    skus: skus
                        .into_iter()
                        .map(|spec| SkuState {
                            spec,
                            on_sale: true,
                        })
                        .collect(),
                });
            }
            ProductEvent::ProductUpdated {
                name,
                description,
                category,
                price,
            } => {
                if let Some(d) = self.details.as_mut() {
                    if let Some(v) = name {
                        d.name = v;
                    }
                    if let Some(v) = description {
                        d.description = v;
                    }
                    if let Some(v) = category {
                        d.category = v;
                    }
                    if let Some(v) = price {
                        // Only single-SKU products ever had this written.
                        for sku in d.skus.iter_mut() {
                            sku.spec.price = v.clone();
                        }
                    }
                }
            }
            ProductEvent::SkuPriceChanged { sku, price } => {
                if let Some(s) = self.sku_mut(&sku) {
                    s.spec.price = price;
                }
            }
            ProductEvent::SkuDelisted { sku } => {
                if let Some(s) = self.sku_mut(&sku) {
                    s.on_sale = false;
                }
            }
            ProductEvent::SkuListed { sku } => {
                if let Some(s) = self.sku_mut(&sku) {
                    s.on_sale = true;
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

    fn given(events: Vec<ProductEvent>) -> AggregateTestExecutor<Product> {
        TestFramework::<Product>::with(()).given(events)
    }

    fn tee(code: &str, size: &str, price: i64) -> SkuSpec {
        SkuSpec {
            sku: sku(code),
            spec: BTreeMap::from([(
                SpecName::parse("size").unwrap(),
                SpecValue::parse(size).unwrap(),
            )]),
            price: eur(price),
            weight_grams: Some(180),
            max_per_customer: None,
        }
    }

    fn product_id() -> ProductId {
        ProductId::parse("TEE").unwrap()
    }

    fn created() -> ProductEvent {
        ProductEvent::ProductCreated {
            product_id: product_id(),
            name: ProductName::parse("Tee").unwrap(),
            description: Description::parse("A tee").unwrap(),
            category: Category::parse("Apparel").unwrap(),
            category_id: None,
            media: vec![MediaUrl::parse("https://img.example/tee.jpg").unwrap()],
            skus: vec![tee("TEE-M", "M", 2000), tee("TEE-L", "L", 2200)],
        }
    }

    fn create(skus: Vec<SkuSpec>) -> ProductCommand {
        ProductCommand::Create {
            product_id: product_id(),
            name: ProductName::parse("Tee").unwrap(),
            description: Description::parse("A tee").unwrap(),
            category: Category::parse("Apparel").unwrap(),
            category_id: None,
            media: vec![MediaUrl::parse("https://img.example/tee.jpg").unwrap()],
            skus,
        }
    }

    fn update() -> ProductCommand {
        ProductCommand::Update {
            name: None,
            description: None,
            category: None,
            price: None,
        }
    }

    #[test]
    fn create_adds_the_product_with_its_skus() {
        given(vec![])
            .when(create(vec![
                tee("TEE-M", "M", 2000),
                tee("TEE-L", "L", 2200),
            ]))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn create_refuses_an_existing_product() {
        let err = given(vec![created()])
            .when(create(vec![tee("TEE-S", "S", 2000)]))
            .inspect_result()
            .unwrap_err();
        assert_eq!(
            err,
            ProductError::AlreadyExists {
                product_id: product_id()
            }
        );
        assert_eq!(err.code(), "product_exists");
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[test]
    fn create_refuses_a_duplicate_sku() {
        let err = given(vec![])
            .when(create(vec![
                tee("TEE-M", "M", 2000),
                tee("tee-m", "L", 2200),
            ]))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, ProductError::DuplicateSku { sku: sku("TEE-M") });
        assert_eq!(err.code(), "duplicate_sku");
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn create_refuses_a_price_of_zero() {
        given(vec![])
            .when(create(vec![tee("TEE-M", "M", 0)]))
            .then_expect_error(ProductError::PriceNotPositive { sku: sku("TEE-M") });
    }

    #[test]
    fn create_refuses_no_sku_and_too_many() {
        given(vec![])
            .when(create(vec![]))
            .then_expect_error(ProductError::SkuCount);
        let many = (0..=MAX_SKUS)
            .map(|n| tee(&format!("TEE-{n}"), "M", 100))
            .collect();
        given(vec![])
            .when(create(many))
            .then_expect_error(ProductError::SkuCount);
    }

    #[test]
    fn create_refuses_too_many_media_and_specs() {
        let mut command = create(vec![tee("TEE-M", "M", 2000)]);
        if let ProductCommand::Create { media, .. } = &mut command {
            *media = vec![MediaUrl::parse("https://img.example/a.jpg").unwrap(); MAX_MEDIA + 1];
        }
        let err = given(vec![]).when(command).inspect_result().unwrap_err();
        assert_eq!(err.code(), "out_of_bounds");
        let mut sku = tee("TEE-M", "M", 2000);
        for n in 0..=MAX_SPECS {
            sku.spec.insert(
                SpecName::parse(&format!("s{n}")).unwrap(),
                SpecValue::parse("v").unwrap(),
            );
        }
        let err = given(vec![])
            .when(create(vec![sku]))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.code(), "out_of_bounds");
    }

    #[test]
    fn update_records_changed_fields_and_the_price_as_its_own_event() {
        given(vec![created()])
            .when(ProductCommand::Update {
                name: Some(ProductName::parse("Tee").unwrap()),
                description: Some(Description::parse("A soft tee").unwrap()),
                category: None,
                price: Some(SkuPrice {
                    sku: sku("TEE-L"),
                    price: eur(2500),
                }),
            })
            .then_expect_events(vec![
                ProductEvent::ProductUpdated {
                    name: None,
                    description: Some(Description::parse("A soft tee").unwrap()),
                    category: None,
                    price: None,
                },
                ProductEvent::SkuPriceChanged {
                    sku: sku("TEE-L"),
                    price: eur(2500),
                },
            ]);
    }

    #[test]
    fn update_that_changes_nothing_is_a_no_op() {
        given(vec![created()])
            .when(ProductCommand::Update {
                name: Some(ProductName::parse("Tee").unwrap()),
                description: None,
                category: Some(Category::parse("Apparel").unwrap()),
                price: Some(SkuPrice {
                    sku: sku("TEE-M"),
                    price: eur(2000),
                }),
            })
            .then_expect_events(vec![]);
        given(vec![created()])
            .when(update())
            .then_expect_events(vec![]);
    }

    #[test]
    fn update_refuses_a_price_of_zero_and_an_unknown_sku() {
        given(vec![created()])
            .when(ProductCommand::Update {
                name: None,
                description: None,
                category: None,
                price: Some(SkuPrice {
                    sku: sku("TEE-M"),
                    price: eur(0),
                }),
            })
            .then_expect_error(ProductError::PriceNotPositive { sku: sku("TEE-M") });
        given(vec![created()])
            .when(ProductCommand::Update {
                name: None,
                description: None,
                category: None,
                price: Some(SkuPrice {
                    sku: sku("MUG"),
                    price: eur(10),
                }),
            })
            .then_expect_error(ProductError::SkuNotFound { sku: sku("MUG") });
    }

    #[test]
    fn update_of_unknown_product_is_not_found() {
        let err = given(vec![]).when(update()).inspect_result().unwrap_err();
        assert_eq!(err, ProductError::NotFound);
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn delist_then_list_and_their_repeats_are_no_ops() {
        given(vec![created()])
            .when(ProductCommand::Delist { sku: sku("TEE-M") })
            .then_expect_events(vec![ProductEvent::SkuDelisted { sku: sku("TEE-M") }]);
        given(vec![
            created(),
            ProductEvent::SkuDelisted { sku: sku("TEE-M") },
        ])
        .when(ProductCommand::Delist { sku: sku("TEE-M") })
        .then_expect_events(vec![]);
        given(vec![
            created(),
            ProductEvent::SkuDelisted { sku: sku("TEE-M") },
        ])
        .when(ProductCommand::List { sku: sku("TEE-M") })
        .then_expect_events(vec![ProductEvent::SkuListed { sku: sku("TEE-M") }]);
        given(vec![created()])
            .when(ProductCommand::List { sku: sku("TEE-M") })
            .then_expect_events(vec![]);
    }

    #[test]
    fn delist_of_unknown_sku_or_product_is_not_found() {
        given(vec![created()])
            .when(ProductCommand::Delist { sku: sku("MUG") })
            .then_expect_error(ProductError::SkuNotFound { sku: sku("MUG") });
        given(vec![])
            .when(ProductCommand::List { sku: sku("MUG") })
            .then_expect_error(ProductError::NotFound);
    }

    #[test]
    fn events_are_applied_to_the_state() {
        let mut p = Product::default();
        p.apply(created());
        p.apply(ProductEvent::SkuPriceChanged {
            sku: sku("TEE-L"),
            price: eur(900),
        });
        p.apply(ProductEvent::SkuDelisted { sku: sku("TEE-M") });
        assert_eq!(p.sku(&sku("TEE-L")).unwrap().spec.price, eur(900));
        assert!(p.sku(&sku("TEE-L")).unwrap().on_sale);
        assert!(!p.sku(&sku("TEE-M")).unwrap().on_sale);
        assert_eq!(p.sku(&sku("TEE-M")).unwrap().spec.price, eur(2000));
    }

    #[test]
    fn a_legacy_price_update_prices_the_only_sku() {
        let mut p = Product::default();
        p.apply(ProductEvent::ProductCreated {
            product_id: ProductId::parse("MUG").unwrap(),
            name: ProductName::parse("Mug").unwrap(),
            description: Description::parse("").unwrap(),
            category: Category::parse("Kitchen").unwrap(),
            category_id: None,
            media: vec![],
            skus: vec![SkuSpec {
                sku: sku("MUG"),
                spec: BTreeMap::new(),
                price: eur(1200),
                weight_grams: None,
                max_per_customer: None,
            }],
        });
        p.apply(ProductEvent::ProductUpdated {
            name: None,
            description: None,
            category: Some(Category::parse("Tableware").unwrap()),
            price: Some(eur(900)),
        });
        let d = p.details().unwrap();
        assert_eq!(d.category.as_str(), "Tableware");
        assert_eq!(p.sku(&sku("MUG")).unwrap().spec.price, eur(900));
    }
}
