//! Rollbacks end to end through the application layer, against the
//! sandbox's simulators over real HTTP and a real store: what Render
//! receives, what the store and the audit trail hold, who may do what.

use crate::audit::RequestMeta;
use crate::config::Config;
use crate::control::{ControlError, ControlPlane, RollbackAsk, Started};
use crate::identity::Actor;
use crate::operations::state;
use crate::sandbox::faults::{Fault, FaultKind};
use crate::sandbox::world::{Speeds, Targets, World};
use crate::store::tests::TestStore;
use crate::sync::{Syncer, Upstreams};
use app::model::Role;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Setup {
    pub world: World,
    pub store: TestStore,
    pub config: Arc<Config>,
    pub control: ControlPlane,
    dir: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The seeded world, a store of `backend` synced once, and a control
/// plane acting on the simulators. `tweak` edits the generated config.
pub(crate) async fn setup(backend: &str, tweak: impl FnOnce(String) -> String) -> Setup {
    crate::integrations::install_tls_provider();
    let dir = std::env::temp_dir().join(format!("fd-ops-{}", crate::identity::random_id()));
    let world = World::build(7, Speeds::quick(), Targets::Sqlite(dir.clone()))
        .await
        .unwrap();
    let served = world.serve().await.unwrap();
    let text = crate::sandbox::sample_config(&served, "127.0.0.1:0".parse().unwrap(), "sqlite::memory:");
    let text = tweak(text + "\n[operations]\nsmoke_timeout_seconds = 5\nlive_timeout_seconds = 20\n");
    let config = Arc::new(Config::from_toml(&text).unwrap().with_secrets(world.secrets()));
    let store = TestStore::new(backend).await;
    sync(&store, &config).await;
    let control = ControlPlane::new(store.store.clone(), config.clone())
        .with_upstreams(Upstreams::from_config(&config), Arc::new(|_: &str, _: &str| {}));
    Setup {
        world,
        store,
        config,
        control,
        dir,
    }
}

async fn sync(store: &TestStore, config: &Arc<Config>) {
    let syncer = Syncer::new(
        store.store.clone(),
        config.clone(),
        Upstreams::from_config(config),
        Arc::new(|_: &str, _: &str| {}),
    );
    for env in &config.environments {
        let report = syncer.pass(env).await;
        assert!(report.failed.is_empty(), "{report:?}");
    }
}

pub(crate) fn person(name: &str, role: Role) -> Actor {
    Actor {
        kind: crate::audit::ActorKind::User,
        id: name.to_owned(),
        name: name.to_owned(),
        role,
    }
}

fn ask(reason: &str) -> RollbackAsk {
    RollbackAsk {
        reason: reason.to_owned(),
        ..RollbackAsk::default()
    }
}

/// Waits until the operation leaves `running` (or `awaiting_approval`).
pub(crate) async fn settled(control: &ControlPlane, id: &str) -> String {
    for _ in 0..200 {
        let (op, _) = control.store().operation(id).await.unwrap().unwrap();
        if op.state != state::RUNNING {
            return op.state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("operation {id} did not settle in 20 s");
}

async fn audit_actions(s: &Setup) -> Vec<(String, String, Option<String>)> {
    s.store
        .store
        .audit_page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.outcome, e.target))
        .collect()
}

#[tokio::test]
async fn a_code_only_rollback_runs_every_step_once_and_leaves_production_locked() {
    let s = setup("sqlite", |t| t).await;
    let meta = RequestMeta::default();
    let dana = person("dana", Role::Deployer);
    let started = s
        .control
        .start_rollback(&dana, &meta, "production", &ask("500s on /login"), Some("k1"))
        .await
        .unwrap();
    assert_eq!(settled(&s.control, &started.id).await, state::SUCCEEDED);

    let calls = s.world.render.calls();
    assert_eq!(calls.rollbacks, 1, "{calls:?}");
    assert_eq!(calls.auto_deploy_patches, 1, "{calls:?}");
    assert_eq!(calls.deploys_triggered, 0, "{calls:?}");

    let (op, steps) = s.control.store().operation(&started.id).await.unwrap().unwrap();
    assert_eq!(op.break_glass, 1, "a deployer alone: break-glass");
    let states: Vec<_> = steps.iter().map(|s| (s.name.as_str(), s.state.as_str())).collect();
    assert_eq!(
        states,
        [
            ("freeze", "done"),
            ("render_rollback", "done"),
            ("wait_live", "done"),
            ("smoke", "done"),
            ("notify", "skipped"),
        ]
    );
    let rollback_deploy = steps[1].upstream_id.clone().unwrap();
    assert_eq!(steps[2].upstream_id.as_deref(), Some(rollback_deploy.as_str()));

    let gate = s
        .control
        .gate(&dana, &meta, "production", "abc")
        .await
        .unwrap();
    assert!(!gate.allowed, "the rolled-back environment stays locked");

    // Every step's intent and outcome, in order, then the finish.
    let trail: Vec<_> = audit_actions(&s)
        .await
        .into_iter()
        .filter(|(_, _, target)| target.as_deref() == Some(started.id.as_str()))
        .map(|(action, outcome, _)| format!("{action}:{outcome}"))
        .collect();
    let mut expected = vec!["rollback.start:started".to_owned()];
    for step in ["freeze", "render_rollback", "wait_live", "smoke", "notify"] {
        expected.push("rollback.step:started".into());
        if step == "freeze" {
            expected.push("environment.lock:succeeded".into());
        }
        expected.push("rollback.step:succeeded".into());
    }
    expected.push("rollback.finish:succeeded".into());
    assert_eq!(trail, expected);
    assert!(matches!(
        s.store.store.verify_audit().await.unwrap(),
        crate::audit::Verdict::Intact { .. }
    ));
}

#[tokio::test]
async fn a_render_outage_during_the_rollback_fails_the_step_cleanly_and_sends_nothing_more() {
    let s = setup("sqlite", |t| t).await;
    s.world
        .render
        .faults()
        .set("POST /v1/services/{id}/rollback", Fault::always(FaultKind::ServerError(503)))
        .unwrap();
    let lead = person("lee", Role::Lead);
    let started = s
        .control
        .start_rollback(&lead, &RequestMeta::default(), "production", &ask("bad release"), None)
        .await
        .unwrap();
    assert_eq!(settled(&s.control, &started.id).await, state::FAILED);
    let (op, steps) = s.control.store().operation(&started.id).await.unwrap().unwrap();
    let failed = &steps[1];
    assert_eq!((failed.name.as_str(), failed.state.as_str()), ("render_rollback", "failed"));
    let detail = failed.detail.clone().unwrap();
    assert!(detail.contains("503"), "the upstream's answer is named: {detail}");
    assert!(op.error.unwrap().contains("503"));
    assert_eq!(op.active, 0);
    assert!(steps[2..].iter().all(|s| s.state == "pending"), "{steps:?}");
    let calls = s.world.render.calls();
    assert_eq!(calls.rollbacks, 0, "the simulator refused before counting");
    assert!(
        s.control.store().environment_lock("production").await.unwrap().is_some(),
        "the environment stays locked"
    );
    let trail = audit_actions(&s).await;
    assert!(trail.iter().any(|(a, o, _)| a == "rollback.step" && o == "failed"));
    assert!(trail.iter().any(|(a, o, _)| a == "rollback.finish" && o == "failed"));
}

/// Runs `n` rollbacks at once and sorts the replies into started and refused.
async fn race(s: &Setup, planes: &[ControlPlane], n: usize, key: impl Fn(usize) -> Option<String>) -> (Vec<Started>, Vec<String>) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let control = planes[i % planes.len()].clone();
        let key = key(i);
        tasks.push(tokio::spawn(async move {
            control
                .start_rollback(
                    &person("dana", Role::Deployer),
                    &RequestMeta::default(),
                    "production",
                    &ask("storm"),
                    key.as_deref(),
                )
                .await
        }));
    }
    let (mut ok, mut refused) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            Ok(started) => ok.push(started),
            Err(ControlError::Conflict(message)) => refused.push(message),
            Err(other) => panic!("unexpected refusal: {other:?}"),
        }
    }
    let _ = s;
    (ok, refused)
}

