//! The sync against the sandbox's simulators, through the real clients.

use super::*;
use crate::audit::RequestMeta;
use crate::control::ControlPlane;
use crate::identity::Actor;
use crate::store::tests::TestStore;
use flightdeck_sandbox::faults::{Fault, FaultKind};
use flightdeck_sandbox::world::{self, Speeds, Targets, World};
use std::sync::Mutex;

struct Setup {
    world: World,
    syncer: Syncer,
    store: TestStore,
    config: Arc<Config>,
    changes: Arc<Mutex<Vec<(String, String)>>>,
    dir: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn setup(seed: u64) -> Setup {
    setup_with(seed, "sqlite", 0, |_| {}).await
}

/// A world with `older` more commits (each with a run and deploys) behind
/// the scenario's, on a `backend` store, with `tune` applied to the config.
async fn setup_with(
    seed: u64,
    backend: &str,
    older: usize,
    tune: impl FnOnce(&mut Config),
) -> Setup {
    crate::integrations::install_tls_provider();
    let dir = std::env::temp_dir().join(format!("fd-sync-{}", crate::identity::random_id()));
    let world = World::build_with_older(seed, Speeds::quick(), Targets::Sqlite(dir.clone()), older)
        .await
        .unwrap();
    let served = world.serve().await.unwrap();
    let text = crate::cli::sandbox::sample_config(
        &served,
        "127.0.0.1:0".parse().unwrap(),
        "sqlite::memory:",
    );
    let mut config = Config::from_toml(&text)
        .unwrap()
        .with_secrets(world.secrets());
    tune(&mut config);
    let config = Arc::new(config);
    let store = TestStore::new(backend).await;
    let changes = Arc::new(Mutex::new(Vec::new()));
    let seen = changes.clone();
    let syncer = Syncer::new(
        store.store.clone(),
        config.clone(),
        Upstreams::from_config(&config),
        Arc::new(move |env: &str, what: &str| {
            seen.lock().unwrap().push((env.to_owned(), what.to_owned()))
        }),
    );
    Setup {
        world,
        syncer,
        store,
        config,
        changes,
        dir,
    }
}

fn env<'a>(s: &'a Setup, name: &str) -> &'a EnvironmentConfig {
    s.config
        .environments
        .iter()
        .find(|e| e.name.as_str() == name)
        .unwrap()
}

#[tokio::test]
async fn a_pass_fills_the_store_and_the_overview_shows_the_seeded_history() {
    let s = setup(4).await;
    let production = env(&s, "production");
    let report = s.syncer.pass(production).await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(
        report.changed,
        [RENDER_DEPLOYS, DATABASE, GITHUB_RUNS, GITHUB_COMMITS]
    );
    assert_eq!(s.changes.lock().unwrap().len(), 4);

    let control = ControlPlane::new(s.store.store.clone(), s.config.clone());
    let overview = control
        .overview(&Actor::system("test"), &RequestMeta::default())
        .await
        .unwrap();
    let view = overview
        .environments
        .iter()
        .find(|e| e.summary.name == "production")
        .unwrap();
    let live = view.live.as_ref().expect("a live release");
    let main_head = s.world.github.branch_head("main").unwrap();
    assert_eq!(
        live.commit_sha, main_head,
        "main's head is live in production"
    );
    assert_eq!(live.verdict, "good");
    assert_eq!(view.database.state, "at_head", "{:?}", view.database);
    assert!(view.last_good.is_some());
    assert!(view.stale.is_empty());
    assert_eq!(
        view.branch_head_run.as_ref().map(|r| r.head_sha.as_str()),
        Some(main_head.as_str())
    );

    let timeline = control
        .timeline(
            &Actor::system("test"),
            &RequestMeta::default(),
            "production",
        )
        .await
        .unwrap();
    assert!(
        timeline
            .items
            .iter()
            .any(|r| r.deploy_status == "build_failed" && r.verdict == "bad")
    );
    let migrations = control
        .migrations(
            &Actor::system("test"),
            &RequestMeta::default(),
            "production",
        )
        .await
        .unwrap()
        .items;
    assert_eq!(migrations.revisions.len(), s.world.history.len());
    assert!(migrations.revisions.iter().any(|r| !r.data_loss.is_empty()));
    assert!(migrations.pending.is_empty());
}

