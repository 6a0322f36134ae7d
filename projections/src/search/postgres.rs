//! Search answered by Postgres: full-text relevance from the weighted `search` column
//! (title A, category B, description C), typo tolerance from pg_trgm word similarity on
//! the title, and a large bonus for an exact title so that it always ranks first.
//!
//! Each searchable type contributes one `SELECT` with the same columns to a `matched` set
//! (every filter applied except category and city); the page, the category facet and the
//! city facet are then read from it. Products come from `products` and
//! `inventory_levels`; shows from the ticketing read models (`shows`, `show_sessions`,
//! `seat_areas`, and `inventory_levels` for their seats).

use std::collections::BTreeMap;

use sqlx::PgPool;

use super::{Facets, ItemType, SearchCursor, SearchHit, SearchPage, SearchQuery};

/// The products' contribution. Parameters: $1 text, $4 min price, $5 max price,
/// $6 available only. Products have no city: a city filter leaves them out. Delisted SKUs
/// are not found.
const PRODUCTS_SOURCE: &str = "
    SELECT 'product'::text AS item_type, p.sku AS id, p.name AS title, p.category,
           NULL::text AS city, p.price_minor AS price, p.currency,
           coalesce(i.available, 0) > 0 AS available,
           CASE WHEN $1 = '' THEN 0::float8 ELSE round((
               ts_rank_cd(p.search, input.tsq)
               + word_similarity(input.raw, lower(p.name))
               + CASE WHEN lower(p.name) = input.raw THEN 10 ELSE 0 END)::numeric, 6)::float8
           END AS score
    FROM products p
    LEFT JOIN inventory_levels i ON i.sku = p.sku
    CROSS JOIN input
    WHERE p.on_sale AND ($1 = '' OR p.search @@ input.tsq OR input.raw <% lower(p.name))
      AND ($4::bigint IS NULL OR p.price_minor >= $4)
      AND ($5::bigint IS NULL OR p.price_minor <= $5)
      AND (NOT $6 OR coalesce(i.available, 0) > 0)";

/// The shows' contribution, with the same columns and parameters: the title weighs most,
/// then category, city and venue, then the description. A show's price is its cheapest
/// seat; it is available while a future session has a seat area with seats left (seat
/// stock is in `inventory_levels` under the area's `inventory_id`).
///
/// The text vector is computed per query rather than stored: the `shows` table belongs to
/// the ticketing read model, and the catalog of shows is small next to the products'.
const SHOWS_SOURCE: &str = "
    SELECT 'show'::text AS item_type, s.show_id::text AS id, s.title, s.category, s.city,
           coalesce(a.price_minor, 0) AS price, coalesce(a.currency, '') AS currency,
           coalesce(a.available, false) AS available,
           CASE WHEN $1 = '' THEN 0::float8 ELSE round((
               ts_rank_cd(d.doc, input.tsq)
               + word_similarity(input.raw, lower(s.title))
               + CASE WHEN lower(s.title) = input.raw THEN 10 ELSE 0 END)::numeric, 6)::float8
           END AS score
    FROM shows s
    CROSS JOIN input
    CROSS JOIN LATERAL (SELECT
        setweight(to_tsvector('simple', s.title), 'A') ||
        setweight(to_tsvector('simple', s.category || ' ' || s.city || ' ' || s.venue), 'B') ||
        setweight(to_tsvector('simple', s.description), 'C') AS doc) d
    LEFT JOIN LATERAL (
        SELECT min(sa.price_minor) AS price_minor, min(sa.currency) AS currency,
               bool_or(coalesce(l.available, 0) > 0 AND ss.starts_at > now()) AS available
        FROM seat_areas sa
        JOIN show_sessions ss ON ss.session_id = sa.session_id
        LEFT JOIN inventory_levels l ON l.sku = sa.inventory_id
        WHERE sa.show_id = s.show_id) a ON true
    WHERE ($1 = '' OR d.doc @@ input.tsq OR input.raw <% lower(s.title))
      AND ($4::bigint IS NULL OR a.price_minor >= $4)
      AND ($5::bigint IS NULL OR a.price_minor <= $5)
      AND (NOT $6 OR coalesce(a.available, false))";

