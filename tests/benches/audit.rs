//! The audit trail at 1,000,000 events (DESIGN §11, issue 6), on both
//! store backends: `cargo bench -p flightdeck-tests --bench audit` (also run
//! by `cargo xtask bench`). `FLIGHTDECK_BENCH_AUDIT_EVENTS=50000` makes a
//! quick run, `FLIGHTDECK_BENCH_AUDIT_BACKENDS=sqlite` (or `postgres`) runs
//! one backend; PostgreSQL is expected at 127.0.0.1:5432 (override with
//! `FLIGHTDECK_TEST_PG`, an admin URL as for the store tests).
//!
//! For each backend, on a fresh store (a SQLite file in a temporary folder;
//! a PostgreSQL database created here and dropped at the end):
//!
//! 1. fill a tenth of the events (at most 100,000) with
//!    `Store::append_audit_batch`, 10,000 per transaction: 50 accounts, 30
//!    actions (some much more frequent than others), two environments,
//!    mostly `succeeded` with some `denied` and `failed`, times spread over
//!    the two years before now, never decreasing;
//! 2. export them all as CSV (the 100,000-row export);
//! 3. fill the rest, then export all of them (the 1,000,000-row export);
//! 4. filtered pages as the review screen asks for them: an actor, an
//!    action and a time range (30 to 365 days somewhere in the two years),
//!    50 rows newest first through `Store::audit_newest`, then the next
//!    page through the cursor when the first was full; `ROUNDS` rounds with
//!    a different actor, action and range each;
//! 5. `Store::verify_audit` over the whole chain.
//!
//! Each export runs in a child process (this binary again, told so by
//! `FLIGHTDECK_BENCH_AUDIT_CHILD_URL`): it connects to the store and reads
//! `control::audit::rows`, the stream `GET /api/v1/audit/export` and
//! `flightdeck audit export` send, into a sink that only counts bytes and
//! lines. The child reports its own `VmHWM` (peak resident memory) from
//! `/proc/self/status`, once connected and again at the end, so the
//! figures are the export's alone, not the filling's. Like the binary, this
//! benchmark uses mimalloc. Flat memory means the 1,000,000-row peak is the
//! 100,000-row peak, not ten times it.

use flightdeck::audit::{ActorKind, ActorRecord, NewEvent, Outcome, RequestMeta, Verdict};
use flightdeck::export::Format;
use flightdeck::store::Store;
use flightdeck::store::audit_filter::Filter;
use flightdeck_sandbox::scratch::ScratchDb;
use flightdeck_tests::TempDir;
use futures_util::StreamExt;
use std::process::Command;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_EVENTS: u64 = 1_000_000;
/// Events per `append_audit_batch` call (one transaction each).
const BATCH: u64 = 10_000;
/// Filtered first pages measured per backend (each maybe followed by its next page).
const ROUNDS: usize = 200;
/// Rows per page of the review screen.
const PAGE: i64 = 50;
const DAYS: i64 = 730;
const CHILD_URL: &str = "FLIGHTDECK_BENCH_AUDIT_CHILD_URL";

/// Fifty accounts; the first five are admins, the next ten leads, then
/// deployers, and the last ten viewers.
const ACTORS: [&str; 50] = [
    "ada",
    "grace",
    "linus",
    "barbara",
    "ken",
    "dennis",
    "margaret",
    "alan",
    "edsger",
    "donald",
    "frances",
    "john",
    "radia",
    "tim",
    "vint",
    "bjarne",
    "guido",
    "james",
    "anders",
    "yukihiro",
    "brian",
    "rob",
    "niklaus",
    "leslie",
    "tony",
    "hedy",
    "katherine",
    "dorothy",
    "mary",
    "annie",
    "lynn",
    "sophie",
    "carol",
    "jean",
    "adele",
    "evelyn",
    "joan",
    "ida",
    "betty",
    "marlyn",
    "ruth",
    "kathleen",
    "shafi",
    "silvio",
    "whitfield",
    "martin",
    "ralph",
    "leonard",
    "adi",
    "ron",
];

