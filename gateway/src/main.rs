//! The `ordo` binary: one executable for every role and every operator task.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use ordo_gateway::config::Config;
use ordo_gateway::config::ServeArgs;
use ordo_gateway::serve;

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// buffers on whichever worker thread runs it, where glibc's allocator spent about a
/// quarter of the flash sale's CPU time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ordo: event-sourced commerce and ticketing.
#[derive(Debug, Parser)]
#[command(name = "ordo", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP gateway, the outbox relay and the workers (or the chosen roles).
    Serve(ServeArgs),
    /// Apply database migrations and create the JetStream streams, then exit.
    Migrate,
    /// Load the demo catalog and stock (safe to run again), then exit.
    DemoData,
    /// Write events as JSON Lines or CSV (from Postgres or JetStream), or replay them into a
    /// fresh read model database.
    Replay(ordo_ops::replay::ReplayArgs),
    /// Read and re-drive dead letters.
    #[command(subcommand)]
    Dlq(ordo_gateway::cli_dlq::DlqCommand),
    /// Projection status and rebuilds.
    #[command(subcommand)]
    Projections(ordo_gateway::cli_ops::ProjectionsCommand),
    /// Refill JetStream streams from the event store.
    #[command(subcommand)]
    Streams(ordo_gateway::cli_ops::StreamsCommand),
    /// Reconcile a day's payments with the payment provider's statement: apply the
    /// captures Ordo missed, list every other discrepancy.
    Reconcile(ordo_gateway::cli_reconcile::ReconcileArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A subcommand prints its answer and nothing else: its log shows warnings and errors
    // only, unless ORDO_LOG asks for more.
    let default_log = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let export = cli
        .config
        .otlp_endpoint
        .clone()
        .filter(|endpoint| !endpoint.is_empty())
        .map(|endpoint| ordo_gateway::telemetry::TraceExport {
            endpoint,
            flush_interval: cli.config.otlp_flush_interval,
        });
    let _telemetry =
        ordo_gateway::telemetry::init(cli.config.log.as_deref().unwrap_or(default_log), export);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ordo: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::serve(cli.config, args).await,
            Command::Migrate => {
                serve::connect_ops(&cli.config).await?;
                println!("database migrated and streams ready");
                Ok(())
            }
            Command::Replay(args) => {
                let config = &cli.config;
                let secret = config.payment_secret.clone();
                let sources = ordo_ops::replay::ReplaySources {
                    personal_data: Some(Box::new(move |pool| {
                        Arc::new(ordo_identity::PersonalDataVault::new(
                            pool,
                            secret.as_deref().map(str::as_bytes),
                        )) as Arc<dyn ordo_store::PersonalDataSealer>
                    })),
                    database_url: config.database_url.clone(),
                    namespace: config.nats_namespace.clone(),
                    connect_nats: async || serve::connect_nats(config, "ordo-replay").await,
                };
                ordo_ops::replay::run(sources, args).await
            }
            Command::Dlq(command) => {
                let ops = serve::connect_ops(&cli.config).await?;
                ordo_gateway::cli_dlq::run(&ops, command).await
            }
            Command::Projections(command) => {
                let ops = serve::connect_ops(&cli.config).await?;
                ordo_gateway::cli_ops::projections(&ops, command).await
            }
            Command::Streams(command) => {
                let ops = serve::connect_ops(&cli.config).await?;
                ordo_gateway::cli_ops::streams(&ops, command).await
            }
            Command::Reconcile(args) => ordo_gateway::cli_reconcile::run(&cli.config, args).await,
            Command::DemoData => {
                let ops = serve::connect_ops(&cli.config).await?;
                let products = ordo_store::CommandBus::new(ops.pool.clone(), ())
                    .with_upcasters(ordo_schemas::upcasters::all);
                let inventory = ordo_store::CommandBus::new(ops.pool.clone(), ());
                let created = ordo_ops::demo::load(&products, &inventory).await?;
                println!("demo data ready ({created} products created)");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ordo: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
