//! The command bus against a real Postgres, each test on a database of its own: commands
//! queued on one aggregate are handled as one batch and appended in one transaction, each
//! answered on its own; commands on many aggregates share commits, each aggregate's events
//! in order, and a conflict in a shared commit re-runs only its own aggregate; buses of separate processes racing on one aggregate never both win
//! and lose no event; a batch whose cached state went stale re-runs on fresh state, also
//! when it writes nothing; an item loads from its snapshot and the events after it as from
//! its whole history, a snapshot packs the item's reservations and still reads in the map form
//! written before, and a snapshot that no longer reads is ignored. The aggregate is a real
//! one: an inventory item.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::join_all;
use ordo_aggregates::common::{Quantity, ReservationId, Sku};
use ordo_aggregates::inventory::{InventoryCommand, InventoryError, InventoryEvent, InventoryItem};
use ordo_store::{CommandBus, CommandError, CommandMetadata, Committed};
use ordo_tests::TestDatabase;
use sqlx::PgPool;

type Outcome = Result<Committed<InventoryEvent>, CommandError<InventoryError>>;

/// A migrated database of the test's own; the pool of one "process" on it.
struct Store {
    database: TestDatabase,
    pool: PgPool,
}

impl Store {
    async fn create() -> Self {
        let database = TestDatabase::create().await.expect("database");
        let pool = database.pool_of(10).await.expect("pool");
        ordo_store::database::migrate(&pool)
            .await
            .expect("migrations");
        Self { database, pool }
    }

    /// A bus over a pool of its own, as another process on the same database would have.
    async fn other_process(&self) -> CommandBus<InventoryItem> {
        let pool = self.database.pool_of(10).await.expect("pool");
        CommandBus::new(pool, ())
    }

    fn bus(&self) -> CommandBus<InventoryItem> {
        CommandBus::new(self.pool.clone(), ())
    }

    /// The stored events of an item by sequence, each with the id of the transaction that
    /// inserted it.
    async fn events(&self, item: &str) -> Vec<(i64, InventoryEvent, String)> {
        let rows: Vec<(i64, serde_json::Value, String)> = sqlx::query_as(
            "SELECT sequence, payload, xmin::text FROM events \
             WHERE aggregate_type = 'inventory' AND aggregate_id = $1 ORDER BY sequence",
        )
        .bind(item)
        .fetch_all(&self.pool)
        .await
        .expect("events");
        rows.into_iter()
            .map(|(sequence, payload, transaction)| {
                let event = serde_json::from_value(payload).expect("an inventory event");
                (sequence, event, transaction)
            })
            .collect()
    }
}

fn metadata() -> CommandMetadata {
    CommandMetadata::from_request("bus-test", None)
}

fn quantity(units: i64) -> Quantity {
    Quantity::parse(units).expect("a quantity")
}

fn restock(units: i64) -> InventoryCommand {
    InventoryCommand::Restock {
        sku: Sku::parse("WIDGET").expect("a sku"),
        quantity: quantity(units),
    }
}

fn reserve(reservation_id: ReservationId) -> InventoryCommand {
    InventoryCommand::Reserve {
        reservation_id,
        quantity: quantity(1),
        booking: None,
    }
}

fn check(units: i64) -> InventoryCommand {
    InventoryCommand::Check {
        quantity: quantity(units),
    }
}

/// A fresh item id, so every aggregate starts empty.
fn item() -> String {
    format!("WIDGET-{}", uuid::Uuid::new_v4().simple())
}

