//! Ordo on a three-node NATS cluster with streams of three replicas: under a steady load
//! of checkouts, the node Ordo is connected to is SIGKILLed and later restarted. The
//! client moves to another node by itself, checkouts go on while the node is down, and
//! every order placed ends paid, none lost or doubled, the read models in agreement with
//! the event store. (`scripts/fault-suite.sh` runs the longer version with more faults.)

use std::time::{Duration, Instant};

use ordo_tests::cluster::NatsCluster;
use ordo_tests::faults::Load;
use ordo_tests::{unique_namespace, TestOrdo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkouts_survive_the_loss_of_a_nats_node() {
    let mut cluster = NatsCluster::start().await.expect("a NATS cluster");
    let ordo = TestOrdo::builder()
        .nats(&cluster.urls(), &unique_namespace())
        .env("ORDO_STREAM_REPLICAS", "3")
        .env("ORDO_SANDBOX_DELAY", "50ms")
        .start()
        .await;
    let js = async_nats::jetstream::new(ordo.nats().await);
    let mut orders = js.get_stream(ordo.stream_name("ORDER")).await.unwrap();
    let info = orders.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.cluster.as_ref().map(|c| c.replicas.len()), Some(2));

    let load = Load::start(&ordo, 2).await;
    load.wait_for_orders(6, Duration::from_secs(60)).await;
    let node = cluster.busiest_node().await;
    cluster.kill(node);
    // Checkouts go on with two nodes of three.
    load.wait_for_orders(6, Duration::from_secs(60)).await;
    cluster.restart(node).await.expect("the node restarts");
    let healed = Instant::now();
    load.wait_for_orders(6, Duration::from_secs(60)).await;
    let tally = load
        .finish("nats-node-loss", &ordo, ordo.pool(), healed)
        .await;
    eprintln!("{}", tally.line());
    assert!(tally.passed(), "{tally:?}");
    assert!(tally.recovery_seconds < 30.0, "{tally:?}");
}
