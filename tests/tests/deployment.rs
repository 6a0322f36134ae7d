//! What operators install (deploy/): the Kubernetes manifests validate offline against the
//! Kubernetes schemas (kubernetes-validate, from PyPI; scripts/test.sh installs it) and run
//! real roles with probes, resources and disruption budgets; the Debian package's metadata
//! ships a systemd unit per role with its settings; and every role, also relay and workers
//! without the HTTP API, answers the probes and /metrics on its internal address.
//!
//! `ORDO_KUBERNETES_VALIDATE` names the validator, else `kubernetes-validate` is looked up
//! on the PATH. A missing tool fails the test: nothing is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_tests::{eventually, TestOrdo};
use serde_json::Value;

const ROLES: [&str; 3] = ["gateway", "relay", "workers"];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn kubernetes_dir() -> PathBuf {
    repository().join("deploy/kubernetes")
}

/// The files the kustomization applies.
fn manifest_files() -> Vec<String> {
    let kustomization: Value = serde_yaml::from_str(
        &std::fs::read_to_string(kubernetes_dir().join("kustomization.yaml"))
            .expect("the kustomization"),
    )
    .expect("YAML");
    kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|file| file.as_str().expect("a file name").to_owned())
        .collect()
}

/// Every object of every manifest, by `kind/name`.
fn manifests() -> BTreeMap<String, Value> {
    let mut objects = BTreeMap::new();
    for file in manifest_files() {
        let text = std::fs::read_to_string(kubernetes_dir().join(&file)).expect("a manifest");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let object: Value = serde::Deserialize::deserialize(document).expect("a YAML document");
            let key = format!(
                "{}/{}",
                object["kind"].as_str().expect("a kind"),
                object["metadata"]["name"].as_str().expect("a name")
            );
            assert!(objects.insert(key.clone(), object).is_none(), "{key} twice");
        }
    }
    objects
}

fn kubernetes_validate() -> PathBuf {
    if let Ok(path) = std::env::var("ORDO_KUBERNETES_VALIDATE") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("kubernetes-validate"))
                .find(|candidate| candidate.is_file())
        })
        .expect(
            "kubernetes-validate is missing: scripts/test.sh installs it (from PyPI), \
             or set ORDO_KUBERNETES_VALIDATE to its path",
        )
}

