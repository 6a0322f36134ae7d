//! The Elasticsearch projection: consumers that index products and shows as their events
//! arrive, and the queries that read a document's current state from the Postgres read
//! models (used by the consumers and by rebuilds alike).
//!
//! An event is indexed only once the read models reflect it (its sequence is at most the
//! row's version); until then the delivery is retried. The document is the row's whole
//! current state under its external version, so a late, repeated or replayed event writes
//! the same or a newer document, never an older one.

use async_trait::async_trait;
use ordo_aggregates::show::is_seat_inventory_id;
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgPool;

use super::documents::{
    bulk_lines, delete_lines, show_bulk_lines, ProductDocument, SearchIndex, ShowDocument,
};
use super::EsSearch;

/// The consumer indexing product changes.
pub const PRODUCTS_CONSUMER: &str = "projection-search-es";
/// The consumer indexing availability changes of products and seat areas.
pub const INVENTORY_CONSUMER: &str = "projection-search-es-inventory";
/// The consumer indexing show changes.
pub const SHOWS_CONSUMER: &str = "projection-search-es-shows";

/// The consumers, the aggregate type each reads and the index it feeds first.
pub const CONSUMERS: [(&str, &str, SearchIndex); 3] = [
    (PRODUCTS_CONSUMER, "product", SearchIndex::Products),
    (INVENTORY_CONSUMER, "inventory", SearchIndex::Products),
    (SHOWS_CONSUMER, "show", SearchIndex::Shows),
];

const PRODUCT_SELECT: &str = "
    SELECT p.sku, p.name, p.description, p.category, p.price_minor, p.currency,
           coalesce(i.available, 0) AS available, p.on_sale, p.version AS product_version,
           coalesce(i.version, 0) AS inventory_version,
           greatest(p.updated_at, coalesce(i.updated_at, p.updated_at)) AS updated_at
    FROM products p LEFT JOIN inventory_levels i ON i.sku = p.sku";

/// A show with its cheapest seat, the last session with seats left, and the versions of
/// everything the document is made of. One statement, so one consistent snapshot.
const SHOW_SELECT: &str = "
    SELECT s.show_id::text AS show_id, s.title, s.description, s.category, s.city, s.venue,
           s.first_session_at, coalesce(a.price_minor, 0) AS price_minor,
           coalesce(a.currency, '') AS currency, a.available_until,
           s.version AS show_version, coalesce(a.seats_version, 0) AS seats_version,
           greatest(s.updated_at, coalesce(a.updated_at, s.updated_at)) AS updated_at
    FROM shows s
    LEFT JOIN LATERAL (
        SELECT min(sa.price_minor) AS price_minor, min(sa.currency) AS currency,
               max(ss.starts_at) FILTER (WHERE coalesce(l.available, 0) > 0) AS available_until,
               sum(coalesce(l.version, 0))::bigint AS seats_version,
               max(l.updated_at) AS updated_at
        FROM seat_areas sa
        JOIN show_sessions ss ON ss.session_id = sa.session_id
        LEFT JOIN inventory_levels l ON l.sku = sa.inventory_id
        WHERE sa.show_id = s.show_id) a ON true";

/// The product `sku` as it is now.
pub async fn load_product(pool: &PgPool, sku: &str) -> sqlx::Result<Option<ProductDocument>> {
    sqlx::query_as(&format!("{PRODUCT_SELECT} WHERE p.sku = $1"))
        .bind(sku)
        .fetch_optional(pool)
        .await
}

/// Every SKU of the product `product_id` as it is now.
pub async fn load_product_skus(
    pool: &PgPool,
    product_id: &str,
) -> sqlx::Result<Vec<ProductDocument>> {
    sqlx::query_as(&format!(
        "{PRODUCT_SELECT} WHERE p.product_id = $1 ORDER BY p.sku"
    ))
    .bind(product_id)
    .fetch_all(pool)
    .await
}

