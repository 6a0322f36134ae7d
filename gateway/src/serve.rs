//! `ordo serve`: connects to Postgres and NATS, makes sure the schema and streams exist,
//! then runs the chosen roles (HTTP gateway, outbox relay, workers) until SIGTERM or
//! Ctrl-C, and stops gracefully: no new requests, in-flight commands and acknowledgements
//! finished, exit 0.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_nats::consumer::{run_consumer, ConsumerSpec, EventHandler};
use ordo_nats::relay::Relay;
use ordo_nats::subjects::Namespace;
use ordo_sagas::aftersale::{AfterSaleSaga, AfterSaleStore, AFTERSALE_CONSUMER};
use ordo_sagas::booking::{BOOKING_CONSUMER, BOOKING_PAYMENTS_CONSUMER, BOOKING_SEATS_CONSUMER};
use ordo_sagas::checkout::{CheckoutSettings, CHECKOUT_CONSUMER, CHECKOUT_PAYMENTS_CONSUMER};
use ordo_sagas::fulfilment::{
    FulfilmentSaga, FulfilmentSettings, FulfilmentStore, FULFILMENT_CONSUMER,
    FULFILMENT_SHIPMENTS_CONSUMER,
};
use ordo_sagas::seat_stock::SEAT_STOCK_CONSUMER;
use ordo_sagas::service_order::{
    ServiceOrderSettings, ServiceOrderStorePort, SERVICE_ORDER_CONSUMER,
    SERVICE_ORDER_PAYMENTS_CONSUMER,
};
use ordo_sagas::ServiceOrderSaga;
use ordo_sagas::{CheckoutSaga, StorePort};
use ordo_store::CommandBus;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Role, ServeArgs};
use crate::state::AppState;
use ordo_identity::{Email, IdentityError, IdentityService, JwtKeys, Password};
use ordo_ops::OpsContext;

/// Everything a running process holds.
pub struct Runtime {
    /// State shared with HTTP handlers.
    pub state: AppState,
    /// JetStream context.
    pub jetstream: async_nats::jetstream::Context,
    /// Stream namespace.
    pub namespace: Namespace,
    /// The sandbox payment provider, when this process serves it.
    pub sandbox: Option<ordo_payments::Sandbox>,
    /// The payment provider's API base URL.
    pub provider_url: String,
    /// Where the provider calls back.
    pub public_url: String,
    /// Where notification emails are spooled.
    pub mail_spool_dir: std::path::PathBuf,
    /// How long a done service order waits for its customer's confirmation.
    pub service_confirm_after: Duration,
    /// The carriers the fulfilment process asks to follow parcels.
    pub carriers: Arc<ordo_payments::Carriers>,
}

/// Connects to NATS with the configured credentials under the connection name `name`, and
/// makes sure the server answers.
pub async fn connect_nats(config: &Config, name: &str) -> anyhow::Result<async_nats::Client> {
    let nats = config
        .nats_options(name)
        .await?
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        // A cluster is named by several URLs, comma-separated; the client also learns the
        // other members from the server it reaches.
        .connect(config.nats_servers());
    let nats = tokio::time::timeout(Duration::from_secs(10), nats)
        .await
        .map_err(|_| anyhow::anyhow!("cannot connect to NATS at {}: timed out", config.nats_url))?
        .map_err(|err| anyhow::anyhow!("cannot connect to NATS at {}: {err}", config.nats_url))?;
    // The client connects lazily and keeps retrying; a flush proves the server answers.
    match tokio::time::timeout(Duration::from_secs(5), nats.flush()).await {
        Ok(Ok(())) => Ok(nats),
        _ => anyhow::bail!(
            "cannot connect to NATS at {}: no answer (is nats-server running?)",
            config.nats_url
        ),
    }
}

