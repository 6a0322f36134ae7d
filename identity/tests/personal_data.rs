//! The personal-data vault and the command bus against a real Postgres: a bus without a
//! sealer refuses to store a clear personal value; with the vault, events are stored
//! sealed, load sealed, open to the clear value, and open as erased once the key is
//! deleted; keys are wrapped with the configured secret and a sealed value is bound to its
//! subject.

use std::sync::Arc;

use ordo_aggregates::common::{PersonalText, UserId};
use ordo_aggregates::customer::{Customer, CustomerCommand};
use ordo_identity::personal_data::erase_key;
use ordo_identity::PersonalDataVault;
use ordo_store::{
    CommandBus, CommandError, CommandMetadata, PersonalDataError, PersonalDataSealer,
};
use ordo_tests::TestDatabase;
use serde_json::json;
use sqlx::PgPool;

const NAME: &str = "Quirinus Vaultworth";

async fn database() -> (TestDatabase, PgPool) {
    let database = TestDatabase::create().await.expect("database");
    let pool = database.pool().await.expect("pool");
    ordo_store::database::migrate(&pool).await.expect("migrate");
    (database, pool)
}

fn change_name(subject: UserId) -> CustomerCommand {
    CustomerCommand::ChangeProfile {
        full_name: Some(PersonalText::clear(subject, NAME)),
        phone: None,
    }
}

async fn stored_payloads(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT payload::text FROM events")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_bus_without_a_sealer_refuses_to_store_personal_data_in_the_clear() {
    let (_database, pool) = database().await;
    let bus: CommandBus<Customer> = CommandBus::new(pool.clone(), ());
    let subject = UserId::new_v4();
    let result = bus
        .execute(
            &subject.to_string(),
            change_name(subject),
            CommandMetadata::default(),
        )
        .await;
    assert!(matches!(result, Err(CommandError::Store(_))), "{result:?}");
    assert!(stored_payloads(&pool).await.is_empty());
}

#[tokio::test]
async fn the_vault_seals_events_opens_them_and_erasing_the_key_erases_the_values() {
    let (_database, pool) = database().await;
    let vault = Arc::new(PersonalDataVault::new(
        pool.clone(),
        Some(b"a secret of the operator"),
    ));
    let bus: CommandBus<Customer> =
        CommandBus::new(pool.clone(), ()).with_personal_data_sealer(vault.clone());
    let subject = UserId::new_v4();
    let id = subject.to_string();
    bus.execute(&id, change_name(subject), CommandMetadata::default())
        .await
        .expect("stored");

    let stored = stored_payloads(&pool).await;
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].contains(NAME) && stored[0].contains("sealed"),
        "{stored:?}"
    );
    // The stored key is wrapped: 12 bytes of nonce, 32 of key and 16 of tag.
    let key: Vec<u8> = sqlx::query_scalar("SELECT key FROM personal_data_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(key.len(), 60);

    let (loaded, _) = bus.load(&id).await.unwrap();
    let sealed = loaded.full_name().unwrap().clone();
    assert!(matches!(sealed, PersonalText::Sealed { .. }), "{sealed:?}");
    let opened = ordo_store::personal::open_value(vault.as_ref(), &sealed)
        .await
        .unwrap();
    assert_eq!(opened.clear_value(), Some(NAME));

    // Bound to its subject: moved to another subject, it does not open.
    let PersonalText::Sealed { sealed: text, .. } = &sealed else {
        unreachable!()
    };
    let other = UserId::new_v4();
    vault
        .seal(&mut json!({"$personal": {"subject": other.to_string(), "clear": "x"}}))
        .await
        .unwrap();
    let mut moved = json!({"$personal": {"subject": other.to_string(), "sealed": text}});
    assert!(matches!(
        vault.open(&mut moved).await,
        Err(PersonalDataError::NotOpenable(_))
    ));
    // Another secret cannot unwrap the keys.
    let stranger = PersonalDataVault::new(pool.clone(), Some(b"another secret"));
    assert!(ordo_store::personal::open_value(&stranger, &sealed)
        .await
        .is_err());

    let mut conn = pool.acquire().await.unwrap();
    erase_key(&mut conn, *subject.as_uuid()).await.unwrap();
    erase_key(&mut conn, *subject.as_uuid()).await.unwrap();
    let (loaded, _) = bus.load(&id).await.unwrap();
    let erased = ordo_store::personal::open_value(vault.as_ref(), loaded.full_name().unwrap())
        .await
        .unwrap();
    assert_eq!(erased, PersonalText::Erased { subject });
    // What is sealed for an erased subject afterwards is stored erased.
    bus.execute(&id, change_name(subject), CommandMetadata::default())
        .await
        .expect("stored");
    let stored = stored_payloads(&pool).await;
    assert!(stored.iter().all(|p| !p.contains(NAME)), "{stored:?}");
    assert!(
        stored.iter().any(|p| p.contains("\"erased\": true")),
        "{stored:?}"
    );
}
