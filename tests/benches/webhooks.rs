//! Webhook to browser: how long after a Render webhook is POSTed a signed-in
//! browser hears of the change on `/events`, and how long until it has
//! refetched the overview. `cargo xtask bench` runs it after the overview
//! benchmark (or, with a release build already made,
//! `FLIGHTDECK_BIN=target/release/flightdeck cargo bench -p flightdeck-tests --bench webhooks`).
//!
//! It starts `flightdeck sandbox --no-panel` (the simulators) and a panel
//! with `serve` on the generated configuration, whose periodic sync is
//! pushed out to an hour so that only the webhooks below make it sync (the
//! simulators' own webhooks go to the address the sandbox printed, where
//! nothing listens). Each round:
//!
//! 1. a deploy is triggered on the simulated Render, so the panel has
//!    something new to find (a webhook about nothing changes nothing, and
//!    the panel then rightly sends no event);
//! 2. a `deploy_started` webhook for that service is signed the Standard
//!    Webhooks way and POSTed to `/webhooks/render` (the clock starts);
//! 3. the panel verifies it, records the delivery id and pokes the sync of
//!    the service's environment, which runs a whole pass (Render deploys,
//!    the target database, GitHub runs and commits) and only then announces
//!    `event: change` `{"environment": …, "what": "render_deploys"}` on
//!    every open `/events` stream: the first such event for the
//!    environment stops the first clock;
//! 4. the browser's next step, refetching the overview through its server
//!    function (`POST /_fn/overview`), stops the second clock.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use flightdeck_tests::{Panel, Sandbox, TempDir, run_binary, session_for};
use hmac::Mac;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Rounds, alternating between the sandbox's two services.
const ROUNDS: usize = 200;
const SERVICES: [(&str, &str); 2] = [
    ("production", "srv-sandbox-production"),
    ("staging", "srv-sandbox-staging"),
];
/// The sandbox's Render API key (printed as `render-api-key`).
const RENDER_KEY_LINE: &str = "render-api-key";

/// One `event: change` as it arrived.
struct Arrived {
    at: Instant,
    environment: String,
}

/// Reads the `/events` stream and sends each change event on `tx`.
async fn read_events(mut response: reqwest::Response, tx: mpsc::UnboundedSender<Arrived>) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let at = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let is_change = block.lines().any(|l| l == "event: change");
            let data = block.lines().find_map(|l| l.strip_prefix("data: "));
            if let (true, Some(data)) = (is_change, data) {
                let change: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
                let environment = change["environment"].as_str().unwrap_or("").to_owned();
                if tx.send(Arrived { at, environment }).is_err() {
                    return;
                }
            }
        }
    }
}

/// Takes events until none has come for `quiet`.
async fn drain(rx: &mut mpsc::UnboundedReceiver<Arrived>, quiet: Duration) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout(quiet, rx.recv()).await {
        n += 1;
    }
    n
}

/// The `webhook-signature` of Standard Webhooks, computed here independently
/// of the panel's code: HMAC-SHA256 over `id.timestamp.body` with the
/// base64 key after `whsec_`.
fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .expect("the sandbox's webhook secret is whsec_<base64>");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

fn percentiles(name: &str, mut all: Vec<Duration>) {
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "{name:<34} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} webhooks)",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3,
        all.len(),
    );
}

#[tokio::main]
async fn main() {
    let dir = TempDir::new("bench-webhooks");
    let sandbox = Sandbox::start(&dir, &["--no-panel"]).await;
    let config = std::path::PathBuf::from(&sandbox.printed["config"]);
    let render = sandbox.printed["render"].clone();
    let render_key = sandbox.printed[RENDER_KEY_LINE].clone();
    let secrets: Vec<(String, String)> = std::fs::read_to_string(&sandbox.printed["env"])
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let webhook_secret = secrets
        .iter()
        .find(|(k, _)| k == "RENDER_WEBHOOK_SECRET")
        .map(|(_, v)| v.clone())
        .expect("the sandbox writes RENDER_WEBHOOK_SECRET");

    let password = "bench-password-long-enough";
    let config_arg = config.to_str().unwrap();
    let out = run_binary(
        &[
            "--config", config_arg, "user", "add", "bench", "--role", "viewer",
        ],
        Some(password),
        &secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut env = secrets.clone();
    env.push(("FLIGHTDECK_SERVER__LISTEN".into(), "127.0.0.1:0".into()));
    env.push(("FLIGHTDECK_SYNC__INTERVAL_SECONDS".into(), "3600".into()));
    let panel = Panel::start_with_env(&config, &env).await;
    let cookie = session_for(&panel, "bench", password).await;
    flightdeck_tests::wait_for_live_releases(&panel.url, &cookie, Duration::from_secs(120)).await;

    let events = flightdeck_tests::http_direct()
        .get(panel.at("/events"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(read_events(events, tx));
    drain(&mut rx, Duration::from_millis(500)).await;

    let client = flightdeck_tests::http_direct();
    let mut to_event = Vec::with_capacity(ROUNDS);
    let mut to_refetch = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (environment, service) = SERVICES[round % SERVICES.len()];
        let deploy: serde_json::Value = client
            .post(format!("{render}/v1/services/{service}/deploys"))
            .bearer_auth(&render_key)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let body = serde_json::to_vec(&serde_json::json!({
            "type": "deploy_started",
            "timestamp": now.as_secs(),
            "data": {"id": format!("evt-bench-{round}"), "serviceId": service, "deployId": deploy["id"]},
        }))
        .unwrap();
        let id = format!("msg_bench_{round}_{}", now.as_nanos());
        let timestamp = now.as_secs() as i64;
        let signature = standard_signature(&webhook_secret, &id, timestamp, &body);

        let started = Instant::now();
        let response = client
            .post(panel.at("/webhooks/render"))
            .header("Content-Type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
        let arrived = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let event = rx.recv().await.expect("the event stream stays open");
                if event.environment == environment || event.environment == "*" {
                    return event.at;
                }
            }
        })
        .await
        .expect("the change reaches /events within 10 s");
        to_event.push(arrived - started);

        let overview = client
            .post(panel.at("/_fn/overview"))
            .header("Cookie", &cookie)
            .header("Origin", &panel.url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(overview.status(), 200);
        let _ = overview.bytes().await.unwrap();
        to_refetch.push(started.elapsed());

        // Later events of the same pass, if any, belong to this round.
        drain(&mut rx, Duration::from_millis(50)).await;
    }
    println!(
        "flightdeck webhook-to-browser benchmark (binary = {})",
        flightdeck_tests::binary().display()
    );
    percentiles("webhook -> /events change", to_event);
    percentiles("webhook -> overview refetched", to_refetch);
}