/// Connects to Postgres and NATS, migrates, makes sure streams exist and connects the search
/// engine: what the operator subcommands need, and the start of every process.
pub async fn connect_ops(config: &Config) -> anyhow::Result<OpsContext> {
    let namespace = Namespace::parse(&config.nats_namespace)
        .map_err(|err| anyhow::anyhow!("ORDO_NATS_NAMESPACE: {err}"))?
        .with_stream_replicas(config.stream_replicas.into());
    let pool = ordo_store::database::connect(&config.database_url, config.database_max_connections)
        .await?;
    ordo_store::database::migrate(&pool).await?;
    // The customer directory opens personal values wherever it is applied or rebuilt.
    ordo_projections::customers::install_vault(Arc::new(ordo_identity::PersonalDataVault::new(
        pool.clone(),
        config.payment_secret.as_deref().map(str::as_bytes),
    )));
    let nats = connect_nats(config, "ordo").await?;
    let jetstream = async_nats::jetstream::new(nats.clone());

    tokio::time::timeout(
        Duration::from_secs(10),
        ordo_nats::definitions::ensure_streams(&jetstream, &namespace),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "NATS at {} did not answer JetStream requests: is JetStream enabled (nats-server -js)?",
            config.nats_url
        )
    })?
    .map_err(|err| {
        anyhow::anyhow!("creating the JetStream streams failed (is JetStream enabled?): {err}")
    })?;

    let search = ordo_projections::search::connect(
        &ordo_projections::search::SearchSettings {
            elasticsearch_url: config.elasticsearch_url.clone(),
            index_prefix: config.elasticsearch_index_prefix.clone(),
        },
        &pool,
    )
    .await?;
    Ok(OpsContext {
        pool,
        nats,
        jetstream,
        namespace,
        search,
    })
}