#[tokio::test]
async fn an_unchanged_upstream_costs_a_304_and_a_page_view_costs_nothing() {
    let s = setup(5).await;
    let production = env(&s, "production");
    // Migrations are read a few commits per pass: settle first.
    let mut passes = 0;
    while !s.syncer.pass(production).await.changed.is_empty() {
        passes += 1;
        assert!(passes < 20, "the sync settles");
    }
    let github = s.world.github.faults();
    let render = s.world.render.faults();

    let before = (github.requests(), render.requests());
    let report = s.syncer.pass(production).await;
    assert!(
        report.changed.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    // One conditional runs request (304), no commit or jobs reads.
    assert_eq!(github.requests() - before.0, 1);

    let before = (github.requests(), render.requests());
    let control = ControlPlane::new(s.store.store.clone(), s.config.clone());
    for _ in 0..5 {
        control
            .overview(&Actor::system("test"), &RequestMeta::default())
            .await
            .unwrap();
        control
            .timeline(
                &Actor::system("test"),
                &RequestMeta::default(),
                "production",
            )
            .await
            .unwrap();
        control
            .migrations(
                &Actor::system("test"),
                &RequestMeta::default(),
                "production",
            )
            .await
            .unwrap();
    }
    assert_eq!(
        (github.requests(), render.requests()),
        before,
        "pages read the store only"
    );
}

#[tokio::test]
async fn an_upstream_fault_keeps_the_last_data_says_why_and_recovers() {
    let s = setup(6).await;
    let production = env(&s, "production");
    s.syncer.pass(production).await;
    let control = ControlPlane::new(s.store.store.clone(), s.config.clone());
    let live_before = control
        .overview(&Actor::system("test"), &RequestMeta::default())
        .await
        .unwrap()
        .environments[0]
        .live
        .clone();

    let faults = s.world.render.faults();
    for (kind, words) in [
        (FaultKind::ServerError(503), "503"),
        (FaultKind::MalformedJson, "cannot read"),
        (
            FaultKind::TooManyRequests {
                retry_after_secs: 7,
            },
            "rate",
        ),
    ] {
        faults.clear();
        faults.set("*", Fault::always(kind)).unwrap();
        let report = s.syncer.pass(production).await;
        let (source, failure) = &report.failed[0];
        assert_eq!(*source, RENDER_DEPLOYS);
        assert!(failure.reason.contains(words), "{}", failure.reason);
        let overview = control
            .overview(&Actor::system("test"), &RequestMeta::default())
            .await
            .unwrap();
        let view = &overview.environments[0];
        assert_eq!(view.live, live_before, "the last data is still shown");
        assert_eq!(view.stale.len(), 1);
        assert_eq!(view.stale[0].source, "Render");
        assert!(view.stale[0].since.is_some());
    }
    let report = s.syncer.pass(production).await;
    assert_eq!(
        report.failed[0].1.retry_after,
        Some(Duration::from_secs(7)),
        "a 429's retry-after is kept"
    );

    faults.clear();
    let report = s.syncer.pass(production).await;
    assert!(report.failed.is_empty());
    let overview = control
        .overview(&Actor::system("test"), &RequestMeta::default())
        .await
        .unwrap();
    assert!(overview.environments[0].stale.is_empty(), "recovered");
}

#[tokio::test]
async fn a_github_rate_limit_is_a_failure_with_a_time_to_wait() {
    let s = setup(7).await;
    let production = env(&s, "production");
    s.world
        .github
        .faults()
        .set("*", Fault::always(FaultKind::RateLimited))
        .unwrap();
    let report = s.syncer.pass(production).await;
    let (_, failure) = report
        .failed
        .iter()
        .find(|(source, _)| *source == GITHUB_RUNS)
        .unwrap();
    assert!(failure.retry_after.is_some(), "{failure:?}");
    assert!(
        failure.reason.to_lowercase().contains("rate"),
        "{}",
        failure.reason
    );
}

#[tokio::test]
async fn a_deploy_triggered_upstream_shows_after_the_next_pass() {
    let s = setup(8).await;
    let production = env(&s, "production");
    s.syncer.pass(production).await;
    let before = s
        .store
        .store
        .deploys("production", 100)
        .await
        .unwrap()
        .len();
    let render = RenderClient::new(
        &format!("{}/v1", s.world_render_url()),
        world::RENDER_KEY.to_owned(),
    )
    .unwrap();
    let control = ControlPlane::new(s.store.store.clone(), s.config.clone());
    let live = async || {
        control
            .overview(&Actor::system("test"), &RequestMeta::default())
            .await
            .unwrap()
            .environments[0]
            .live
            .as_ref()
            .map(|r| r.deploy_id.clone())
    };
    let live_before = live().await;
    assert_eq!(live().await, live_before, "served from the cache");
    render
        .trigger_deploy("srv-sandbox-production", None, false)
        .await
        .unwrap();
    // Quick speeds: built and live within a fraction of a second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.changes.lock().unwrap().clear();
    s.syncer.pass(production).await;
    assert_ne!(
        live().await,
        live_before,
        "the overview's cache follows the sync's writes"
    );
    assert_eq!(
        s.store
            .store
            .deploys("production", 100)
            .await
            .unwrap()
            .len(),
        before + 1
    );
    assert!(
        s.changes
            .lock()
            .unwrap()
            .contains(&("production".into(), RENDER_DEPLOYS.into()))
    );
}

impl Setup {
    fn world_render_url(&self) -> String {
        let render = self
            .config
            .render
            .as_ref()
            .unwrap()
            .api_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        render.trim_end_matches("/v1").to_owned()
    }
}

mod webhooks {
    use super::*;
    use crate::signatures;
    use crate::sync::webhooks::{Delivery, WebhookError};
    use http::{HeaderMap, HeaderValue};

    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const RENDER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    async fn intake(with_secrets: bool) -> (Syncer, TestStore) {
        let text = crate::cli::sandbox::sample_config(
            &world::Served {
                github: "http://127.0.0.1:9".into(),
                render: "http://127.0.0.1:9".into(),
                backend: "http://127.0.0.1:9".into(),
            },
            "127.0.0.1:0".parse().unwrap(),
            "sqlite::memory:",
        );
        let secrets = if with_secrets {
            BTreeMap::from([
                ("GITHUB_WEBHOOK_SECRET".to_owned(), GITHUB_SECRET.to_owned()),
                ("RENDER_WEBHOOK_SECRET".to_owned(), RENDER_SECRET.to_owned()),
            ])
        } else {
            BTreeMap::new()
        };
        let config = Arc::new(Config::from_toml(&text).unwrap().with_secrets(secrets));
        let store = TestStore::new("sqlite").await;
        let syncer = Syncer::new(
            store.store.clone(),
            config,
            Upstreams::default(),
            Arc::new(|_: &str, _: &str| {}),
        );
        (syncer, store)
    }

    fn github_headers(event: &str, delivery: &str, signature: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-github-event", HeaderValue::from_str(event).unwrap());
        h.insert(
            "x-github-delivery",
            HeaderValue::from_str(delivery).unwrap(),
        );
        if let Some(sig) = signature {
            h.insert("x-hub-signature-256", HeaderValue::from_str(sig).unwrap());
        }
        h
    }

    async fn refusals(store: &TestStore) -> usize {
        store
            .store
            .audit_page(0, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "webhook.refused" && e.outcome == "denied")
            .count()
    }

    #[tokio::test]
    async fn githubs_test_vector_is_accepted_and_bad_signatures_are_refused_and_audited() {
        let (sync, store) = intake(true).await;
        let meta = RequestMeta::default();
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let accepted = sync
            .github_webhook(
                &github_headers("ping", "d-0", Some(good)),
                b"Hello, World!",
                &meta,
            )
            .await
            .unwrap();
        assert_eq!(
            accepted,
            Delivery::Accepted {
                environments: vec![]
            }
        );

        let wrong = "sha256=0000000000000000000000000000000000000000000000000000000000000000";
        let sha1 = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";
        for (i, signature) in [Some(wrong), None, Some(sha1)].into_iter().enumerate() {
            let id = format!("bad-{i}");
            let refused = sync
                .github_webhook(
                    &github_headers("push", &id, signature),
                    b"Hello, World!",
                    &meta,
                )
                .await
                .unwrap_err();
            assert!(matches!(refused, WebhookError::Signature(_)), "{refused}");
            // Nothing was recorded: the same id with a good signature is new.
            assert!(store.store.record_delivery("github", &id).await.unwrap());
        }
        assert_eq!(refusals(&store).await, 3);
    }

    #[tokio::test]
    async fn the_same_delivery_ten_times_is_processed_once() {
        let (sync, _store) = intake(true).await;
        let body = br#"{"ref": "refs/heads/main", "after": "abc"}"#;
        let signature = signatures::sign_github(GITHUB_SECRET.as_bytes(), body);
        let mut accepted = Vec::new();
        for _ in 0..10 {
            let delivery = sync
                .github_webhook(
                    &github_headers("push", "same-id", Some(&signature)),
                    body,
                    &RequestMeta::default(),
                )
                .await
                .unwrap();
            accepted.push(delivery);
        }
        assert_eq!(
            accepted[0],
            Delivery::Accepted {
                environments: vec!["production".into()]
            }
        );
        assert!(accepted[1..].iter().all(|d| *d == Delivery::Duplicate));
    }

    #[tokio::test]
    async fn render_deliveries_are_checked_the_standard_webhooks_way() {
        let (sync, store) = intake(true).await;
        let body = br#"{"type":"deploy_ended","timestamp":"2026-11-26T10:00:00Z","data":{"id":"evt-1","serviceId":"srv-sandbox-staging"}}"#;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let headers = |id: &str, ts: i64, sig: &str| {
            let mut h = HeaderMap::new();
            h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
            h.insert(
                "webhook-timestamp",
                HeaderValue::from_str(&ts.to_string()).unwrap(),
            );
            h.insert("webhook-signature", HeaderValue::from_str(sig).unwrap());
            h
        };
        let sig = signatures::sign_standard(RENDER_SECRET, "msg-1", now, body).unwrap();
        let meta = RequestMeta::default();
        assert_eq!(
            sync.render_webhook(&headers("msg-1", now, &sig), body, &meta)
                .await
                .unwrap(),
            Delivery::Accepted {
                environments: vec!["staging".into()]
            }
        );
        assert_eq!(
            sync.render_webhook(&headers("msg-1", now, &sig), body, &meta)
                .await
                .unwrap(),
            Delivery::Duplicate
        );
        let old = now - 3600;
        let stale = signatures::sign_standard(RENDER_SECRET, "msg-2", old, body).unwrap();
        assert!(
            sync.render_webhook(&headers("msg-2", old, &stale), body, &meta)
                .await
                .is_err()
        );
        assert!(
            sync.render_webhook(&headers("msg-3", now, &sig), body, &meta)
                .await
                .is_err(),
            "signed for another id"
        );
        assert_eq!(refusals(&store).await, 2);
    }

    #[tokio::test]
    async fn without_a_secret_the_endpoints_are_off() {
        let (sync, _store) = intake(false).await;
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let off = sync
            .github_webhook(
                &github_headers("ping", "d", Some(good)),
                b"Hello, World!",
                &RequestMeta::default(),
            )
            .await;
        assert!(matches!(off, Err(WebhookError::Off)));
        assert!(matches!(
            sync.render_webhook(&HeaderMap::new(), b"{}", &RequestMeta::default())
                .await,
            Err(WebhookError::Off)
        ));
    }
}

