//! `ordo dlq`: reading and re-driving dead letters from the command line.

use clap::Subcommand;
use ordo_nats::dlq::{self, DeadLetter};

use ordo_ops::OpsContext;

/// Dead-letter commands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters (oldest first).
    List {
        /// Only those of this consumer (e.g. projection-orders).
        #[arg(long)]
        consumer: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter with its headers and payload.
    Show {
        /// Its sequence in the dead-letter stream.
        sequence: u64,
    },
    /// Send dead letters back to their consumer: one (with every later dead letter of the
    /// same consumer and aggregate, in order) or all of them.
    Redrive {
        /// The dead letter's sequence in the dead-letter stream.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        sequence: Option<u64>,
        /// Re-drive every dead letter.
        #[arg(long)]
        all: bool,
        /// With --all: only this consumer's.
        #[arg(long, requires = "all")]
        consumer: Option<String>,
    },
}

/// Runs a dead-letter command, printing to stdout.
pub async fn run(ops: &OpsContext, command: DlqCommand) -> anyhow::Result<()> {
    let js = &ops.jetstream;
    let ns = &ops.namespace;
    match command {
        DlqCommand::List { consumer, json } => {
            let letters = dlq::list(js, ns, consumer.as_deref()).await?;
            if json {
                for letter in &letters {
                    println!("{}", serde_json::to_string(&summary(letter))?);
                }
            } else if letters.is_empty() {
                println!("no dead letters");
            } else {
                println!(
                    "{:>6}  {:<24} {:<10} {:<38} {:<20} {:>4} {:>8}  error",
                    "seq", "consumer", "type", "aggregate", "event", "seq#", "attempts"
                );
                for l in &letters {
                    println!(
                        "{:>6}  {:<24} {:<10} {:<38} {:<20} {:>4} {:>8}  {}{}",
                        l.dlq_sequence,
                        l.consumer,
                        l.aggregate_type,
                        l.aggregate_id,
                        l.event_type,
                        l.sequence,
                        l.attempts,
                        if l.parked { "[parked] " } else { "" },
                        l.error
                    );
                }
            }
        }
        DlqCommand::Show { sequence } => {
            let letter = dlq::show(js, ns, sequence).await?;
            println!("{}", serde_json::to_string_pretty(&letter)?);
        }
        DlqCommand::Redrive {
            sequence,
            all,
            consumer,
        } => {
            let report = if all {
                dlq::redrive_all(js, &ops.pool, ns, consumer.as_deref()).await?
            } else {
                let sequence = sequence
                    .ok_or_else(|| anyhow::anyhow!("give a dead letter's sequence or --all"))?;
                dlq::redrive(js, &ops.pool, ns, sequence).await?
            };
            if report.redriven.is_empty() {
                println!("nothing to re-drive");
            } else {
                let list: Vec<String> = report.redriven.iter().map(u64::to_string).collect();
                println!(
                    "re-drove {} dead letter(s): {}",
                    report.redriven.len(),
                    list.join(", ")
                );
                for (consumer, aggregate_type, aggregate_id) in &report.unparked {
                    println!("released {aggregate_type} {aggregate_id} for {consumer}");
                }
            }
        }
    }
    Ok(())
}

fn summary(letter: &DeadLetter) -> serde_json::Value {
    serde_json::json!({
        "dlq_sequence": letter.dlq_sequence,
        "consumer": letter.consumer,
        "aggregate_type": letter.aggregate_type,
        "aggregate_id": letter.aggregate_id,
        "event_type": letter.event_type,
        "sequence": letter.sequence,
        "original_subject": letter.original_subject,
        "stream_sequence": letter.stream_sequence,
        "attempts": letter.attempts,
        "parked": letter.parked,
        "error": letter.error,
        "failed_at": letter.failed_at,
    })
}
