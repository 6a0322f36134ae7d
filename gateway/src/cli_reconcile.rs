//! `ordo reconcile --date D`: reconciles a day's payments with the provider's statement, as
//! `POST /api/v1/admin/reconciliations/{date}` does, and prints the run.

use std::sync::Arc;

use chrono::NaiveDate;
use clap::Args;

use crate::config::Config;

/// Arguments of `ordo reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The day to reconcile, YYYY-MM-DD (UTC).
    #[arg(long)]
    pub date: NaiveDate,
    /// Print the run as one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the reconciliation of `args.date`, printing it to stdout.
pub async fn run(config: &Config, args: ReconcileArgs) -> anyhow::Result<()> {
    let pool = ordo_store::database::connect(&config.database_url, config.database_max_connections)
        .await?;
    ordo_store::database::migrate(&pool).await?;
    let payments = Arc::new(
        ordo_store::CommandBus::new(pool.clone(), ()).with_upcasters(ordo_schemas::upcasters::all),
    );
    // The statement needs no payment token; the seal only satisfies the client.
    let seal = ordo_payments::TokenSeal::from_secret(
        config
            .payment_secret
            .as_deref()
            .map(str::as_bytes)
            .unwrap_or(&rand::random::<[u8; 32]>()),
    );
    let reconciler = crate::serve::reconciler(config, &pool, payments, seal);
    let report = reconciler.run(args.date).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{}: {} on the provider's statement, {} in Ordo, {} matched, {} applied, {} discrepancies",
        report.date,
        report.provider_entries,
        report.ordo_entries,
        report.matched,
        report.applied,
        report.discrepancies.len()
    );
    for d in &report.discrepancies {
        println!(
            "{:<28} payment {} {}provider {} ordo {} {}{}: {}",
            d.kind.as_str(),
            d.payment_id,
            d.refund_id
                .map(|id| format!("refund {id} "))
                .unwrap_or_default(),
            d.provider_amount
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            d.ordo_amount
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            d.currency,
            if d.applied { " (applied)" } else { "" },
            d.detail
        );
    }
    Ok(())
}
