//! Flash-sale load generator: sets up a show with one hot 100-seat area through the API,
//! registers a pool of buyers (their tokens are reused: registering 10,000 accounts would
//! measure password hashing, not booking), fires every booking at once with
//! `Prefer: wait=30`, and reports seats held, oversold, time to answer everyone, latency
//! percentiles and decisions per second; then the same load where every booking targets
//! its own area (the ceiling without contention). Only talks to 127.0.0.1.
//!
//! `flash_sale <base_url>[,<base_url>...] [buyers] [accounts] [seats]`; the bookings are
//! spread round-robin over the base URLs (processes sharing one Postgres and NATS).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "admin-password-1";
const AREAS_PER_SESSION: usize = 1000;

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

struct Outcome {
    held: usize,
    rejected: usize,
    failed: usize,
    all_answered: Duration,
    latencies: Vec<Duration>,
}

async fn fire(
    client: &reqwest::Client,
    bases: &[String],
    tokens: &[String],
    session_and_area: Vec<(String, String)>,
) -> Outcome {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, (session_id, area_id)) in session_and_area.into_iter().enumerate() {
        let client = client.clone();
        let url = format!("{}/api/v1/bookings", bases[i % bases.len()]);
        let token = tokens[i % tokens.len()].clone();
        set.spawn(async move {
            let sent = Instant::now();
            let answer = client
                .post(&url)
                .bearer_auth(token)
                .header("prefer", "wait=30")
                .json(&json!({"session_id": session_id, "seat_area_id": area_id, "quantity": 1}))
                .send()
                .await;
            let status = match answer {
                Ok(r) if r.status().as_u16() == 202 => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|b| b["status"].as_str().map(str::to_string))
                    .unwrap_or_default(),
                // Turned away before a booking was recorded: a definite "sold out".
                Ok(r) if r.status().as_u16() == 409 => {
                    let body = r.json::<Value>().await.unwrap_or_default();
                    if body["type"] == "urn:ordo:problem:sold_out" {
                        "rejected".to_string()
                    } else {
                        format!("http 409 {body}")
                    }
                }
                Ok(r) => format!("http {}", r.status().as_u16()),
                Err(e) => format!("error {e}"),
            };
            (status, sent.elapsed())
        });
    }
    let mut outcome = Outcome {
        held: 0,
        rejected: 0,
        failed: 0,
        all_answered: Duration::ZERO,
        latencies: Vec::new(),
    };
    let mut sample_failure = None;
    while let Some(Ok((status, latency))) = set.join_next().await {
        outcome.latencies.push(latency);
        match status.as_str() {
            "pending_payment" => outcome.held += 1,
            "rejected" => outcome.rejected += 1,
            other => {
                outcome.failed += 1;
                sample_failure.get_or_insert(other.to_string());
            }
        }
    }
    outcome.all_answered = started.elapsed();
    outcome.latencies.sort();
    if let Some(f) = sample_failure {
        println!("  sample undecided answer: {f}");
    }
    outcome
}

