//! Rollbacks end to end through the application layer, against the
//! sandbox's simulators over real HTTP and a real store: what Render
//! receives, what the store and the audit trail hold, who may do what.

use crate::audit::RequestMeta;
use crate::config::Config;
use crate::control::{ControlError, ControlPlane, RollbackAsk, Started};
use crate::identity::Actor;
use crate::operations::{OperationState, StepState};
use crate::store::tests::TestStore;
use crate::sync::{Syncer, Upstreams};
use app::model::Role;
use domain::IdempotencyKey;
use flightdeck_sandbox::faults::{Fault, FaultKind};
use flightdeck_sandbox::world::{Speeds, Targets, World};
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
    setup_on(backend, None, |t, _| tweak(t)).await
}

/// [`setup`] with the target databases on PostgreSQL (`<prefix>_<env>`)
/// when `pg_targets` names a prefix; `tweak` also gets the world.
pub(crate) async fn setup_on(
    backend: &str,
    pg_targets: Option<&str>,
    tweak: impl FnOnce(String, &World) -> String,
) -> Setup {
    crate::integrations::install_tls_provider();
    let dir = std::env::temp_dir().join(format!("fd-ops-{}", crate::identity::random_id()));
    let targets = match pg_targets {
        Some(prefix) => Targets::Postgres {
            server: flightdeck_sandbox::scratch::pg_admin_url(),
            prefix: prefix.into(),
        },
        None => Targets::Sqlite(dir.clone()),
    };
    let world = World::build(7, Speeds::quick(), targets).await.unwrap();
    let served = world.serve().await.unwrap();
    let text = crate::cli::sandbox::sample_config(
        &served,
        "127.0.0.1:0".parse().unwrap(),
        "sqlite::memory:",
    );
    let text = tweak(
        text + "\n[operations]\nsmoke_timeout_seconds = 5\nlive_timeout_seconds = 20\n",
        &world,
    );
    let config = Arc::new(
        Config::from_toml(&text)
            .unwrap()
            .with_secrets(world.secrets()),
    );
    let store = TestStore::new(backend).await;
    sync(&store, &config).await;
    let control = ControlPlane::new(store.store.clone(), config.clone()).with_upstreams(
        Upstreams::from_config(&config),
        Arc::new(|_: &str, _: &str| {}),
    );
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
/// An Idempotency-Key for a test.
pub(crate) fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).unwrap()
}

