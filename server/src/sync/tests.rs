//! The sync against the sandbox's simulators, through the real clients.

use super::*;
use crate::audit::RequestMeta;
use crate::control::ControlPlane;
use crate::identity::Actor;
use crate::sandbox::faults::{Fault, FaultKind};
use crate::sandbox::world::{self, Speeds, Targets, World};
use crate::store::tests::TestStore;
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
    crate::integrations::install_tls_provider();
    let dir = std::env::temp_dir().join(format!("fd-sync-{}", crate::identity::random_id()));
    let world = World::build(seed, Speeds::quick(), Targets::Sqlite(dir.clone()))
        .await
        .unwrap();
    let served = world.serve().await.unwrap();
    let text =
        crate::sandbox::sample_config(&served, "127.0.0.1:0".parse().unwrap(), "sqlite::memory:");
    let config = Arc::new(
        Config::from_toml(&text)
            .unwrap()
            .with_secrets(world.secrets()),
    );
    let store = TestStore::new("sqlite").await;
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
        let text = crate::sandbox::sample_config(
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
