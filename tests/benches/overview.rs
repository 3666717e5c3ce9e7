//! The overview page under load, against a bare axum handler measured in the
//! same run on the same machine: `cargo xtask bench` (or, with a release
//! build already made, `FLIGHTDECK_BIN=target/release/flightdeck cargo bench
//! -p flightdeck-tests --bench overview`).
//!
//! It starts `flightdeck sandbox`, signs in, waits until the sync has warmed
//! the store (every environment shows a live release), then sends GET / with
//! the session cookie from `CONCURRENCY` connections for `SECONDS`, and the
//! same load to a handler that only answers "ok". Between the two it loads
//! the production timeline the same way, a page rendered on every view (the
//! overview is kept for up to a second, see the README's Performance), and
//! it prints how many overview views the page cache answered. Figures go to
//! stdout.

use flightdeck_tests::{Sandbox, TempDir};
use std::time::{Duration, Instant};

/// DESIGN §11 states its p99 target at 64 connections.
const CONCURRENCY: usize = 64;
const SECONDS: u64 = 10;

struct Figures {
    requests: usize,
    errors: usize,
    /// The first error seen, to say what went wrong.
    first_error: Option<String>,
    p50: Duration,
    p99: Duration,
    max: Duration,
    elapsed: Duration,
}

async fn load(url: String, cookie: Option<String>) -> Figures {
    let client = flightdeck_tests::http_direct();
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
                let mut first_error = None;
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
                        other => {
                            errors += 1;
                            first_error.get_or_insert_with(|| match other {
                                Ok(r) => format!("status {}", r.status()),
                                Err(e) => format!("{e:?}"),
                            });
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for worker in workers {
        let (latencies, e, f) = worker.await.unwrap();
        all.extend(latencies);
        errors += e;
        first_error = first_error.or(f);
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
        first_error,
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
    if let Some(error) = &f.first_error {
        println!("{:<22} first error: {error}", "");
    }
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
    let before = page_cache(sandbox.panel()).await;
    let overview = load(format!("{}/", sandbox.panel()), Some(cookie.clone())).await;
    let after = page_cache(sandbox.panel()).await;
    // A page the cache never keeps: every view is a full server render.
    let timeline = load(
        format!("{}/env/production", sandbox.panel()),
        Some(cookie.clone()),
    )
    .await;
    let baseline = load(bare_url, None).await;
    let page = flightdeck_tests::http()
        .get(format!("{}/", sandbox.panel()))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    println!(
        "flightdeck overview benchmark (binary = {})",
        flightdeck_tests::binary().display()
    );
    report("GET / (overview, SSR)", &overview);
    println!(
        "{:<22} {} kept, {} rendered during the run; the page is {} bytes",
        "  page cache",
        after.0 - before.0,
        after.1 - before.1,
        page.len()
    );
    report("GET /env/production", &timeline);
    report("bare axum handler", &baseline);
}

/// The panel's page cache counters from `/metrics`: (hits, misses).
async fn page_cache(panel: &str) -> (u64, u64) {
    let text = flightdeck_tests::http()
        .get(format!("{panel}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |outcome: &str| -> u64 {
        let needle = format!("flightdeck_page_cache_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(needle.as_str()))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {needle} in /metrics"))
    };
    (count("hit"), count("miss"))
}
