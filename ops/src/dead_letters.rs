//! Dead letters as operators handle them from `ordo dlq` and the admin API: thin wrappers
//! over [`ordo_nats::dlq`].

use std::collections::BTreeSet;

use crate::OpsContext;

/// Re-drives every dead letter of one aggregate (all consumers), each consumer's in order.
/// Answers the DLQ sequences re-driven.
pub async fn redrive_aggregate(ops: &OpsContext, aggregate_id: &str) -> anyhow::Result<Vec<u64>> {
    let letters = ordo_nats::dlq::list(&ops.jetstream, &ops.namespace, None).await?;
    let mut first_per_consumer = BTreeSet::new();
    let mut firsts = Vec::new();
    for letter in letters.iter().filter(|l| l.aggregate_id == aggregate_id) {
        if first_per_consumer.insert(letter.consumer.clone()) {
            firsts.push(letter.dlq_sequence);
        }
    }
    let mut redriven = Vec::new();
    for sequence in firsts {
        let report =
            ordo_nats::dlq::redrive(&ops.jetstream, &ops.pool, &ops.namespace, sequence).await?;
        redriven.extend(report.redriven);
    }
    Ok(redriven)
}