/// Connects (see [`connect_ops`]), bootstraps the admin, and builds the command buses, the
/// sagas' ports and the state handlers share.
pub async fn connect(config: &Config) -> anyhow::Result<Runtime> {
    let OpsContext {
        pool,
        nats,
        jetstream,
        namespace,
        search,
    } = connect_ops(config).await?;
    let keys = match &config.jwt_secret {
        Some(secret) => {
            JwtKeys::from_secret(secret).map_err(|err| anyhow::anyhow!("ORDO_JWT_SECRET: {err}"))?
        }
        None => {
            tracing::warn!("ORDO_JWT_SECRET is not set: using a random signing key; tokens will not survive a restart or work across instances");
            JwtKeys::random()
        }
    };
    let identity = Arc::new(IdentityService::new(
        pool.clone(),
        keys,
        config.identity_config(),
    ));
    if let (Some(email), Some(password)) = (
        &config.bootstrap_admin_email,
        &config.bootstrap_admin_password,
    ) {
        let email = Email::parse(email)
            .map_err(|err| anyhow::anyhow!("ORDO_BOOTSTRAP_ADMIN_EMAIL: {err}"))?;
        let password = Password::parse(password, &email)
            .map_err(|err| anyhow::anyhow!("ORDO_BOOTSTRAP_ADMIN_PASSWORD: {err}"))?;
        identity
            .ensure_admin(&email, &password)
            .await
            .map_err(|err| match err {
                IdentityError::BootstrapAdminTaken { .. } => anyhow::anyhow!(
                    "refusing to start: ORDO_BOOTSTRAP_ADMIN_EMAIL {err}; choose an address no account uses, or make that account admin by hand"
                ),
                err => anyhow::anyhow!("creating the bootstrap admin failed: {err}"),
            })?;
        tracing::info!(email = %email, "bootstrap admin ready");
    }
    let payment_secret = match &config.payment_secret {
        Some(secret) if secret.len() >= 16 => secret.as_bytes().to_vec(),
        Some(_) => anyhow::bail!("ORDO_PAYMENT_SECRET must be at least 16 characters"),
        None => {
            tracing::warn!("ORDO_PAYMENT_SECRET is not set: using a random secret; provider callbacks only verify within this process, and payment tokens sealed before a restart cannot be opened after it");
            rand::random::<[u8; 32]>().to_vec()
        }
    };
    config.check_sandbox()?;
    let inventory =
        Arc::new(CommandBus::new(pool.clone(), ()).with_snapshots(config.snapshot_every));
    let orders = Arc::new(CommandBus::new(pool.clone(), ()));
    let payments =
        Arc::new(CommandBus::new(pool.clone(), ()).with_upcasters(ordo_schemas::upcasters::all));
    let sandbox = config
        .sandbox_provider
        .then(|| sandbox(config, &payment_secret, &payments))
        .transpose()?;
    let token_seal = ordo_payments::TokenSeal::from_secret(&payment_secret);
    let ticketing = ticketing(config, &pool, &inventory, &orders, &payments, &token_seal)?;
    let rate_limits = Arc::new(
        crate::rate_limit::RateLimits::new(
            crate::rate_limit::Limit {
                per_second: config.rate_limit_per_ip,
                burst: config.rate_limit_per_ip_burst,
            },
            crate::rate_limit::Limit {
                per_second: config.rate_limit_per_user,
                burst: config.rate_limit_per_user_burst,
            },
        )
        .with_trusted_proxies(crate::rate_limit::TrustedProxies::new(
            config.trusted_proxies.clone(),
        )),
    );
    // Personal-data keys are wrapped with a key derived from the payment secret when one is
    // configured (a random one would make them unreadable after a restart).
    let vault = Arc::new(ordo_identity::PersonalDataVault::new(
        pool.clone(),
        config.payment_secret.as_deref().map(str::as_bytes),
    ));
    let marketplace = Arc::new(crate::marketplace::Marketplace::new(
        pool.clone(),
        vault.clone(),
    ));
    let profiles = Arc::new(crate::profiles::Profiles::new(pool.clone(), vault));
    let reconciler = reconciler(config, &pool, Arc::clone(&payments), token_seal.clone());
    let state = AppState {
        reconciler,
        profiles,
        marketplace,
        ticketing,
        offers: Arc::new(crate::offers::Offers::new(pool.clone())),
        rate_limits,
        pool: pool.clone(),
        nats,
        identity,
        products: Arc::new(
            CommandBus::new(pool.clone(), ()).with_upcasters(ordo_schemas::upcasters::all),
        ),
        categories: Arc::new(CommandBus::new(pool.clone(), ())),
        carts: Arc::new(CommandBus::new(pool.clone(), ())),
        inventory,
        orders,
        payments,
        shipments: Arc::new(CommandBus::new(pool.clone(), ())),
        aftersales: Arc::new(CommandBus::new(pool.clone(), ())),
        aftersales_window: config.aftersales_window,
        reviews: Arc::new(CommandBus::new(pool.clone(), ())),
        review_blocked_words: Arc::new(
            config
                .review_blocked_words
                .split(',')
                .map(|word| word.trim().to_lowercase())
                .filter(|word| !word.is_empty())
                .collect(),
        ),
        review_hide_after_reports: config.review_hide_after_reports.max(1),
        carrier_secret: Arc::new(match &config.carrier_secret {
            Some(secret) if secret.len() >= 16 => secret.as_bytes().to_vec(),
            Some(_) => anyhow::bail!("ORDO_CARRIER_SECRET must be at least 16 characters"),
            None => payment_secret.clone(),
        }),
        payment_secret: Arc::new(payment_secret),
        token_seal,
        jetstream: jetstream.clone(),
        namespace: namespace.clone(),
        max_wait: config.max_prefer_wait(),
        search,
        inbox: ordo_reactors::inbox::InboxHub::new(ordo_reactors::inbox::StreamLimits {
            per_user: config.sse_per_user,
            total: config.sse_max,
        }),
        waits: crate::consistency::WaitGate::new(crate::consistency::WaitLimits {
            per_user: config.prefer_wait_per_user,
            total: config.prefer_wait_max,
        }),
        guest_cart_max: config.guest_cart_max,
    };
    // The sandbox carrier signs with the secret Ordo verifies carrier updates with.
    let carriers = Arc::new(ordo_payments::Carriers::new(config.sandbox_provider.then(
        || {
            ordo_payments::SandboxCarrier::new(ordo_payments::SandboxCarrierSettings {
                secret: state.carrier_secret.to_vec(),
                delay: config.sandbox_carrier_delay,
                public_url: config.public_url(),
            })
        },
    )));
    Ok(Runtime {
        carriers,
        state,
        jetstream,
        namespace,
        sandbox,
        provider_url: config.payment_provider_url(),
        public_url: config.public_url(),
        mail_spool_dir: config.mail_spool_dir(),
        service_confirm_after: config.service_confirm_after,
    })
}

/// The consumer named `name` as its file under `nats/consumers/` defines it, or with the
/// default limits when it has none.
pub fn consumer_spec(name: &str, aggregate_type: &str, namespace: &Namespace) -> ConsumerSpec {
    ordo_nats::definitions::consumer_definition(name, namespace)
        .and_then(|definition| definition.ok())
        .and_then(|definition| ConsumerSpec::from_definition(&definition, namespace))
        .filter(|spec| spec.aggregate_type == aggregate_type)
        .unwrap_or_else(|| ConsumerSpec::new(name, aggregate_type))
}