#[test]
fn polling_backs_off_while_failing_waits_for_rate_limits_and_recovers() {
    let interval = Duration::from_secs(30);
    let max = Duration::from_secs(600);
    let failed = |retry_after| PassReport {
        changed: vec![],
        failed: vec![(
            RENDER_DEPLOYS,
            Failure {
                reason: "Render answered 503".into(),
                retry_after,
            },
        )],
    };
    let delays: Vec<u64> = (1..=6)
        .map(|n| next_delay(interval, max, n, &failed(None)).as_secs())
        .collect();
    assert_eq!(delays, [60, 120, 240, 480, 600, 600]);
    assert_eq!(
        next_delay(interval, max, 1, &failed(Some(Duration::from_secs(900)))),
        Duration::from_secs(900),
        "a rate limit's reset wins over the back-off"
    );
    assert_eq!(
        next_delay(interval, max, 0, &PassReport::default()),
        interval,
        "recovered"
    );
}

/// The backfill against simulators with a long history: everything back to
/// the horizon ends up in the store, within the budget, through a rate
/// limit, and once done a pass costs only the newest pages.
mod backfill {
    use super::*;
    use crate::integrations::github::OctocrabGithub;
    use crate::sync::backfill::Backfill;
    use flightdeck_sandbox::faults::Logged;

