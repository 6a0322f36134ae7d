//! A category of the catalog's tree: its name and its parent (none for a root).
//!
//! The tree's rules that span several categories are decided here from facts the caller
//! reads on the write side (the category tree table kept in the same transaction as the
//! category events, see `ordo_store::catalog`) and passes in the command:
//!
//! - A new parent is given with its path to the root ([`ParentPath`]); a category whose own
//!   id is on that path would become its own ancestor, and the move is refused as a cycle.
//! - A category with children or with products is not deleted: the caller says how many
//!   there are ([`DeleteFacts`]); the children must be moved or deleted and the products
//!   moved first. A deleted category stays deleted (its id is not reused).
//!
//! The caller serialises every change of the tree's shape (a lock held across reading the
//! facts and committing), so two moves racing cannot together make a cycle.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{CategoryId, CategoryName, DomainError, ErrorKind};

/// Deepest a category may sit: a root is at depth 1.
pub const MAX_DEPTH: usize = 10;

/// A parent category and its ancestors, nearest first: `[parent, grandparent, ..., root]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentPath(pub Vec<CategoryId>);

impl ParentPath {
    /// The parent itself.
    pub fn parent(&self) -> Option<CategoryId> {
        self.0.first().copied()
    }
}

/// What the write side knows of a category about to be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteFacts {
    /// Categories whose parent it is.
    pub children: u64,
    /// Products filed under it.
    pub products: u64,
}

/// Commands accepted by a [`CategoryNode`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CategoryCommand {
    /// Creates the category, under `parent` or as a root.
    Create {
        /// The category's id (also the aggregate id).
        category_id: CategoryId,
        /// Its name.
        name: CategoryName,
        /// The parent's path to the root; `None` for a root.
        parent: Option<ParentPath>,
    },
    /// Renames the category and/or moves it under another parent; absent fields stay.
    Change {
        /// The new name.
        name: Option<CategoryName>,
        /// The new parent's path to the root (`Some(None)`: makes it a root).
        parent: Option<Option<ParentPath>>,
    },
    /// Deletes the category.
    Delete {
        /// What is still filed under it.
        facts: DeleteFacts,
    },
}

/// Events of a [`CategoryNode`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CategoryEvent {
    /// The category was created.
    CategoryCreated {
        /// Its id.
        category_id: CategoryId,
        /// Its name.
        name: CategoryName,
        /// Its parent; `None` for a root.
        parent_id: Option<CategoryId>,
    },
    /// The category was renamed.
    CategoryRenamed {
        /// The new name.
        name: CategoryName,
    },
    /// The category moved under another parent.
    CategoryMoved {
        /// The new parent; `None` for a root.
        parent_id: Option<CategoryId>,
    },
    /// The category was deleted.
    CategoryDeleted {},
}

impl DomainEvent for CategoryEvent {
    fn event_type(&self) -> String {
        match self {
            CategoryEvent::CategoryCreated { .. } => "CategoryCreated",
            CategoryEvent::CategoryRenamed { .. } => "CategoryRenamed",
            CategoryEvent::CategoryMoved { .. } => "CategoryMoved",
            CategoryEvent::CategoryDeleted {} => "CategoryDeleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`CategoryCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CategoryError {
    /// The category already exists with other content.
    #[error("category {category_id} already exists")]
    AlreadyExists {
        /// The id taken.
        category_id: CategoryId,
    },
    /// No such category, or it was deleted.
    #[error("category not found")]
    NotFound,
    /// The new parent is the category itself or one of its descendants.
    #[error("a category cannot be moved under itself or one of its descendants")]
    Cycle,
    /// The tree would become deeper than [`MAX_DEPTH`].
    #[error("categories nest at most {MAX_DEPTH} deep")]
    TooDeep,
    /// The category still has children or products.
    #[error("category still has {children} subcategories and {products} products")]
    NotEmpty {
        /// Its children.
        children: u64,
        /// Its products.
        products: u64,
    },
}

impl CategoryError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            CategoryError::AlreadyExists { .. } => "category_exists",
            CategoryError::NotFound => "category_not_found",
            CategoryError::Cycle => "category_cycle",
            CategoryError::TooDeep => "category_too_deep",
            CategoryError::NotEmpty { .. } => "category_not_empty",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CategoryError::NotFound => ErrorKind::NotFound,
            CategoryError::AlreadyExists { .. }
            | CategoryError::Cycle
            | CategoryError::TooDeep
            | CategoryError::NotEmpty { .. } => ErrorKind::Refused,
        }
    }
}