async fn fifty_rollbacks_make_one_operation(backend: &str, planes: usize) {
    let s = setup(backend, |t| t).await;
    let mut controls = vec![s.control.clone()];
    for _ in 1..planes {
        // Another panel: its own pool on the same store, its own executor.
        let store = match &s.store.store.pool {
            crate::store::Pool::Postgres(_) => {
                crate::store::Store::connect(&s.store.url()).await.unwrap()
            }
            crate::store::Pool::Sqlite(_) => s.store.store.clone(),
        };
        controls.push(
            ControlPlane::new(store, s.config.clone())
                .with_upstreams(Upstreams::from_config(&s.config), Arc::new(|_: &str, _: &str| {})),
        );
    }
    let (ok, refused) = race(&s, &controls, 50, |_| None).await;
    assert_eq!(ok.len(), 1, "exactly one operation; refusals: {refused:?}");
    assert_eq!(refused.len(), 49);
    let id = &ok[0].id;
    for message in &refused {
        assert!(message.contains(id.as_str()) || message.contains("locked"), "{message}");
    }
    assert!(
        refused.iter().filter(|m| m.contains(id.as_str())).count() >= 1,
        "the running operation is named"
    );
    assert_eq!(settled(&s.control, id).await, state::SUCCEEDED);
    assert_eq!(s.world.render.calls().rollbacks, 1);
    let denied = audit_actions(&s)
        .await
        .into_iter()
        .filter(|(a, o, _)| a == "rollback.start" && o == "denied")
        .count();
    assert_eq!(denied, 49, "every refusal is audited");
    drop(controls);
    s.store.drop_database().await;
}