fn reserved_id(event: &InventoryEvent) -> ReservationId {
    match event {
        InventoryEvent::StockReserved { reservation_id, .. } => *reservation_id,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

fn is_insufficient_stock(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Err(CommandError::Rejected(
            InventoryError::InsufficientStock { .. }
        ))
    )
}

/// Asserts that every accepted answer's version is the sequence at which its own event is
/// stored: the stored order is the order in which the bus answered the commands.
fn assert_answers_match_the_store(
    answers: &[(ReservationId, Committed<InventoryEvent>)],
    stored: &[(i64, InventoryEvent, String)],
) {
    let by_sequence: HashMap<i64, &InventoryEvent> =
        stored.iter().map(|(seq, event, _)| (*seq, event)).collect();
    for (reservation_id, committed) in answers {
        assert_eq!(committed.events.len(), 1, "{committed:?}");
        assert_eq!(reserved_id(&committed.events[0]), *reservation_id);
        let event = by_sequence
            .get(&committed.version)
            .unwrap_or_else(|| panic!("nothing stored at version {}", committed.version));
        assert_eq!(
            reserved_id(event),
            *reservation_id,
            "at {}",
            committed.version
        );
    }
}

#[tokio::test]
async fn concurrent_commands_on_one_aggregate_share_transactions_and_each_get_their_own_answer() {
    let store = Store::create().await;
    let bus = store.bus();
    let item = item();
    bus.execute(&item, restock(1000), metadata()).await.unwrap();

    const COMMANDS: usize = 40;
    let reservations: Vec<ReservationId> = (0..COMMANDS).map(|_| ReservationId::new_v4()).collect();
    let outcomes = join_all(
        reservations
            .iter()
            .map(|id| bus.execute(&item, reserve(*id), metadata())),
    )
    .await;

    let answers: Vec<(ReservationId, Committed<InventoryEvent>)> = reservations
        .iter()
        .copied()
        .zip(outcomes)
        .map(|(id, outcome)| (id, outcome.expect("every reservation fits the stock")))
        .collect();
    let versions: BTreeSet<i64> = answers.iter().map(|(_, c)| c.version).collect();
    assert_eq!(
        versions,
        (2..=1 + COMMANDS as i64).collect::<BTreeSet<_>>(),
        "every command its own version, none skipped"
    );

    let stored = store.events(&item).await;
    assert_eq!(stored.len(), 1 + COMMANDS);
    assert_answers_match_the_store(&answers, &stored);
    let transactions: BTreeSet<&str> = stored[1..].iter().map(|(_, _, tx)| tx.as_str()).collect();
    assert!(
        transactions.len() < COMMANDS,
        "{COMMANDS} queued commands took {} transactions",
        transactions.len()
    );

    let (state, version) = bus.load(&item).await.unwrap();
    assert_eq!(version, 1 + COMMANDS as i64);
    assert_eq!(state.reserved(), COMMANDS as u64);
}

#[tokio::test]
async fn commands_on_many_aggregates_share_commits_and_each_lands_once_in_its_own_order() {
    let store = Store::create().await;
    let bus = store.bus();
    const ITEMS: usize = 120;
    let items: Vec<String> = (0..ITEMS).map(|_| item()).collect();
    let outcomes = join_all(
        items
            .iter()
            .map(|item| bus.execute(item, restock(5), metadata())),
    )
    .await;
    for outcome in &outcomes {
        assert_eq!(outcome.as_ref().expect("a restock commits").version, 1);
    }
    // Then two more on each, at once: every item's events stay in its own order.
    let outcomes = join_all(items.iter().flat_map(|item| {
        [
            bus.execute(item, restock(1), metadata()),
            bus.execute(item, restock(2), metadata()),
        ]
    }))
    .await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");

    let (events, transactions): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT xmin::text) FROM events WHERE aggregate_type = 'inventory'",
    )
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(events, 3 * ITEMS as i64, "each command's events once");
    assert!(
        transactions < ITEMS as i64,
        "{} commands on {ITEMS} aggregates took {transactions} transactions",
        3 * ITEMS
    );
    for item in &items {
        let stored = store.events(item).await;
        let sequences: Vec<i64> = stored.iter().map(|(sequence, _, _)| *sequence).collect();
        assert_eq!(sequences, vec![1, 2, 3], "{item}");
        let (state, version) = bus.load(item).await.unwrap();
        assert_eq!((state.on_hand(), version), (8, 3), "{item}");
    }
    // The outbox holds every event once, in each aggregate's order of positions.
    let out_of_order: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT sequence, lag(sequence) OVER (PARTITION BY aggregate_id ORDER BY position) AS previous
             FROM events JOIN outbox USING (position) WHERE aggregate_type = 'inventory'
         ) e WHERE previous IS NOT NULL AND previous >= sequence",
    )
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(out_of_order, 0);
}