/// Up to `limit` SKUs on sale after the SKU `after`, in SKU order.
pub async fn products_after(
    pool: &PgPool,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<ProductDocument>> {
    sqlx::query_as(&format!(
        "{PRODUCT_SELECT} WHERE p.sku > $1 AND p.on_sale ORDER BY p.sku LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The show `show_id` as it is now.
pub async fn load_show(pool: &PgPool, show_id: &str) -> sqlx::Result<Option<ShowDocument>> {
    let Ok(show_id) = uuid::Uuid::parse_str(show_id) else {
        return Ok(None);
    };
    sqlx::query_as(&format!("{SHOW_SELECT} WHERE s.show_id = $1"))
        .bind(show_id)
        .fetch_optional(pool)
        .await
}

/// Up to `limit` shows after the id `after` (as text), in id order.
pub async fn shows_after(
    pool: &PgPool,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<ShowDocument>> {
    sqlx::query_as(&format!(
        "{SHOW_SELECT} WHERE s.show_id::text > $1 ORDER BY s.show_id::text LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Indexes products and shows as their events arrive (see the module documentation).
pub struct SearchIndexer {
    pool: PgPool,
    es: EsSearch,
    aggregate_type: &'static str,
}

impl SearchIndexer {
    /// The indexer of one stream: `product`, `inventory` or `show`.
    pub fn new(pool: PgPool, es: EsSearch, aggregate_type: &'static str) -> Self {
        Self {
            pool,
            es,
            aggregate_type,
        }
    }

    async fn index_product(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        // A product event names the product, whose every SKU is a document; a stock event
        // names one SKU.
        let docs = if self.aggregate_type == "product" {
            let docs = load_product_skus(&self.pool, &event.aggregate_id).await?;
            if docs.is_empty() {
                return Err(not_yet(event, "is not in the read model yet"));
            }
            docs
        } else {
            match load_product(&self.pool, &event.aggregate_id).await? {
                Some(doc) => vec![doc],
                // Stock of a SKU that is not in the catalog: nothing to index; the
                // product's creation will index it with its stock.
                None => return Ok(()),
            }
        };
        let mut lines = Vec::new();
        let alias = self.es.names().alias(SearchIndex::Products);
        for doc in &docs {
            let reached = match self.aggregate_type {
                "product" => doc.product_version >= event.sequence,
                _ => doc.inventory_version >= event.sequence,
            };
            if !reached {
                return Err(not_yet(event, "is at an older version in the read model"));
            }
            if doc.on_sale {
                lines.extend(bulk_lines(&alias, doc));
            } else {
                lines.extend(delete_lines(&alias, doc));
            }
        }
        self.es
            .bulk(lines)
            .await
            .map(drop)
            .map_err(HandlerError::Retry)
    }

    async fn write_show(&self, doc: &ShowDocument) -> Result<(), HandlerError> {
        let alias = self.es.names().alias(SearchIndex::Shows);
        self.es
            .bulk(show_bulk_lines(&alias, doc).to_vec())
            .await
            .map(drop)
            .map_err(HandlerError::Retry)
    }

    /// A change of a seat area's stock: its show's document, once both the seat area and
    /// the stock level are in the read models.
    async fn index_seats(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let area: Option<(uuid::Uuid, i64)> = sqlx::query_as(
            "SELECT sa.show_id, coalesce(l.version, 0)
             FROM seat_areas sa LEFT JOIN inventory_levels l ON l.sku = sa.inventory_id
             WHERE sa.inventory_id = $1 LIMIT 1",
        )
        .bind(&event.aggregate_id)
        .fetch_optional(&self.pool)
        .await?;
        match area {
            // The show's event adding the area was committed before the area's stock was
            // opened; the shows projection will have it.
            None => Err(not_yet(
                event,
                "belongs to a seat area not in the read model yet",
            )),
            Some((_, version)) if version < event.sequence => {
                Err(not_yet(event, "is at an older version in the read model"))
            }
            Some((show_id, _)) => match load_show(&self.pool, &show_id.to_string()).await? {
                Some(doc) => self.write_show(&doc).await,
                None => Err(not_yet(
                    event,
                    "belongs to a show not in the read model yet",
                )),
            },
        }
    }
}

fn not_yet(event: &ReceivedEvent, what: &str) -> HandlerError {
    HandlerError::retry(anyhow::anyhow!(
        "{} {} (event {}) {what}",
        event.aggregate_type,
        event.aggregate_id,
        event.sequence
    ))
}

#[async_trait]
impl EventHandler for SearchIndexer {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        if event.aggregate_type != self.aggregate_type {
            return Ok(());
        }
        match self.aggregate_type {
            "show" => {
                let Some(doc) = load_show(&self.pool, &event.aggregate_id).await? else {
                    return Err(not_yet(event, "is not in the read model yet"));
                };
                if doc.show_version < event.sequence {
                    return Err(not_yet(event, "is at an older version in the read model"));
                }
                self.write_show(&doc).await
            }
            "inventory" if is_seat_inventory_id(&event.aggregate_id) => {
                self.index_seats(event).await
            }
            _ => self.index_product(event).await,
        }
    }
}