pub(crate) async fn settled(control: &ControlPlane, id: &str) -> OperationState {
    for _ in 0..200 {
        let (op, _) = control.store().operation(id).await.unwrap().unwrap();
        if op.state != OperationState::Running {
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
        .start_rollback(
            &dana,
            &meta,
            "production",
            &ask("500s on /login"),
            Some(&key("k1")),
        )
        .await
        .unwrap();
    assert_eq!(
        settled(&s.control, &started.id).await,
        OperationState::Succeeded
    );

    let calls = s.world.render.calls();
    assert_eq!(calls.rollbacks, 1, "{calls:?}");
    assert_eq!(calls.auto_deploy_patches, 1, "{calls:?}");
    assert_eq!(calls.deploys_triggered, 0, "{calls:?}");

    let (op, steps) = s
        .control
        .store()
        .operation(&started.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op.break_glass, 1, "a deployer alone: break-glass");
    let states: Vec<_> = steps
        .iter()
        .map(|s| (s.name.as_str(), s.state.as_str()))
        .collect();
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
    assert_eq!(
        steps[2].upstream_id.as_deref(),
        Some(rollback_deploy.as_str())
    );

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
        .set(
            "POST /v1/services/{id}/rollback",
            Fault::always(FaultKind::ServerError(503)),
        )
        .unwrap();
    let lead = person("lee", Role::Lead);
    let started = s
        .control
        .start_rollback(
            &lead,
            &RequestMeta::default(),
            "production",
            &ask("bad release"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        settled(&s.control, &started.id).await,
        OperationState::Failed
    );
    let (op, steps) = s
        .control
        .store()
        .operation(&started.id)
        .await
        .unwrap()
        .unwrap();
    let failed = &steps[1];
    assert_eq!(
        (failed.name.as_str(), failed.state.as_str()),
        ("render_rollback", "failed")
    );
    let detail = failed.detail.clone().unwrap();
    assert!(
        detail.contains("503"),
        "the upstream's answer is named: {detail}"
    );
    assert!(op.error.unwrap().contains("503"));
    assert_eq!(op.active, 0);
    assert!(
        steps[2..].iter().all(|s| s.state == StepState::Pending),
        "{steps:?}"
    );
    let calls = s.world.render.calls();
    assert_eq!(calls.rollbacks, 0, "the simulator refused before counting");
    assert!(
        s.control
            .store()
            .environment_lock("production")
            .await
            .unwrap()
            .is_some(),
        "the environment stays locked"
    );
    let trail = audit_actions(&s).await;
    assert!(
        trail
            .iter()
            .any(|(a, o, _)| a == "rollback.step" && o == "failed")
    );
    assert!(
        trail
            .iter()
            .any(|(a, o, _)| a == "rollback.finish" && o == "failed")
    );
}

/// Runs `n` rollbacks at once and sorts the replies into started and refused.
async fn race(
    s: &Setup,
    planes: &[ControlPlane],
    n: usize,
    key: impl Fn(usize) -> Option<String>,
) -> (Vec<Started>, Vec<String>) {
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
                    key.map(|k| self::key(&k)).as_ref(),
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

/// Another panel on the same store: its own pool (on PostgreSQL), its own
/// executor.
async fn another_panel(s: &Setup) -> ControlPlane {
    let store = match &s.store.store.pool {
        crate::store::Pool::Postgres(_) => {
            crate::store::Store::connect(&s.store.url()).await.unwrap()
        }
        crate::store::Pool::Sqlite(_) => s.store.store.clone(),
    };
    ControlPlane::new(store, s.config.clone()).with_upstreams(
        Upstreams::from_config(&s.config),
        Arc::new(|_: &str, _: &str| {}),
    )
}

async fn fifty_rollbacks_make_one_operation(backend: &str, planes: usize) {
    let s = setup(backend, |t| t).await;
    let mut controls = vec![s.control.clone()];
    for _ in 1..planes {
        controls.push(another_panel(&s).await);
    }
    let (ok, refused) = race(&s, &controls, 50, |_| None).await;
    assert_eq!(ok.len(), 1, "exactly one operation; refusals: {refused:?}");
    assert_eq!(refused.len(), 49);
    let id = &ok[0].id;
    for message in &refused {
        assert!(
            message.contains(id.as_str()) || message.contains("locked"),
            "{message}"
        );
    }
    assert!(
        refused.iter().filter(|m| m.contains(id.as_str())).count() >= 1,
        "the running operation is named"
    );
    assert_eq!(settled(&s.control, id).await, OperationState::Succeeded);
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
    let (ok, refused) = race(&s, std::slice::from_ref(&s.control), 20, |_| {
        Some("same-key".into())
    })
    .await;
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(ok.len(), 20);
    let replies: Vec<String> = ok
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
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
        .start_rollback(
            &person("dana", Role::Deployer),
            &RequestMeta::default(),
            "production",
            &other,
            Some(&key("same-key")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ControlError::Invalid(m) if m.contains("Idempotency-Key")),
        "{error:?}"
    );
}

/// A second request with the same Idempotency-Key, held right after its
/// key lookup found nothing, while the first one creates the operation
/// (and, with `settle`, runs it to the end and leaves production locked):
/// released, it must replay that operation, not be refused by it.
async fn key_race_held_after_the_lookup(backend: &str, settle: bool) {
    use crate::control::{Pause, PauseHook};
    use tokio::sync::{Notify, Semaphore};
    let s = setup(backend, |t| t).await;
    let arrived = Arc::new(Notify::new());
    let release = Arc::new(Semaphore::new(0));
    let hook: PauseHook = {
        let (arrived, release) = (arrived.clone(), release.clone());
        Arc::new(move |at| {
            let (arrived, release) = (arrived.clone(), release.clone());
            Box::pin(async move {
                if at == Pause::AfterKeyLookup {
                    arrived.notify_one();
                    release.acquire().await.unwrap().forget();
                }
            })
        })
    };
    // The held request goes through a second panel (its own pool on
    // PostgreSQL), the one that wins through the first.
    let held_panel = another_panel(&s).await.with_pause(hook);
    let dana = person("dana", Role::Deployer);
    let held = tokio::spawn({
        let dana = dana.clone();
        async move {
            held_panel
                .start_rollback(
                    &dana,
                    &RequestMeta::default(),
                    "production",
                    &ask("storm"),
                    Some(&key("k-race")),
                )
                .await
        }
    });
    arrived.notified().await;
    let first = s
        .control
        .start_rollback(
            &dana,
            &RequestMeta::default(),
            "production",
            &ask("storm"),
            Some(&key("k-race")),
        )
        .await
        .unwrap();
    assert!(!first.replayed);
    if settle {
        assert_eq!(
            settled(&s.control, &first.id).await,
            OperationState::Succeeded
        );
    }
    release.add_permits(1);
    let second = held
        .await
        .unwrap()
        .expect("the same key replays, whatever the first one left behind");
    assert!(second.replayed);
    assert_eq!(
        serde_json::to_string(&second).unwrap(),
        serde_json::to_string(&first).unwrap(),
        "the same reply"
    );
    settled(&s.control, &first.id).await;
    assert_eq!(s.world.render.calls().rollbacks, 1);
    let denied = audit_actions(&s)
        .await
        .into_iter()
        .filter(|(a, o, _)| a == "rollback.start" && o == "denied")
        .count();
    assert_eq!(denied, 0, "a replay is no refusal");
    s.store.drop_database().await;
}

#[tokio::test]
async fn a_key_replayed_while_its_operation_is_being_created_is_one_operation_on_sqlite() {
    key_race_held_after_the_lookup("sqlite", false).await;
}

#[tokio::test]
async fn a_key_replayed_across_two_panels_while_its_operation_is_being_created_on_postgres() {
    key_race_held_after_the_lookup("postgres", false).await;
}

#[tokio::test]
async fn a_key_replayed_after_its_operation_finished_and_locked_production_on_sqlite() {
    key_race_held_after_the_lookup("sqlite", true).await;
}

#[tokio::test]
async fn a_key_replayed_after_its_operation_finished_and_locked_production_on_postgres() {
    key_race_held_after_the_lookup("postgres", true).await;
}

#[tokio::test]
async fn the_same_deploy_key_twenty_times_at_once_is_one_deploy() {
    let s = setup("sqlite", |t| t).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let control = s.control.clone();
        tasks.push(tokio::spawn(async move {
            control
                .start_deploy(
                    &person("dana", Role::Deployer),
                    &RequestMeta::default(),
                    "production",
                    &crate::control::DeployAsk::default(),
                    Some(&key("deploy-key")),
                )
                .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        ids.insert(
            task.await
                .unwrap()
                .expect("every reply is the operation")
                .id,
        );
    }
    assert_eq!(ids.len(), 1);
    let id = ids.into_iter().next().unwrap();
    assert_eq!(settled(&s.control, &id).await, OperationState::Succeeded);
    assert_eq!(s.world.render.calls().deploys_triggered, 1);
}

#[tokio::test]
async fn a_viewer_cannot_roll_back_and_nothing_reaches_render() {
    let s = setup("sqlite", |t| t).await;
    let before = s.world.render.faults().requests();
    let error = s
        .control
        .start_rollback(
            &person("val", Role::Viewer),
            &RequestMeta::default(),
            "production",
            &ask("x"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Forbidden(_)), "{error:?}");
    assert_eq!(s.world.render.faults().requests(), before);
    assert!(
        s.control
            .store()
            .active_operations()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_rollback_without_a_reason_is_refused_before_anything_is_written() {
    let s = setup("sqlite", |t| t).await;
    let error = s
        .control
        .start_rollback(
            &person("dana", Role::Deployer),
            &RequestMeta::default(),
            "production",
            &ask("  "),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Invalid(_)), "{error:?}");
    assert!(
        s.control
            .store()
            .active_operations()
            .await
            .unwrap()
            .is_empty()
    );
}

/// A rollback created by a panel that then "died": the operation is
/// running, nobody holds it, and `steps_done` steps finished.
async fn orphan(s: &Setup, database: bool, revert_code: bool) -> String {
    // A panel without upstreams writes the operation but never drives it.
    let writer = ControlPlane::new(s.store.store.clone(), s.config.clone());
    let started = writer
        .start_rollback(
            &person("lee", Role::Lead),
            &RequestMeta::default(),
            "staging",
            &RollbackAsk {
                database,
                revert_code,
                ..ask("crash drill")
            },
            None,
        )
        .await
        .unwrap();
    started.id
}

fn system_event(action: &str) -> crate::audit::NewEvent {
    crate::audit::NewEvent::new(
        Actor::system("test").record(),
        action,
        crate::audit::Outcome::Started,
        &RequestMeta::default(),
    )
}

/// Marks step `position` done, as a panel would have before dying.
async fn finish_step(s: &Setup, id: &str, position: i32) {
    let store = &s.store.store;
    store
        .step_started(id, position, &system_event("rollback.step"))
        .await
        .unwrap();
    let outcome = crate::store::operations::StepOutcome {
        state: crate::operations::StepState::Done,
        upstream_id: None,
        upstream_url: None,
        detail: None,
    };
    store
        .step_finished(id, position, &outcome, &system_event("rollback.step"))
        .await
        .unwrap();
}

async fn resume(s: &Setup) {
    let executor = s.control.executor().unwrap();
    assert_eq!(executor.resume().await.unwrap(), 1);
}

#[tokio::test]
async fn a_rollback_sent_just_before_a_crash_is_found_on_render_not_sent_again() {
    let s = setup("sqlite", |t| t).await;
    let id = orphan(&s, false, false).await;
    let (_, steps) = s.store.store.operation(&id).await.unwrap().unwrap();
    let request: crate::operations::Request = serde_json::from_str(
        &s.store
            .store
            .operation(&id)
            .await
            .unwrap()
            .unwrap()
            .0
            .request,
    )
    .unwrap();
    let crate::operations::Request::Rollback(r) = request else {
        panic!("a rollback")
    };
    finish_step(&s, &id, 0).await;
    // The intent was written, the call reached Render, then the panel died.
    s.store
        .store
        .step_started(&id, 1, &system_event("rollback.step"))
        .await
        .unwrap();
    let render = s
        .control
        .executor()
        .unwrap()
        .upstreams()
        .render
        .clone()
        .unwrap();
    render
        .rollback("srv-sandbox-staging", &r.target_deploy_id)
        .await
        .unwrap();
    assert_eq!(steps[1].name, "render_rollback");

    resume(&s).await;
    assert_eq!(settled(&s.control, &id).await, OperationState::Succeeded);
    assert_eq!(
        s.world.render.calls().rollbacks,
        1,
        "not sent a second time"
    );
    let (_, steps) = s.store.store.operation(&id).await.unwrap().unwrap();
    assert!(
        steps[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("not sent again"),
        "{:?}",
        steps[1].detail
    );
}

#[tokio::test]
async fn a_rollback_whose_call_never_left_is_sent_once_after_the_restart() {
    let s = setup("sqlite", |t| t).await;
    let id = orphan(&s, false, false).await;
    finish_step(&s, &id, 0).await;
    s.store
        .store
        .step_started(&id, 1, &system_event("rollback.step"))
        .await
        .unwrap();
    resume(&s).await;
    assert_eq!(settled(&s.control, &id).await, OperationState::Succeeded);
    assert_eq!(s.world.render.calls().rollbacks, 1);
}

#[tokio::test]
async fn a_code_revert_cut_short_needs_a_lead_and_blocks_the_environment() {
    let s = setup("sqlite", |t| t).await;
    let id = orphan(&s, false, true).await;
    let (_, steps) = s.store.store.operation(&id).await.unwrap().unwrap();
    let revert = steps.iter().position(|s| s.name == "code_revert").unwrap() as i32;
    // The freeze took the lock before the crash.
    s.store
        .store
        .lock_for_operation(
            "staging",
            "crash drill",
            "lee",
            &id,
            &system_event("environment.lock"),
        )
        .await
        .unwrap()
        .unwrap();
    for position in 0..revert {
        finish_step(&s, &id, position).await;
    }
    s.store
        .store
        .step_started(&id, revert, &system_event("rollback.step"))
        .await
        .unwrap();
    resume(&s).await;
    assert_eq!(
        settled(&s.control, &id).await,
        OperationState::NeedsAttention
    );
    let lead = person("lee", Role::Lead);
    let meta = RequestMeta::default();
    // Still active: nothing else may start on staging.
    let refused = s
        .control
        .start_deploy(
            &lead,
            &meta,
            "staging",
            &crate::control::DeployAsk::default(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ControlError::Conflict(m) if m.contains(&id)),
        "{refused:?}"
    );
    // A lead resolves it with a note; the lock stays until unlocked.
    s.control
        .resolve_operation(
            &lead,
            &meta,
            &id,
            "checked GitHub: no commit was made",
            false,
        )
        .await
        .unwrap();
    let (op, _) = s.store.store.operation(&id).await.unwrap().unwrap();
    assert_eq!((op.state.as_str(), op.active), ("failed", 0));
    assert!(
        s.store
            .store
            .environment_lock("staging")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.world.github.calls().commits_created,
        0,
        "the revert was never sent"
    );
}

#[tokio::test]
async fn a_database_downgrade_runs_real_alembic_and_needs_a_lead_a_typed_revision_and_a_second_lead()
 {
    use flightdeck_sandbox::alembic::{alembic_bin, sqlalchemy_url, write_project};
    let prefix = format!("fd_ops_{}", crate::identity::random_id());
    let project = std::env::temp_dir().join(format!("{prefix}-alembic"));
    let s = setup_on("sqlite", Some(&prefix), |text, world| {
        // Give production's database the real schema at the revision the
        // simulator says it is at, and let the panel run Alembic on it.
        let (url, _) = &world.targets["production"];
        write_project(&project, &world.history, &sqlalchemy_url(url).unwrap()).unwrap();
        // This closure is synchronous: a runtime of its own on its own thread.
        let current = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Runtime::new().unwrap().block_on(async {
                        let db = flightdeck_sandbox::target_db::TargetDb::open(url).await.unwrap();
                        let current = db.revisions().await.unwrap();
                        db.set_revisions(&[]).await.unwrap();
                        db.close().await;
                        current
                    })
                })
                .join()
                .unwrap()
        });
        for revision in &current {
            let out = std::process::Command::new(alembic_bin())
                .args(["upgrade", revision])
                .current_dir(&project)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let runner = format!(
            "migration_runner = {{ kind = \"command\", command = \"{} downgrade {{revision}}\", dir = \"{}\" }}",
            alembic_bin().display(),
            project.display()
        );
        text.replacen(
            "migration_runner = { kind = \"workflow\", workflow = \"db-rollback.yml\" }",
            &runner,
            1,
        )
    })
    .await;
    let meta = RequestMeta::default();
    let lee = person("lee", Role::Lead);

    // A target whose code is behind the database by a data-losing revision.
    let releases = s
        .control
        .timeline(&lee, &meta, "production")
        .await
        .unwrap()
        .items;
    let mut chosen = None;
    for release in releases.iter().filter(|r| !r.is_live) {
        let plan = s
            .control
            .rollback_plan(
                &lee,
                &meta,
                "production",
                &RollbackAsk {
                    target_deploy_id: Some(release.deploy_id.clone()),
                    database: true,
                    ..RollbackAsk::default()
                },
            )
            .await
            .unwrap();
        if !plan.blocked() && plan.requirements.typed_confirmation.is_some() {
            chosen = Some((release.deploy_id.clone(), plan));
            break;
        }
    }
    let (target, plan) =
        chosen.expect("the seeded history has a data-losing downgrade to roll back over");
    let revision = plan.downgrade_to.clone().unwrap();
    assert!(plan.requirements.second_approval);
    let downgrade = |by: &str, role, confirm: Option<&str>| {
        let control = s.control.clone();
        let ask = RollbackAsk {
            target_deploy_id: Some(target.clone()),
            database: true,
            reason: "schema change broke exports".into(),
            confirm_revision: confirm.map(str::to_owned),
            ..RollbackAsk::default()
        };
        let actor = person(by, role);
        async move {
            control
                .start_rollback(&actor, &RequestMeta::default(), "production", &ask, None)
                .await
        }
    };
    let error = downgrade("dana", Role::Deployer, Some(&revision))
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Forbidden(_)), "{error:?}");
    let error = downgrade("lee", Role::Lead, None).await.unwrap_err();
    assert!(
        matches!(&error, ControlError::Invalid(m) if m.contains(&revision)),
        "{error:?}"
    );
    let error = downgrade("lee", Role::Lead, Some("wrong"))
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Invalid(_)), "{error:?}");

    let started = downgrade("lee", Role::Lead, Some(&revision)).await.unwrap();
    assert_eq!(started.initial_state, OperationState::AwaitingApproval);
    assert_eq!(
        s.world.render.calls().rollbacks,
        0,
        "nothing runs before the approval"
    );
    let error = s
        .control
        .approve_operation(&lee, &meta, &started.id)
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Forbidden(_)), "{error:?}");
    s.control
        .approve_operation(&person("kim", Role::Lead), &meta, &started.id)
        .await
        .unwrap();
    assert_eq!(
        settled(&s.control, &started.id).await,
        OperationState::Succeeded
    );

    let (op, steps) = s.store.store.operation(&started.id).await.unwrap().unwrap();
    assert_eq!(op.approved_by.as_deref(), Some("kim"));
    let step = steps
        .iter()
        .find(|s| s.name == "database_downgrade")
        .unwrap();
    assert_eq!(step.state, StepState::Done, "{step:?}");
    assert!(
        step.log.contains("Running downgrade"),
        "Alembic's output is kept: {}",
        step.log
    );
    let (_, db) = &s.world.targets["production"];
    let now = db.revisions().await.unwrap();
    let expected: Vec<String> = if revision == "base" {
        vec![]
    } else {
        vec![revision.clone()]
    };
    assert_eq!(now, expected);
    let current = std::process::Command::new(alembic_bin())
        .arg("current")
        .current_dir(&project)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&current.stdout);
    assert!(
        printed.contains(&revision) || revision == "base",
        "alembic current: {printed}"
    );

    for (_, db) in s.world.targets.values() {
        db.close().await;
    }
    let admin = sqlx::PgPool::connect(&flightdeck_sandbox::scratch::pg_admin_url())
        .await
        .unwrap();
    for env in ["production", "staging"] {
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {prefix}_{env} WITH (FORCE)"
        ))
        .execute(&admin)
        .await
        .unwrap();
    }
    let _ = std::fs::remove_dir_all(&project);
}