#[test]
fn the_kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let files = manifest_files();
    let output = std::process::Command::new(kubernetes_validate())
        .arg("--strict")
        .args(&files)
        .current_dir(kubernetes_dir())
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    // Each object was checked against its schema, none skipped for want of one.
    for key in manifests().keys() {
        let (kind, name) = key.split_once('/').unwrap();
        let resource = format!("{}/{name}", kind.to_lowercase());
        assert!(
            text.lines()
                .any(|line| line.contains("passed for resource") && line.contains(&resource)),
            "{resource} not validated:\n{text}"
        );
    }
    assert!(!text.contains("Couldn't find schema"), "{text}");

    // And the validator refuses what the cluster would refuse.
    let scratch = std::env::temp_dir().join(format!("ordo-k8s-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).unwrap();
    let broken = std::fs::read_to_string(kubernetes_dir().join("relay.yaml"))
        .unwrap()
        .replace("readinessProbe:", "readinessProbes:");
    std::fs::write(scratch.join("relay.yaml"), broken).unwrap();
    let refused = std::process::Command::new(kubernetes_validate())
        .args(["--strict", "relay.yaml"])
        .current_dir(&scratch)
        .output()
        .expect("kubernetes-validate runs");
    std::fs::remove_dir_all(&scratch).ok();
    assert!(!refused.status.success(), "a misspelt probe passes");
}

#[test]
fn each_role_has_a_deployment_with_probes_resources_settings_and_a_disruption_budget() {
    let objects = manifests();
    let config = &objects["ConfigMap/ordo-config"]["data"];
    let secrets = &objects["Secret/ordo-secrets"]["stringData"];
    let internal_port: u64 = config["ORDO_METRICS_ADDR"]
        .as_str()
        .and_then(|addr| addr.rsplit(':').next()?.parse().ok())
        .expect("ORDO_METRICS_ADDR with a port");
    for role in ROLES {
        let deployment = &objects[&format!("Deployment/ordo-{role}")];
        let pod = &deployment["spec"]["template"];
        let labels = &deployment["spec"]["selector"]["matchLabels"];
        assert_eq!(
            &pod["metadata"]["labels"]["app.kubernetes.io/component"],
            role
        );
        assert_eq!(&labels["app.kubernetes.io/component"], role);
        assert!(
            deployment["spec"]["replicas"].as_u64().unwrap() >= 2,
            "{role}"
        );
        let container = &pod["spec"]["containers"][0];
        assert_eq!(
            container["args"],
            serde_json::json!(["serve", "--roles", role]),
            "{role}"
        );
        // The probes ask the internal port, which every role serves.
        let ports = container["ports"].as_array().unwrap();
        let internal = ports
            .iter()
            .find(|port| port["name"] == "internal")
            .expect("an internal port");
        assert_eq!(internal["containerPort"].as_u64(), Some(internal_port));
        for (probe, path) in [
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ] {
            assert_eq!(container[probe]["httpGet"]["path"], path, "{role} {probe}");
            assert_eq!(container[probe]["httpGet"]["port"], "internal", "{role}");
        }
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"]["requests"][resource].is_string(),
                "{role} requests {resource}"
            );
        }
        let sources: Vec<_> = container["envFrom"].as_array().unwrap().iter().collect();
        assert!(sources
            .iter()
            .any(|source| source["configMapRef"]["name"] == "ordo-config"));
        assert!(sources
            .iter()
            .any(|source| source["secretRef"]["name"] == "ordo-secrets"));
        for variable in container["env"].as_array().unwrap() {
            if let Some(key) = variable["valueFrom"]["secretKeyRef"]["key"].as_str() {
                assert!(secrets[key].is_string(), "{role}: no secret {key}");
            }
        }
        let budget = &objects[&format!("PodDisruptionBudget/ordo-{role}")];
        assert_eq!(&budget["spec"]["selector"]["matchLabels"], labels, "{role}");
        assert!(
            budget["spec"]["minAvailable"].as_u64().unwrap()
                < deployment["spec"]["replicas"].as_u64().unwrap(),
            "{role}: a budget that allows no disruption blocks node drains"
        );
        assert!(
            pod["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap()
                > 30,
            "{role}: Ordo drains for up to 30 s after SIGTERM"
        );
    }
    let service = &objects["Service/ordo-gateway"]["spec"];
    assert_eq!(
        service["selector"]["app.kubernetes.io/component"],
        "gateway"
    );
    assert_eq!(service["ports"][0]["targetPort"], "http");
    // Every setting is one Ordo reads.
    let known = std::fs::read_to_string(repository().join("gateway/src/config.rs")).unwrap();
    for name in config
        .as_object()
        .unwrap()
        .keys()
        .chain(secrets.as_object().unwrap().keys())
    {
        let read = known.contains(&format!("env = \"{name}\""))
            || name.starts_with("ORDO_NATS_") && name.ends_with("_PASSWORD");
        assert!(read, "{name} is not a setting of Ordo");
    }
}

/// The `[package.metadata.deb]` of the gateway crate, through `cargo metadata`.
fn debian_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repository())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{output:?}");
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "ordo-gateway")
        .expect("the gateway crate")["metadata"]["deb"]
        .clone()
}