#[tokio::test]
async fn a_conflict_in_a_shared_commit_reruns_only_its_aggregate_and_the_others_commit() {
    let store = Store::create().await;
    let bus = store.bus();
    let rival = store.other_process().await;
    let contested = item();
    let others: Vec<String> = (0..30).map(|_| item()).collect();
    bus.execute(&contested, restock(10), metadata())
        .await
        .unwrap();
    for item in &others {
        bus.execute(item, restock(3), metadata()).await.unwrap();
    }
    // Every item's state is cached now, so all the commands below reach the committer at
    // once: the first few take the free commit turns, the rest (the contested one last)
    // share the next commit.
    // The rival process writes to the contested item behind this bus's back: this bus's
    // cached state is stale, so its next batch on the item conflicts in whatever group it
    // is committed with.
    rival
        .execute(&contested, restock(100), metadata())
        .await
        .unwrap();
    let contested_outcome = bus.execute(&contested, restock(1), metadata());
    let other_outcomes = join_all(
        others
            .iter()
            .map(|item| bus.execute(item, restock(3), metadata())),
    );
    let (other_outcomes, contested_outcome) =
        futures::future::join(other_outcomes, contested_outcome).await;
    assert_eq!(
        contested_outcome.expect("re-run on fresh state").version,
        3,
        "after the rival's event"
    );
    for outcome in other_outcomes {
        assert_eq!(outcome.expect("the others commit").version, 2);
    }
    let (state, _) = bus.load(&contested).await.unwrap();
    assert_eq!(state.on_hand(), 111);
    for item in &others {
        assert_eq!(store.events(item).await.len(), 2, "{item}: once each");
    }
}