/// A target release whose code is behind the database, and its plan.
async fn downgrade_target(s: &Setup, env: &str) -> (String, crate::rollback::Plan) {
    let meta = RequestMeta::default();
    let lee = person("lee", Role::Lead);
    let releases = s.control.timeline(&lee, &meta, env).await.unwrap().items;
    for release in releases.iter().filter(|r| !r.is_live) {
        let plan = s
            .control
            .rollback_plan(
                &lee,
                &meta,
                env,
                &RollbackAsk {
                    target_deploy_id: Some(release.deploy_id.clone()),
                    database: true,
                    ..RollbackAsk::default()
                },
            )
            .await
            .unwrap();
        if !plan.blocked() && plan.needs_database_change && plan.downgrade_to.is_some() {
            return (release.deploy_id.clone(), plan);
        }
    }
    panic!("no release of {env} is behind its database");
}

#[tokio::test]
async fn the_workflow_runner_dispatches_the_rollback_workflow_and_reads_the_database_back() {
    let s = setup("sqlite", |t| t).await;
    let (target, plan) = downgrade_target(&s, "staging").await;
    let revision = plan.downgrade_to.clone().unwrap();
    let started = s
        .control
        .start_rollback(
            &person("lee", Role::Lead),
            &RequestMeta::default(),
            "staging",
            &RollbackAsk {
                target_deploy_id: Some(target),
                database: true,
                reason: "bad migration".into(),
                confirm_revision: Some(revision.clone()),
                ..RollbackAsk::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        started.initial_state,
        OperationState::Running,
        "staging needs no second lead"
    );
    assert_eq!(
        settled(&s.control, &started.id).await,
        OperationState::Succeeded
    );
    assert_eq!(s.world.github.calls().dispatches, 1);
    let (_, steps) = s.store.store.operation(&started.id).await.unwrap().unwrap();
    let step = steps
        .iter()
        .find(|s| s.name == "database_downgrade")
        .unwrap();
    assert!(step.upstream_id.is_some(), "the run is linked: {step:?}");
    let (_, db) = &s.world.targets["staging"];
    let expected: Vec<String> = if revision == "base" {
        vec![]
    } else {
        vec![revision]
    };
    assert_eq!(db.revisions().await.unwrap(), expected);
}

#[tokio::test]
async fn after_a_code_only_rollback_a_lead_finishes_the_runbook_with_a_database_only_rollback() {
    let s = setup("sqlite", |t| t).await;
    let meta = RequestMeta::default();
    let lee = person("lee", Role::Lead);
    let (target, plan) = downgrade_target(&s, "staging").await;
    let revision = plan.downgrade_to.clone().unwrap();
    let before = s.world.targets["staging"].1.revisions().await.unwrap();

    // The runbook's first half: the code only.
    let code = s
        .control
        .start_rollback(
            &lee,
            &meta,
            "staging",
            &RollbackAsk {
                target_deploy_id: Some(target.clone()),
                reason: "exports broken".into(),
                ..RollbackAsk::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        settled(&s.control, &code.id).await,
        OperationState::Succeeded
    );
    s.control
        .unlock_environment(&lee, &meta, "staging", "code is back, database next")
        .await
        .unwrap();
    sync(&s.store, &s.config).await;
    assert_eq!(
        s.world.targets["staging"].1.revisions().await.unwrap(),
        before
    );
    let live = s
        .control
        .timeline(&lee, &meta, "staging")
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|r| r.is_live)
        .unwrap();
    assert_ne!(
        live.deploy_id, target,
        "Render made a new deploy of the old commit"
    );

    // The second half: the database, to the live code's head.
    let ask = RollbackAsk {
        target_deploy_id: Some(live.deploy_id.clone()),
        database: true,
        reason: "bring the schema to the live code".into(),
        confirm_revision: plan.requirements.typed_confirmation.clone(),
        ..RollbackAsk::default()
    };
    let planned = s
        .control
        .rollback_plan(&lee, &meta, "staging", &ask)
        .await
        .unwrap();
    assert!(planned.database_only, "{:#?}", planned.checks);
    assert!(!planned.blocked(), "{:#?}", planned.checks);
    assert_eq!(planned.downgrade_to.as_deref(), Some(revision.as_str()));

    // A deployer hears 403, not the preflight's verdict.
    let error = s
        .control
        .start_rollback(
            &person("dana", Role::Deployer),
            &meta,
            "staging",
            &ask,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Forbidden(_)), "{error:?}");

    let rollbacks = s.world.render.calls().rollbacks;
    let started = s
        .control
        .start_rollback(&lee, &meta, "staging", &ask, None)
        .await
        .unwrap();
    assert_eq!(
        settled(&s.control, &started.id).await,
        OperationState::Succeeded
    );
    let (op, steps) = s.store.store.operation(&started.id).await.unwrap().unwrap();
    let names: Vec<_> = steps
        .iter()
        .map(|s| (s.name.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("freeze", "done"),
            ("database_downgrade", "done"),
            ("smoke", "done"),
            ("notify", "skipped")
        ],
        "{op:?}"
    );
    let calls = s.world.render.calls();
    assert_eq!(calls.rollbacks, rollbacks, "no Render rollback: {calls:?}");
    assert_eq!(calls.deploys_triggered, 0, "{calls:?}");
    let expected: Vec<String> = if revision == "base" {
        vec![]
    } else {
        vec![revision]
    };
    assert_eq!(
        s.world.targets["staging"].1.revisions().await.unwrap(),
        expected
    );
    let view = s
        .control
        .operation_view(&lee, &meta, &started.id)
        .await
        .unwrap();
    assert!(
        view.summary.contains("database down to"),
        "{}",
        view.summary
    );
}

