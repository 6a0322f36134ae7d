//! The test harness of Ordo's end-to-end tests: a fresh database and NATS namespace per
//! test, a real `ordo serve` process on a free port, typed HTTP helpers, and bounded polls
//! for conditions (never a bare sleep as proof).
//!
//! Layout:
//! - [`ordo`]: [`TestOrdo`], the one entry point of an end-to-end test: a running Ordo on
//!   its own database and namespace, with its clients, its CLI and more processes beside
//!   it, all cleaned up when it is dropped (also when the test panics).
//! - [`database`]: [`TestDatabase`], a database created for one test and dropped after it.
//! - [`nats`]: the NATS server of the tests, unique namespaces, stream names and cleanup.
//! - [`process`]: [`OrdoProcess`], one `ordo serve` child process.
//! - [`http`]: [`Api`], a small client of the HTTP API, and its [`Answer`]s.
//! - [`wait`]: [`eventually`], a bounded poll.
//! - [`cluster`]: servers a fault run owns: a three-node NATS cluster, a private Postgres.
//! - [`faults`]: a steady load of checkouts through a fault, and the tally of its orders.
//! - [`browser`]: [`Browser`], a headless Chromium over WebDriver for the web consoles.
#![forbid(unsafe_code)]

pub mod browser;
pub mod cluster;
pub mod database;
pub mod faults;
pub mod http;
pub mod nats;
pub mod ordo;
pub mod process;
pub mod wait;

use std::future::Future;

pub use browser::Browser;
pub use database::{admin_database_url, database_url, event_types, payments_of, TestDatabase};
pub use http::{assert_problem, Answer, Api, ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD};
pub use nats::{delete_streams, delete_streams_on, nats_url, stream_name, unique_namespace};
pub use ordo::{Customer, TestOrdo, TestOrdoBuilder};
pub use process::{free_port, ordo_binary, OrdoProcess, SpawnOptions};
pub use wait::eventually;

/// Runs `work` to completion on a runtime of its own in a plain thread: cleanup from `Drop`,
/// which may run inside or outside a runtime and cannot await.
pub(crate) fn run_detached<F>(work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(work);
    })
    .join();
}