#[tokio::test]
async fn a_refused_command_does_not_fail_its_batch_mates() {
    let store = Store::create().await;
    let bus = store.bus();
    let item = item();
    bus.execute(&item, restock(3), metadata()).await.unwrap();

    // Ten reservations for three units, and a release of a reservation that never was.
    let reservations: Vec<ReservationId> = (0..10).map(|_| ReservationId::new_v4()).collect();
    let unknown = ReservationId::new_v4();
    let mut commands: Vec<InventoryCommand> = reservations.iter().map(|id| reserve(*id)).collect();
    commands.insert(
        2,
        InventoryCommand::Release {
            reservation_id: unknown,
        },
    );
    let mut outcomes = join_all(
        commands
            .iter()
            .map(|command| bus.execute(&item, command.clone(), metadata())),
    )
    .await;

    let release = outcomes.remove(2);
    assert!(
        matches!(
            release,
            Err(CommandError::Rejected(InventoryError::UnknownReservation { reservation_id }))
                if reservation_id == unknown
        ),
        "{release:?}"
    );
    let mut answers = Vec::new();
    let mut refused = 0;
    for (reservation_id, outcome) in reservations.iter().zip(outcomes) {
        match outcome {
            Ok(committed) => answers.push((*reservation_id, committed)),
            Err(err) => {
                assert!(is_insufficient_stock(&Err(err)), "only stock refuses");
                refused += 1;
            }
        }
    }
    assert_eq!(answers.len(), 3, "the stock's three units are reserved");
    assert_eq!(refused, 7);

    let stored = store.events(&item).await;
    assert_eq!(stored.len(), 1 + 3, "refusals write nothing");
    assert_answers_match_the_store(&answers, &stored);
    let transactions: BTreeSet<&str> = stored[1..].iter().map(|(_, _, tx)| tx.as_str()).collect();
    assert!(
        transactions.len() < 3,
        "accepted commands were batched with refused ones: {} transactions",
        transactions.len()
    );
    let (state, _) = bus.load(&item).await.unwrap();
    assert_eq!(state.available(), 0);
    assert_eq!(state.reserved(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buses_of_two_processes_racing_on_one_aggregate_never_both_win_and_lose_nothing() {
    let store = Store::create().await;
    let buses = [Arc::new(store.bus()), Arc::new(store.other_process().await)];
    let item = item();
    buses[0]
        .execute(&item, restock(20), metadata())
        .await
        .unwrap();
    // Both hold the item's state in memory before the race.
    for bus in &buses {
        bus.execute(&item, check(1), metadata()).await.unwrap();
    }

    const COMMANDS: usize = 60;
    let tasks: Vec<_> = (0..COMMANDS)
        .map(|i| {
            let bus = buses[i % 2].clone();
            let item = item.clone();
            let id = ReservationId::new_v4();
            tokio::spawn(async move { (id, bus.execute(&item, reserve(id), metadata()).await) })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        let (id, outcome) = task.await.expect("the task ran");
        match outcome {
            Ok(committed) => answers.push((id, committed)),
            Err(err) => assert!(is_insufficient_stock(&Err(err)), "only stock refuses"),
        }
    }
    assert_eq!(answers.len(), 20, "exactly the stock is reserved");
    let versions: BTreeSet<i64> = answers.iter().map(|(_, c)| c.version).collect();
    assert_eq!(versions.len(), 20, "no version answered twice");

    let stored = store.events(&item).await;
    let sequences: Vec<i64> = stored.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(sequences, (1..=21).collect::<Vec<_>>());
    assert_answers_match_the_store(&answers, &stored);
    let stored_ids: BTreeSet<ReservationId> = stored[1..]
        .iter()
        .map(|(_, event, _)| reserved_id(event))
        .collect();
    let answered_ids: BTreeSet<ReservationId> = answers.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        stored_ids, answered_ids,
        "every accepted command stored once"
    );

    for bus in &buses {
        let (state, version) = bus.load(&item).await.unwrap();
        assert_eq!((state.reserved(), state.available(), version), (20, 0, 21));
    }
}

#[tokio::test]
async fn a_batch_on_stale_cached_state_reruns_on_fresh_state() {
    let store = Store::create().await;
    let first = store.bus();
    let second = store.other_process().await;
    let item = item();
    first.execute(&item, restock(1), metadata()).await.unwrap();
    // The second process caches the item with its one unit available.
    second.execute(&item, check(1), metadata()).await.unwrap();

    let winner = ReservationId::new_v4();
    let won = first
        .execute(&item, reserve(winner), metadata())
        .await
        .unwrap();
    assert_eq!(won.version, 2);

    // Its cache still shows one unit: the insert collides, and the fresh state refuses.
    let loser = ReservationId::new_v4();
    let lost = second.execute(&item, reserve(loser), metadata()).await;
    assert!(
        matches!(
            lost,
            Err(CommandError::Rejected(InventoryError::InsufficientStock {
                requested: 1,
                available: 0
            }))
        ),
        "{lost:?}"
    );
    let stored = store.events(&item).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(reserved_id(&stored[1].1), winner);

    // Once fresh, the second process writes after the first one's events.
    let released = second
        .execute(
            &item,
            InventoryCommand::Release {
                reservation_id: winner,
            },
            metadata(),
        )
        .await
        .unwrap();
    assert_eq!(released.version, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_reserving_the_last_unit_at_once_give_it_to_exactly_one() {
    let store = Store::create().await;
    let buses = [Arc::new(store.bus()), Arc::new(store.other_process().await)];
    for _ in 0..10 {
        let item = item();
        buses[0]
            .execute(&item, restock(1), metadata())
            .await
            .unwrap();
        buses[1].execute(&item, check(1), metadata()).await.unwrap();
        let racers: Vec<_> = buses
            .iter()
            .map(|bus| {
                let bus = bus.clone();
                let item = item.clone();
                tokio::spawn(async move {
                    bus.execute(&item, reserve(ReservationId::new_v4()), metadata())
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for racer in racers {
            match racer.await.expect("the racer ran") {
                Ok(_) => won += 1,
                Err(err) => assert!(is_insufficient_stock(&Err(err)), "only stock refuses"),
            }
        }
        assert_eq!(won, 1, "one unit, one winner");
        assert_eq!(store.events(&item).await.len(), 2);
    }
}

#[tokio::test]
async fn a_batch_that_writes_nothing_is_judged_on_current_state() {
    let store = Store::create().await;
    let first = store.bus();
    let second = store.other_process().await;
    let item = item();
    first.execute(&item, restock(1), metadata()).await.unwrap();

    // A no-write command on current cached state answers the version it saw.
    let checked = first.execute(&item, check(1), metadata()).await.unwrap();
    assert_eq!((checked.version, checked.events.len()), (1, 0));

    // Another process takes the unit; the cached state still shows it available.
    let taken = ReservationId::new_v4();
    second
        .execute(&item, reserve(taken), metadata())
        .await
        .unwrap();
    let stale = first.execute(&item, check(1), metadata()).await;
    assert!(
        matches!(
            stale,
            Err(CommandError::Rejected(InventoryError::InsufficientStock {
                requested: 1,
                available: 0
            }))
        ),
        "{stale:?}"
    );

    // A repeated reservation is a no-op on the state it holds, but not once it was released
    // elsewhere: the repeat is refused on the fresh state.
    let repeated = first
        .execute(&item, reserve(taken), metadata())
        .await
        .unwrap();
    assert_eq!((repeated.version, repeated.events.len()), (2, 0));
    second
        .execute(
            &item,
            InventoryCommand::Release {
                reservation_id: taken,
            },
            metadata(),
        )
        .await
        .unwrap();
    let closed = first.execute(&item, reserve(taken), metadata()).await;
    assert!(
        matches!(
            closed,
            Err(CommandError::Rejected(InventoryError::ReservationClosed { reservation_id }))
                if reservation_id == taken
        ),
        "{closed:?}"
    );
    assert_eq!(store.events(&item).await.len(), 3, "refusals wrote nothing");
}

/// The item's snapshot row: (last_sequence, payload).
async fn snapshot_of(pool: &PgPool, item: &str) -> Option<(i64, serde_json::Value)> {
    sqlx::query_as(
        "SELECT last_sequence, payload FROM aggregate_snapshots \
         WHERE aggregate_type = 'inventory' AND aggregate_id = $1",
    )
    .bind(item)
    .fetch_optional(pool)
    .await
    .expect("snapshot row")
}

#[tokio::test]
async fn an_item_loads_from_its_snapshot_and_the_events_after_it_as_from_its_whole_history() {
    let store = Store::create().await;
    let item = item();
    let bus = store.bus().with_snapshots(10);
    bus.execute(&item, restock(100), metadata()).await.unwrap();
    for _ in 0..24 {
        bus.execute(&item, reserve(ReservationId::new_v4()), metadata())
            .await
            .unwrap();
    }
    // 25 events: snapshots were written at 10 and 20, with the batches that made them due.
    let (at, payload) = snapshot_of(&store.pool, &item).await.expect("a snapshot");
    assert_eq!(at, 20);
    let full = store.bus();
    let (replayed, version) = full.load(&item).await.unwrap();
    assert_eq!(version, 25);
    // Another process with snapshots loads the snapshot and 5 events: the same state.
    let other = CommandBus::<InventoryItem>::new(store.database.pool_of(2).await.unwrap(), ())
        .with_snapshots(10);
    let (loaded, loaded_version) = other.load(&item).await.unwrap();
    assert_eq!(loaded_version, 25);
    assert_eq!(
        serde_json::to_value(&loaded).unwrap(),
        serde_json::to_value(&replayed).unwrap()
    );
    assert_eq!(loaded.reserved(), 24);
    assert_ne!(
        payload,
        serde_json::to_value(&replayed).unwrap(),
        "the snapshot is the state at 20, not 25"
    );
    // It goes on from there: the next batch due writes the snapshot at 30, and commands
    // decide on the loaded state (the 101st unit does not exist).
    for _ in 0..5 {
        other
            .execute(&item, reserve(ReservationId::new_v4()), metadata())
            .await
            .unwrap();
    }
    assert_eq!(snapshot_of(&store.pool, &item).await.unwrap().0, 30);
    let refused = other.execute(&item, check(72), metadata()).await;
    assert!(is_insufficient_stock(&refused), "{refused:?}");

    // A snapshot that no longer reads as the aggregate is ignored: the item is replayed.
    sqlx::query(
        "UPDATE aggregate_snapshots SET payload = '{\"not\": \"an item\"}' \
         WHERE aggregate_type = 'inventory' AND aggregate_id = $1",
    )
    .bind(&item)
    .execute(&store.pool)
    .await
    .unwrap();
    let fresh = CommandBus::<InventoryItem>::new(store.pool.clone(), ()).with_snapshots(10);
    let (recovered, recovered_version) = fresh.load(&item).await.unwrap();
    assert_eq!(recovered_version, 30);
    assert_eq!(recovered.reserved(), 29);
    assert_eq!(
        store.events(&item).await.len(),
        30,
        "every event stored once"
    );
}

/// Replaces the item's snapshot payload.
async fn overwrite_snapshot(pool: &PgPool, item: &str, payload: &serde_json::Value) {
    sqlx::query(
        "UPDATE aggregate_snapshots SET payload = $2 \
         WHERE aggregate_type = 'inventory' AND aggregate_id = $1",
    )
    .bind(item)
    .bind(payload)
    .execute(pool)
    .await
    .expect("snapshot overwritten");
}

#[tokio::test]
async fn a_snapshot_packs_reservations_reads_the_earlier_map_form_and_is_ignored_when_corrupted() {
    let store = Store::create().await;
    let item = item();
    let bus = store.bus().with_snapshots(10);
    bus.execute(&item, restock(100), metadata()).await.unwrap();
    for _ in 0..9 {
        bus.execute(&item, reserve(ReservationId::new_v4()), metadata())
            .await
            .unwrap();
    }
    let (at, payload) = snapshot_of(&store.pool, &item).await.expect("a snapshot");
    assert_eq!(at, 10);
    let packed = payload["reservations"].as_str().expect("one string");
    assert!(packed.starts_with("v1:"), "{packed}");
    let (replayed, _) = store.bus().load(&item).await.unwrap();
    assert_eq!(replayed.on_hand(), 100);
    let load = || async {
        CommandBus::<InventoryItem>::new(store.pool.clone(), ())
            .with_snapshots(10)
            .load(&item)
            .await
            .unwrap()
    };
    assert_eq!(load().await, (replayed.clone(), 10));

    // A snapshot written before, its reservations a map by id, is read: its state is the
    // one loaded (marked with an on-hand count no event gives).
    let mut earlier = payload.clone();
    earlier["reservations"] = serde_json::to_value(replayed.reservations()).unwrap();
    earlier["on_hand"] = 77.into();
    overwrite_snapshot(&store.pool, &item, &earlier).await;
    let (from_earlier, version) = load().await;
    assert_eq!(version, 10);
    assert_eq!(from_earlier.on_hand(), 77, "loaded from the snapshot");
    assert_eq!(from_earlier.reservations(), replayed.reservations());

    // Corrupted reservations: the snapshot is ignored and the events replayed.
    for corrupted in ["v1:@@not base64@@", "v1:AAAA", "v9:", "reserved"] {
        let mut broken = earlier.clone();
        broken["reservations"] = corrupted.into();
        overwrite_snapshot(&store.pool, &item, &broken).await;
        assert_eq!(load().await, (replayed.clone(), 10), "{corrupted}");
    }
}

#[tokio::test]
async fn two_processes_writing_snapshots_of_one_item_lose_no_event() {
    let store = Store::create().await;
    let item = item();
    let first = store.bus().with_snapshots(5);
    first
        .execute(&item, restock(1000), metadata())
        .await
        .unwrap();
    let second = store.other_process().await.with_snapshots(5);
    let answers = join_all((0..60).map(|n| {
        let bus = if n % 2 == 0 { &first } else { &second };
        let item = item.clone();
        async move {
            bus.execute(&item, reserve(ReservationId::new_v4()), metadata())
                .await
        }
    }))
    .await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let stored = store.events(&item).await;
    assert_eq!(stored.len(), 61);
    let sequences: BTreeSet<i64> = stored.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(sequences, (1..=61).collect::<BTreeSet<i64>>());
    let (at, _) = snapshot_of(&store.pool, &item).await.expect("a snapshot");
    assert!(at > 50 && at <= 61, "the latest snapshot is recent: {at}");
    let reloaded = CommandBus::<InventoryItem>::new(store.pool.clone(), ()).with_snapshots(5);
    let (state, version) = reloaded.load(&item).await.unwrap();
    assert_eq!((version, state.reserved()), (61, 60));
}

#[tokio::test]
async fn a_load_sees_what_another_process_wrote_since_the_bus_cached_the_state() {
    let store = Store::create().await;
    let bus = store.bus();
    let rival = store.other_process().await;
    let item = item();
    bus.execute(&item, restock(10), metadata()).await.unwrap();
    let (state, version) = bus.load(&item).await.unwrap();
    assert_eq!((state.on_hand(), version), (10, 1), "from the cached state");
    rival.execute(&item, restock(5), metadata()).await.unwrap();
    let (state, version) = bus.load(&item).await.unwrap();
    assert_eq!(
        (state.on_hand(), version),
        (15, 2),
        "the rival's write is seen"
    );
}