#[tokio::test]
async fn fifty_concurrent_rollbacks_make_one_operation_on_sqlite() {
    fifty_rollbacks_make_one_operation("sqlite", 1).await;
}

#[tokio::test]
async fn fifty_concurrent_rollbacks_through_two_panels_make_one_operation_on_postgres() {
    fifty_rollbacks_make_one_operation("postgres", 2).await;
}

#[tokio::test]
async fn the_same_idempotency_key_twenty_times_is_one_operation_with_identical_replies() {
    let s = setup("sqlite", |t| t).await;
    let (ok, refused) = race(&s, std::slice::from_ref(&s.control), 20, |_| Some("same-key".into())).await;
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(ok.len(), 20);
    let replies: Vec<String> = ok.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    assert!(replies.iter().all(|r| r == &replies[0]), "{replies:?}");
    assert_eq!(ok.iter().filter(|r| !r.replayed).count(), 1);
    settled(&s.control, &ok[0].id).await;
    assert_eq!(s.world.render.calls().rollbacks, 1);

    // The same key with another body is refused, and says why.
    let other = RollbackAsk {
        target_deploy_id: Some("dep-other".into()),
        ..ask("storm")
    };
    let error = s
        .control
        .start_rollback(&person("dana", Role::Deployer), &RequestMeta::default(), "production", &other, Some("same-key"))
        .await
        .unwrap_err();
    assert!(matches!(&error, ControlError::Invalid(m) if m.contains("Idempotency-Key")), "{error:?}");
}

#[tokio::test]
async fn a_viewer_cannot_roll_back_and_nothing_reaches_render() {
    let s = setup("sqlite", |t| t).await;
    let before = s.world.render.faults().requests();
    let error = s
        .control
        .start_rollback(&person("val", Role::Viewer), &RequestMeta::default(), "production", &ask("x"), None)
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Forbidden(_)), "{error:?}");
    assert_eq!(s.world.render.faults().requests(), before);
    assert!(s.control.store().active_operations().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_rollback_without_a_reason_is_refused_before_anything_is_written() {
    let s = setup("sqlite", |t| t).await;
    let error = s
        .control
        .start_rollback(&person("dana", Role::Deployer), &RequestMeta::default(), "production", &ask("  "), None)
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Invalid(_)), "{error:?}");
    assert!(s.control.store().active_operations().await.unwrap().is_empty());
}
