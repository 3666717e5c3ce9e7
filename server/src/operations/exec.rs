//! The executor: carries an operation's steps out, one after the other,
//! durably. Each step writes its intent (state `running`, with an audit
//! event) before it calls out and its outcome after, so a panel that dies
//! half-way leaves a precise trace.
//!
//! A panel holds the operations it runs with a lease it renews; when a
//! panel dies its lease runs out and the next panel to look (itself after
//! a restart, or another instance on the same PostgreSQL) takes over. A
//! step found `running` is reconciled by reading upstream state, never by
//! blindly sending again: the Render rollback is looked for among the
//! service's deploys; the database is read back; a code revert, which
//! cannot be told apart from a person's commit, leaves the operation
//! `needs_attention` for a lead.

use super::{OperationState, Request, Step, StepState, runner};
use crate::audit::{NewEvent, Outcome, RequestMeta};
use crate::config::{Config, EnvironmentConfig, MigrationRunner};
use crate::identity::Actor;
use crate::integrations::hooks::CallError;
use crate::integrations::render::{DeployStatus, DeployTrigger, Triggered};
use crate::rollback::RevertMode;
use crate::store::operations::{OperationRow, StepOutcome, StepRow};
use crate::store::{Store, StoreError, now_text};
use crate::sync::{OnChange, Upstreams};
use crate::views::Links;
use domain::short_sha;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// How a step ended.
#[derive(Debug)]
enum Ended {
    Done {
        upstream_id: Option<String>,
        upstream_url: Option<String>,
        detail: String,
    },
    Skipped(String),
    Failed(String),
    /// Cannot be reconciled: a lead must look.
    Attention(String),
}

fn done(detail: impl Into<String>) -> Ended {
    Ended::Done {
        upstream_id: None,
        upstream_url: None,
        detail: detail.into(),
    }
}

/// Carries operations out; cheap to clone.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: Arc<Config>,
    upstreams: Upstreams,
    /// This process's id in `operations.runner`.
    runner: String,
    on_change: OnChange,
    /// Operations this process is driving now.
    driving: Mutex<HashSet<String>>,
    /// How often a waiting step looks again.
    poll: Duration,
    /// `FLIGHTDECK_FAULT_KILL_AT`, read once: see [`Executor::failpoint`].
    kill_at: Option<String>,
}

/// Removes the operation from `driving` when the drive ends, however it ends.
struct Driving(Arc<Inner>, String);