/// The notifications consumers, one per stream, mailing to the runtime's spool.
fn notification_workers(
    runtime: &Runtime,
) -> Vec<(ordo_nats::ConsumerSpec, Arc<dyn ordo_nats::EventHandler>)> {
    use ordo_reactors::{mail::SpoolMailer, notifications::NotificationsHandler};
    let mail = Arc::new(SpoolMailer::new(runtime.mail_spool_dir.clone()));
    NotificationsHandler::all(runtime.state.pool.clone(), mail)
        .into_iter()
        .map(|handler| {
            let spec = consumer_spec(handler.name(), handler.aggregate_type(), &runtime.namespace);
            (spec, handler as Arc<dyn ordo_nats::EventHandler>)
        })
        .collect()
}

/// The sandbox payment provider, charging only the payments of the event store. It signs
/// with its own secret, ORDO_SANDBOX_SECRET, which must be the one Ordo verifies callbacks
/// with (ORDO_PAYMENT_SECRET) and defaults to it: the sandbox is then configured with Ordo's
/// callback secret, as a real provider is.
fn sandbox(
    config: &Config,
    payment_secret: &[u8],
    payments: &Arc<CommandBus<ordo_aggregates::payment::Payment>>,
) -> anyhow::Result<ordo_payments::Sandbox> {
    let secret = match &config.sandbox_secret {
        Some(secret) if secret.as_bytes() != payment_secret => anyhow::bail!(
            "ORDO_SANDBOX_SECRET differs from ORDO_PAYMENT_SECRET: Ordo would refuse every callback of the sandbox provider"
        ),
        Some(secret) => secret.as_bytes().to_vec(),
        None => payment_secret.to_vec(),
    };
    tracing::warn!(
        "the sandbox payment provider is on (ORDO_SANDBOX_PROVIDER): payments are not real"
    );
    Ok(ordo_payments::Sandbox::new(
        ordo_payments::SandboxSettings {
            secret,
            delay: config.sandbox_delay,
            callback_base_url: config.public_url(),
            max_charges: config.sandbox_max_charges,
        },
        Arc::new(RecordedPayments(Arc::clone(payments))),
    ))
}

/// The reconciliation of payments with the provider's daily statements, applying missed
/// captures on the payment bus.
pub fn reconciler(
    config: &Config,
    pool: &sqlx::PgPool,
    payments: Arc<CommandBus<ordo_aggregates::payment::Payment>>,
    token_seal: ordo_payments::TokenSeal,
) -> Arc<ordo_sagas::reconciliation::Reconciler> {
    ordo_sagas::reconciliation::Reconciler::new(
        pool.clone(),
        payments,
        Arc::new(ordo_payments::HttpProvider::new(
            &config.payment_provider_url(),
            token_seal,
        )),
    )
}

/// The payments of the event store, as the sandbox provider checks its charges.
struct RecordedPayments(Arc<CommandBus<ordo_aggregates::payment::Payment>>);

#[async_trait::async_trait]
impl ordo_payments::PaymentRecords for RecordedPayments {
    async fn recorded(
        &self,
        payment_id: ordo_aggregates::common::PaymentId,
    ) -> Result<Option<ordo_payments::RecordedPayment>, String> {
        use ordo_aggregates::payment::PaymentStatus;
        let (payment, version) = self
            .0
            .load(&payment_id.to_string())
            .await
            .map_err(|err| err.to_string())?;
        if version == 0 {
            return Ok(None);
        }
        Ok(payment
            .amount()
            .map(|amount| ordo_payments::RecordedPayment {
                amount: amount.clone(),
                open: matches!(
                    payment.status(),
                    Some(PaymentStatus::Created | PaymentStatus::Authorized)
                ),
            }))
    }
}