#[tokio::test]
async fn a_deployer_asking_for_a_downgrade_hears_that_it_needs_a_lead_before_any_other_refusal() {
    let s = setup("sqlite", |t| t).await;
    let meta = RequestMeta::default();
    let (target, _) = downgrade_target(&s, "staging").await;
    let dana = person("dana", Role::Deployer);
    // No reason, and a wrong typed revision: still the role comes first.
    let error = s
        .control
        .start_rollback(
            &dana,
            &meta,
            "staging",
            &RollbackAsk {
                target_deploy_id: Some(target),
                database: true,
                confirm_revision: Some("wrong".into()),
                ..RollbackAsk::default()
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::Forbidden(_)), "{error:?}");
}

#[tokio::test]
async fn a_plan_reads_an_older_targets_migrations_from_github_when_the_sync_has_not() {
    let s = setup("sqlite", |t| t).await;
    let meta = RequestMeta::default();
    let lee = person("lee", Role::Lead);
    let (target, plan) = downgrade_target(&s, "staging").await;
    // As for a release the backfill stored: its deploy and runs known,
    // its commit never read.
    let sha = plan.to.as_ref().unwrap().deploy.commit_sha.clone();
    let crate::store::Pool::Sqlite(pool) = &s.store.store.pool else {
        unreachable!("a SQLite store")
    };
    sqlx::query("DELETE FROM commits WHERE sha = $1")
        .bind(&sha)
        .execute(pool)
        .await
        .unwrap();
    let ask = RollbackAsk {
        target_deploy_id: Some(target),
        database: true,
        ..RollbackAsk::default()
    };
    let again = s
        .control
        .rollback_plan(&lee, &meta, "staging", &ask)
        .await
        .unwrap();
    assert!(!again.blocked(), "{:#?}", again.checks);
    assert_eq!(again.downgrade_to, plan.downgrade_to);
    assert_eq!(again.alembic_path, plan.alembic_path);
    // Read once, then kept.
    let kept = s.store.store.commits_by_sha(&[sha]).await.unwrap();
    assert!(kept[0].migrations.is_some());
}