#[test]
fn the_debian_package_ships_the_binary_a_unit_per_role_and_its_settings() {
    let deb = debian_metadata();
    assert_eq!(deb["name"], "ordo");
    let gateway = repository().join("gateway");
    let assets: Vec<(String, String)> = deb["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|asset| {
            (
                asset[0].as_str().unwrap().to_owned(),
                asset[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(assets.contains(&("target/release/ordo".into(), "usr/bin/ordo".into())));
    for (source, _) in &assets {
        if source != "target/release/ordo" {
            assert!(gateway.join(source).is_file(), "{source} is missing");
        }
    }
    let conf_files: Vec<&str> = deb["conf-files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file.as_str().unwrap())
        .collect();
    for role in ROLES {
        let unit = format!("lib/systemd/system/ordo-{role}.service");
        let (source, _) = assets
            .iter()
            .find(|(_, target)| *target == unit)
            .unwrap_or_else(|| panic!("no {unit}"));
        let text = std::fs::read_to_string(gateway.join(source)).unwrap();
        let exec: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("ExecStart="))
            .collect();
        assert_eq!(
            exec,
            [format!("/usr/bin/ordo serve --roles {role}")],
            "{unit}"
        );
        for line in text.lines() {
            if let Some(file) = line.strip_prefix("EnvironmentFile=") {
                let file = file.trim_start_matches('-');
                assert!(conf_files.contains(&file), "{unit}: {file} is not shipped");
            }
        }
        assert!(text.contains("User=ordo"), "{unit} runs as root");
    }
    let scripts = gateway.join(deb["maintainer-scripts"].as_str().unwrap());
    let postinst = std::fs::read_to_string(scripts.join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system"), "{postinst}");
    // The container image copies the binary the package ships, built the same way.
    let containerfile = std::fs::read_to_string(repository().join("deploy/Containerfile")).unwrap();
    assert!(containerfile.contains("cargo build --release --locked --bin ordo"));
    assert!(containerfile.contains("/src/target/release/ordo /usr/bin/ordo"));
}

fn free_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    format!("127.0.0.1:{port}")
}

/// `GET http://<address><path>`: its status and body.
async fn get(address: &str, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://{address}{path}")).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_worker_processes_answer_probes_and_metrics_on_their_internal_address() {
    let ordo = TestOrdo::with_env(&[("ORDO_METRICS_INTERVAL", "300ms")]).await;
    let mut processes = Vec::new();
    for role in ["relay", "workers"] {
        let address = free_address();
        let process = ordo
            .spawn_role(
                role,
                &[
                    ("ORDO_METRICS_ADDR", address.as_str()),
                    ("ORDO_METRICS_INTERVAL", "300ms"),
                ],
            )
            .await;
        processes.push((role, address, process));
    }
    for (role, address, _) in &processes {
        eventually(
            &format!("{role} ready on {address}"),
            Duration::from_secs(30),
            || async { (get(address, "/readyz").await?.0 == 200).then_some(()) },
        )
        .await;
        let (status, body) = get(address, "/healthz").await.expect("answered");
        assert_eq!(status, 200, "{role}: {body}");
        let (status, _) = get(address, "/api/v1/openapi.json")
            .await
            .expect("answered");
        assert_eq!(status, 404, "{role} serves no API");
    }
    // The relay stands by (the first process leads) and says so; the workers report their
    // consumers.
    let (_, relay, _) = &processes[0];
    eventually(
        "the standby relay's gauge",
        Duration::from_secs(30),
        || async {
            let (_, text) = get(relay, "/metrics").await?;
            text.lines()
                .any(|line| line == "ordo_relay_leader 0")
                .then_some(())
        },
    )
    .await;
    let (_, workers, _) = &processes[1];
    eventually(
        "the workers' consumer gauges",
        Duration::from_secs(30),
        || async {
            let (_, text) = get(workers, "/metrics").await?;
            text.lines()
                .any(|line| {
                    line.starts_with("ordo_consumer_pending{consumer=\"projection-orders\"}")
                })
                .then_some(())
        },
    )
    .await;
    drop(processes);
    ordo.stop().await;
}