/// The ticketing side: show and booking buses, the booking saga (its port sharing the
/// process's buses, so a hot seat area has one batching writer per process; its provider
/// opens payment tokens with `token_seal`) and the ticket key.
fn ticketing(
    config: &Config,
    pool: &sqlx::PgPool,
    inventory: &Arc<CommandBus<ordo_aggregates::inventory::InventoryItem>>,
    orders: &Arc<CommandBus<ordo_aggregates::order::Order>>,
    payments: &Arc<CommandBus<ordo_aggregates::payment::Payment>>,
    token_seal: &ordo_payments::TokenSeal,
) -> anyhow::Result<Arc<crate::ticketing::Ticketing>> {
    let ticket_secret = match &config.ticket_secret {
        Some(secret) if secret.len() >= 16 => secret.as_bytes().to_vec(),
        Some(_) => anyhow::bail!("ORDO_TICKET_SECRET must be at least 16 characters"),
        None => {
            tracing::warn!("ORDO_TICKET_SECRET is not set: using a random key; tickets will not verify after a restart or on other instances");
            rand::random::<[u8; 32]>().to_vec()
        }
    };
    let shows = Arc::new(CommandBus::new(pool.clone(), ()));
    let bookings = Arc::new(CommandBus::new(pool.clone(), ()));
    let port = Arc::new(StorePort {
        inventory: Arc::clone(inventory),
        orders: Arc::clone(orders),
        payments: Arc::clone(payments),
        bookings: Arc::clone(&bookings),
        shows: Arc::clone(&shows),
        coupons: Arc::new(CommandBus::new(pool.clone(), ())),
        carts: Arc::new(CommandBus::new(pool.clone(), ())),
        pool: pool.clone(),
    });
    let saga = ordo_sagas::BookingSaga::new(
        pool.clone(),
        port,
        Arc::new(ordo_payments::HttpProvider::new(
            &config.payment_provider_url(),
            token_seal.clone(),
        )),
        ordo_sagas::booking::BookingSettings {
            booking_timeout: config.booking_timeout,
            callback_base_url: config.public_url(),
            max_per_booking: config.max_tickets_per_booking,
        },
    );
    Ok(Arc::new(crate::ticketing::Ticketing::new(
        shows,
        bookings,
        saga,
        crate::ticketing::TicketingSettings {
            max_per_booking: config.max_tickets_per_booking,
            ticket_secret,
            public_url: config.public_url(),
            default_currency: ordo_aggregates::common::Currency::parse(&config.default_currency)
                .map_err(|err| anyhow::anyhow!("ORDO_DEFAULT_CURRENCY: {err}"))?,
        },
    )))
}

/// The durable consumers of the worker role, with their handlers.
pub fn workers(runtime: &Runtime, args: &ServeArgs) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
    let state = &runtime.state;
    let mut consumers: Vec<(ConsumerSpec, Arc<dyn EventHandler>)> = Vec::new();
    for projection in ordo_projections::all(state.pool.clone()) {
        let spec = consumer_spec(
            projection.name(),
            projection.aggregate_type(),
            &runtime.namespace,
        );
        consumers.push((spec, projection));
    }
    consumers.extend(notification_workers(runtime));
    consumers.push((
        consumer_spec(
            ordo_reactors::marketplace::SERVICE_ORDER_NOTIFICATIONS,
            "service_order",
            &runtime.namespace,
        ),
        Arc::new(ordo_reactors::marketplace::ServiceOrderNotifications::new(
            state.pool.clone(),
        )),
    ));
    consumers.extend(
        state
            .search
            .indexers(&state.pool)
            .into_iter()
            .map(|indexer| {
                let spec = consumer_spec(indexer.name, indexer.aggregate_type, &runtime.namespace);
                (spec, indexer.handler)
            }),
    );
    let booking = &state.ticketing.saga;
    consumers.push((
        consumer_spec(BOOKING_CONSUMER, "booking", &runtime.namespace),
        Arc::new(booking.bookings()),
    ));
    consumers.push((
        consumer_spec(BOOKING_PAYMENTS_CONSUMER, "payment", &runtime.namespace),
        Arc::new(booking.payments()),
    ));
    consumers.push((
        consumer_spec(BOOKING_SEATS_CONSUMER, "inventory", &runtime.namespace),
        Arc::new(booking.seats()),
    ));
    consumers.push((
        consumer_spec(SEAT_STOCK_CONSUMER, "show", &runtime.namespace),
        ordo_sagas::SeatStockPolicy::new(state.pool.clone(), store_port(state)),
    ));
    let service_orders = service_order_saga(runtime);
    consumers.push((
        consumer_spec(SERVICE_ORDER_CONSUMER, "service_order", &runtime.namespace),
        Arc::new(service_orders.service_orders()),
    ));
    consumers.push((
        consumer_spec(
            SERVICE_ORDER_PAYMENTS_CONSUMER,
            "payment",
            &runtime.namespace,
        ),
        Arc::new(service_orders.payments()),
    ));
    let saga = checkout_saga(runtime, args);
    consumers.push((
        consumer_spec(CHECKOUT_CONSUMER, "order", &runtime.namespace),
        Arc::new(saga.orders()),
    ));
    consumers.push((
        consumer_spec(AFTERSALE_CONSUMER, "aftersale", &runtime.namespace),
        aftersale_saga(runtime),
    ));
    consumers.push((
        consumer_spec(
            ordo_reactors::aftersales::AFTERSALE_NOTIFICATIONS,
            "aftersale",
            &runtime.namespace,
        ),
        Arc::new(ordo_reactors::aftersales::AfterSaleNotifications::new(
            state.pool.clone(),
        )),
    ));
    consumers.push((
        consumer_spec(
            ordo_reactors::reviews::REVIEW_NOTIFICATIONS,
            "review",
            &runtime.namespace,
        ),
        Arc::new(ordo_reactors::reviews::ReviewNotifications::new(
            state.pool.clone(),
        )),
    ));
    let fulfilment = fulfilment_saga(runtime, args);
    consumers.push((
        consumer_spec(FULFILMENT_CONSUMER, "order", &runtime.namespace),
        Arc::new(fulfilment.orders()),
    ));
    consumers.push((
        consumer_spec(
            FULFILMENT_SHIPMENTS_CONSUMER,
            "shipment",
            &runtime.namespace,
        ),
        Arc::new(fulfilment.shipments()),
    ));
    consumers.push((
        consumer_spec(CHECKOUT_PAYMENTS_CONSUMER, "payment", &runtime.namespace),
        Arc::new(saga.payments()),
    ));
    consumers
}