impl DomainError for CategoryError {
    fn code(&self) -> &'static str {
        CategoryError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        CategoryError::kind(self)
    }
}

/// A category of the catalog's tree.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CategoryNode {
    category_id: Option<CategoryId>,
    name: Option<CategoryName>,
    parent_id: Option<CategoryId>,
    deleted: bool,
}

impl CategoryNode {
    /// True once created and until deleted.
    pub fn is_live(&self) -> bool {
        self.category_id.is_some() && !self.deleted
    }

    /// The parent, if any.
    pub fn parent_id(&self) -> Option<CategoryId> {
        self.parent_id
    }

    /// The name, once created.
    pub fn name(&self) -> Option<&CategoryName> {
        self.name.as_ref()
    }

    fn live(&self) -> Result<CategoryId, CategoryError> {
        match self.category_id {
            Some(id) if !self.deleted => Ok(id),
            _ => Err(CategoryError::NotFound),
        }
    }
}

/// Checks that `id` may sit under `parent`.
fn check_parent(id: CategoryId, parent: &Option<ParentPath>) -> Result<(), CategoryError> {
    let Some(path) = parent else {
        return Ok(());
    };
    if path.0.contains(&id) {
        return Err(CategoryError::Cycle);
    }
    if path.0.len() + 1 > MAX_DEPTH {
        return Err(CategoryError::TooDeep);
    }
    Ok(())
}

impl Aggregate for CategoryNode {
    const TYPE: &'static str = "category";
    type Command = CategoryCommand;
    type Event = CategoryEvent;
    type Error = CategoryError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            CategoryCommand::Create {
                category_id,
                name,
                parent,
            } => {
                if self.category_id.is_some() {
                    let same = self.category_id == Some(category_id)
                        && self.name.as_ref() == Some(&name)
                        && self.parent_id == parent.as_ref().and_then(ParentPath::parent)
                        && !self.deleted;
                    return if same {
                        Ok(())
                    } else {
                        Err(CategoryError::AlreadyExists { category_id })
                    };
                }
                check_parent(category_id, &parent)?;
                CategoryEvent::CategoryCreated {
                    category_id,
                    name,
                    parent_id: parent.as_ref().and_then(ParentPath::parent),
                }
            }
            CategoryCommand::Change { name, parent } => {
                let id = self.live()?;
                let mut events = Vec::new();
                if let Some(name) = name.filter(|n| self.name.as_ref() != Some(n)) {
                    events.push(CategoryEvent::CategoryRenamed { name });
                }
                if let Some(parent) = parent {
                    check_parent(id, &parent)?;
                    let parent_id = parent.as_ref().and_then(ParentPath::parent);
                    if parent_id != self.parent_id {
                        events.push(CategoryEvent::CategoryMoved { parent_id });
                    }
                }
                for event in events {
                    sink.write(event, self).await;
                }
                return Ok(());
            }
            CategoryCommand::Delete { facts } => {
                if self.category_id.is_some() && self.deleted {
                    return Ok(());
                }
                self.live()?;
                if facts.children > 0 || facts.products > 0 {
                    return Err(CategoryError::NotEmpty {
                        children: facts.children,
                        products: facts.products,
                    });
                }
                CategoryEvent::CategoryDeleted {}
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CategoryEvent::CategoryCreated {
                category_id,
                name,
                parent_id,
            } => {
                self.category_id = Some(category_id);
                self.name = Some(name);
                self.parent_id = parent_id;
            }
            CategoryEvent::CategoryRenamed { name } => self.name = Some(name),
            CategoryEvent::CategoryMoved { parent_id } => self.parent_id = parent_id,
            CategoryEvent::CategoryDeleted {} => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<CategoryEvent>) -> AggregateTestExecutor<CategoryNode> {
        TestFramework::<CategoryNode>::with(()).given(events)
    }

    fn name(s: &str) -> CategoryName {
        CategoryName::parse(s).unwrap()
    }

    fn created(parent: Option<u128>) -> CategoryEvent {
        CategoryEvent::CategoryCreated {
            category_id: id(1),
            name: name("Apparel"),
            parent_id: parent.map(id),
        }
    }

    fn mv(parent: Option<ParentPath>) -> CategoryCommand {
        CategoryCommand::Change {
            name: None,
            parent: Some(parent),
        }
    }

    fn rename(to: &str) -> CategoryCommand {
        CategoryCommand::Change {
            name: Some(name(to)),
            parent: None,
        }
    }