    const DEPLOYS_ROUTE: &str = "GET /v1/services/{serviceId}/deploys";
    /// The same route written another way: a second rule tried after the first.
    const DEPLOYS_ROUTE_AGAIN: &str = "GET /v1/services/{id}/deploys";
    const JOBS_ROUTE: &str = "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs";
    const JOBS_ROUTE_AGAIN: &str = "GET /repos/{o}/{r}/actions/runs/{id}/jobs";

    macro_rules! on_both_backends {
        ($($name:ident => $body:expr;)*) => {
            mod sqlite_backend { use super::*; $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { on("sqlite", $body).await } )* }
            mod postgres_backend { use super::*; $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { on("postgres", $body).await } )* }
        };
    }

    async fn on(backend: &'static str, test: impl AsyncFnOnce(&'static str)) {
        test(backend).await
    }

    async fn kept(s: &Setup, source: &str) -> Option<Backfill> {
        s.store
            .store
            .backfill("production", source)
            .await
            .unwrap()
            .and_then(|text| Backfill::parse(&text))
    }

    /// Every production deploy the simulated Render has, read with the real client.
    async fn upstream_deploys(s: &Setup) -> Vec<Deploy> {
        let render = RenderClient::new(
            &format!("{}/v1", s.world_render_url()),
            world::RENDER_KEY.to_owned(),
        )
        .unwrap();
        render
            .list_deploys("srv-sandbox-production", usize::MAX)
            .await
            .unwrap()
    }

    /// Every `deploy.yml` run on main the simulated GitHub has.
    async fn upstream_runs(s: &Setup) -> Vec<RunRecord> {
        let github = s.config.github.as_ref().unwrap();
        let client = OctocrabGithub::new(
            github.api_url.as_str(),
            world::OWNER,
            world::REPO,
            world::GITHUB_TOKEN.to_owned(),
        )
        .unwrap();
        client
            .runs(world::DEPLOY_WORKFLOW, "main", usize::MAX, None)
            .await
            .unwrap()
            .fresh()
            .unwrap()
    }

    async fn stored_deploys(s: &Setup) -> BTreeSet<String> {
        s.store
            .store
            .deploys("production", 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect()
    }

    async fn stored_runs(s: &Setup) -> Vec<RunRecord> {
        s.store
            .store
            .runs_on_branch("main", 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.workflow_file == world::DEPLOY_WORKFLOW)
            .collect()
    }

    fn query_value(call: &Logged, key: &str) -> Option<String> {
        url::form_urlencoded::parse(call.query.as_deref().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// Runs passes until both backfills are done and nothing changes.
    async fn settle(s: &Setup, limit: usize) -> usize {
        let production = env(s, "production");
        for passes in 1..=limit {
            let report = s.syncer.pass(production).await;
            assert!(report.failed.is_empty(), "{report:?}");
            let done = kept(s, RENDER_DEPLOYS).await.is_some_and(|b| b.done)
                && kept(s, GITHUB_RUNS).await.is_some_and(|b| b.done);
            if done && report.changed.is_empty() {
                return passes;
            }
        }
        panic!("the sync did not settle in {limit} passes");
    }

    on_both_backends! {
        the_backfill_reads_every_deploy_and_run_back_to_the_horizon_then_only_the_newest_pages => async |backend: &'static str| {
            let s = setup_with(21, backend, 400, |c| c.sync.history_days = 60).await;
            let production = env(&s, "production");
            let github = s.world.github.faults();
            let render = s.world.render.faults();
            let budget = s.config.sync.backfill_requests_per_pass as usize;

            // The first pass reads the newest pages and starts the backfill.
            let report = s.syncer.pass(production).await;
            assert!(report.failed.is_empty(), "{report:?}");
            // Every later pass spends at most the budget on the backfill.
            let mut passes = 1;
            loop {
                let before = github.log().len();
                let report = s.syncer.pass(production).await;
                assert!(report.failed.is_empty(), "{report:?}");
                passes += 1;
                let spent = github.log()[before..]
                    .iter()
                    .filter(|c| c.route.ends_with("/jobs") || query_value(c, "created").is_some())
                    .count();
                assert!(spent <= budget, "pass {passes} spent {spent} requests");
                if kept(&s, GITHUB_RUNS).await.is_some_and(|b| b.done) {
                    break;
                }
                assert!(passes < 30, "the backfill ends");
            }
            assert!(passes > 2, "the budget spread the backfill over {passes} passes");
            settle(&s, 20).await;

            let horizon = kept(&s, RENDER_DEPLOYS).await.unwrap().horizon;
            let upstream = upstream_deploys(&s).await;
            let wanted: BTreeSet<String> = upstream
                .iter()
                .filter(|d| d.created_at >= horizon)
                .map(|d| d.id.clone())
                .collect();
            assert!(wanted.len() > 300, "{} deploys in the window", wanted.len());
            assert!(upstream.len() > wanted.len() + 20, "some are past the horizon");
            assert_eq!(stored_deploys(&s).await, wanted, "every deploy back to the horizon, nothing older");

            let horizon = kept(&s, GITHUB_RUNS).await.unwrap().horizon;
            let upstream = upstream_runs(&s).await;
            let wanted: BTreeSet<u64> = upstream
                .iter()
                .filter(|r| r.created_at >= horizon)
                .map(|r| r.id)
                .collect();
            assert!(wanted.len() > 300, "{} runs in the window", wanted.len());
            assert!(upstream.len() > wanted.len() + 20, "some are past the horizon");
            let stored = stored_runs(&s).await;
            assert_eq!(stored.iter().map(|r| r.id).collect::<BTreeSet<_>>(), wanted);
            assert!(stored.iter().all(|r| !r.jobs.is_empty()), "every run with its jobs");

            // Once done, a pass costs the newest pages only: one conditional
            // request to GitHub (304), Render's first page (it has no ETags).
            let (g, r) = (github.log().len(), render.log().len());
            let report = s.syncer.pass(production).await;
            assert!(report.changed.is_empty() && report.failed.is_empty(), "{report:?}");
            let g = github.log()[g..].to_vec();
            assert_eq!(g.len(), 1, "{g:?}");
            assert_eq!(g[0].status, 304, "{g:?}");
            let r = render.log()[r..].to_vec();
            assert_eq!(r.len(), 1, "{r:?}");
            assert_eq!(query_value(&r[0], "cursor"), None, "{r:?}");
            s.store.drop_database().await;
        };

        a_rate_limit_in_the_middle_of_the_backfill_stops_the_pass_and_the_next_resumes_without_gap_or_duplicate => async |backend: &'static str| {
            let s = setup_with(22, backend, 300, |c| c.sync.backfill_requests_per_pass = 10).await;
            let production = env(&s, "production");
            let github = s.world.github.faults();
            let render = s.world.render.faults();

            // Render: the newest page and two backfill pages pass, the third
            // backfill page meets a 429.
            render
                .set(DEPLOYS_ROUTE, Fault::times(FaultKind::Latency(Duration::ZERO), 3))
                .unwrap();
            render
                .set(
                    DEPLOYS_ROUTE_AGAIN,
                    Fault::times(FaultKind::TooManyRequests { retry_after_secs: 30 }, 1),
                )
                .unwrap();
            let report = s.syncer.pass(production).await;
            let failure = report
                .failed
                .iter()
                .find(|(source, _)| *source == RENDER_DEPLOYS)
                .map(|(_, f)| f.clone())
                .expect("the rate limit fails the pass");
            assert_eq!(failure.retry_after, Some(Duration::from_secs(30)));
            assert!(report.changed.contains(&RENDER_DEPLOYS), "what was read is kept and told");
            let calls = render.log();
            let limited = calls.iter().position(|c| c.status == 429).unwrap();
            assert_eq!(limited, 3, "{calls:?}");
            let stopped_at = query_value(&calls[limited], "cursor").expect("a later page");
            assert_eq!(
                kept(&s, RENDER_DEPLOYS).await.unwrap().next.as_deref(),
                Some(stopped_at.as_str()),
                "the place is kept"
            );
            let partial = stored_deploys(&s).await.len();
            assert_eq!(partial, 200, "the newest 50, then two pages of 100 (the first overlaps them)");

            // GitHub: in the next pass the backfill reads a page and four
            // runs' jobs, then the fifth meets the rate limit.
            github
                .set(JOBS_ROUTE, Fault::times(FaultKind::Latency(Duration::ZERO), 4))
                .unwrap();
            github
                .set(JOBS_ROUTE_AGAIN, Fault::times(FaultKind::RateLimited, 1))
                .unwrap();
            let (before, render_before) = (github.log().len(), render.log().len());
            let report = s.syncer.pass(production).await;
            // Render's rate limit has reset: its backfill goes on where it stopped.
            let calls = render.log()[render_before..].to_vec();
            assert_eq!(query_value(&calls[0], "cursor"), None, "the newest page first: {calls:?}");
            assert_eq!(query_value(&calls[1], "cursor"), Some(stopped_at), "{calls:?}");
            assert!(calls.iter().all(|c| c.status == 200), "{calls:?}");
            let failure = report
                .failed
                .iter()
                .find(|(source, _)| *source == GITHUB_RUNS)
                .map(|(_, f)| f.clone())
                .expect("the rate limit fails the pass");
            assert!(failure.retry_after.is_some(), "{failure:?}");
            let calls = github.log()[before..].to_vec();
            let limited = calls.iter().position(|c| c.status == 403).unwrap();
            assert!(
                calls[limited + 1..].iter().all(|c| !c.route.contains("/actions/")),
                "no more runs or jobs read in that pass: {calls:?}"
            );
            let runs_before_reset = stored_runs(&s).await.len();
            let limited_path = calls[limited].path.clone();

            // After the reset GitHub's backfill goes on where it stopped.
            let before = github.log().len();
            let report = s.syncer.pass(production).await;
            assert!(report.failed.is_empty(), "{report:?}");
            let calls = github.log()[before..].to_vec();
            let first_jobs = calls.iter().find(|c| c.route == JOBS_ROUTE).unwrap();
            assert_eq!(first_jobs.path, limited_path, "the run that met the limit comes first");
            assert!(stored_runs(&s).await.len() > runs_before_reset);
            settle(&s, 60).await;

            // No duplicate: no Render page and no run's jobs were read twice.
            let cursors: Vec<String> = render
                .log()
                .iter()
                .filter(|c| c.status == 200)
                .filter_map(|c| query_value(c, "cursor"))
                .collect();
            let distinct: BTreeSet<&String> = cursors.iter().collect();
            assert_eq!(distinct.len(), cursors.len(), "a Render page read twice: {cursors:?}");
            let jobs: Vec<String> = github
                .log()
                .iter()
                .filter(|c| c.route == JOBS_ROUTE && c.status == 200)
                .map(|c| c.path.clone())
                .collect();
            let distinct: BTreeSet<&String> = jobs.iter().collect();
            assert_eq!(distinct.len(), jobs.len(), "a run's jobs read twice");
            // No gap: everything is there.
            let wanted: BTreeSet<String> = upstream_deploys(&s).await.into_iter().map(|d| d.id).collect();
            assert_eq!(stored_deploys(&s).await, wanted);
            let wanted: BTreeSet<u64> = upstream_runs(&s).await.into_iter().map(|r| r.id).collect();
            let stored = stored_runs(&s).await;
            assert_eq!(stored.len(), wanted.len());
            assert_eq!(stored.iter().map(|r| r.id).collect::<BTreeSet<_>>(), wanted);
            s.store.drop_database().await;
        };

        a_backfill_cut_short_on_its_first_page_goes_on_with_the_horizon_it_started_with => async |backend: &'static str| {
            // 60 older runs: more than the newest page holds, so the
            // backfill's first page has runs whose jobs it must read, and a
            // budget of 3 (the page and two runs' jobs) cannot finish it.
            let s = setup_with(24, backend, 60, |c| c.sync.backfill_requests_per_pass = 3).await;
            let production = env(&s, "production");
            let github = s.world.github.faults();
            let created = |calls: &[Logged]| -> Vec<String> {
                calls.iter().filter_map(|c| query_value(c, "created")).collect()
            };

            let report = s.syncer.pass(production).await;
            assert!(report.failed.is_empty(), "{report:?}");
            let started = kept(&s, GITHUB_RUNS).await.expect("kept from its first pass");
            assert!(!started.done && started.next.is_none(), "still on its first page: {started:?}");
            let first = created(&github.log());
            assert_eq!(first.len(), 1, "{first:?}");

            // A later clock (GitHub's `created` has whole seconds) must not
            // move the window of the backfill already under way.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let before = github.log().len();
            let report = s.syncer.pass(production).await;
            assert!(report.failed.is_empty(), "{report:?}");
            let after = kept(&s, GITHUB_RUNS).await.unwrap();
            assert_eq!((after.horizon, after.until), (started.horizon, started.until));
            assert_eq!(created(&github.log()[before..]), first, "the same first page, the same window");
            s.store.drop_database().await;
        };

        the_whole_backfilled_history_is_reachable_through_older_links_and_next_cursors => async |backend: &'static str| {
            let s = setup_with(23, backend, 300, |c| c.sync.backfill_requests_per_pass = 1000).await;
            settle(&s, 20).await;
            let deploys = stored_deploys(&s).await;
            let runs: BTreeSet<u64> = s
                .store
                .store
                .runs_on_branch("main", 100_000)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            assert!(deploys.len() > 300 && runs.len() > 300);
            let panel = serve(&s).await;

            // The pages: follow "Older" until there is none.
            for (path, marker) in [
                ("/env/production", "data-deploy=\""),
                ("/env/production/deploys", "data-deploy=\""),
                ("/env/production/runs", "data-run=\""),
            ] {
                let (seen, pages) = panel.follow_older(path, marker).await;
                let distinct: BTreeSet<&String> = seen.iter().collect();
                assert_eq!(distinct.len(), seen.len(), "{path}: an item on two pages");
                let want: BTreeSet<String> = match marker {
                    "data-run=\"" => runs.iter().map(u64::to_string).collect(),
                    _ => deploys.clone(),
                };
                assert_eq!(distinct.into_iter().cloned().collect::<BTreeSet<_>>(), want, "{path}");
                assert!(pages > 5, "{path}: {pages} pages");
            }

            // The REST reads: follow `next_cursor` until it is null.
            for (path, key) in [
                ("/api/v1/environments/production/releases", "deploy_id"),
                ("/api/v1/environments/production/deploys", "deploy_id"),
                ("/api/v1/environments/production/runs", "id"),
            ] {
                let seen = panel.follow_cursors(path, key).await;
                let distinct: BTreeSet<&String> = seen.iter().collect();
                assert_eq!(distinct.len(), seen.len(), "{path}: an item on two pages");
                let want: BTreeSet<String> = match key {
                    "id" => runs.iter().map(u64::to_string).collect(),
                    _ => deploys.clone(),
                };
                assert_eq!(distinct.into_iter().cloned().collect::<BTreeSet<_>>(), want, "{path}");
            }
            let refused = panel
                .get("/api/v1/environments/production/deploys?cursor=not-a-cursor")
                .await;
            assert_eq!(refused.status().as_u16(), 422);
            let refused = panel
                .get("/api/v1/environments/production/runs?limit=0")
                .await;
            assert_eq!(refused.status().as_u16(), 422);
            s.store.drop_database().await;
        };
    }

    const PASSWORD: &str = "a long enough password";

    /// The panel's router over the test's store, with a viewer signed in.
    struct Panel {
        base: String,
        cookie: String,
        client: reqwest::Client,
    }

    async fn serve(s: &Setup) -> Panel {
        let control = ControlPlane::new(s.store.store.clone(), s.config.clone());
        control
            .add_user(
                &Actor::system("test"),
                &RequestMeta::default(),
                "vera",
                app::model::Role::Viewer,
                Some(PASSWORD.into()),
            )
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = crate::web::AppState::new(control, addr, Upstreams::default());
        tokio::spawn(async move {
            axum::serve(
                listener,
                crate::web::router(state)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let base = format!("http://{addr}");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let reply = client
            .post(format!("{base}/auth/login"))
            .header(http::header::ORIGIN, &base)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([("name", "vera"), ("password", PASSWORD), ("next", "/")])
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 303);
        let cookie = reply.headers()[http::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Panel {
            base,
            cookie,
            client,
        }
    }

    impl Panel {
        async fn get(&self, path: &str) -> reqwest::Response {
            self.client
                .get(format!("{}{path}", self.base))
                .header(http::header::COOKIE, &self.cookie)
                .send()
                .await
                .unwrap()
        }

        /// The values of `marker…"` on every page from `path` on, following
        /// each page's plain "Older" link; and how many pages there were.
        async fn follow_older(&self, path: &str, marker: &str) -> (Vec<String>, usize) {
            let mut seen = Vec::new();
            let mut next = Some(path.to_owned());
            let mut pages = 0;
            while let Some(path) = next.take() {
                pages += 1;
                assert!(pages < 100, "the pages end");
                let reply = self.get(&path).await;
                assert_eq!(reply.status().as_u16(), 200, "{path}");
                let html = reply.text().await.unwrap();
                for piece in html.split(marker).skip(1) {
                    seen.push(piece.split('"').next().unwrap().to_owned());
                }
                next = html
                    .split_once("id=\"older\" href=\"")
                    .map(|(_, rest)| rest.split('"').next().unwrap().replace("&amp;", "&"));
                if let Some(href) = &next {
                    assert!(href.starts_with(path.split('?').next().unwrap()), "{href}");
                }
            }
            (seen, pages)
        }

        /// The `key` of every item from `path` on, following `next_cursor`.
        async fn follow_cursors(&self, path: &str, key: &str) -> Vec<String> {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..100 {
                let mut url = format!("{path}?limit=100");
                if let Some(cursor) = &cursor {
                    url.push_str(&format!(
                        "&cursor={}",
                        url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
                    ));
                }
                let reply = self.get(&url).await;
                assert_eq!(reply.status().as_u16(), 200, "{url}");
                let body: serde_json::Value = reply.json().await.unwrap();
                for item in body["items"].as_array().unwrap() {
                    seen.push(match &item[key] {
                        serde_json::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    });
                }
                match body["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => return seen,
                }
            }
            panic!("the pages of {path} do not end");
        }
    }
}