/// Rows pruned per transaction.
const PRUNE_BATCH: i64 = 500;
/// How long an expired checkout quote is kept: an order from it is answered with a fresh
/// quote until then.
const EXPIRED_QUOTE_KEPT: chrono::Duration = chrono::Duration::hours(1);

/// Prunes expired checkout quotes and guest carts idle for `guest_cart_idle`, every
/// `every`, in batches of [`PRUNE_BATCH`] until none is left, until shutdown.
async fn run_pruning(
    pool: sqlx::PgPool,
    every: Duration,
    guest_cart_idle: Duration,
    shutdown: CancellationToken,
) {
    let idle = chrono::Duration::from_std(guest_cart_idle).unwrap_or(chrono::Duration::days(7));
    ordo_sagas::deadlines::run_every(every, shutdown, "pruning quotes and guest carts", || {
        let pool = pool.clone();
        async move {
            let mut pruned = 0;
            loop {
                let now = chrono::Utc::now();
                let quotes = ordo_store::pruning::prune_expired_quotes(
                    &pool,
                    now - EXPIRED_QUOTE_KEPT,
                    PRUNE_BATCH,
                )
                .await?;
                let carts =
                    ordo_store::pruning::prune_idle_guest_carts(&pool, now - idle, PRUNE_BATCH)
                        .await?;
                pruned += (quotes + carts) as usize;
                if quotes < PRUNE_BATCH as u64 && carts < PRUNE_BATCH as u64 {
                    return Ok(pruned);
                }
            }
        }
    })
    .await;
}

/// The command buses of the process as the sagas' and policies' port.
fn store_port(state: &AppState) -> Arc<StorePort> {
    Arc::new(StorePort {
        inventory: state.inventory.clone(),
        orders: state.orders.clone(),
        payments: state.payments.clone(),
        bookings: state.ticketing.bookings.clone(),
        shows: state.ticketing.shows.clone(),
        coupons: state.offers.coupons.clone(),
        carts: state.carts.clone(),
        pool: state.pool.clone(),
    })
}

/// The service order saga wired to the command buses and the payment provider.
pub fn service_order_saga(runtime: &Runtime) -> Arc<ServiceOrderSaga> {
    let state = &runtime.state;
    ServiceOrderSaga::new(
        state.pool.clone(),
        Arc::new(ServiceOrderStorePort {
            store: store_port(state),
            service_orders: state.marketplace.service_orders.clone(),
        }),
        Arc::new(ordo_payments::HttpProvider::new(
            &runtime.provider_url,
            state.token_seal.clone(),
        )),
        ServiceOrderSettings {
            confirm_after: runtime.service_confirm_after,
            callback_base_url: runtime.public_url.clone(),
        },
    )
}

