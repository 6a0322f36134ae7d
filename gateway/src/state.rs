//! The state shared by every HTTP handler: the database, the command buses and identity.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use ordo_aggregates::aftersale::AfterSale;
use ordo_aggregates::cart::Cart;
use ordo_aggregates::category::CategoryNode;
use ordo_aggregates::inventory::InventoryItem;
use ordo_aggregates::order::Order;
use ordo_aggregates::payment::Payment;
use ordo_aggregates::product::Product;
use ordo_aggregates::review::Review;
use ordo_aggregates::shipment::Shipment;
use ordo_store::CommandBus;
use sqlx::PgPool;

use ordo_identity::IdentityService;

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Postgres: event store and read models.
    pub pool: PgPool,
    /// The NATS connection (for readiness).
    pub nats: async_nats::Client,
    /// Users, passwords and tokens.
    pub identity: Arc<IdentityService>,
    /// Catalog products.
    pub products: Arc<CommandBus<Product>>,
    /// Categories of the catalog's tree.
    pub categories: Arc<CommandBus<CategoryNode>>,
    /// Shopping carts.
    pub carts: Arc<CommandBus<Cart>>,
    /// Inventory items.
    pub inventory: Arc<CommandBus<InventoryItem>>,
    /// Orders.
    pub orders: Arc<CommandBus<Order>>,
    /// Payments.
    pub payments: Arc<CommandBus<Payment>>,
    /// Payments against the provider's daily statements.
    pub reconciler: Arc<ordo_sagas::reconciliation::Reconciler>,
    /// Shipments of paid orders.
    pub shipments: Arc<CommandBus<Shipment>>,
    /// After-sales requests.
    pub aftersales: Arc<CommandBus<AfterSale>>,
    /// How long after delivery an after-sales request may be made.
    pub aftersales_window: Duration,
    /// Reviews of order lines.
    pub reviews: Arc<CommandBus<Review>>,
    /// Words that send a review to moderation (lowercase).
    pub review_blocked_words: Arc<Vec<String>>,
    /// Reports that hide a published review.
    pub review_hide_after_reports: u32,
    /// Secret carriers sign their tracking updates with.
    pub carrier_secret: Arc<Vec<u8>>,
    /// Secret the payment provider signs its callbacks with.
    pub payment_secret: Arc<Vec<u8>>,
    /// Seals the customers' payment tokens before they enter a payment's events.
    pub token_seal: ordo_payments::TokenSeal,
    /// JetStream, for operator actions on streams and dead letters.
    pub jetstream: async_nats::jetstream::Context,
    /// The streams' namespace.
    pub namespace: ordo_nats::subjects::Namespace,
    /// The longest `Prefer: wait` honoured.
    pub max_wait: Duration,
    /// The search engine (Postgres, or Elasticsearch when configured).
    pub search: ordo_projections::search::SearchEngine,
    /// Live delivery of new notifications to SSE streams.
    pub inbox: ordo_reactors::inbox::InboxHub,
    /// Shows, bookings and tickets.
    pub ticketing: Arc<crate::ticketing::Ticketing>,
    /// Promotions and coupon batches.
    pub offers: Arc<crate::offers::Offers>,
    /// Customers' profiles and addresses, and the personal-data vault.
    pub profiles: Arc<crate::profiles::Profiles>,
    /// Service providers and service orders.
    pub marketplace: Arc<crate::marketplace::Marketplace>,
    /// Per-client rate limits.
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
    /// The caps on requests waiting with `Prefer: wait`.
    pub waits: Arc<crate::consistency::WaitGate>,
    /// Guest carts kept at most.
    pub guest_cart_max: i64,
}

impl FromRef<AppState> for Arc<crate::consistency::WaitGate> {
    fn from_ref(state: &AppState) -> Self {
        state.waits.clone()
    }
}

impl FromRef<AppState> for Arc<IdentityService> {
    fn from_ref(state: &AppState) -> Self {
        state.identity.clone()
    }
}

impl FromRef<AppState> for Arc<crate::rate_limit::RateLimits> {
    fn from_ref(state: &AppState) -> Self {
        state.rate_limits.clone()
    }
}

impl AppState {
    /// What operator tasks need of it: database, NATS, namespace and search engine.
    pub fn ops(&self) -> ordo_ops::OpsContext {
        ordo_ops::OpsContext {
            pool: self.pool.clone(),
            nats: self.nats.clone(),
            jetstream: self.jetstream.clone(),
            namespace: self.namespace.clone(),
            search: self.search.clone(),
        }
    }
}
