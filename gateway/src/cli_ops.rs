//! `ordo projections` and `ordo streams`: projection status and rebuilds, and refilling a
//! JetStream stream from the Postgres event store.

use clap::Subcommand;

use ordo_ops::OpsContext;

/// Projection commands.
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection: aggregate type, aggregates applied, last applied at, pending in
    /// JetStream, state (live or rebuilding).
    Status {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild one projection from the full event history beside the live tables, then
    /// switch; or, with Elasticsearch, one search index beside the live one, then swap its
    /// alias. Queries keep answering meanwhile.
    Rebuild {
        /// The projection, e.g. projection-orders (or orders), or search-products or
        /// search-shows.
        name: String,
    },
}

/// Stream commands.
#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Refill an event stream (e.g. ORDO_ORDER) from the event store, in order, with the
    /// relay's headers and message ids; consumers skip what they already applied.
    Rebuild {
        /// The stream, e.g. ORDO_ORDER.
        stream: String,
        /// Empty the stream first (delete and create it again with its consumers, which
        /// also clears its duplicate window), so it holds exactly one message per stored
        /// event: for a damaged stream. Without it, events are only published: JetStream's
        /// duplicate window and the consumers' claims absorb the repeats.
        #[arg(long)]
        purge: bool,
    },
}

/// Runs a projection command, printing to stdout.
pub async fn projections(ops: &OpsContext, command: ProjectionsCommand) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::Status { json } => {
            let reports = ordo_ops::operations::projection_reports(ops).await?;
            if json {
                for report in &reports {
                    println!("{}", serde_json::to_string(report)?);
                }
                return Ok(());
            }
            println!(
                "{:<22} {:<10} {:>10} {:>8} {:<25} {:>8}  state",
                "projection", "type", "aggregates", "events", "last applied at", "pending"
            );
            for r in &reports {
                let last = r
                    .last_applied_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
                    .unwrap_or_else(|| "-".into());
                let pending = r.lag().map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                let mut state = r.state.clone();
                if let Some(error) = &r.rebuild_error {
                    state.push_str(&format!(" (last rebuild failed: {error})"));
                }
                println!(
                    "{:<22} {:<10} {:>10} {:>8} {:<25} {:>8}  {}",
                    r.name,
                    r.aggregate_type,
                    r.aggregates_applied,
                    r.events_applied,
                    last,
                    pending,
                    state
                );
            }
        }
        ProjectionsCommand::Rebuild { name } => {
            let target =
                ordo_ops::operations::rebuild_target(ops, &name).map_err(anyhow::Error::msg)?;
            let rebuilt = ordo_ops::operations::rebuild(ops, &target).await?;
            println!("{rebuilt}");
        }
    }
    Ok(())
}

/// Runs a stream command, printing to stdout.
pub async fn streams(ops: &OpsContext, command: StreamsCommand) -> anyhow::Result<()> {
    match command {
        StreamsCommand::Rebuild { stream, purge } => {
            let report = ordo_ops::operations::refill_stream(ops, &stream, purge).await?;
            println!(
                "{}: purged {}, published {} {} events ({} dropped as duplicates); the stream holds {} messages",
                report.stream,
                report.purged,
                report.published,
                report.aggregate_type,
                report.duplicates,
                report.messages
            );
        }
    }
    Ok(())
}