async fn revert(mode: &str) -> (Setup, Vec<crate::store::operations::StepRow>) {
    let s = setup("sqlite", |t| format!("{t}revert = \"{mode}\"\n")).await;
    let started = s
        .control
        .start_rollback(
            &person("lee", Role::Lead),
            &RequestMeta::default(),
            "production",
            &RollbackAsk {
                revert_code: true,
                ..ask("revert the bad merge")
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        settled(&s.control, &started.id).await,
        OperationState::Succeeded
    );
    let (_, steps) = s.store.store.operation(&started.id).await.unwrap().unwrap();
    (s, steps)
}

#[tokio::test]
async fn a_code_revert_opens_a_pull_request_with_the_target_tree() {
    let (s, steps) = revert("pull_request").await;
    let calls = s.world.github.calls();
    assert_eq!(
        (
            calls.commits_created,
            calls.pulls_created,
            calls.ref_updates
        ),
        (1, 1, 0),
        "{calls:?}"
    );
    let step = steps.iter().find(|s| s.name == "code_revert").unwrap();
    assert!(
        step.upstream_id.as_deref().unwrap().starts_with('#'),
        "{step:?}"
    );
}

#[tokio::test]
async fn a_code_revert_as_a_fast_forward_moves_the_branch_and_opens_nothing() {
    let (s, _) = revert("fast_forward").await;
    let calls = s.world.github.calls();
    assert_eq!(
        (
            calls.commits_created,
            calls.pulls_created,
            calls.ref_updates
        ),
        (1, 0, 1),
        "{calls:?}"
    );
}

#[tokio::test]
async fn the_outcome_is_posted_to_the_notification_webhook() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let s = setup("sqlite", |t| {
        format!(
            "{t}notify_webhook_env = \"FD_TEST_NOTIFY_{}\"\n",
            std::process::id()
        )
    })
    .await;
    let config = Arc::new(
        (*s.config).clone().with_secrets(
            [(format!("FD_TEST_NOTIFY_{}", std::process::id()), url)]
                .into_iter()
                .chain(s.world.secrets())
                .collect(),
        ),
    );
    let control = ControlPlane::new(s.store.store.clone(), config.clone()).with_upstreams(
        Upstreams::from_config(&config),
        Arc::new(|_: &str, _: &str| {}),
    );
    let started = control
        .start_rollback(
            &person("lee", Role::Lead),
            &RequestMeta::default(),
            "production",
            &ask("pager"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        settled(&control, &started.id).await,
        OperationState::Succeeded
    );
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let text = bodies[0]["text"].as_str().unwrap();
    assert!(
        text.contains("rollback of production") && text.contains("succeeded"),
        "{text}"
    );
    assert_eq!(bodies[0]["operation"]["id"], started.id.as_str());
}

/// The leads' review: a break-glass rollback and a refused attempt on
/// production land in the queue (a refusal on staging does not), a lead
/// opens the operation from the trail and marks it reviewed once, with a
/// note that is itself an audit event.
async fn review_queue_end_to_end(backend: &str) {
    use app::model::AuditQuery;
    let s = setup(backend, |t| t).await;
    let meta = RequestMeta::default();
    let dana = person("dana", Role::Deployer);
    let lee = person("lee", Role::Lead);
    let val = person("val", Role::Viewer);
    let started = s
        .control
        .start_rollback(&dana, &meta, "production", &ask("500s on /login"), None)
        .await
        .unwrap();
    assert_eq!(
        settled(&s.control, &started.id).await,
        OperationState::Succeeded
    );
    for env in ["production", "staging"] {
        let refused = s
            .control
            .lock_environment(&val, &meta, env, "curious")
            .await;
        assert!(matches!(refused, Err(ControlError::Forbidden(_))));
    }

    let hidden = s
        .control
        .audit_view(&dana, &meta, AuditQuery::default())
        .await;
    assert!(
        matches!(hidden, Err(ControlError::Forbidden(_))),
        "a deployer does not see the trail or its queue"
    );
    let view = s
        .control
        .audit_view(&lee, &meta, AuditQuery::default())
        .await
        .unwrap();
    let op_item = format!("op:{}", started.id);
    let items: Vec<_> = view
        .queue
        .iter()
        .map(|i| (i.item.as_str(), i.why.as_str(), i.environment.as_deref()))
        .collect();
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items.contains(&(op_item.as_str(), "break_glass", Some("production"))));
    let refusal = view.queue.iter().find(|i| i.why == "refused").unwrap();
    assert_eq!(refusal.environment.as_deref(), Some("production"));
    assert_eq!(refusal.actor, "val");
    assert!(
        view.chain.checked_at.is_none(),
        "never verified in this store"
    );

    // The trail filtered to the rollback's start, by who and what.
    let only = AuditQuery {
        actor: Some("dana".into()),
        action: Some("rollback.start".into()),
        ..AuditQuery::default()
    };
    let filtered = s.control.audit_view(&lee, &meta, only).await.unwrap();
    assert_eq!(filtered.events.len(), 1);
    let start = &filtered.events[0];
    assert_eq!(start.target.as_deref(), Some(started.id.as_str()));

    // Keyset pages: three at a time, newest first, no repeats, no holes.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = AuditQuery {
            before: cursor,
            ..AuditQuery::default()
        };
        let (events, next) = s.control.audit_list(&lee, &meta, page, 3).await.unwrap();
        assert!(events.len() <= 3);
        seen.extend(events.iter().map(|e| e.seq));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let head = s.store.store.audit_head_seq().await.unwrap();
    assert_eq!(seen, (1..=head).rev().collect::<Vec<_>>());

    // The detail view has the whole operation and every event about it.
    let detail = s
        .control
        .audit_detail(&lee, &meta, start.seq)
        .await
        .unwrap();
    let op = detail.operation.expect("the event's operation");
    assert_eq!(op.steps.len(), 5);
    assert!(op.break_glass);
    assert_eq!(
        detail.related.first().map(|e| e.action.as_str()),
        Some("rollback.start")
    );
    assert_eq!(
        detail.related.last().map(|e| e.action.as_str()),
        Some("rollback.finish")
    );
    assert_eq!(detail.review_item.as_deref(), Some(op_item.as_str()));
    assert_eq!(detail.reviewed, None);

    // Marking: a note is required, a deployer may not, a lead may, once.
    let blank = s.control.mark_reviewed(&lee, &meta, &op_item, "  ").await;
    assert!(matches!(blank, Err(ControlError::Invalid(_))));
    let deployer = s
        .control
        .mark_reviewed(&dana, &meta, &op_item, "fine")
        .await;
    assert!(matches!(deployer, Err(ControlError::Forbidden(_))));
    let unknown = s
        .control
        .mark_reviewed(&lee, &meta, "op:nope", "fine")
        .await;
    assert!(matches!(unknown, Err(ControlError::NotFound(_))));
    let note = "Login outage, rollback was right; Render confirms";
    let mark = s
        .control
        .mark_reviewed(&lee, &meta, &op_item, note)
        .await
        .unwrap();
    assert_eq!(
        (mark.reviewed_by.as_str(), mark.note.as_str()),
        ("lee", note)
    );
    let again = s
        .control
        .mark_reviewed(&lee, &meta, &op_item, "twice")
        .await;
    match again {
        Err(ControlError::Conflict(message)) => assert!(message.contains("lee"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let review_event = s.store.store.audit_event(mark.seq).await.unwrap().unwrap();
    assert_eq!(
        (review_event.action.as_str(), review_event.outcome.as_str()),
        ("audit.review", "succeeded")
    );
    assert_eq!(review_event.target.as_deref(), Some(op_item.as_str()));
    assert!(review_event.params.contains(note));

    let after = s
        .control
        .audit_view(&lee, &meta, AuditQuery::default())
        .await
        .unwrap();
    assert_eq!(after.queue.len(), 1, "only the refusal is left");
    let detail = s
        .control
        .audit_detail(&lee, &meta, start.seq)
        .await
        .unwrap();
    assert_eq!(detail.reviewed.map(|m| m.note), Some(note.to_owned()));

    // Verification is recorded and shown.
    s.control.verify_audit_as(&lee, &meta).await.unwrap();
    let chain = s
        .control
        .audit_view(&lee, &meta, AuditQuery::default())
        .await
        .unwrap()
        .chain;
    assert!(chain.intact);
    assert_eq!(chain.checked_by.as_deref(), Some("lee"));
    assert!(chain.count.unwrap() > 20);
}

#[tokio::test]
async fn the_review_queue_end_to_end_on_sqlite() {
    review_queue_end_to_end("sqlite").await;
}

#[tokio::test]
async fn the_review_queue_end_to_end_on_postgres() {
    review_queue_end_to_end("postgres").await;
}