/// Thirty actions with how often each happens relative to the others:
/// token uses by the deploy workflow, gate checks and page views dominate;
/// rollbacks and account changes are rare.
const ACTIONS: [(&str, u32); 30] = [
    ("token.use", 300),
    ("environment.gate", 200),
    ("auth.login", 120),
    ("auth.logout", 80),
    ("operation.view", 60),
    ("request.refused", 40),
    ("auth.login_failed", 30),
    ("deploy.trigger", 30),
    ("deploy.step", 30),
    ("deploy.finish", 15),
    ("run.rerun", 15),
    ("rollback.plan", 12),
    ("webhook.refused", 10),
    ("run.cancel", 8),
    ("rollback.step", 8),
    ("environment.lock", 5),
    ("environment.unlock", 5),
    ("rollback.start", 4),
    ("rollback.finish", 4),
    ("audit.export", 3),
    ("audit.verify", 3),
    ("operation.approve", 2),
    ("operation.resolve", 2),
    ("token.create", 2),
    ("token.revoke", 1),
    ("user.add", 1),
    ("user.disable", 1),
    ("review.mark", 4),
    ("audit.view", 6),
    ("migrations.view", 10),
];

/// A small deterministic generator (SplitMix64), so every run fills the same trail.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An action, as often as its weight says.
    fn action(&mut self) -> &'static str {
        let total: u32 = ACTIONS.iter().map(|(_, w)| w).sum();
        let mut ticket = self.below(u64::from(total)) as u32;
        for (action, weight) in ACTIONS {
            if ticket < weight {
                return action;
            }
            ticket -= weight;
        }
        unreachable!("the ticket is below the sum of the weights")
    }
}

/// The events of a trail of `total` over the `DAYS` after `start`.
struct Trail {
    rng: Rng,
    start: OffsetDateTime,
    step_ns: i64,
}

impl Trail {
    fn new(total: u64, start: OffsetDateTime) -> Trail {
        Trail {
            rng: Rng(6),
            start,
            step_ns: time::Duration::days(DAYS).whole_nanoseconds() as i64 / total as i64,
        }
    }

    /// The `i`-th event.
    fn event(&mut self, i: u64) -> NewEvent {
        let r = &mut self.rng;
        let who = r.below(ACTORS.len() as u64) as usize;
        let role = match who {
            0..5 => "admin",
            5..15 => "lead",
            15..40 => "deployer",
            _ => "viewer",
        };
        let action = r.action();
        let outcome = match (action, r.below(100)) {
            ("request.refused" | "webhook.refused" | "auth.login_failed", _) => Outcome::Denied,
            (_, 0..90) => Outcome::Succeeded,
            (_, 90..96) => Outcome::Denied,
            _ => Outcome::Failed,
        };
        let meta = RequestMeta {
            request_id: Some(format!("{:016x}", r.next())),
            ip: Some(format!("10.{}.{}.{}", r.below(4), r.below(256), r.below(256))),
            user_agent: Some(
                (*r.pick(&[
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                    "curl/8.5.0",
                ]))
                .to_owned(),
            ),
        };
        let actor = ActorRecord {
            kind: if action == "token.use" {
                ActorKind::Token
            } else {
                ActorKind::User
            },
            id: (who + 1).to_string(),
            name: ACTORS[who].to_owned(),
            role: Some(role.to_owned()),
        };
        // Times never decrease: the i-th event falls in the i-th step.
        let at = self.start
            + time::Duration::nanoseconds(
                self.step_ns * i as i64 + (r.below(self.step_ns as u64) as i64),
            );
        let mut event = NewEvent::new(actor, action, outcome, &meta).at(at);
        let family = action.split('.').next().unwrap_or_default();
        if matches!(
            family,
            "environment" | "deploy" | "rollback" | "operation" | "run" | "migrations" | "token"
        ) {
            event = event.environment(if r.below(10) < 6 {
                "production"
            } else {
                "staging"
            });
        }
        match family {
            "rollback" | "deploy" | "operation" => {
                event =
                    event
                        .target(format!("op_{:012x}", r.next() >> 16))
                        .params(serde_json::json!({
                            "reason": "checkout answers 500 since the last deploy",
                            "commit": format!("{:07x}", r.below(1 << 28)),
                            "step": "wait_live",
                        }));
            }
            "user" => event = event.target(*r.pick(&ACTORS)),
            "token" => event = event.target(format!("tok_{:012x}", r.next() >> 16)),
            "run" => event = event.target(r.below(9_000_000_000).to_string()),
            "request" | "webhook" => {
                event = event.params(serde_json::json!({
                    "path": "/api/v1/environments/production/rollbacks",
                    "method": "POST",
                }));
            }
            _ => {}
        }
        match outcome {
            Outcome::Denied => event.error("403: this needs the lead role"),
            Outcome::Failed => event.error("Render answered 502 Bad Gateway"),
            _ => event,
        }
    }
}

/// What one export child measured.
#[derive(Debug, Default)]
struct Export {
    rows: u64,
    bytes: u64,
    seconds: f64,
    /// Peak resident memory once connected, before the first page.
    hwm_connected_kb: u64,
    /// Peak resident memory at the end of the export.
    hwm_kb: u64,
}

