//! Consumer idempotency against a real Postgres.

mod common;

use common::{create_effects_table, effects, received, TestEnv};
use ordo_nats::{apply_once, claim, Claim, HandlerError};

async fn claim_and_commit(
    env: &TestEnv,
    consumer: &str,
    event: &ordo_nats::ReceivedEvent,
) -> Claim {
    let mut tx = env.pool.begin().await.unwrap();
    let answer = claim(&mut tx, consumer, event).await.unwrap();
    tx.commit().await.unwrap();
    answer
}

#[tokio::test]
async fn claim_applies_once_skips_redelivery_and_detects_gaps() {
    let env = TestEnv::new().await;
    let first = received("order", "o-1", 1);
    assert_eq!(claim_and_commit(&env, "c1", &first).await, Claim::Apply);
    assert_eq!(
        claim_and_commit(&env, "c1", &first).await,
        Claim::AlreadyApplied
    );
    assert_eq!(
        claim_and_commit(&env, "c1", &received("order", "o-1", 3)).await,
        Claim::Gap { expected: 2 }
    );
    assert_eq!(
        claim_and_commit(&env, "c1", &received("order", "o-1", 2)).await,
        Claim::Apply
    );
    assert_eq!(
        claim_and_commit(&env, "c1", &received("order", "o-1", 3)).await,
        Claim::Apply
    );
    // Positions are per consumer and per aggregate.
    assert_eq!(claim_and_commit(&env, "c2", &first).await, Claim::Apply);
    assert_eq!(
        claim_and_commit(&env, "c1", &received("order", "o-2", 1)).await,
        Claim::Apply
    );
    // The first event an aggregate sees must be sequence 1.
    assert_eq!(
        claim_and_commit(&env, "c1", &received("order", "o-3", 2)).await,
        Claim::Gap { expected: 1 }
    );
    env.cleanup().await;
}

#[tokio::test]
async fn a_rolled_back_claim_is_not_recorded() {
    let env = TestEnv::new().await;
    let event = received("order", "o-1", 1);
    let mut tx = env.pool.begin().await.unwrap();
    assert_eq!(claim(&mut tx, "c", &event).await.unwrap(), Claim::Apply);
    tx.rollback().await.unwrap();
    assert_eq!(claim_and_commit(&env, "c", &event).await, Claim::Apply);
    env.cleanup().await;
}

#[tokio::test]
async fn concurrent_claims_of_one_event_yield_exactly_one_apply() {
    let env = TestEnv::new().await;
    for sequence in 1..=3 {
        let event = received("inventory", "sku-1", sequence);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let pool = env.pool.clone();
                let event = event.clone();
                tokio::spawn(async move {
                    let mut tx = pool.begin().await.unwrap();
                    let answer = claim(&mut tx, "racer", &event).await.unwrap();
                    // Hold the lock a little so the others really wait on it.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    tx.commit().await.unwrap();
                    answer
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        assert_eq!(
            answers.iter().filter(|a| **a == Claim::Apply).count(),
            1,
            "{answers:?}"
        );
        assert!(answers
            .iter()
            .all(|a| matches!(a, Claim::Apply | Claim::AlreadyApplied)));
    }
    env.cleanup().await;
}

/// A handler body: records the event in `test_effects`, at most once.
async fn record(env: &TestEnv, event: &ordo_nats::ReceivedEvent) -> Result<Claim, HandlerError> {
    let (aggregate_id, sequence) = (event.aggregate_id.clone(), event.sequence);
    apply_once(&env.pool, "view", event, move |tx| {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO test_effects (consumer, aggregate_id, sequence) VALUES ('view', $1, $2)",
            )
            .bind(aggregate_id)
            .bind(sequence)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
    })
    .await
}

#[tokio::test]
async fn apply_once_runs_the_effect_once_and_retries_gaps() {
    let env = TestEnv::new().await;
    create_effects_table(&env.pool).await;
    let first = received("order", "o-1", 1);
    assert_eq!(record(&env, &first).await.unwrap(), Claim::Apply);
    assert_eq!(record(&env, &first).await.unwrap(), Claim::AlreadyApplied);
    assert!(matches!(
        record(&env, &received("order", "o-1", 3)).await,
        Err(HandlerError::Gap { expected: 2, .. })
    ));
    assert_eq!(effects(&env.pool, "view", "o-1").await, vec![1]);

    // A failing effect rolls its claim back, so a later attempt applies it.
    let second = received("order", "o-1", 2);
    let failed = apply_once(&env.pool, "view", &second, |_tx| {
        Box::pin(async { Err(HandlerError::retry(anyhow::anyhow!("boom"))) })
    })
    .await;
    assert!(matches!(failed, Err(HandlerError::Retry(_))));
    assert_eq!(record(&env, &second).await.unwrap(), Claim::Apply);
    assert_eq!(effects(&env.pool, "view", "o-1").await, vec![1, 2]);
    env.cleanup().await;
}