    fn path(ids: &[u128]) -> Option<ParentPath> {
        Some(ParentPath(ids.iter().map(|n| id(*n)).collect()))
    }

    #[test]
    fn create_makes_a_root_or_a_child() {
        given(vec![])
            .when(CategoryCommand::Create {
                category_id: id(1),
                name: name("Apparel"),
                parent: None,
            })
            .then_expect_events(vec![created(None)]);
        given(vec![])
            .when(CategoryCommand::Create {
                category_id: id(1),
                name: name("Apparel"),
                parent: path(&[7, 8]),
            })
            .then_expect_events(vec![created(Some(7))]);
    }

    #[test]
    fn create_repeated_is_a_no_op_and_with_other_content_is_refused() {
        given(vec![created(None)])
            .when(CategoryCommand::Create {
                category_id: id(1),
                name: name("Apparel"),
                parent: None,
            })
            .then_expect_events(vec![]);
        let err = given(vec![created(None)])
            .when(CategoryCommand::Create {
                category_id: id(1),
                name: name("Shoes"),
                parent: None,
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.code(), "category_exists");
    }

    #[test]
    fn move_under_itself_or_a_descendant_is_a_cycle() {
        given(vec![created(None)])
            .when(mv(path(&[1])))
            .then_expect_error(CategoryError::Cycle);
        // 3 is a grandchild of 1: its path to the root passes through 1.
        let err = given(vec![created(None)])
            .when(mv(path(&[3, 2, 1])))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, CategoryError::Cycle);
        assert_eq!(err.code(), "category_cycle");
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[test]
    fn move_elsewhere_is_recorded_and_to_the_same_parent_is_a_no_op() {
        given(vec![created(None)])
            .when(mv(path(&[5])))
            .then_expect_events(vec![CategoryEvent::CategoryMoved {
                parent_id: Some(id(5)),
            }]);
        given(vec![created(Some(5))])
            .when(mv(path(&[5])))
            .then_expect_events(vec![]);
        given(vec![created(Some(5))])
            .when(mv(None))
            .then_expect_events(vec![CategoryEvent::CategoryMoved { parent_id: None }]);
    }

    #[test]
    fn the_tree_is_bounded_in_depth() {
        let deep: Vec<u128> = (10..10 + MAX_DEPTH as u128).collect();
        given(vec![created(None)])
            .when(mv(path(&deep)))
            .then_expect_error(CategoryError::TooDeep);
    }

    #[test]
    fn delete_refuses_a_category_with_children_or_products() {
        let err = given(vec![created(None)])
            .when(CategoryCommand::Delete {
                facts: DeleteFacts {
                    children: 1,
                    products: 0,
                },
            })
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.code(), "category_not_empty");
        given(vec![created(None)])
            .when(CategoryCommand::Delete {
                facts: DeleteFacts {
                    children: 0,
                    products: 2,
                },
            })
            .then_expect_error(CategoryError::NotEmpty {
                children: 0,
                products: 2,
            });
    }

    #[test]
    fn delete_of_an_empty_category_then_again_is_a_no_op() {
        let empty = DeleteFacts {
            children: 0,
            products: 0,
        };
        given(vec![created(None)])
            .when(CategoryCommand::Delete { facts: empty })
            .then_expect_events(vec![CategoryEvent::CategoryDeleted {}]);
        given(vec![created(None), CategoryEvent::CategoryDeleted {}])
            .when(CategoryCommand::Delete { facts: empty })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_deleted_or_unknown_category_cannot_be_renamed_or_moved() {
        given(vec![created(None), CategoryEvent::CategoryDeleted {}])
            .when(rename("Shoes"))
            .then_expect_error(CategoryError::NotFound);
        given(vec![])
            .when(mv(None))
            .then_expect_error(CategoryError::NotFound);
    }

    #[test]
    fn change_of_name_and_parent_records_both() {
        given(vec![created(None)])
            .when(CategoryCommand::Change {
                name: Some(name("Clothes")),
                parent: Some(path(&[4])),
            })
            .then_expect_events(vec![
                CategoryEvent::CategoryRenamed {
                    name: name("Clothes"),
                },
                CategoryEvent::CategoryMoved {
                    parent_id: Some(id(4)),
                },
            ]);
    }

    #[test]
    fn rename_records_a_new_name_only() {
        given(vec![created(None)])
            .when(rename("Clothes"))
            .then_expect_events(vec![CategoryEvent::CategoryRenamed {
                name: name("Clothes"),
            }]);
        given(vec![created(None)])
            .when(rename("Apparel"))
            .then_expect_events(vec![]);
    }
}
