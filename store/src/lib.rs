//! Ordo's write side on Postgres: the event store (cqrs-es with postgres-es) and the
//! command bus that executes commands against aggregates.
//!
//! # Layout
//! - [`metadata`]: what every committed event carries besides its payload (correlation,
//!   causation, user, command ids).
//! - [`bus`]: [`CommandBus`], which loads an aggregate, lets it handle a command and commits
//!   the events it wrote in one transaction, answering the version it produced. Commands on
//!   one aggregate are serialised in-process and the state is cached, so a hot aggregate is
//!   not reloaded for every command; writers in other processes are caught by the store's
//!   optimistic lock and the command is retried on fresh state.
//! - [`group_commit`]: the committer every bus hands its batches to, which appends the
//!   batches of many aggregates (of any type) in one transaction and keeps each aggregate's
//!   optimistic concurrency exact.
//! - [`snapshots`]: snapshots of aggregates with long histories, which the bus loads from
//!   and writes with the batch that makes one due.
//! - [`announce`]: [`Announcer`](announce::Announcer), which tells other processes after
//!   commit that the outbox has new events or a consumer applied one (no business
//!   transaction notifies: a notification in a transaction serialises commits).
//! - [`personal`]: [`PersonalDataSealer`], which the bus uses to seal every personal value
//!   of an event before it is stored (it refuses to store one in the clear), and the
//!   functions that find personal values in payloads.
//! - [`database`]: connecting and migrating.
//! - [`catalog`]: the facts about other aggregates that catalog and order commands read on
//!   the write side (SKU owners, the category tree, units ordered), and the locks that keep
//!   such decisions from racing.
//! - [`offers`]: the facts pricing reads on the write side: which promotions are still open,
//!   and which batch a coupon belongs to.
//! - [`carts`]: the guest carts merged (retired) into customers' carts.
//! - [`shipping`]: the shipping fee rules, replaced whole by an admin's command and read by
//!   every checkout.
//! - [`pruning`]: deleting expired checkout quotes and idle guest carts in bounded
//!   batches, and counting the guest carts kept.
#![forbid(unsafe_code)]

pub mod announce;
pub mod bus;
pub mod carts;
pub mod catalog;
pub mod database;
mod group_commit;
pub mod metadata;
pub mod offers;
pub mod personal;
pub mod pruning;
pub mod shipping;
pub mod snapshots;

pub use bus::{CommandBus, CommandError, Committed};
pub use metadata::CommandMetadata;
pub use personal::{PersonalDataError, PersonalDataSealer};