fn report(label: &str, o: &Outcome, capacity: usize) {
    let pct =
        |p: f64| o.latencies[((o.latencies.len() as f64 * p) as usize).min(o.latencies.len() - 1)];
    let total = o.held + o.rejected + o.failed;
    println!("{label}");
    println!(
        "  bookings: {total}  held (pending_payment): {}  rejected: {}  undecided/failed: {}",
        o.held, o.rejected, o.failed
    );
    println!("  oversold: {}", o.held.saturating_sub(capacity));
    println!(
        "  every buyer answered after: {:.2} s",
        o.all_answered.as_secs_f64()
    );
    println!(
        "  latency p50: {:.0} ms  p99: {:.0} ms  max: {:.0} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    println!(
        "  decided per second: {:.0}",
        (o.held + o.rejected) as f64 / o.all_answered.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let bases: Vec<String> = args
        .get(1)
        .context("usage: flash_sale <base_url>[,<base_url>...] [buyers] [accounts] [seats]")?
        .split(',')
        .map(|s| s.trim_end_matches('/').to_string())
        .collect();
    for base in &bases {
        if !(base.starts_with("http://127.0.0.1:") || base.starts_with("http://localhost:")) {
            bail!("only local targets (http://127.0.0.1:<port>) are allowed, got {base}");
        }
    }
    let buyers: usize = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000)
        .min(20_000);
    let accounts: usize = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(300)
        .clamp(1, 2_000);
    let seats: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(20_000)
        .timeout(Duration::from_secs(60))
        .build()?;
    let base = &bases[0];

    let (status, login) = post(
        &client,
        &format!("{base}/api/v1/auth/login"),
        None,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await?;
    if status != 200 {
        bail!("admin login failed ({status}): set ORDO_BOOTSTRAP_ADMIN_EMAIL={ADMIN_EMAIL} ORDO_BOOTSTRAP_ADMIN_PASSWORD={ADMIN_PASSWORD}");
    }
    let admin = login["access_token"]
        .as_str()
        .context("admin token")?
        .to_string();

    // The hot show: one area of `seats` seats. The cold show: one area per buyer.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (status, hot) = post(&client, &format!("{base}/api/v1/shows"), Some(&admin), json!({
        "title": format!("Flash sale {run}"), "category": "concert", "city": "Shanghai", "venue": "Stadium",
        "sessions": [{"starts_at": "2030-08-15T11:30:00Z", "seat_areas": [
            {"area_id": "HOT", "name": "Hot area", "price": 1280, "currency": "CNY", "capacity": seats}]}]
    })).await?;
    if status != 201 {
        bail!("creating the hot show failed ({status}): {hot}");
    }
    let hot_show = hot["show_id"].as_str().context("show id")?.to_string();
    let hot_session = hot["session_ids"][0]
        .as_str()
        .context("session id")?
        .to_string();
    let (status, cold) = post(&client, &format!("{base}/api/v1/shows"), Some(&admin), json!({
        "title": format!("Spread sale {run}"), "category": "concert", "city": "Shanghai", "venue": "Stadium"
    })).await?;
    if status != 201 {
        bail!("creating the cold show failed ({status}): {cold}");
    }
    let cold_show = cold["show_id"].as_str().context("show id")?.to_string();
    let mut cold_targets = Vec::with_capacity(buyers);
    for chunk in (0..buyers).collect::<Vec<_>>().chunks(AREAS_PER_SESSION) {
        let areas: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"area_id": format!("A{i}"), "name": format!("Area {i}"), "price": 1280, "currency": "CNY", "capacity": 1}))
            .collect();
        let (status, added) = post(
            &client,
            &format!("{base}/api/v1/shows/{cold_show}/sessions"),
            Some(&admin),
            json!({
            "starts_at": "2030-08-16T11:30:00Z", "seat_areas": areas}),
        )
        .await?;
        // 202: the session is recorded and its seats are still being opened (awaited below).
        if status != 201 && status != 202 {
            bail!("adding a cold session failed ({status}): {added}");
        }
        let session = added["session_ids"][0]
            .as_str()
            .context("session id")?
            .to_string();
        cold_targets.extend(chunk.iter().map(|i| (session.clone(), format!("A{i}"))));
    }

    // Buyers: `accounts` registered in parallel, their tokens shared by the bookings.
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..accounts {
        let client = client.clone();
        let url = format!("{}/api/v1/auth/register", bases[i % bases.len()]);
        let gate = gate.clone();
        let email = format!("fan{i}-{run}@example.com");
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let (status, body) = post(
                &client,
                &url,
                None,
                json!({"email": email, "password": "Secure-pass-123", "full_name": "Fan"}),
            )
            .await?;
            anyhow::ensure!(status == 201, "register failed ({status}): {body}");
            Ok::<_, anyhow::Error>(
                body["access_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        });
    }
    let mut tokens = Vec::new();
    while let Some(result) = set.join_next().await {
        tokens.push(result??);
    }
    println!(
        "registered {accounts} buyers in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Wait until the catalog read model knows every area with its seats open.
    let deadline = Instant::now() + Duration::from_secs(120);
    for (show, expected) in [(&hot_show, 1usize), (&cold_show, buyers)] {
        loop {
            let sessions: Value = client
                .get(format!("{base}/api/v1/shows/{show}/sessions"))
                .send()
                .await?
                .json()
                .await?;
            let areas: usize = sessions["sessions"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .flat_map(|x| x["seat_areas"].as_array().cloned().unwrap_or_default())
                        .filter(|area| area["available"].as_i64().unwrap_or(0) > 0)
                        .count()
                })
                .unwrap_or(0);
            if areas >= expected {
                break;
            }
            if Instant::now() > deadline {
                bail!("the catalog did not show {expected} areas in time");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    println!(
        "targets: {}; buyers: {buyers}; accounts: {accounts}; seats: {seats}",
        bases.join(", ")
    );
    let hot_targets = vec![(hot_session, "HOT".to_string()); buyers];
    let outcome = fire(&client, &bases, &tokens, hot_targets).await;
    report(
        &format!("hot: {buyers} bookings of 1 seat for {seats} seats in one area"),
        &outcome,
        seats,
    );
    let outcome = fire(&client, &bases, &tokens, cold_targets).await;
    report(
        &format!("spread: {buyers} bookings of 1 seat, each in its own area"),
        &outcome,
        buyers,
    );
    Ok(())
}
