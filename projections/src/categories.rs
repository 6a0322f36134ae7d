//! The `categories` read model: the catalog's category tree as anyone browses it, one row
//! per live category with its parent; a deleted category's row is removed.

use async_trait::async_trait;
use ordo_aggregates::category::CategoryEvent;
use ordo_contracts::CategoryMessage;
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::worker::Projection;

/// Builds `categories` from the category stream.
pub struct CategoriesProjection;

#[async_trait]
impl Projection for CategoriesProjection {
    fn name(&self) -> &'static str {
        "projection-categories"
    }

    fn aggregate_type(&self) -> &'static str {
        "category"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["categories"]
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let CategoryMessage { id, event, facts } = ordo_contracts::category(event)?;
        let id = Uuid::from(id);
        match event {
            CategoryEvent::CategoryCreated {
                name, parent_id, ..
            } => {
                sqlx::query(
                    "INSERT INTO categories (category_id, name, parent_id, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (category_id) DO NOTHING",
                )
                .bind(id)
                .bind(name.as_str())
                .bind(parent_id.map(Uuid::from))
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            CategoryEvent::CategoryRenamed { name } => {
                sqlx::query(
                    "UPDATE categories SET name = $2, version = $3, updated_at = $4
                     WHERE category_id = $1",
                )
                .bind(id)
                .bind(name.as_str())
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            CategoryEvent::CategoryMoved { parent_id } => {
                sqlx::query(
                    "UPDATE categories SET parent_id = $2, version = $3, updated_at = $4
                     WHERE category_id = $1",
                )
                .bind(id)
                .bind(parent_id.map(Uuid::from))
                .bind(facts.sequence)
                .bind(facts.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            CategoryEvent::CategoryDeleted {} => {
                sqlx::query("DELETE FROM categories WHERE category_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}