/// The checkout saga wired to the command buses and the payment provider.
pub fn checkout_saga(runtime: &Runtime, args: &ServeArgs) -> Arc<CheckoutSaga> {
    let state = &runtime.state;
    let port = store_port(state);
    CheckoutSaga::new(
        state.pool.clone(),
        port,
        Arc::new(ordo_payments::HttpProvider::new(
            &runtime.provider_url,
            state.token_seal.clone(),
        )),
        CheckoutSettings {
            payment_timeout: args.payment_timeout,
            payment_grace: args.payment_grace,
            callback_base_url: runtime.public_url.clone(),
        },
    )
}

/// The after-sales process wired to the after-sales, inventory, payment and shipment buses.
pub fn aftersale_saga(runtime: &Runtime) -> Arc<AfterSaleSaga> {
    let state = &runtime.state;
    AfterSaleSaga::new(
        state.pool.clone(),
        Arc::new(AfterSaleStore {
            aftersales: state.aftersales.clone(),
            inventory: state.inventory.clone(),
            payments: state.payments.clone(),
            shipments: state.shipments.clone(),
            orders: state.orders.clone(),
        }),
    )
}

/// The fulfilment process wired to the order and shipment buses and the carriers.
pub fn fulfilment_saga(runtime: &Runtime, args: &ServeArgs) -> Arc<FulfilmentSaga> {
    let state = &runtime.state;
    FulfilmentSaga::new(
        state.pool.clone(),
        Arc::new(FulfilmentStore {
            orders: state.orders.clone(),
            shipments: state.shipments.clone(),
        }),
        runtime.carriers.clone(),
        FulfilmentSettings {
            auto_confirm_after: args.auto_confirm_after,
            tracking_base_url: runtime.public_url.clone(),
        },
    )
}