#[derive(Debug, Default)]
struct Figures {
    backend: &'static str,
    events: u64,
    fill: Duration,
    first_pages: Vec<Duration>,
    next_pages: Vec<Duration>,
    rows_on_first_pages: usize,
    small: Export,
    full: Export,
    verify: Duration,
}

fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// The child: one full CSV export to a counting sink; prints its figures.
async fn export_child(url: &str) {
    let store = Store::connect(url).await.expect("the store");
    store.ping().await.expect("the store answers");
    let hwm_connected_kb = proc_status_kb("VmHWM:");
    let started = Instant::now();
    let rows = flightdeck::control::audit::rows(store, Filter::default(), Format::Csv);
    let mut rows = std::pin::pin!(rows);
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = rows.next().await {
        let chunk = chunk.expect("the store failed during the export");
        bytes += chunk.len() as u64;
        lines += chunk.bytes().filter(|b| *b == b'\n').count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "rows={} bytes={bytes} seconds={seconds} hwm_connected_kb={hwm_connected_kb} hwm_kb={}",
        lines.saturating_sub(1),
        proc_status_kb("VmHWM:")
    );
}

fn export_in_child(url: &str) -> Export {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_URL, url)
        .output()
        .expect("the export child starts");
    assert!(
        out.status.success(),
        "the export child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> f64 {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the child's output: {text}"))
    };
    Export {
        rows: field("rows") as u64,
        bytes: field("bytes") as u64,
        seconds: field("seconds"),
        hwm_connected_kb: field("hwm_connected_kb") as u64,
        hwm_kb: field("hwm_kb") as u64,
    }
}

async fn fill(store: &Store, trail: &mut Trail, from: u64, to: u64) -> Duration {
    let mut spent = Duration::ZERO;
    let mut i = from;
    while i < to {
        let end = (i + BATCH).min(to);
        let events: Vec<NewEvent> = (i..end).map(|i| trail.event(i)).collect();
        let started = Instant::now();
        let last = store.append_audit_batch(&events).await.unwrap();
        spent += started.elapsed();
        assert_eq!(last, end as i64);
        i = end;
    }
    spent
}

async fn measure(backend: &'static str, url: &str, total: u64) -> Figures {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let now = OffsetDateTime::now_utc();
    let start = now - time::Duration::days(DAYS);
    let mut trail = Trail::new(total, start);
    let small = (total / 10).min(100_000);
    let mut figures = Figures {
        backend,
        events: total,
        ..Figures::default()
    };

    eprintln!("{backend}: filling {small} events");
    figures.fill = fill(&store, &mut trail, 0, small).await;
    analyze(backend, url).await;
    eprintln!("{backend}: exporting {small} events in a child process");
    figures.small = export_in_child(url);
    assert_eq!(figures.small.rows, small);

    eprintln!("{backend}: filling up to {total} events");
    figures.fill += fill(&store, &mut trail, small, total).await;
    analyze(backend, url).await;
    eprintln!("{backend}: exporting {total} events in a child process");
    figures.full = export_in_child(url);
    assert_eq!(figures.full.rows, total);

    eprintln!("{backend}: {ROUNDS} filtered pages (actor + action + time range)");
    let mut r = Rng(11);
    for round in 0..ROUNDS + 10 {
        let days = 30 + r.below(336) as i64;
        let since = start + time::Duration::days(r.below((DAYS - days) as u64) as i64);
        let filter = Filter {
            actor: Some((*r.pick(&ACTORS)).to_owned()),
            // Weighted like the trail, so common and rare actions are both asked for.
            action: Some(r.action().to_owned()),
            since: Some(flightdeck::store::sync::store_time(since)),
            until: Some(flightdeck::store::sync::store_time(
                since + time::Duration::days(days),
            )),
            ..Filter::default()
        }
        .normalised()
        .unwrap();
        let started = Instant::now();
        let page = store.audit_newest(&filter, None, PAGE).await.unwrap();
        let first = started.elapsed();
        let next = if page.len() == PAGE as usize {
            let cursor = page.last().map(|e| e.seq);
            let started = Instant::now();
            let older = store.audit_newest(&filter, cursor, PAGE).await.unwrap();
            let elapsed = started.elapsed();
            assert!(older.iter().all(|e| Some(e.seq) < cursor));
            Some(elapsed)
        } else {
            None
        };
        assert!(
            page.iter()
                .all(|e| Some(&e.actor_name) == filter.actor.as_ref()
                    && Some(&e.action) == filter.action.as_ref()
                    && Some(&e.at) >= filter.since.as_ref()
                    && Some(&e.at) < filter.until.as_ref())
        );
        // The first ten rounds warm the caches and are not counted.
        if round >= 10 {
            figures.first_pages.push(first);
            figures.rows_on_first_pages += page.len();
            figures.next_pages.extend(next);
        }
    }

    eprintln!("{backend}: verifying the chain");
    let started = Instant::now();
    let verdict = store.verify_audit().await.unwrap();
    figures.verify = started.elapsed();
    assert_eq!(verdict, Verdict::Intact { count: total });
    figures
}

