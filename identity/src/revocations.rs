//! Whether access tokens were revoked, checked in batches: every check waiting while one
//! query runs is answered by the next query, one `= ANY` lookup for all of them. A burst of
//! requests (a flash sale's buyers arriving at once) costs a few queries instead of one
//! per request, and each check still reads the table after its request arrived, so a
//! revocation committed before a request is never missed.

use std::collections::HashSet;
use std::sync::Mutex;

use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

type Answer = oneshot::Sender<Result<bool, String>>;

/// Checks token ids against `revoked_access_tokens`, batching concurrent checks.
pub struct RevocationChecks {
    pool: PgPool,
    waiting: Mutex<Vec<(Uuid, Answer)>>,
    /// Held while a batch's query runs: who gets it next takes every check queued meanwhile.
    turn: tokio::sync::Mutex<()>,
}

impl RevocationChecks {
    /// Checks over the `revoked_access_tokens` table of `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            waiting: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether the access token `token_id` was revoked.
    pub async fn is_revoked(&self, token_id: Uuid) -> anyhow::Result<bool> {
        let (answer, answered) = oneshot::channel();
        self.waiting
            .lock()
            .expect("revocation checks")
            .push((token_id, answer));
        {
            let _turn = self.turn.lock().await;
            let batch = std::mem::take(&mut *self.waiting.lock().expect("revocation checks"));
            if !batch.is_empty() {
                self.check(batch).await;
            }
        }
        match answered.await {
            Ok(result) => result.map_err(anyhow::Error::msg),
            Err(_) => anyhow::bail!("the revocation check was dropped"),
        }
    }

    async fn check(&self, batch: Vec<(Uuid, Answer)>) {
        let ids: Vec<Uuid> = batch
            .iter()
            .map(|(id, _)| *id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let revoked = sqlx::query_scalar::<_, Uuid>(
            "SELECT token_id FROM revoked_access_tokens WHERE token_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await;
        match revoked {
            Ok(revoked) => {
                let revoked: HashSet<Uuid> = revoked.into_iter().collect();
                for (id, answer) in batch {
                    let _ = answer.send(Ok(revoked.contains(&id)));
                }
            }
            Err(err) => {
                let message = format!("checking revoked tokens: {err}");
                for (_, answer) in batch {
                    let _ = answer.send(Err(message.clone()));
                }
            }
        }
    }
}