impl Drop for Driving {
    fn drop(&mut self) {
        self.0
            .driving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

impl Executor {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        upstreams: Upstreams,
        on_change: OnChange,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                upstreams,
                runner: crate::identity::random_id(),
                on_change,
                driving: Mutex::default(),
                poll: Duration::from_millis(500),
                kill_at: std::env::var("FLIGHTDECK_FAULT_KILL_AT").ok(),
            }),
        }
    }

    /// The clients this executor calls.
    pub fn upstreams(&self) -> &Upstreams {
        &self.inner.upstreams
    }

    /// Starts driving `id` in the background unless this process already is.
    pub fn start(&self, id: &str) {
        {
            let mut driving = self.inner.driving.lock().unwrap_or_else(|p| p.into_inner());
            if !driving.insert(id.to_owned()) {
                return;
            }
        }
        let guard = Driving(self.inner.clone(), id.to_owned());
        let this = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let _guard = guard;
            if let Err(error) = this.drive(&id).await {
                tracing::error!(operation = %id, %error, "the operation stopped on a store error; it resumes when its lease runs out");
            }
        });
    }

    /// Starts every running operation nobody holds (at start-up, and then
    /// every lease period): those of a panel that died.
    pub async fn resume(&self) -> Result<usize, StoreError> {
        let mut started = 0;
        for op in self.inner.store.active_operations().await? {
            let expired = op
                .lease_until
                .as_deref()
                .is_none_or(|until| until < now_text().as_str());
            if op.state == OperationState::Running
                && (expired || op.runner.as_deref() == Some(&self.inner.runner))
            {
                self.start(&op.id);
                started += 1;
            }
        }
        Ok(started)
    }

    /// Resumes now and then every lease period, for the life of the process.
    pub fn spawn_resumer(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let period = this.lease() / 2;
            loop {
                if let Err(error) = this.resume().await {
                    tracing::warn!(%error, "could not look for operations to resume");
                }
                tokio::time::sleep(period).await;
            }
        })
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.inner.config.operations.lease_seconds.max(1))
    }

    fn lease_until(&self) -> String {
        crate::store::sync::store_time(OffsetDateTime::now_utc() + self.lease())
    }

    async fn drive(&self, id: &str) -> Result<(), StoreError> {
        let store = &self.inner.store;
        if !store
            .claim_operation(id, &self.inner.runner, &self.lease_until())
            .await?
        {
            return Ok(());
        }
        let renewal = {
            let this = self.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(this.lease() / 3).await;
                    let _ = this
                        .inner
                        .store
                        .claim_operation(&id, &this.inner.runner, &this.lease_until())
                        .await;
                }
            })
        };
        let result = self.steps(id).await;
        renewal.abort();
        result
    }

    async fn steps(&self, id: &str) -> Result<(), StoreError> {
        let store = &self.inner.store;
        loop {
            let Some((op, steps)) = store.operation(id).await? else {
                return Ok(());
            };
            if op.state != OperationState::Running {
                return Ok(());
            }
            let request: Request = serde_json::from_str(&op.request)
                .map_err(|e| StoreError::Corrupt(format!("operation {id}: {e}")))?;
            let Some(env) = self
                .inner
                .config
                .environments
                .iter()
                .find(|e| e.name.as_str() == op.environment)
            else {
                let why = format!("the environment {} is no longer configured", op.environment);
                return self
                    .finish(&op, &request, OperationState::NeedsAttention, Some(&why))
                    .await;
            };
            let Some(row) = steps
                .iter()
                .find(|s| s.state == StepState::Pending || s.state == StepState::Running)
            else {
                return self
                    .finish(&op, &request, OperationState::Succeeded, None)
                    .await;
            };
            let Some(step) = Step::from_name(&row.name) else {
                let why = format!("step {} is unknown to this version", row.name);
                return self
                    .finish(&op, &request, OperationState::NeedsAttention, Some(&why))
                    .await;
            };
            let ctx = Ctx {
                op: &op,
                request: &request,
                env,
                steps: &steps,
                row,
            };
            let ended = if row.state == StepState::Running {
                self.intent(&ctx, step, true).await?;
                self.failpoint(step, "before");
                self.reconcile(&ctx, step).await
            } else {
                self.intent(&ctx, step, false).await?;
                self.failpoint(step, "before");
                self.perform(&ctx, step).await
            };
            self.failpoint(step, "after");
            self.outcome(&ctx, step, &ended).await?;
            match ended {
                Ended::Failed(why) if step != Step::Notify => {
                    return self
                        .finish(&op, &request, OperationState::Failed, Some(&why))
                        .await;
                }
                Ended::Attention(why) => {
                    return self
                        .finish(&op, &request, OperationState::NeedsAttention, Some(&why))
                        .await;
                }
                _ => {}
            }
        }
    }

    /// Fault injection for the crash tests: with
    /// `FLIGHTDECK_FAULT_KILL_AT=<step>:<before|after>` the process kills
    /// itself with SIGKILL right after that step's intent is written
    /// (`before` it calls out) or right after it called out (`after`,
    /// before its outcome is written). Unset, this does nothing.
    fn failpoint(&self, step: Step, when: &str) {
        let Some(at) = &self.inner.kill_at else {
            return;
        };
        if at.split_once(':') == Some((step.name(), when)) {
            tracing::warn!(
                step = step.name(),
                when,
                "FLIGHTDECK_FAULT_KILL_AT: killing this process"
            );
            let _ = std::process::Command::new("kill")
                .args(["-s", "KILL", &std::process::id().to_string()])
                .status();
            std::process::abort();
        }
    }

    fn event(&self, op: &OperationRow, action: &str, outcome: Outcome) -> NewEvent {
        NewEvent::new(
            Actor::system("flightdeck").record(),
            action,
            outcome,
            &RequestMeta::default(),
        )
        .environment(&op.environment)
        .target(&op.id)
    }

    fn changed(&self, env: &str) {
        (self.inner.on_change)(env, "operation");
    }

    async fn intent(&self, ctx: &Ctx<'_>, step: Step, resumed: bool) -> Result<(), StoreError> {
        let event = self
            .event(ctx.op, &format!("{}.step", ctx.op.kind), Outcome::Started)
            .params(json!({
                "step": step.name(),
                "position": ctx.row.position,
                "requested_by": ctx.op.requested_by,
                "resumed_after_restart": resumed,
            }));
        self.inner
            .store
            .step_started(&ctx.op.id, ctx.row.position, &event)
            .await?;
        self.changed(&ctx.op.environment);
        Ok(())
    }

    async fn outcome(&self, ctx: &Ctx<'_>, step: Step, ended: &Ended) -> Result<(), StoreError> {
        let (outcome, stored) = match ended {
            Ended::Done {
                upstream_id,
                upstream_url,
                detail,
            } => (
                Outcome::Succeeded,
                StepOutcome {
                    state: StepState::Done,
                    upstream_id: upstream_id.clone(),
                    upstream_url: upstream_url.clone(),
                    detail: Some(detail.clone()),
                },
            ),
            Ended::Skipped(detail) => (
                Outcome::Succeeded,
                StepOutcome {
                    state: StepState::Skipped,
                    detail: Some(detail.clone()),
                    upstream_id: None,
                    upstream_url: None,
                },
            ),
            Ended::Failed(why) | Ended::Attention(why) => (
                Outcome::Failed,
                StepOutcome {
                    state: StepState::Failed,
                    detail: Some(why.clone()),
                    upstream_id: None,
                    upstream_url: None,
                },
            ),
        };
        let mut event = self
            .event(ctx.op, &format!("{}.step", ctx.op.kind), outcome)
            .params(json!({
                "step": step.name(),
                "position": ctx.row.position,
                "state": stored.state,
                "upstream_id": stored.upstream_id,
                "detail": stored.detail,
            }));
        if outcome == Outcome::Failed {
            event = event.error(stored.detail.clone().unwrap_or_default());
        }
        self.inner
            .store
            .step_finished(&ctx.op.id, ctx.row.position, &stored, &event)
            .await?;
        self.changed(&ctx.op.environment);
        Ok(())
    }

    /// Ends the operation; a failure is announced (best effort) since its
    /// notify step will not run.
    async fn finish(
        &self,
        op: &OperationRow,
        request: &Request,
        to: OperationState,
        why: Option<&str>,
    ) -> Result<(), StoreError> {
        let outcome = if to == OperationState::Succeeded {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        let mut event = self
            .event(op, &format!("{}.finish", op.kind), outcome)
            .params(json!({ "state": to, "requested_by": op.requested_by }));
        if let Some(why) = why {
            event = event.error(why);
        }
        self.inner
            .store
            .set_operation_state(&op.id, &[OperationState::Running], to, why, None, &event)
            .await?;
        self.changed(&op.environment);
        if to != OperationState::Succeeded
            && let Err(error) = self.announce(op, request, to, why).await
        {
            tracing::warn!(operation = %op.id, %error, "the outcome could not be announced");
        }
        Ok(())
    }

    /// Does the step for the first time.
    async fn perform(&self, ctx: &Ctx<'_>, step: Step) -> Ended {
        match step {
            Step::Freeze => self.freeze(ctx).await,
            Step::RenderRollback => self.render_rollback(ctx).await,
            Step::TriggerDeploy => self.trigger_deploy(ctx).await,
            Step::WaitLive => self.wait_live(ctx).await,
            Step::DatabaseDowngrade => self.downgrade(ctx).await,
            Step::CodeRevert => self.revert_code(ctx).await,
            Step::Smoke => self.smoke(ctx).await,
            Step::Notify => match self
                .announce(ctx.op, ctx.request, OperationState::Succeeded, None)
                .await
            {
                Ok(Some(to)) => done(format!("Posted the outcome to {to}.")),
                Ok(None) => Ended::Skipped(
                    "No notification webhook is configured ([operations] notify_webhook_env)."
                        .into(),
                ),
                Err(error) => Ended::Failed(format!("The outcome could not be posted: {error}")),
            },
        }
    }

    /// Finishes a step the panel was in the middle of when it stopped.
    async fn reconcile(&self, ctx: &Ctx<'_>, step: Step) -> Ended {
        let started = ctx.row.started_at.as_deref().and_then(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        });
        match step {
            // Idempotent: the lock is this operation's own, autoDeploy "no"
            // twice is "no", waiting and probing send nothing.
            Step::Freeze | Step::WaitLive | Step::Smoke | Step::Notify => {
                self.perform(ctx, step).await
            }
            Step::RenderRollback | Step::TriggerDeploy => {
                match self.find_started_deploy(ctx, step, started).await {
                    Ok(Some(ended)) => ended,
                    // Render holds no such deploy: the call never reached it.
                    Ok(None) => self.perform(ctx, step).await,
                    Err(why) => Ended::Attention(format!(
                        "The panel stopped during this step and Render could not be asked whether it happened: {why}. Check the service's deploys, then resolve the operation."
                    )),
                }
            }
            Step::DatabaseDowngrade => {
                let Request::Rollback(r) = ctx.request else {
                    return Ended::Failed("a deploy has no database step".into());
                };
                let target = r.downgrade_to.as_deref().unwrap_or("base");
                match self.read_back(ctx, target).await {
                    Ok(detail) => done(format!("{detail} (found after the panel restarted)")),
                    Err(why) => Ended::Attention(format!(
                        "The panel stopped while the database was being downgraded and it is not at the target now: {why}. Look at the runner's output, then resolve the operation."
                    )),
                }
            }
            Step::CodeRevert => Ended::Attention(
                "The panel stopped while reverting the code on GitHub; it cannot tell whether the commit or pull request was made. Check the branch and its pull requests, then resolve the operation."
                    .into(),
            ),
        }
    }

    fn render_for(&self) -> Result<&Arc<dyn crate::integrations::render::RenderSource>, Ended> {
        self.inner.upstreams.render.as_ref().ok_or_else(|| {
            Ended::Failed("Render is not configured or its API key variable is not set.".into())
        })
    }

    async fn freeze(&self, ctx: &Ctx<'_>) -> Ended {
        let env = ctx.env.name.as_str();
        let reason = format!("{} {}: {}", ctx.op.kind, ctx.op.id, ctx.request.reason());
        let event = self
            .event(ctx.op, "environment.lock", Outcome::Succeeded)
            .params(json!({ "reason": reason, "operation": ctx.op.id }));
        match self
            .inner
            .store
            .lock_for_operation(env, &reason, &ctx.op.requested_by, &ctx.op.id, &event)
            .await
        {
            Ok(Ok(_)) => self.changed(env),
            Ok(Err(lock)) => {
                return Ended::Failed(format!(
                    "{env} was locked by {} in the meantime: {}",
                    lock.locked_by, lock.reason
                ));
            }
            Err(error) => return Ended::Failed(format!("the lock could not be written: {error}")),
        }
        let render = match self.render_for() {
            Ok(render) => render,
            Err(ended) => return ended,
        };
        match render
            .set_auto_deploy(&ctx.env.render_service_id, false)
            .await
        {
            Ok(service) if !service.auto_deploy => done(format!(
                "Locked {env}; Render's auto-deploy of {} is off.",
                service.name
            )),
            Ok(service) => Ended::Failed(format!(
                "Render still reports auto-deploy on for {} after turning it off.",
                service.name
            )),
            Err(error) => Ended::Failed(format!("Render refused to turn auto-deploy off: {error}")),
        }
    }

    async fn render_rollback(&self, ctx: &Ctx<'_>) -> Ended {
        let Request::Rollback(r) = ctx.request else {
            return Ended::Failed("not a rollback".into());
        };
        let render = match self.render_for() {
            Ok(render) => render,
            Err(ended) => return ended,
        };
        let service = &ctx.env.render_service_id;
        match render.rollback(service, &r.target_deploy_id).await {
            Ok(deploy) => Ended::Done {
                upstream_url: Some(Links::deploy(service, &deploy.id)),
                detail: format!(
                    "Render started deploy {} rolling back to {}.",
                    deploy.id, r.target_deploy_id
                ),
                upstream_id: Some(deploy.id),
            },
            Err(error) => Ended::Failed(format!("Render refused the rollback: {error}")),
        }
    }

    async fn trigger_deploy(&self, ctx: &Ctx<'_>) -> Ended {
        let Request::Deploy(d) = ctx.request else {
            return Ended::Failed("not a deploy".into());
        };
        let service = &ctx.env.render_service_id;
        if let Some(render) = &self.inner.upstreams.render {
            return match render.trigger(service, d.commit.as_deref()).await {
                Ok(Triggered::Started(deploy)) => Ended::Done {
                    upstream_url: Some(Links::deploy(service, &deploy.id)),
                    detail: format!("Render started deploy {}.", deploy.id),
                    upstream_id: Some(deploy.id),
                },
                Ok(Triggered::Queued) => {
                    done("Render queued the deploy behind the one in progress.")
                }
                Err(error) => Ended::Failed(format!("Render refused the deploy: {error}")),
            };
        }
        let hook = ctx
            .env
            .deploy_hook_env
            .as_deref()
            .filter(|_| self.inner.config.operations.deploy_hook_fallback)
            .and_then(|var| self.inner.config.secret(var));
        let Some(hook) = hook else {
            return Ended::Failed(
                "Render's API key is not set and the deploy hook fallback is off.".into(),
            );
        };
        match self
            .inner
            .upstreams
            .hooks
            .deploy_hook
            .trigger(hook.expose())
            .await
        {
            Ok(()) => done("Called the deploy hook (Render does not attribute hook deploys)."),
            Err(CallError::Status(status)) => {
                Ended::Failed(format!("The deploy hook answered {status}."))
            }
            Err(_) => Ended::Failed("The deploy hook could not be reached.".into()),
        }
    }

    /// The deploy a rollback or deploy step started, found among the
    /// service's newest deploys: created after the step's intent, of the
    /// right trigger and commit.
    async fn find_started_deploy(
        &self,
        ctx: &Ctx<'_>,
        step: Step,
        started: Option<OffsetDateTime>,
    ) -> Result<Option<Ended>, String> {
        let render = self
            .render_for()
            .map_err(|_| "Render is not configured".to_owned())?;
        let service = &ctx.env.render_service_id;
        let since = started.unwrap_or(OffsetDateTime::UNIX_EPOCH) - time::Duration::seconds(5);
        let deploys = render
            .deploys(service, 20)
            .await
            .map_err(|e| e.to_string())?;
        let (trigger, commit) = match ctx.request {
            Request::Rollback(r) => (DeployTrigger::Rollback, Some(r.target_commit.as_str())),
            Request::Deploy(d) => (DeployTrigger::Api, d.commit.as_deref()),
        };
        let found = deploys.into_iter().find(|d| {
            d.created_at >= since
                && (step != Step::RenderRollback || d.trigger.as_ref() == Some(&trigger))
                && commit.is_none_or(|c| d.commit.as_ref().is_some_and(|dc| dc.id == c))
        });
        Ok(found.map(|deploy| Ended::Done {
            upstream_url: Some(Links::deploy(service, &deploy.id)),
            detail: format!(
                "Found deploy {} on Render, started before the panel restarted; not sent again.",
                deploy.id
            ),
            upstream_id: Some(deploy.id),
        }))
    }

    async fn wait_live(&self, ctx: &Ctx<'_>) -> Ended {
        let render = match self.render_for() {
            Ok(render) => render,
            Err(ended) => return ended,
        };
        let service = &ctx.env.render_service_id;
        let started_by = ctx
            .steps
            .iter()
            .filter(|s| s.position < ctx.row.position)
            .find(|s| {
                s.name == Step::RenderRollback.name() || s.name == Step::TriggerDeploy.name()
            });
        let mut deploy_id = started_by.and_then(|s| s.upstream_id.clone());
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(self.inner.config.operations.live_timeout_seconds);
        let mut last_error = None;
        loop {
            if deploy_id.is_none() {
                // A queued or hook deploy: the newest one created since the step began.
                let since = started_by
                    .and_then(|s| s.started_at.as_deref())
                    .and_then(|t| {
                        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                if let Ok(deploys) = render.deploys(service, 10).await {
                    deploy_id = deploys
                        .into_iter()
                        .find(|d| d.created_at >= since)
                        .map(|d| d.id);
                }
            }
            if let Some(id) = &deploy_id {
                match render.deploy(service, id).await {
                    Ok(deploy) if deploy.status == DeployStatus::Live => {
                        return Ended::Done {
                            upstream_url: Some(Links::deploy(service, id)),
                            detail: format!("Deploy {id} is live."),
                            upstream_id: Some(id.clone()),
                        };
                    }
                    Ok(deploy)
                        if deploy.status.failed() || deploy.status == DeployStatus::Deactivated =>
                    {
                        return Ended::Failed(format!(
                            "Deploy {id} ended {} instead of going live.",
                            deploy.status.as_str().replace('_', " ")
                        ));
                    }
                    Ok(_) => {}
                    Err(error) => last_error = Some(error.to_string()),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ended::Failed(format!(
                    "The deploy was not live after {} s{}.",
                    self.inner.config.operations.live_timeout_seconds,
                    last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                ));
            }
            tokio::time::sleep(self.inner.poll).await;
        }
    }

    async fn downgrade(&self, ctx: &Ctx<'_>) -> Ended {
        let Request::Rollback(r) = ctx.request else {
            return Ended::Failed("a deploy has no database step".into());
        };
        let Some(target) = r.downgrade_to.as_deref() else {
            return Ended::Failed("the plan found no revision to downgrade to".into());
        };
        let timeout = Duration::from_secs(self.inner.config.operations.runner_timeout_seconds);
        match &ctx.env.migration_runner {
            MigrationRunner::Command { command, dir } => {
                let mut env = Vec::new();
                let mut redact = Vec::new();
                if let Some(url) = self.inner.config.secret(&ctx.env.database_url_env) {
                    env.push((ctx.env.database_url_env.clone(), url.expose().to_owned()));
                    redact.push(url.expose().to_owned());
                }
                env.push(("FLIGHTDECK_ENVIRONMENT".into(), ctx.env.name.to_string()));
                let finished = match runner::run(
                    command,
                    target,
                    dir.as_deref(),
                    &env,
                    &redact,
                    timeout,
                )
                .await
                {
                    Ok(finished) => finished,
                    Err(why) => return Ended::Failed(why.to_string()),
                };
                let _ = self
                    .inner
                    .store
                    .step_note(&ctx.op.id, ctx.row.position, None, None, &finished.output)
                    .await;
                if !finished.success {
                    return Ended::Failed(format!(
                        "The migration command failed ({}); its output is in the step's log.",
                        finished.status
                    ));
                }
            }
            MigrationRunner::Workflow { workflow } => {
                if let Err(ended) = self.run_workflow(ctx, workflow, target, timeout).await {
                    return ended;
                }
            }
        }
        match self.read_back(ctx, target).await {
            Ok(detail) => done(detail),
            Err(why) => Ended::Failed(why),
        }
    }

    async fn run_workflow(
        &self,
        ctx: &Ctx<'_>,
        workflow: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<(), Ended> {
        let github = self.inner.upstreams.github.as_ref().ok_or_else(|| {
            Ended::Failed("GitHub is not configured or its token variable is not set.".into())
        })?;
        let inputs = BTreeMap::from([
            ("environment".to_owned(), ctx.env.name.to_string()),
            ("revision".to_owned(), target.to_owned()),
        ]);
        let run_id = github
            .dispatch(workflow, &ctx.env.branch, inputs)
            .await
            .map_err(|e| Ended::Failed(format!("GitHub refused to start {workflow}: {e}")))?;
        let run_text = run_id.to_string();
        let _ = self
            .inner
            .store
            .step_note(&ctx.op.id, ctx.row.position, Some(&run_text), None, "")
            .await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(run) = github.run(run_id).await
                && run.status == "completed"
            {
                let _ = self
                    .inner
                    .store
                    .step_note(&ctx.op.id, ctx.row.position, None, Some(&run.html_url), "")
                    .await;
                return match run.conclusion.as_deref() {
                    Some("success") => Ok(()),
                    other => Err(Ended::Failed(format!(
                        "The {workflow} run {run_id} ended {}.",
                        other.unwrap_or("without a conclusion")
                    ))),
                };
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Ended::Failed(format!(
                    "The {workflow} run {run_id} did not finish within {} s.",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(self.inner.poll).await;
        }
    }

    /// Reads `alembic_version` and checks it is `target` (no row for `base`).
    async fn read_back(&self, ctx: &Ctx<'_>, target: &str) -> Result<String, String> {
        let db = self
            .inner
            .upstreams
            .databases
            .get(ctx.env.name.as_str())
            .ok_or_else(|| {
                format!(
                    "{} is not set, so the database cannot be read back",
                    ctx.env.database_url_env
                )
            })?;
        let versions = db.versions().await.map_err(|e| e.to_string())?;
        let expected: Vec<String> = if target == "base" {
            Vec::new()
        } else {
            vec![target.to_owned()]
        };
        if versions == expected {
            Ok(format!(
                "alembic_version reads {}, the target.",
                if target == "base" {
                    "no row (base)"
                } else {
                    target
                }
            ))
        } else {
            Err(format!(
                "alembic_version reads [{}], not {target}",
                versions.join(", ")
            ))
        }
    }

    async fn revert_code(&self, ctx: &Ctx<'_>) -> Ended {
        let Request::Rollback(r) = ctx.request else {
            return Ended::Failed("not a rollback".into());
        };
        let Some(github) = &self.inner.upstreams.github else {
            return Ended::Failed(
                "GitHub is not configured or its token variable is not set.".into(),
            );
        };
        let branch = &ctx.env.branch;
        let short = short_sha(&r.target_commit);
        let message = format!(
            "Roll {branch} back to {short}\n\n{}\n\nFlightdeck operation {} by {}. This commit restores the tree of {}; \
             nothing was force-pushed.",
            r.reason, ctx.op.id, ctx.op.requested_by, r.target_commit
        );
        let sha = match github
            .commit_with_tree_of(branch, &r.target_commit, &message)
            .await
        {
            Ok(sha) => sha,
            Err(error) => {
                return Ended::Failed(format!("GitHub refused the revert commit: {error}"));
            }
        };
        match r.revert_mode {
            RevertMode::FastForward => match github.fast_forward(branch, &sha).await {
                Ok(()) => Ended::Done {
                    upstream_url: None,
                    detail: format!(
                        "{branch} now has {}'s code (commit {}).",
                        short,
                        short_sha(&sha)
                    ),
                    upstream_id: Some(sha),
                },
                Err(error) => Ended::Failed(format!("GitHub refused to move {branch}: {error}")),
            },
            RevertMode::PullRequest => {
                let head = format!(
                    "flightdeck/rollback-{}",
                    &ctx.op.id[..ctx.op.id.len().min(8)]
                );
                if let Err(error) = github.create_branch(&head, &sha).await {
                    return Ended::Failed(format!("GitHub refused the branch {head}: {error}"));
                }
                let title = format!("Roll {branch} back to {short}");
                match github.open_pull(&head, branch, &title, &message).await {
                    Ok(pull) => Ended::Done {
                        upstream_id: Some(format!("#{}", pull.number)),
                        detail: format!("Opened pull request #{} into {branch}.", pull.number),
                        upstream_url: Some(pull.html_url),
                    },
                    Err(error) => {
                        Ended::Failed(format!("GitHub refused the pull request: {error}"))
                    }
                }
            }
        }
    }

    async fn smoke(&self, ctx: &Ctx<'_>) -> Ended {
        let Some(base) = self.inner.config.secret(&ctx.env.smoke_url_env) else {
            return Ended::Skipped(format!(
                "{} is not set, so there is nothing to smoke check.",
                ctx.env.smoke_url_env
            ));
        };
        // The URL is a secret variable's value: the page shows the path only.
        let url = format!(
            "{}{}",
            base.expose().trim_end_matches('/'),
            ctx.env.smoke_path
        );
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(self.inner.config.operations.smoke_timeout_seconds);
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = match self.inner.upstreams.hooks.smoke.probe(&url).await {
                Ok(status) => {
                    return done(format!(
                        "{} answered {status} (try {tries}).",
                        ctx.env.smoke_path
                    ));
                }
                Err(error) => error.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Ended::Failed(format!(
                    "{} {answer} on the last of {tries} tries.",
                    ctx.env.smoke_path
                ));
            }
            tokio::time::sleep(self.inner.poll * 2).await;
        }
    }

    /// Posts the outcome to the notification webhook; the URL's host when
    /// sent, None when none is configured.
    async fn announce(
        &self,
        op: &OperationRow,
        request: &Request,
        outcome: OperationState,
        why: Option<&str>,
    ) -> Result<Option<String>, String> {
        let Some(var) = &self.inner.config.operations.notify_webhook_env else {
            return Ok(None);
        };
        let Some(url) = self.inner.config.secret(var) else {
            return Ok(None);
        };
        let link = format!(
            "{}/operations/{}",
            self.inner
                .config
                .server
                .public_url
                .as_str()
                .trim_end_matches('/'),
            op.id
        );
        let text = format!(
            "Flightdeck: {} of {} requested by {} {}{}. Reason: {}. {link}",
            op.kind,
            op.environment,
            op.requested_by,
            outcome.as_str().replace('_', " "),
            why.map(|w| format!(" ({w})")).unwrap_or_default(),
            request.reason(),
        );
        let body = json!({
            "text": text,
            "operation": {
                "id": op.id, "kind": op.kind, "environment": op.environment,
                "outcome": outcome, "error": why, "requested_by": op.requested_by, "url": link,
            },
        });
        self.inner
            .upstreams
            .hooks
            .notifier
            .notify(url.expose(), &body)
            .await
            .map_err(|error| match error {
                CallError::Status(status) => format!("the webhook answered {status}"),
                _ => "the webhook could not be reached".to_owned(),
            })?;
        Ok(Some(
            url::Url::parse(url.expose())
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "the webhook".into()),
        ))
    }
}

struct Ctx<'a> {
    op: &'a OperationRow,
    request: &'a Request,
    env: &'a EnvironmentConfig,
    steps: &'a [StepRow],
    row: &'a StepRow,
}
