//! A product of the catalog, identified by its SKU: its name, description, category and
//! price. Stock is not kept here but in the inventory item of the same SKU.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{Category, Description, DomainError, ErrorKind, Money, ProductName, Sku};

/// Commands accepted by a [`Product`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProductCommand {
    /// Adds the product to the catalog.
    Create {
        /// The product's SKU (also the aggregate id).
        sku: Sku,
        /// Name shown to shoppers.
        name: ProductName,
        /// Longer description.
        description: Description,
        /// Category the product is listed under.
        category: Category,
        /// Unit price.
        price: Money,
    },
    /// Changes some of the product's fields; absent fields stay as they are.
    Update {
        /// New name.
        name: Option<ProductName>,
        /// New description.
        description: Option<Description>,
        /// New category.
        category: Option<Category>,
        /// New unit price.
        price: Option<Money>,
    },
}

/// Events of a [`Product`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProductEvent {
    /// The product was added to the catalog.
    ProductCreated {
        /// The product's SKU.
        sku: Sku,
        /// Name shown to shoppers.
        name: ProductName,
        /// Longer description.
        description: Description,
        /// Category the product is listed under.
        category: Category,
        /// Unit price.
        price: Money,
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
        /// New unit price, if it changed.
        #[serde(default)]
        price: Option<Money>,
    },
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> String {
        match self {
            ProductEvent::ProductCreated { .. } => "ProductCreated",
            ProductEvent::ProductUpdated { .. } => "ProductUpdated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`ProductCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// A product with this SKU already exists.
    #[error("product {sku} already exists")]
    AlreadyExists {
        /// The SKU taken.
        sku: Sku,
    },
    /// No product with this SKU exists.
    #[error("product not found")]
    NotFound,
}

impl ProductError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ProductError::AlreadyExists { .. } => "product_exists",
            ProductError::NotFound => "product_not_found",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProductError::AlreadyExists { .. } => ErrorKind::Refused,
            ProductError::NotFound => ErrorKind::NotFound,
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

/// The fields of a product in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductDetails {
    /// The product's SKU.
    pub sku: Sku,
    /// Name shown to shoppers.
    pub name: ProductName,
    /// Longer description.
    pub description: Description,
    /// Category the product is listed under.
    pub category: Category,
    /// Unit price.
    pub price: Money,
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

    /// The SKU, once created.
    pub fn sku(&self) -> Option<&Sku> {
        self.details.as_ref().map(|d| &d.sku)
    }

    /// The unit price, once created.
    pub fn price(&self) -> Option<&Money> {
        self.details.as_ref().map(|d| &d.price)
    }
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
        let event = match command {
            ProductCommand::Create {
                sku,
                name,
                description,
                category,
                price,
            } => {
                if self.details.is_some() {
                    return Err(ProductError::AlreadyExists { sku });
                }
                ProductEvent::ProductCreated {
                    sku,
                    name,
                    description,
                    category,
                    price,
                }
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
                let price = changed(&current.price, price);
                if name.is_none() && description.is_none() && category.is_none() && price.is_none()
                {
                    return Ok(());
                }
                ProductEvent::ProductUpdated {
                    name,
                    description,
                    category,
                    price,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ProductEvent::ProductCreated {
                sku,
                name,
                description,
                category,
                price,
            } => {
                self.details = Some(ProductDetails {
                    sku,
                    name,
                    description,
                    category,
                    price,
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
                        d.price = v;
                    }
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

    fn created() -> ProductEvent {
        ProductEvent::ProductCreated {
            sku: sku("MUG"),
            name: ProductName::parse("Mug").unwrap(),
            description: Description::parse("A mug").unwrap(),
            category: Category::parse("Kitchen").unwrap(),
            price: eur(1200),
        }
    }

    fn create() -> ProductCommand {
        ProductCommand::Create {
            sku: sku("MUG"),
            name: ProductName::parse("Mug").unwrap(),
            description: Description::parse("A mug").unwrap(),
            category: Category::parse("Kitchen").unwrap(),
            price: eur(1200),
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
    fn create_adds_the_product() {
        given(vec![])
            .when(create())
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn create_refuses_an_existing_sku() {
        let err = given(vec![created()])
            .when(create())
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, ProductError::AlreadyExists { sku: sku("MUG") });
        assert_eq!(err.code(), "product_exists");
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[test]
    fn update_records_only_changed_fields() {
        given(vec![created()])
            .when(ProductCommand::Update {
                name: Some(ProductName::parse("Mug").unwrap()),
                description: Some(Description::parse("A large mug").unwrap()),
                category: None,
                price: Some(eur(1500)),
            })
            .then_expect_events(vec![ProductEvent::ProductUpdated {
                name: None,
                description: Some(Description::parse("A large mug").unwrap()),
                category: None,
                price: Some(eur(1500)),
            }]);
    }

    #[test]
    fn update_that_changes_nothing_is_a_no_op() {
        given(vec![created()])
            .when(ProductCommand::Update {
                name: Some(ProductName::parse("Mug").unwrap()),
                description: None,
                category: Some(Category::parse("Kitchen").unwrap()),
                price: Some(eur(1200)),
            })
            .then_expect_events(vec![]);
        given(vec![created()])
            .when(update())
            .then_expect_events(vec![]);
    }

    #[test]
    fn update_of_unknown_product_is_not_found() {
        let err = given(vec![]).when(update()).inspect_result().unwrap_err();
        assert_eq!(err, ProductError::NotFound);
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn updates_are_applied_to_the_state() {
        let mut p = Product::default();
        p.apply(created());
        p.apply(ProductEvent::ProductUpdated {
            name: None,
            description: None,
            category: Some(Category::parse("Tableware").unwrap()),
            price: Some(eur(900)),
        });
        let d = p.details().unwrap();
        assert_eq!(d.category.as_str(), "Tableware");
        assert_eq!(d.price, eur(900));
        assert_eq!(d.name.as_str(), "Mug");
        assert_eq!(p.price(), Some(&eur(900)));
    }
}
