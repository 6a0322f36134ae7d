//! Databases of the tests: one fresh PostgreSQL database per test on the test server,
//! dropped (with its connections) when its owner is dropped, also when the test panics.

use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// The server URL tests create databases on (a role with CREATEDB).
pub fn admin_database_url() -> String {
    std::env::var("ORDO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database made for one test, dropped when the test ends.
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database.
    pub async fn create() -> anyhow::Result<Self> {
        let admin_url = admin_database_url();
        let name = format!("ordo_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let mut url = url_with_database(&admin_url, &name);
        if !url.contains('?') {
            url.push_str("?application_name=ordo-test");
        }
        Ok(Self { name, url })
    }

    /// A pool on it.
    pub async fn pool(&self) -> anyhow::Result<PgPool> {
        self.pool_of(5).await
    }

    /// A pool on it with at most `max_connections` connections.
    pub async fn pool_of(&self, max_connections: u32) -> anyhow::Result<PgPool> {
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&self.url)
            .await?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = admin_database_url();
        crate::run_detached(async move {
            if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        });
    }
}

/// The URL of database `database` on the test server.
pub fn database_url(database: &str) -> String {
    url_with_database(&admin_database_url(), database)
}

fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// The event types stored for one aggregate, in order: what a test reads to see what a
/// command or a saga recorded.
pub async fn event_types(pool: &PgPool, aggregate_type: &str, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = $1 AND aggregate_id = $2
         ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("the events table answers")
}

/// The payments created for a booking (or an order), oldest first.
pub async fn payments_of(pool: &PgPool, owner_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT aggregate_id FROM events
         WHERE aggregate_type = 'payment' AND event_type = 'PaymentCreated'
           AND payload::jsonb -> 'PaymentCreated' ->> 'order_id' = $1
         ORDER BY position",
    )
    .bind(owner_id)
    .fetch_all(pool)
    .await
    .expect("the events table answers")
}