#[derive(sqlx::FromRow)]
struct Row {
    item_type: String,
    id: String,
    title: String,
    category: String,
    city: Option<String>,
    price: i64,
    currency: String,
    available: bool,
    score: f64,
}

/// Runs `query` against the read models.
pub async fn search(pool: &PgPool, query: &SearchQuery) -> sqlx::Result<SearchPage> {
    let mut sources = Vec::new();
    if query.wants(ItemType::Product) {
        sources.push(PRODUCTS_SOURCE);
    }
    if query.wants(ItemType::Show) {
        sources.push(SHOWS_SOURCE);
    }
    if sources.is_empty() {
        return Ok(SearchPage::default());
    }
    let matched = format!(
        "WITH input AS (SELECT websearch_to_tsquery('simple', $1) AS tsq, lower($1) AS raw),
              matched AS ({})",
        sources.join(" UNION ALL ")
    );
    let after = query.after.as_ref();
    let page_sql = format!(
        "{matched}
         SELECT * FROM matched
         WHERE ($2::text IS NULL OR category = $2)
           AND ($3::text IS NULL OR lower(city) = lower($3))
           AND ($7::float8 IS NULL OR score < $7
                OR (score = $7 AND (item_type, id) > ($8::text, $9::text)))
         ORDER BY score DESC, item_type, id
         LIMIT $10"
    );
    let mut rows: Vec<Row> = sqlx::query_as(&page_sql)
        .bind(&query.text)
        .bind(query.category.as_deref())
        .bind(query.city.as_deref())
        .bind(query.min_price)
        .bind(query.max_price)
        .bind(query.available_only)
        .bind(after.map(|c| c.score))
        .bind(after.map(|c| c.item_type.as_str()))
        .bind(after.map(|c| c.id.as_str()))
        .bind(query.limit + 1)
        .fetch_all(pool)
        .await?;

    // Each facet ignores its own filter, so the client can show the other choices.
    let facet_sql = format!(
        "{matched}
         SELECT 'category' AS facet, category AS value, count(*) AS n FROM matched
         WHERE ($3::text IS NULL OR lower(city) = lower($3)) GROUP BY category
         UNION ALL
         SELECT 'city', city, count(*) FROM matched
         WHERE city IS NOT NULL AND ($2::text IS NULL OR category = $2) GROUP BY city"
    );
    let counts: Vec<(String, String, i64)> = sqlx::query_as(&facet_sql)
        .bind(&query.text)
        .bind(query.category.as_deref())
        .bind(query.city.as_deref())
        .bind(query.min_price)
        .bind(query.max_price)
        .bind(query.available_only)
        .fetch_all(pool)
        .await?;
    let mut facets = Facets {
        category: BTreeMap::new(),
        city: BTreeMap::new(),
    };
    for (facet, value, n) in counts {
        match facet.as_str() {
            "category" => facets.category.insert(value, n),
            _ => facets.city.insert(value, n),
        };
    }

    let next_cursor = if rows.len() as i64 > query.limit {
        rows.truncate(query.limit as usize);
        rows.last().map(|r| {
            SearchCursor {
                score: r.score,
                item_type: r.item_type.clone(),
                id: r.id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    let results = rows
        .into_iter()
        .map(|r| SearchHit {
            item_type: if r.item_type == "show" {
                ItemType::Show
            } else {
                ItemType::Product
            },
            id: r.id,
            title: r.title,
            category: r.category,
            city: r.city,
            price: r.price,
            currency: r.currency,
            available: r.available,
            score: r.score,
        })
        .collect();
    Ok(SearchPage {
        results,
        facets,
        next_cursor,
    })
}
