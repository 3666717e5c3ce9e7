//! The overview page under load, against a bare axum handler measured in the
//! same run on the same machine: `cargo xtask bench` (or, with a release
//! build already made, `FLIGHTDECK_BIN=target/release/flightdeck cargo bench
//! -p flightdeck-tests --bench overview`).
//!
//! It starts `flightdeck sandbox`, signs in, waits until the sync has warmed
//! the store (every environment shows a live release), then sends GET / with
//! the session cookie from `CONCURRENCY` connections for `SECONDS`, and the
//! same load to a handler that only answers "ok". Figures go to stdout.

use flightdeck_tests::{Sandbox, TempDir, http};
use std::time::{Duration, Instant};

/// DESIGN §11 states its p99 target at 64 connections.
const CONCURRENCY: usize = 64;
const SECONDS: u64 = 10;

struct Figures {
    requests: usize,
    errors: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    elapsed: Duration,
}

async fn load(url: String, cookie: Option<String>) -> Figures {
    let client = http();
    let stop = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < stop {
                    let t = Instant::now();
                    let mut request = client.get(&url);
                    if let Some(cookie) = &cookie {
                        request = request.header("Cookie", cookie);
                    }
                    match request.send().await {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                            latencies.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (latencies, e) = worker.await.unwrap();
        all.extend(latencies);
        errors += e;
    }
    let elapsed = started.elapsed();
    all.sort();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        requests: all.len(),
        errors,
        p50: at(0.50),
        p99: at(0.99),
        max: all.last().copied().unwrap_or_default(),
        elapsed,
    }
}

fn report(name: &str, f: &Figures) {
    println!(
        "{name:<22} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} ok, {} errors, {} connections, {:.0} s)",
        f.requests as f64 / f.elapsed.as_secs_f64(),
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.max.as_secs_f64() * 1e3,
        f.requests,
        f.errors,
        CONCURRENCY,
        f.elapsed.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    let dir = TempDir::new("bench");
    let sandbox = Sandbox::start(&dir, &[]).await;
    let cookie = sandbox.session().await;
    sandbox
        .wait_for_live_releases(&cookie, Duration::from_secs(120))
        .await;

    let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_url = format!("http://{}/", bare.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        axum::serve(bare, app).await.unwrap();
    });

    // Warm up both, then measure.
    let _ = load(bare_url.clone(), None).await;
    let overview = load(format!("{}/", sandbox.panel()), Some(cookie.clone())).await;
    let baseline = load(bare_url, None).await;
    println!(
        "flightdeck overview benchmark (binary = {})",
        flightdeck_tests::binary().display()
    );
    report("GET / (overview, SSR)", &overview);
    report("bare axum handler", &baseline);
}