/// PostgreSQL's autovacuum analyses a table that has grown this much
/// within a minute or so; do it now so the page plans do not depend on
/// when it ran. SQLite has no such thing and the panel never runs ANALYZE
/// there, so its planner works without statistics, as it does in use.
async fn analyze(backend: &str, url: &str) {
    if backend == "postgres" {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query("ANALYZE audit_events")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

async fn on_sqlite(total: u64) -> Figures {
    let dir = TempDir::new("bench-audit");
    let url = format!("sqlite://{}", dir.0.join("store.db").display());
    measure("sqlite", &url, total).await
}

async fn on_postgres(total: u64) -> Figures {
    let scratch = ScratchDb::postgres().await;
    let url = scratch.url.clone();
    // A panic in the measurement still drops the database.
    let result = tokio::spawn(async move { measure("postgres", &url, total).await }).await;
    scratch.drop_all().await;
    match result {
        Ok(figures) => figures,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn report(all: &[Figures]) {
    println!();
    println!("flightdeck audit trail benchmark");
    println!();
    println!(
        "| | {} |",
        all.iter()
            .map(|f| f.backend)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("| --- |{}", " --- |".repeat(all.len()));
    let row = |name: &str, cell: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = all.iter().map(cell).collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row("events", &|f| f.events.to_string());
    row("fill (batches of 10,000)", &|f| {
        format!(
            "{:.1} s ({:.0} events/s)",
            f.fill.as_secs_f64(),
            f.events as f64 / f.fill.as_secs_f64()
        )
    });
    row("filtered page, first: p50 / p99", &|f| {
        format!(
            "{} / {} ({} pages, {:.1} rows on average)",
            ms(quantile(&f.first_pages, 0.5)),
            ms(quantile(&f.first_pages, 0.99)),
            f.first_pages.len(),
            f.rows_on_first_pages as f64 / f.first_pages.len().max(1) as f64
        )
    });
    row("filtered page, next by cursor: p50 / p99", &|f| {
        format!(
            "{} / {} ({} pages)",
            ms(quantile(&f.next_pages, 0.5)),
            ms(quantile(&f.next_pages, 0.99)),
            f.next_pages.len()
        )
    });
    for (name, pick) in [
        (
            "export, first tenth",
            (|f: &Figures| &f.small) as fn(&Figures) -> &Export,
        ),
        ("export, all", |f: &Figures| &f.full),
    ] {
        row(&format!("{name}: rows, CSV size, time"), &|f| {
            let e = pick(f);
            format!(
                "{} rows, {:.0} MB, {:.1} s ({:.0} rows/s)",
                e.rows,
                e.bytes as f64 / 1e6,
                e.seconds,
                e.rows as f64 / e.seconds
            )
        });
        row(&format!("{name}: peak RSS (connected → end)"), &|f| {
            let e = pick(f);
            format!("{} → {}", mb(e.hwm_connected_kb), mb(e.hwm_kb))
        });
    }
    row("verify_audit", &|f| {
        format!(
            "{:.1} s ({:.0} events/s)",
            f.verify.as_secs_f64(),
            f.events as f64 / f.verify.as_secs_f64()
        )
    });
}

#[tokio::main]
async fn main() {
    if let Ok(url) = std::env::var(CHILD_URL) {
        export_child(&url).await;
        return;
    }
    let total: u64 = std::env::var("FLIGHTDECK_BENCH_AUDIT_EVENTS")
        .ok()
        .map(|v| {
            v.parse()
                .expect("FLIGHTDECK_BENCH_AUDIT_EVENTS is a number")
        })
        .unwrap_or(DEFAULT_EVENTS);
    assert!(total >= 100, "at least 100 events");
    let backends =
        std::env::var("FLIGHTDECK_BENCH_AUDIT_BACKENDS").unwrap_or("sqlite,postgres".into());
    let mut all = Vec::new();
    for backend in backends.split(',').map(str::trim) {
        let figures = match backend {
            "sqlite" => on_sqlite(total).await,
            "postgres" => on_postgres(total).await,
            other => panic!("unknown backend `{other}`: sqlite or postgres"),
        };
        all.push(figures);
    }
    report(&all);
}