/// Runs `ordo serve` until shutdown.
pub async fn serve(config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let roles: BTreeSet<Role> = args.roles.iter().copied().collect();
    let started = std::time::Instant::now();
    crate::metrics::install();
    let runtime = connect(&config).await?;
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let relay = roles.contains(&Role::Relay).then(|| {
        Relay::new(
            runtime.state.pool.clone(),
            runtime.jetstream.clone(),
            runtime.namespace.clone(),
        )
    });
    spawn_operations(
        &runtime,
        &args,
        &roles,
        relay.clone(),
        started,
        &shutdown,
        &mut tasks,
    );
    if let Some(relay) = relay {
        let token = shutdown.clone();
        tasks.spawn(async move {
            relay.run(token).await;
            Ok(())
        });
    }
    if roles.contains(&Role::Workers) {
        let deadlines = checkout_saga(&runtime, &args);
        let token = shutdown.clone();
        let every = args.deadline_scan_interval;
        tasks.spawn(async move {
            deadlines.run_deadlines(every, token).await;
            Ok(())
        });
        let bookings = runtime.state.ticketing.saga.clone();
        let token = shutdown.clone();
        tasks.spawn(async move {
            bookings.run_deadlines(every, token).await;
            Ok(())
        });
        let service_orders = service_order_saga(&runtime);
        let token = shutdown.clone();
        tasks.spawn(async move {
            service_orders.run_deadlines(every, token).await;
            Ok(())
        });
        let pool = runtime.state.pool.clone();
        let token = shutdown.clone();
        let (prune_every, guest_cart_idle) = (args.prune_interval, args.guest_cart_idle);
        tasks.spawn(async move {
            run_pruning(pool, prune_every, guest_cart_idle, token).await;
            Ok(())
        });
        let fulfilment = fulfilment_saga(&runtime, &args);
        let token = shutdown.clone();
        tasks.spawn(async move {
            fulfilment.run_deadlines(every, token).await;
            Ok(())
        });
        for (mut spec, handler) in workers(&runtime, &args) {
            if let Some(max_deliver) = args.consumer_max_deliver {
                spec.max_deliver = max_deliver;
            }
            if let Some(backoff) = &args.consumer_backoff {
                spec.backoff = backoff.clone();
            }
            if let Some(ack_wait) = args.consumer_ack_wait {
                spec.ack_wait = ack_wait;
            }
            spec.lanes = args.consumer_lanes;
            let js = runtime.jetstream.clone();
            let pool = runtime.state.pool.clone();
            let namespace = runtime.namespace.clone();
            let token = shutdown.clone();
            tasks.spawn(
                async move { run_consumer(js, pool, &namespace, spec, handler, token).await },
            );
        }
    }
    let listener =
        if roles.contains(&Role::Gateway) {
            Some(listen(config.http_addr).with_context(|| {
                format!("cannot listen on {} (ORDO_HTTP_ADDR)", config.http_addr)
            })?)
        } else {
            None
        };
    // With its own address, /metrics is served there only, for the scraper's network, with
    // the probes: every role serves it, also those without the HTTP API.
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(
            listen(addr).with_context(|| format!("cannot listen on {addr} (ORDO_METRICS_ADDR)"))?,
        ),
        None => None,
    };
    if let Some(metrics_listener) = metrics_listener {
        let addr = metrics_listener.local_addr()?;
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz on http://{addr}");
        let internal = crate::metrics::internal_router(runtime.state.clone());
        let token = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(metrics_listener, internal)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .context("metrics server failed")
        });
    }
    if let Some(listener) = listener {
        let app = crate::app::router(
            runtime.state.clone(),
            runtime.sandbox.clone(),
            if config.metrics_addr.is_some() {
                crate::app::MetricsEndpoint::Internal
            } else {
                crate::app::MetricsEndpoint::Public
            },
        )
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let limits = runtime.state.rate_limits.clone();
        let token = shutdown.clone();
        tasks.spawn(async move {
            limits.run_cleanup(Duration::from_secs(60), token).await;
            Ok(())
        });
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "serving HTTP on http://{addr}");
        println!(
            "Ordo is serving on http://{addr} (API under /api/v1, OpenAPI at /api/v1/openapi.json)"
        );
        let token = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .context("HTTP server failed")
        });
    }
    tracing::info!(roles = ?roles, "ordo is running");

    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut failure = None;
    tokio::select! {
        _ = &mut signal => tracing::info!("shutting down"),
        Some(result) = tasks.join_next() => {
            failure = match result {
                Ok(Ok(())) => Some(anyhow::anyhow!("a role stopped unexpectedly")),
                Ok(Err(err)) => Some(err),
                Err(err) => Some(anyhow::anyhow!("a role panicked: {err}")),
            };
        }
    }
    shutdown.cancel();
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(result) = tasks.join_next().await {
            if let Ok(Err(err)) = result {
                tracing::warn!(error = %err, "role ended with an error during shutdown");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some roles did not stop within 30 s");
    }
    match failure {
        Some(err) => Err(err),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// The NATS admin service and the metrics poller, which every process runs whatever its
/// roles.
fn spawn_operations(
    runtime: &Runtime,
    args: &ServeArgs,
    roles: &BTreeSet<Role>,
    relay: Option<Relay>,
    started: std::time::Instant,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) {
    let names = |role: &Role| format!("{role:?}").to_ascii_lowercase();
    let context = ordo_ops::admin_service::AdminContext {
        ops: runtime.state.ops(),
        roles: roles.iter().map(names).collect(),
        started,
        relay,
    };
    let token = shutdown.clone();
    tasks.spawn(async move {
        // Operators lose a convenience without it, not the business: keep serving.
        if let Err(err) = ordo_ops::admin_service::run(context, token.clone()).await {
            tracing::warn!(error = %format!("{err:#}"), "the NATS admin service is not available");
        }
        token.cancelled().await;
        Ok(())
    });
    let consumers: Vec<(String, String)> = if roles.contains(&Role::Workers) {
        workers(runtime, args)
            .into_iter()
            .map(|(spec, _)| (spec.name, spec.aggregate_type))
            .collect()
    } else {
        Vec::new()
    };
    let ops = runtime.state.ops();
    let every = args.metrics_interval;
    let token = shutdown.clone();
    tasks.spawn(async move {
        crate::metrics::poll(ops, consumers, every, token).await;
        Ok(())
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// How many connections may wait to be accepted. Ten thousand buyers connecting at the same
/// moment overflow the usual 1,024, and each connection the kernel drops is tried again by
/// its client a second later (then two, then four); the kernel caps it at
/// `net.core.somaxconn` (4,096 on current Linux), with SYN cookies beyond.
const LISTEN_BACKLOG: u32 = 65_535;

/// A listening socket on `addr` with room for a burst of connections.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
