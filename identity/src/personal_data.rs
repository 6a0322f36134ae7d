//! The personal-data key vault (crypto-shredding): one random 256-bit key per data subject
//! in `personal_data_keys`, outside the event store. [`PersonalDataVault`] is the
//! [`PersonalDataSealer`] the command bus seals events with: each clear personal value
//! becomes `sealed` (hex of a random 96-bit nonce and the ChaCha20-Poly1305 ciphertext,
//! bound to its subject as associated data), and opening gives the clear value back while
//! the key exists, or `erased: true` once [`erase_key`] deleted it.
//!
//! When the operator configures a secret, the stored keys are themselves wrapped with a key
//! derived from it, so a dump of the database alone does not reveal them.

use std::collections::HashMap;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ordo_aggregates::common::UserId;
use ordo_store::personal::{personal_values_mut, subject_of};
use ordo_store::{PersonalDataError, PersonalDataSealer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

const NONCE_LEN: usize = 12;

/// The per-subject keys, and sealing and opening with them.
#[derive(Clone)]
pub struct PersonalDataVault {
    pool: PgPool,
    /// Wraps the stored keys, when a secret is configured.
    wrapping: Option<ChaCha20Poly1305>,
}

impl std::fmt::Debug for PersonalDataVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonalDataVault")
            .field("wrapped", &self.wrapping.is_some())
            .finish_non_exhaustive()
    }
}

/// What the vault knows of a subject's key.
enum SubjectKey {
    /// The key.
    Live(ChaCha20Poly1305),
    /// Erased, or never made: nothing sealed for this subject can be read.
    Gone,
}

impl PersonalDataVault {
    /// A vault over `personal_data_keys` of `pool`; with `secret`, keys are stored wrapped
    /// with a key derived from it (the same secret must be given at every start).
    pub fn new(pool: PgPool, secret: Option<&[u8]>) -> Self {
        let wrapping = secret.map(|secret| {
            let mut hasher = Sha256::new();
            hasher.update(b"ordo personal data keys v1\0");
            hasher.update(secret);
            ChaCha20Poly1305::new(Key::from_slice(&hasher.finalize()))
        });
        Self { pool, wrapping }
    }

    /// The subject's key, made on first use; `Gone` when the subject was erased.
    async fn key_for_sealing(&self, subject: UserId) -> Result<SubjectKey, PersonalDataError> {
        let fresh = ChaCha20Poly1305::generate_key(&mut OsRng);
        sqlx::query(
            "INSERT INTO personal_data_keys (subject_id, key) VALUES ($1, $2)
             ON CONFLICT (subject_id) DO NOTHING",
        )
        .bind(Uuid::from(subject))
        .bind(self.wrap(&fresh))
        .execute(&self.pool)
        .await
        .map_err(vault_error)?;
        self.key_for_opening(subject).await
    }

    /// The subject's key as stored; `Gone` when erased or never made.
    async fn key_for_opening(&self, subject: UserId) -> Result<SubjectKey, PersonalDataError> {
        let stored = sqlx::query_scalar::<_, Option<Vec<u8>>>(
            "SELECT key FROM personal_data_keys WHERE subject_id = $1",
        )
        .bind(Uuid::from(subject))
        .fetch_optional(&self.pool)
        .await
        .map_err(vault_error)?
        .flatten();
        match stored {
            None => Ok(SubjectKey::Gone),
            Some(stored) => Ok(SubjectKey::Live(ChaCha20Poly1305::new(
                &self.unwrap(subject, &stored)?,
            ))),
        }
    }

    fn wrap(&self, key: &Key) -> Vec<u8> {
        match &self.wrapping {
            None => key.to_vec(),
            Some(wrapping) => {
                let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
                let mut out = nonce.to_vec();
                out.extend(
                    wrapping
                        .encrypt(&nonce, key.as_slice())
                        .expect("wrapping a key cannot fail"),
                );
                out
            }
        }
    }

    fn unwrap(&self, subject: UserId, stored: &[u8]) -> Result<Key, PersonalDataError> {
        let plain = match (&self.wrapping, stored.len()) {
            (None, 32) => stored.to_vec(),
            (Some(wrapping), len) if len > NONCE_LEN => {
                let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
                wrapping
                    .decrypt(Nonce::from_slice(nonce), ciphertext)
                    .map_err(|_| {
                        PersonalDataError::Vault(format!(
                            "the key of subject {subject} does not unwrap with the configured secret"
                        ))
                    })?
            }
            _ => {
                return Err(PersonalDataError::Vault(format!(
                    "the key of subject {subject} was stored with another secret setting"
                )))
            }
        };
        Ok(*Key::from_slice(&plain))
    }

