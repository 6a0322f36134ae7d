//! Rebuilding a search index beside the live one, then swapping the alias: searches keep
//! answering from the old index until the swap, which Elasticsearch applies atomically.
//!
//! 1. `GET /<alias>-v*/_alias` lists the generations and which one carries the alias. A
//!    generation without the alias is what an interrupted rebuild left: it is deleted (two
//!    rebuilds of one index never run at once: a Postgres advisory lock keeps them apart).
//! 2. `PUT /<alias>-v<n+1>` from the definition in `schemas/elasticsearch/`, so a rebuild
//!    also applies a changed mapping.
//! 3. Every document, read from the Postgres read models in key order, is bulk-indexed
//!    into the new generation with its external version.
//! 4. `POST /_aliases` removes the alias from the old generation and adds it to the new
//!    one, in one request.
//! 5. The live indexers wrote to the old generation until the swap, so every document is
//!    indexed once more through the alias: the external versions keep whatever is already
//!    as new, and take anything that changed during step 3. Whatever changes after this
//!    pass's reads is indexed by the live consumers into the new generation.
//! 6. `DELETE` the old generation.

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::documents::{bulk_lines, show_bulk_lines, BulkOutcome, IndexNames, SearchIndex};
use super::indexer::{products_after, shows_after};
use super::EsSearch;

/// First key of the session lock that keeps two rebuilds of one search index apart (the
/// Postgres projections' rebuilds use `0x6f73`).
const INDEX_REBUILD_LOCK: i32 = 0x6f74;

/// Documents per `_bulk` request.
const BATCH: i64 = 500;

/// The generations of an index and which of them the alias points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generations {
    /// Generations carrying the alias (normally one).
    pub aliased: Vec<String>,
    /// Generations without it: left by an interrupted rebuild.
    pub leftovers: Vec<String>,
    /// The name of the next generation.
    pub next: String,
}

/// Reads a `GET /<alias>-v*/_alias` answer (`{"<index>": {"aliases": {"<alias>": {}}}}`).
pub fn generations(names: &IndexNames, index: SearchIndex, answer: &Value) -> Generations {
    let alias = names.alias(index);
    let prefix = format!("{alias}-v");
    let mut aliased = Vec::new();
    let mut leftovers = Vec::new();
    let mut highest = 0;
    for (name, entry) in answer.as_object().into_iter().flatten() {
        let Some(generation) = name
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        highest = highest.max(generation);
        if entry["aliases"].get(&alias).is_some() {
            aliased.push(name.clone());
        } else {
            leftovers.push(name.clone());
        }
    }
    aliased.sort();
    leftovers.sort();
    Generations {
        aliased,
        leftovers,
        next: names.generation(index, highest + 1),
    }
}

/// The body of `POST /_aliases` moving `alias` from `old` to `new` atomically.
pub fn alias_swap_body(alias: &str, old: &[String], new: &str) -> Value {
    let mut actions: Vec<Value> = old
        .iter()
        .map(|index| json!({"remove": {"index": index, "alias": alias}}))
        .collect();
    actions.push(json!({"add": {"index": new, "alias": alias, "is_write_index": true}}));
    json!({ "actions": actions })
}

/// What a search index rebuild did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IndexRebuildReport {
    /// The rebuild name, e.g. `search-products`.
    pub projection: String,
    /// The alias swapped.
    pub alias: String,
    /// The generation now behind the alias.
    pub index: String,
    /// The generations it replaced (deleted after the swap).
    pub replaced: Vec<String>,
    /// Documents indexed into the new generation before the swap.
    pub documents: u64,
    /// Documents that changed during the rebuild, indexed again after the swap.
    pub caught_up: u64,
}

/// Rebuilds `index` from the read models and swaps its alias (see the module
/// documentation). Refused while another rebuild of it runs.
pub async fn rebuild(
    pool: &PgPool,
    es: &EsSearch,
    index: SearchIndex,
) -> anyhow::Result<IndexRebuildReport> {
    let name = index.rebuild_name();
    let rebuilt = async {
        let report = run(pool, es, index).await?;
        sqlx::query(
            "UPDATE projection_rebuilds SET state = 'live', finished_at = now(), \
                 events_applied = $2 WHERE projection = $1",
        )
        .bind(name)
        .bind(report.documents as i64)
        .execute(pool)
        .await?;
        Ok(report)
    };
    crate::rebuild::tracked(pool, INDEX_REBUILD_LOCK, name, rebuilt).await
}

async fn run(
    pool: &PgPool,
    es: &EsSearch,
    index: SearchIndex,
) -> anyhow::Result<IndexRebuildReport> {
    let names = es.names();
    let alias = names.alias(index);
    let found = generations(
        names,
        index,
        &es.aliases_of(&names.generations_pattern(index)).await?,
    );
    if !found.leftovers.is_empty() {
        tracing::info!(indices = ?found.leftovers, "deleting generations an interrupted rebuild left");
        es.delete_indices(&found.leftovers).await?;
    }
    es.create_index(&found.next, index.definition(), None)
        .await?;
    let documents = index_everything(pool, es, index, &found.next)
        .await?
        .written;
    es.update_aliases(alias_swap_body(&alias, &found.aliased, &found.next))
        .await?;
    let caught_up = index_everything(pool, es, index, &alias).await?.written;
    if !found.aliased.is_empty() {
        es.delete_indices(&found.aliased).await?;
    }
    Ok(IndexRebuildReport {
        projection: index.rebuild_name().to_owned(),
        alias,
        index: found.next,
        replaced: found.aliased,
        documents,
        caught_up,
    })
}

/// Bulk-indexes every document of `index` from the read models into `target` (an index
/// or the alias).
async fn index_everything(
    pool: &PgPool,
    es: &EsSearch,
    index: SearchIndex,
    target: &str,
) -> anyhow::Result<BulkOutcome> {
    let mut total = BulkOutcome::default();
    let mut after = String::new();
    loop {
        let (lines, last) = match index {
            SearchIndex::Products => {
                let docs = products_after(pool, &after, BATCH).await?;
                let last = docs.last().map(|d| d.sku.clone());
                let lines: Vec<Value> = docs.iter().flat_map(|d| bulk_lines(target, d)).collect();
                (lines, last)
            }
            SearchIndex::Shows => {
                let docs = shows_after(pool, &after, BATCH).await?;
                let last = docs.last().map(|d| d.show_id.clone());
                let lines: Vec<Value> = docs
                    .iter()
                    .flat_map(|d| show_bulk_lines(target, d))
                    .collect();
                (lines, last)
            }
        };
        let Some(last) = last else {
            return Ok(total);
        };
        let outcome = es.bulk(lines).await?;
        total.written += outcome.written;
        total.stale += outcome.stale;
        after = last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_find_the_aliased_index_the_leftovers_and_the_next_number() {
        let names = IndexNames::default();
        let answer = json!({
            "ordo-products-v2": {"aliases": {"ordo-products": {"is_write_index": true}}},
            "ordo-products-v3": {"aliases": {}},
            "ordo-products-v10-old": {"aliases": {}},
        });
        assert_eq!(
            generations(&names, SearchIndex::Products, &answer),
            Generations {
                aliased: vec!["ordo-products-v2".into()],
                leftovers: vec!["ordo-products-v3".into()],
                next: "ordo-products-v4".into(),
            }
        );
        let empty = generations(&names, SearchIndex::Shows, &json!({}));
        assert_eq!(empty.next, "ordo-shows-v1");
        assert!(empty.aliased.is_empty() && empty.leftovers.is_empty());
    }
}