    async fn keys(
        &self,
        subjects: impl Iterator<Item = UserId>,
        sealing: bool,
    ) -> Result<HashMap<UserId, SubjectKey>, PersonalDataError> {
        let mut keys = HashMap::new();
        for subject in subjects {
            if keys.contains_key(&subject) {
                continue;
            }
            let key = if sealing {
                self.key_for_sealing(subject).await?
            } else {
                self.key_for_opening(subject).await?
            };
            keys.insert(subject, key);
        }
        Ok(keys)
    }
}

#[async_trait::async_trait]
impl PersonalDataSealer for PersonalDataVault {
    async fn seal(&self, payload: &mut Value) -> Result<(), PersonalDataError> {
        let mut values = personal_values_mut(payload);
        values.retain(|inner| inner.contains_key("clear"));
        let subjects = values
            .iter()
            .map(|inner| subject_of(inner))
            .collect::<Result<Vec<_>, _>>()?;
        let keys = self.keys(subjects.iter().copied(), true).await?;
        for (inner, subject) in values.into_iter().zip(subjects) {
            let clear = match inner.remove("clear") {
                Some(Value::String(clear)) => clear,
                _ => return Err(PersonalDataError::Malformed("clear is not a text".into())),
            };
            match &keys[&subject] {
                SubjectKey::Live(cipher) => {
                    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
                    let aad = subject.as_uuid().as_bytes();
                    let ciphertext = cipher
                        .encrypt(
                            &nonce,
                            Payload {
                                msg: clear.as_bytes(),
                                aad,
                            },
                        )
                        .expect("sealing a text cannot fail");
                    let mut bytes = nonce.to_vec();
                    bytes.extend(ciphertext);
                    inner.insert("sealed".into(), Value::String(hex::encode(bytes)));
                }
                SubjectKey::Gone => {
                    inner.insert("erased".into(), Value::Bool(true));
                }
            }
        }
        Ok(())
    }

    async fn open(&self, payload: &mut Value) -> Result<(), PersonalDataError> {
        let mut values = personal_values_mut(payload);
        values.retain(|inner| inner.contains_key("sealed"));
        let subjects = values
            .iter()
            .map(|inner| subject_of(inner))
            .collect::<Result<Vec<_>, _>>()?;
        let keys = self.keys(subjects.iter().copied(), false).await?;
        for (inner, subject) in values.into_iter().zip(subjects) {
            let sealed = inner.remove("sealed");
            match &keys[&subject] {
                SubjectKey::Live(cipher) => {
                    let bytes = sealed
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(|hex_text| hex::decode(hex_text).ok())
                        .filter(|bytes| bytes.len() > NONCE_LEN)
                        .ok_or(PersonalDataError::NotOpenable(subject))?;
                    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
                    let plain = cipher
                        .decrypt(
                            Nonce::from_slice(nonce),
                            Payload {
                                msg: ciphertext,
                                aad: subject.as_uuid().as_bytes(),
                            },
                        )
                        .map_err(|_| PersonalDataError::NotOpenable(subject))?;
                    let clear = String::from_utf8(plain)
                        .map_err(|_| PersonalDataError::NotOpenable(subject))?;
                    inner.insert("clear".into(), Value::String(clear));
                }
                SubjectKey::Gone => {
                    inner.insert("erased".into(), Value::Bool(true));
                }
            }
        }
        Ok(())
    }
}

/// Deletes the subject's key inside the caller's transaction (keeping the row, so that
/// nothing is sealed for the subject again): every value sealed with it is erased for good.
/// Safe to repeat.
pub async fn erase_key(conn: &mut PgConnection, subject: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO personal_data_keys (subject_id, key, erased_at) VALUES ($1, NULL, now())
         ON CONFLICT (subject_id) DO UPDATE
         SET key = NULL, erased_at = coalesce(personal_data_keys.erased_at, now())",
    )
    .bind(subject)
    .execute(conn)
    .await?;
    Ok(())
}

fn vault_error(err: sqlx::Error) -> PersonalDataError {
    PersonalDataError::Vault(err.to_string())
}
